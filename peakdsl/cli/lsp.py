"""`peak lsp`: the language server an editor starts (docs/editor.md).

It speaks the Language Server Protocol on stdin and stdout, so it prints nothing itself:
stdout belongs to the protocol. pygls is imported inside the command, never at import time,
so `peak check` stays light (tests/test_cli_imports.py).
"""

from __future__ import annotations

from typing import Annotated

import typer

from .root import guarded

StdioOpt = Annotated[bool, typer.Option(
    "--stdio", help="talk over stdin/stdout (the only transport; accepted because editors "
    "such as VS Code pass it)")]


@guarded
def lsp_cmd(stdio: StdioOpt = False) -> None:
    """Run the language server for editors: diagnostics, hover, completion, go-to-definition
    and formatting of .peak files, over stdin/stdout."""
    from ..lsp.server import serve

    serve()
