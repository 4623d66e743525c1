"""`peak lsp`: the language server editors talk to while a spec is being typed.

The analysis is plain library code over source text (``text``: positions and a forgiving
lexer; ``analysis``: diagnostics, position → node lookup, hover, definition, formatting;
``complete``: completion lists; ``specs``: the other specs of the project), so it is tested
without an editor. ``server`` is the thin pygls wiring and the only module that imports
pygls; ``textmate`` generates the highlighting grammar in ``editors/`` from the same
registries the checker uses. See docs/editor.md.
"""
