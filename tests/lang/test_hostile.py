"""Hostile specs: injection attempts are diagnostics, and nothing outside the compiler runs.

Every case goes through the real CLI in a fresh working directory: the exit code is 1,
the expected code is in the JSON output, there is no traceback, and the directory holds
exactly the files it held before (no ``PWNED``). Input that is legitimately data (a
format string in a description) must come back verbatim, never interpreted.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from peakdsl.lang import ast
from peakdsl.lang.checker import check_module
from peakdsl.lang.diagnostics import Diagnostic
from peakdsl.lang.parser import MAX_DEPTH, MAX_FILE_BYTES, parse_bytes, parse_text

BASE = """\
strategy h {{
    market BTC/EUR
    timeframe 1h
    param fast: int = 10 in 2..50
    {body}
    entry long when close > sma(close, fast)
    size 10% of equity
}}
"""

BASE_STRATEGY = """\
strategy base {
    market BTC/EUR
    timeframe 1h
    param fast: int = 10 in 2..50
    entry long when close > sma(close, fast)
    size 10% of equity
}
"""


def strategy(body: str) -> str:
    return BASE.format(body=body)


def snapshot(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def run_check(root: Path, rel: str, data: str | bytes, *extra: str
              ) -> tuple[int, dict[str, object], str]:
    """Write ``data`` at ``root/rel``, run ``peak check`` there, prove nothing else happened."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_bytes(data.encode("utf-8"))
    before = snapshot(root)
    proc = subprocess.run([sys.executable, "-m", "peakdsl.cli", "check", rel, *extra],
                          cwd=root, capture_output=True, text=True, timeout=120, check=False)
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out[-2000:]
    assert snapshot(root) == before, "peak check created or removed files"
    assert not list(root.rglob("PWNED")), "payload executed"
    doc = json.loads(proc.stdout) if "--format" in extra else {}
    return proc.returncode, doc, out


def codes_of(doc: dict[str, object]) -> set[str]:
    return {d["code"] for d in doc["diagnostics"]}  # type: ignore[attr-defined,index]


def parse_check(text: str, path: str = "h.peak") -> list[Diagnostic]:
    result = parse_text(text, path)
    diags = list(result.diagnostics)
    if result.module is not None:
        diags.extend(check_module(result.module)[1])
    return diags


# ---------------------------------------------------------------- the corpus

# (id, spec body placed inside strategy `h`, codes of which at least one must be reported)
CASES: list[tuple[str, str, set[str]]] = [
    # Python dunder tricks
    ("import-single-quotes", "let a = __import__('os').system('touch PWNED')", {"P002"}),
    ("import-call", 'let a = __import__("os")\n    require a > 0', {"N002"}),
    ("import-attr", 'let a = __import__("os").system("touch PWNED")', {"P002"}),
    ("subclasses", "let a = ().__class__.__bases__[0].__subclasses__()", {"P001"}),
    ("builtins-ref", "let a = __builtins__ + close", {"N001"}),
    ("globals-call", "let a = globals()['os']", {"P002"}),
    ("eval-call", 'let a = eval("__import__(1)") + close', {"N002"}),
    ("exec-call", 'let a = exec("import os") + close', {"N002"}),
    ("lambda", "let a = lambda: 0", {"P002", "P001"}),
    ("semicolon", "let a = close; import os", {"P002"}),
    # format strings
    ("format-in-market", 'market "{0.__class__.__mro__} %s%s%n {x!r}"', {"T001"}),
    ("format-in-name", "let {x!r} = close", {"P001"}),
    ("format-in-let-name", "let a{0} = close", {"P001"}),
    ("percent-format-name", "let a%s = close", {"P002", "P001"}),
    # numexpr-ish payloads
    ("numexpr-where", "let a = where(close > 0, 1, 0) + close", {"N002"}),
    ("numexpr-pow", "let a = close ** 2", {"P001"}),
    ("numexpr-string-used", 'let a = "__import__(\'os\').system(\'x\')"\n'
     "    entry short when a > 0", {"T001"}),
    ("numexpr-string-in-call", 'let a = sma("close; import os", 5)', {"T001"}),
    ("numexpr-bitwise", "let a = (close > 0) & (close < 1)", {"P002"}),
    ("numexpr-attr", "let a = close.__class__", {"P002"}),
    ("numexpr-complex", "let a = close * 1j", {"P001", "P002"}),
    # shell metacharacters where a value is expected
    ("shell-in-market", 'market "x; rm -rf / && touch PWNED"', {"T001"}),
    ("shell-bare", "let a = $(touch PWNED)", {"P002"}),
    ("backticks-bare", "let a = `touch PWNED`", {"P002"}),
    ("pipe-bare", "let a = close | touch", {"P002"}),
    # NaN / inf / out-of-range numbers
    ("nan", "let a = close * nan", {"N001"}),
    ("inf", "let a = close + inf", {"N001"}),
    ("minus-inf", "let a = -inf", {"N001"}),
    ("1e999", "let a = close * 1e999", {"P008"}),
    ("minus-1e999", "let a = close * -1e999", {"P008"}),
    ("huge-int", "let a = close * 99999999999999999999999", {"P008"}),
    ("huge-lag", "let a = close[99999999999999999999]", {"P008"}),
    ("nan-setting", "stop_loss nan", {"N001"}),
    ("inf-percent", "stop_loss inf%", {"P002", "N001"}),
    ("huge-percent", "stop_loss 1e999%", {"P002", "P008"}),
    ("negative-lag", "let a = close[-1]", {"L001"}),
    # control characters and identifiers
    ("nul-in-body", "let a = close\x00", {"P002"}),
    ("nul-in-string", 'description "a\x00b"', {"P002"}),
    ("escape-in-string", 'description "\x1b[2J\x1b]0;owned\x07"', {"P002"}),
    ("huge-identifier", f"let {'a' * 10_000} = close", {"P007"}),
    ("uppercase-identifier", "let Fast = close", {"P001"}),
    ("homoglyph", "let a = \u0441lose", {"P002"}),
    ("zero-width", "let a\u200b = close", {"P002"}),
    ("newline-in-string", 'description "line one\nline two"', {"P002", "P001"}),
    ("escaped-quote", r'description "a\"; touch PWNED; \""', {"P002", "P001"}),
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "specs" / "strategies").mkdir(parents=True)
    (tmp_path / "specs" / "strategies" / "base.peak").write_text(BASE_STRATEGY, "utf-8")
    return tmp_path


@pytest.mark.parametrize(("body", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_injection_rejected_and_inert(project: Path, body: str, expected: set[str]) -> None:
    rc, doc, _ = run_check(project, "specs/strategies/h.peak", strategy(body), "--format", "json")
    assert rc == 1, doc
    assert codes_of(doc) & expected, (expected, doc)
    assert "I001" not in codes_of(doc)


def test_corpus_in_process_matches() -> None:
    """The same corpus through parse + check directly (no subprocess): same verdicts."""
    for name, body, expected in CASES:
        diags = parse_check(strategy(body))
        assert {d.code for d in diags} & expected, (name, diags)


def test_format_strings_are_inert_data(project: Path) -> None:
    payload = "{0.__class__} {x!r} %s%s%n ${HOME} $(touch PWNED) `touch PWNED` | rm -rf / &&"
    text = strategy(f'description "{payload}"')
    result = parse_text(text)
    assert result.module is not None, result.diagnostics
    strings = [s.value.value for s in result.module.decl.items
               if isinstance(s, ast.Setting) and isinstance(s.value, ast.String)]
    assert strings == [payload]
    rc, _, _ = run_check(project, "specs/strategies/h.peak", text)
    assert rc == 0
    # shown back verbatim in a diagnostic's snippet, never formatted
    rc, _, out = run_check(project, "specs/strategies/h.peak",
                           strategy(f'market "{payload}"'))
    assert rc == 1
    assert payload in out
    assert "<class" not in out and str(Path.home()) + " " not in out


def test_override_payload_in_portfolio(project: Path) -> None:
    spec = ('portfolio h {\n    capital 1000 EUR\n'
            '    component base weight 100% with { fast = "__import__(\'os\')" }\n}\n')
    rc, doc, _ = run_check(project, "specs/portfolios/h.peak", spec, "--format", "json")
    assert rc == 1 and "T010" in codes_of(doc), doc


@pytest.mark.parametrize("target", ["../../etc/passwd", "/etc/passwd", "etc.passwd", "~root"])
def test_references_cannot_name_paths(project: Path, target: str) -> None:
    spec = f"portfolio h {{\n    capital 1000 EUR\n    component {target} weight 100%\n}}\n"
    rc, doc, _ = run_check(project, "specs/portfolios/h.peak", spec, "--format", "json")
    assert rc == 1 and codes_of(doc) & {"P001", "P002"}, doc


def test_reference_to_missing_spec_is_n006(project: Path) -> None:
    spec = "portfolio h {\n    capital 1000 EUR\n    component passwd weight 100%\n}\n"
    rc, doc, _ = run_check(project, "specs/portfolios/h.peak", spec, "--format", "json")
    assert rc == 1 and "N006" in codes_of(doc), doc


def test_dunder_names_are_plain_identifiers(project: Path) -> None:
    """`__builtins__` may be a let name; it only ever lives in the checker's symbol table."""
    text = strategy("let __builtins__ = close\n    exit long when __builtins__ < 0")
    rc, _, out = run_check(project, "specs/strategies/h.peak", text)
    assert rc in (0, 1), out


# ---------------------------------------------------------------- size, encoding, depth


def test_file_over_one_mib_is_p004(project: Path) -> None:
    pad = ("# " + "x" * 98 + "\n") * (MAX_FILE_BYTES // 100 + 10)
    data = strategy("") + pad
    assert len(data.encode()) > MAX_FILE_BYTES
    rc, doc, _ = run_check(project, "specs/strategies/h.peak", data, "--format", "json")
    assert rc == 1 and codes_of(doc) == {"P004"}, doc
    assert [d.code for d in parse_bytes("h.peak", data.encode()).diagnostics] == ["P004"]


@pytest.mark.parametrize("data", [b'strategy h { description "\xff\xfe" }',
                                  b"strategy h {\xc3\x28 }", b"\xed\xa0\x80 surrogate",
                                  b"strategy h { # \xf8\x88\x80\x80\x80 overlong\n}"],
                         ids=["ff-fe", "bad-continuation", "encoded-surrogate", "five-byte"])
def test_invalid_utf8_is_p006(project: Path, data: bytes) -> None:
    rc, doc, _ = run_check(project, "specs/strategies/h.peak", data, "--format", "json")
    assert rc == 1 and codes_of(doc) == {"P006"}, doc


DEEP = {
    "parens-10k": "let a = " + "(" * 10_000 + "close" + ")" * 10_000,
    "plus-chain-10k": "let a = close" + " + close" * 10_000,
    "mul-chain-10k": "let a = close" + " * 1" * 10_000,
    "and-chain-10k": "exit long when " + " and ".join(["close > 0"] * 10_000),
    "not-chain-10k": "exit long when " + "not " * 10_000 + "true",
    "neg-chain-10k": "let a = " + "-" * 10_000 + "close",
    "lag-chain-10k": "let a = close" + "[1]" * 10_000,
    "calls-10k": "let a = " + "abs(" * 10_000 + "close" + ")" * 10_000,
    "lists-10k": "let a = " + "[" * 10_000 + "close" + "]" * 10_000,
    "ifelse-3k": "let a = " + "if true then " * 3_000 + "close" + " else close" * 3_000,
}


@pytest.mark.parametrize("body", list(DEEP.values()), ids=list(DEEP))
def test_deep_nesting_is_p005_in_process(body: str, record_property: pytest.RecordProperty
                                         ) -> None:
    start = time.perf_counter()
    result = parse_text(strategy(body), "h.peak")
    elapsed = time.perf_counter() - start
    record_property("parse_seconds", round(elapsed, 3))  # information only, no assertion
    print(f"parse took {elapsed:.3f}s")
    assert result.module is None
    codes = [d.code for d in result.diagnostics]
    # nesting is P005; a chain long enough to pass the token limit is stopped earlier (P004)
    assert codes in (["P005"], ["P004"])
    if codes == ["P005"]:
        assert str(MAX_DEPTH) in result.diagnostics[0].message


def test_deep_nesting_is_p005_via_cli(project: Path, record_property: pytest.RecordProperty
                                      ) -> None:
    start = time.perf_counter()
    rc, doc, _ = run_check(project, "specs/strategies/h.peak", strategy(DEEP["parens-10k"]),
                           "--format", "json")
    record_property("cli_seconds", round(time.perf_counter() - start, 3))
    assert rc == 1 and codes_of(doc) == {"P005"}, doc


def test_nesting_at_the_limit_is_fine() -> None:
    """Ordinary nesting well under the limit parses."""
    body = "let a = " + "(" * 20 + "close" + ")" * 20
    assert not [d for d in parse_check(strategy(body)) if d.is_error]


# ---------------------------------------------------------------- grammar guarantees


@pytest.mark.parametrize(("text", "hint"), [
    ("strategy MyStrat { }", True),
    ("strategy my_strat { let Fast = close }", True),
    ("strategy my_strat { param Fast: int = 1 in 0..2 }", True),
    ("portfolio p { component Base weight 100% }", True),
    ("strategy my_strat { market BTC/EUR timeframe 1h entry long when Close > 0 }", False),
    ("strategy my_strat { let a = SMA(close, 5) }", False),
])
def test_grammar_rejects_uppercase_identifiers(text: str, hint: bool) -> None:
    result = parse_text(text)
    assert result.module is None
    assert result.diagnostics[0].code == "P001"
    if hint:  # where a name is expected, the help says why
        assert "lower_snake_case" in result.diagnostics[0].help


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_strings_cannot_contain_newlines(newline: str) -> None:
    result = parse_text(strategy(f'description "one{newline}two"'))
    assert result.module is None
    assert result.diagnostics[0].code in {"P001", "P002"}


@pytest.mark.parametrize("text", [
    strategy('description "safe \u202e}gnol yrtne\u202c"'),
    strategy("# \u2066 reviewer sees this \u2069\n    let a = close"),
    strategy('description "csi \u009b2J"'),
    strategy('description "one\rtwo"'),
    strategy("# looks like a comment\r    stop_loss 2%\n    let a = close"),
], ids=["rlo-in-string", "isolate-in-comment", "c1-csi-in-string", "bare-cr-in-string",
        "bare-cr-hides-code-in-comment"])
def test_bidi_and_c1_controls_are_rejected(text: str) -> None:
    """Trojan Source: a reviewer must never read a different spec than the compiler."""
    codes = {d.code for d in parse_check(text)}
    assert "P002" in codes
