"""Compiler back end: checked AST → signal graph → numexpr program → canonical artifacts."""
