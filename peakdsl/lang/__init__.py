"""Language front end: source text → AST → checked project, with diagnostics as data."""
