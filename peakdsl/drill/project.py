"""The scratch project a drill runs in: its own specs, its own ``.peak/``, never the user's.

A drill must not touch the deployments, registry or candles of the project it is run from,
so each one builds a throw-away project in a temporary folder: one strategy (``drill_trend``:
a fast moving-average crossover that trades every day or so on the demo candles), one risk
spec (``drill_limits``) with an ``alerts`` block — a JSON webhook whose URL is read from
``PEAK_DRILL_WEBHOOK_URL`` (every alert is in the deployment's store log anyway) — and, for
the scenarios that need exchange fills, a promotion gate every strategy passes
(``drill_gate``) and the testnet record it grants. Its candles are the synthetic demo
candles peak embeds (no cache, no network): the loopback exchange serves exactly the candles
a backtest of the project reads, which is what ``peak live verify`` needs to find a paper
session identical to its replay.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

STRATEGY_NAME, RISK_NAME, GATE_NAME = "drill_trend", "drill_limits", "drill_gate"
WEBHOOK_ENV = "PEAK_DRILL_WEBHOOK_URL"
MARKET, TIMEFRAME, HOUR = "BTC/USDT", "1h", 3600

STRATEGY = f"""\
# A drill's strategy: a fast crossover, so that a day of hourly bars has trades in it.
strategy {STRATEGY_NAME} {{
    description "Drill: long when the 5-bar SMA crosses above the 20-bar SMA"
    market {MARKET}
    timeframe {TIMEFRAME}

    param fast: int = 5 in 2..20
    param slow: int = 20 in 10..60
    require fast < slow

    let fast_ma = sma(close, fast)
    let slow_ma = sma(close, slow)

    entry long when crossover(fast_ma, slow_ma)
    exit long when crossunder(fast_ma, slow_ma)

    size 25% of equity
    execution {{
        fill next_open
        fees 10bps
        slippage 5bps
    }}
}}
"""

# the limits every drill trades under; a scenario tightens some of them
LIMITS: dict[str, str] = {
    "max_order_notional": "5000 USDT",
    "max_symbol_exposure": "50%",
    "max_total_exposure": "80%",
    "max_open_positions": "3",
    "max_daily_loss": "20%",
    "max_orders_per_minute": "20",
}

ALERTS = f"""\
    alerts {{
        throttle 5m
        webhook {{
            url_env "{WEBHOOK_ENV}"
            severity warning
        }}
    }}
"""

GATE = f"""\
# A drill's promotion gate: any strategy that trades passes (drills need a testnet record).
promotion {GATE_NAME} {{
    description "Drill gate: at least one trade"
    require trades >= 1
}}
"""


@dataclass(frozen=True)
class Scratch:
    """A built scratch project (its files; its deployments' state lives in ``.peak``)."""

    root: Path

    @property
    def spec(self) -> Path:
        return self.root / "specs" / "strategies" / f"{STRATEGY_NAME}.peak"

    def store_path(self, mode: str, account: str) -> Path:
        from ..live.runner import Deployment

        return Deployment(self.root, mode, account, STRATEGY_NAME).store_path


def risk_text(limits: Mapping[str, str]) -> str:
    """The risk spec: ``LIMITS`` with ``limits`` applied, and the alerts block."""
    settings = "".join(f"    {name} {value}\n" for name, value in {**LIMITS, **limits}.items())
    return (f"# A drill's limits and alert sinks.\nrisk {RISK_NAME} {{\n"
            f'    description "Drill limits"\n{settings}{ALERTS}}}\n')


def build(root: Path, limits: Mapping[str, str] | None = None,
          promoted: bool = False) -> Scratch:
    """Write the project under ``root`` (an empty folder); with ``promoted``, run the gate
    and record a testnet promotion of the strategy (a backtest: about a second)."""
    scratch = Scratch(root)
    files = {scratch.spec: STRATEGY,
             root / "specs" / "risk" / f"{RISK_NAME}.peak": risk_text(limits or {}),
             root / "specs" / "risk" / f"{GATE_NAME}.peak": GATE}
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    if promoted:
        from ..promote.flow import promote

        promote(str(scratch.spec), gate=GATE_NAME, stage="testnet", root=root, run=True,
                author="peak drill")
    return scratch


def candle_rows(scratch: Scratch, risk: str = RISK_NAME) -> list[list[float]]:
    """The project's candles (the demo's) as klines rows ``[open_ms, o, h, l, c, v]``."""
    from ..live.run import LiveRequest, resolve_plan
    from ..live.session import replay_slots

    plan = resolve_plan(LiveRequest(str(scratch.spec), risk=risk, root=scratch.root))
    data = replay_slots(plan)[0]
    columns = [data.columns[c] for c in ("open", "high", "low", "close", "volume")]
    return [[float(data.times[i]) * 1000, *(float(col[i]) for col in columns)]
            for i in range(len(data))]


__all__ = ["GATE_NAME", "HOUR", "MARKET", "RISK_NAME", "STRATEGY_NAME", "WEBHOOK_ENV",
           "Scratch", "build", "candle_rows", "risk_text"]
