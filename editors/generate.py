"""Write the TextMate grammar (both copies) from peak's registries.

    python editors/generate.py          # rewrite the files
    python editors/generate.py --check  # exit 1 when they are stale

The grammar is ``peakdsl.lsp.textmate.grammar_json()``; the VS Code extension carries its
own copy because an extension may only read files inside its folder.
tests/lsp/test_textmate.py fails when a copy differs, so a new built-in or setting is
highlighted from the day it exists.
"""

from __future__ import annotations

import sys
from pathlib import Path

from peakdsl.lsp.textmate import grammar_json

HERE = Path(__file__).resolve().parent
TARGETS = (HERE / "textmate" / "peak.tmLanguage.json",
           HERE / "vscode" / "syntaxes" / "peak.tmLanguage.json")


def main(argv: list[str]) -> int:
    text = grammar_json()
    stale = [t for t in TARGETS if not t.is_file() or t.read_text("utf-8") != text]
    if "--check" in argv:
        for target in stale:
            sys.stderr.write(f"stale: {target.relative_to(HERE.parent)}\n")
        return 1 if stale else 0
    for target in stale:
        target.write_text(text, "utf-8")
        sys.stderr.write(f"wrote {target.relative_to(HERE.parent)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
