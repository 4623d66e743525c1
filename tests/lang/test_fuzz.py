"""Fuzzing the front end: whatever the input, parse + check return data, never raise.

Two generators: arbitrary text (unicode, control characters, grammar fragments) and
mutations of valid specs (deleted, duplicated, swapped tokens, inserted junk or keywords,
truncation, absurd numbers, near-miss names). Every diagnostic that comes out must be
well formed: a registered code, a path, a 1-based position and a message. A handful of
mutated files also go through the real CLI in a subprocess: exit 0 or 1, no traceback.

Deterministic: hypothesis runs derandomized without an example database, and the CLI
corpus comes from a seeded ``random.Random``.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peakdsl.lang.checker import check_module
from peakdsl.lang.diagnostics import CODES, Diagnostic
from peakdsl.lang.parser import ParseResult, parse_bytes, parse_text
from peakdsl.lang.render import render_json, render_text
from peakdsl.lang.source import SourceFile

REPO = Path(__file__).resolve().parents[2]

FUZZ = settings(max_examples=200, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# ---------------------------------------------------------------- sample specs

SMA_CROSSOVER = """\
strategy sma_crossover {
    description "SMA trend following on BTC"
    market BTC/EUR
    timeframe 1h

    param fast: int = 20 in 5..50 step 5
    param slow: int = 60 in 40..200 step 10
    require fast < slow

    let fast_ma = sma(close, fast)
    let slow_ma = sma(close, slow)

    entry long when crossover(fast_ma, slow_ma)
    exit  long when crossunder(fast_ma, slow_ma)

    size 25% of equity
    stop_loss 5%
    take_profit 15%
    execution { fill next_open fees 10bps slippage 5bps }
}
"""

RSI_REVERSION = """\
strategy rsi_reversion {
    market ETH/EUR
    timeframe 4h
    param len: int = 14 in 2..30
    param lo: float = 30 in 10..40
    let r = rsi(close, len)
    let vol = stdev(close, 20) / sma(close, 20)
    entry long when r < lo and not falling(close, 3) and vol < 0.5
    exit long when r > 70 or close[1] > highest(high, 20)
    entry short when if r > 80 then true else false
    exit short when r < 50
    size 10% of equity
    trailing_stop 2%
}
"""

RISK = """\
risk live_moderate {
    description "moderate live limits"
    max_order_notional   1000 EUR
    max_symbol_exposure  30%
    max_total_exposure   80%
    max_open_positions   3
    max_daily_loss       2%      # halts new entries
    max_orders_per_minute 10
    daily_loss_warn 80%
}
"""

PROMOTION = """\
promotion live_gate {
    require sharpe        >= 1.5
    require max_drawdown  >= -15%
    require profit_factor >= 1.3
    require trades        >= 50
    require oos_sharpe    >= 1.0       # from walk-forward
    require mc_p05_return >  0%        # from Monte-Carlo
}
"""

PORTFOLIO = """\
portfolio multi_style {
    description "two sleeves"
    capital 10000 EUR
    component sma_crossover weight 50% with { fast = 10, slow = 80 }
    component rsi_reversion weight 50%
    rebalance 7d
    risk live_moderate
    robustness { monte_carlo 3000 stress [crash, vol_spike, fee_x2] seed 7 }
}
"""

INLINE = {"sma_crossover": SMA_CROSSOVER, "rsi_reversion": RSI_REVERSION,
          "live_moderate": RISK, "live_gate": PROMOTION, "multi_style": PORTFOLIO}


def _library() -> dict[str, str]:
    """Inline samples plus whatever the repository's spec library holds today."""
    found = dict(INLINE)
    for path in sorted((REPO / "specs").glob("**/*.peak")):
        try:
            found[f"lib/{path.stem}"] = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
    return found


SAMPLES = _library()
SAMPLE_NAMES = sorted(SAMPLES)

# ---------------------------------------------------------------- helpers


def assert_well_formed(diags: list[Diagnostic] | tuple[Diagnostic, ...]) -> None:
    for d in diags:
        assert d.code in CODES, d
        assert d.path, d
        assert d.span.line >= 1 and d.span.col >= 1, d
        assert d.span.end_line >= 1 and d.span.end_col >= 1, d
        assert d.message.strip(), d
        for label in d.labels:
            assert label.span.line >= 1 and label.span.col >= 1, label


def parse_and_check(text: str, path: str = "fuzz.peak") -> list[Diagnostic]:
    """parse → check → render; any exception fails the calling test."""
    result = parse_text(text, path)
    assert isinstance(result, ParseResult)
    diags = list(result.diagnostics)
    if result.module is None:
        assert diags, "a failed parse must say why"
    else:
        _spec, more = check_module(result.module)
        assert isinstance(more, list)
        diags.extend(more)
    assert_well_formed(diags)
    src = SourceFile.of(path, text)
    render_text(diags, lambda p: src if p == path else None)
    json.loads(render_json(diags))
    return diags


# ---------------------------------------------------------------- (a) random text

FRAGMENTS = ["strategy", "portfolio", "risk", "promotion", "param", "require", "let", "entry",
             "exit", "long", "short", "when", "size", "of", "equity", "component", "weight",
             "with", "if", "then", "else", "and", "or", "not", "true", "false", "in", "step",
             "{", "}", "(", ")", "[", "]", ",", ":", "=", "..", "<=", ">=", "==", "!=", "<", ">",
             "+", "-", "*", "/", "%", "bps", "1h", "7d", "BTC/EUR", "1000 EUR", '"s"', "#c\n",
             "close", "sma(close, 5)", "x[1]", "x[-1]", "1e999", "nan", "0", "3.5", " ", "\n",
             "\t", "\r", "\x00", "\x1b", "\x7f", "\u202e", "\ufeff", "é", "\U0001f600"]

any_text = st.text(alphabet=st.characters(codec=None, exclude_categories=("Cs",)), max_size=400)
fragment_text = st.lists(st.sampled_from(FRAGMENTS), max_size=60).map(" ".join)
prefixed_text = st.tuples(st.sampled_from(["strategy", "portfolio", "risk", "promotion"]),
                          st.sampled_from(["x", "fuzz", "a_b"]), st.one_of(any_text,
                                                                           fragment_text)
                          ).map(lambda t: f"{t[0]} {t[1]} {{ {t[2]} }}")


@FUZZ
@given(st.one_of(any_text, fragment_text, prefixed_text))
def test_random_text_never_raises(text: str) -> None:
    parse_and_check(text)


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(data: bytes) -> None:
    result = parse_bytes("fuzz.peak", data)
    diags = list(result.diagnostics)
    if result.module is not None:
        diags.extend(check_module(result.module)[1])
    assert_well_formed(diags)


# ---------------------------------------------------------------- (b) mutated specs

TOKEN = re.compile(r"\s+|[A-Za-z_][A-Za-z0-9_]*|[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|\S")
NUMBER = re.compile(r"[0-9]")
WEIRD_NUMBERS = ["nan", "NaN", "inf", "-inf", "1e999", "-1e999", "-0", "0", "1e15", "1e16",
                 "99999999999999999999999", "0.0000000000000000001", "1e-999", "-", "1..2",
                 "1.", ".5", "0x10", "1_000", "１２", "2e", "1e+", "00007", "-9223372036854775809"]
KEYWORDS = ["strategy", "portfolio", "risk", "promotion", "param", "require", "let", "entry",
            "exit", "when", "size", "component", "weight", "with", "if", "then", "else", "and",
            "or", "not", "true", "false", "in", "step", "of", "long", "short", "market",
            "timeframe", "execution", "robustness", "capital", "{", "}", "(", ")", "[", "]",
            "..", ":", "=", ",", "%", "bps", '"', "#", "\n", "__import__", "__class__"]


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text)


def near_miss(name: str, rnd: random.Random) -> str:
    """A plausible typo: drop, double, swap or upper-case a character, or add a prefix."""
    if not name:
        return "x"
    i = rnd.randrange(len(name))
    options = [name[:i] + name[i + 1:], name[:i] + name[i] * 2 + name[i:],
               name[:i] + name[i:][::-1][:1] + name[i + 1:], name.upper(), name.capitalize(),
               "_" + name, "9" + name, name + "_", name.replace("_", ""), name * 40]
    if len(name) > 1 and i + 1 < len(name):
        options.append(name[:i] + name[i + 1] + name[i] + name[i + 2:])
    return rnd.choice(options)


def mutate(text: str, rnd: random.Random, n: int) -> str:
    toks = tokens(text)
    for _ in range(n):
        if not toks:
            toks = [rnd.choice(KEYWORDS)]
        i = rnd.randrange(len(toks))
        op = rnd.randrange(9)
        if op == 0:  # delete
            del toks[i]
        elif op == 1:  # duplicate
            toks.insert(i, toks[i])
        elif op == 2:  # swap
            j = rnd.randrange(len(toks))
            toks[i], toks[j] = toks[j], toks[i]
        elif op == 3:  # insert random characters
            toks.insert(i, "".join(chr(rnd.choice([rnd.randrange(0, 128),
                                                   rnd.randrange(128, 0x3000)]))
                                   for _ in range(rnd.randrange(1, 4))))
        elif op == 4:  # insert a keyword or punctuation
            toks.insert(i, rnd.choice([" ", ""]) + rnd.choice(KEYWORDS) + " ")
        elif op == 5:  # truncate
            toks = toks[:i]
        elif op == 6:  # absurd number
            nums = [k for k, t in enumerate(toks) if NUMBER.match(t)] or [i]
            toks[rnd.choice(nums)] = rnd.choice(WEIRD_NUMBERS)
        elif op == 7:  # near-miss name
            names = [k for k, t in enumerate(toks) if t[:1].isalpha() or t[:1] == "_"] or [i]
            k = rnd.choice(names)
            toks[k] = near_miss(toks[k], rnd)
        else:  # replace a token with a random keyword
            toks[i] = rnd.choice(KEYWORDS)
    return "".join(toks)


def test_samples_are_valid() -> None:
    """The mutation seeds themselves check clean (apart from cross-file references)."""
    for name, text in INLINE.items():
        diags = parse_and_check(text, f"{name}.peak")
        assert not [d for d in diags if d.severity.value == "error"], (name, diags)


@FUZZ
@given(st.sampled_from(SAMPLE_NAMES), st.integers(0, 2**32 - 1), st.integers(1, 6))
def test_mutated_specs_never_raise(name: str, seed: int, n: int) -> None:
    text = mutate(SAMPLES[name], random.Random(seed), n)
    parse_and_check(text, f"{name}.peak")


@FUZZ
@given(st.sampled_from(SAMPLE_NAMES), st.data())
def test_number_and_name_substitutions_never_raise(name: str, data: st.DataObject) -> None:
    """Every number slot gets an absurd value, or every name a near miss."""
    toks = tokens(SAMPLES[name])
    word = data.draw(st.sampled_from(WEIRD_NUMBERS))
    rnd = random.Random(data.draw(st.integers(0, 2**16)))
    if data.draw(st.booleans()):
        out = [word if NUMBER.match(t) else t for t in toks]
    else:
        out = [near_miss(t, rnd) if t[:1].isalpha() and rnd.random() < 0.3 else t for t in toks]
    parse_and_check("".join(out), f"{name}.peak")


# ---------------------------------------------------------------- the CLI, end to end


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "peakdsl.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def mutated_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small project of valid inline specs plus seeded mutations of them."""
    root = tmp_path_factory.mktemp("fuzzcli")
    specs = root / "specs"
    rnd = random.Random(20261121)
    for folder, names in {"strategies": ["sma_crossover", "rsi_reversion"],
                          "risk": ["live_moderate", "live_gate"],
                          "portfolios": ["multi_style"]}.items():
        (specs / folder).mkdir(parents=True)
        for name in names:
            (specs / folder / f"{name}.peak").write_text(INLINE[name], "utf-8")
    mutated = specs / "mutated"
    mutated.mkdir()
    inline = sorted(INLINE)  # not the library: the corpus must not change when it does
    for k in range(8):
        name = inline[k % len(inline)]
        text = mutate(INLINE[name], rnd, rnd.randrange(1, 5))
        (mutated / f"m{k}_{name}.peak").write_text(text, "utf-8", errors="surrogatepass")
    return root


def test_cli_on_mutated_files(mutated_project: Path) -> None:
    files = sorted((mutated_project / "specs" / "mutated").glob("*.peak"))
    assert len(files) == 8
    for i, path in enumerate(files):
        fmt = ["--format", "json"] if i % 2 else []
        proc = _cli("check", str(path.relative_to(mutated_project)), *fmt, cwd=mutated_project)
        out = proc.stdout + proc.stderr
        assert proc.returncode in (0, 1), (path.name, out)
        assert "Traceback" not in out and "I001" not in out, (path.name, out)
        if fmt:
            doc = json.loads(proc.stdout)
            assert (doc["errors"] > 0) == (proc.returncode == 1)


def test_cli_on_whole_mutated_project(mutated_project: Path) -> None:
    proc = _cli("check", "specs", "--format", "json", cwd=mutated_project)
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    for item in json.loads(proc.stdout)["diagnostics"]:
        assert item["code"] in CODES and item["code"] != "I001", item
        assert item["span"]["line"] >= 1 and item["span"]["col"] >= 1, item


def test_cli_on_valid_samples_is_clean(mutated_project: Path) -> None:
    proc = _cli("check", "specs/strategies", "specs/risk", "specs/portfolios",
                cwd=mutated_project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
