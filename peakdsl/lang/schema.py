"""What each kind of declaration may contain: statements, settings, blocks and metrics.

Tables, not ``if`` chains: the checker walks these, the docs are generated from the same
entries, and "did you mean" draws its candidates from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .. import metrics as catalogue
from . import ast
from .types import Unit


class Value(str, Enum):
    STRING = "string"
    MARKET = "market"
    TIMEFRAME = "timeframe"
    PERCENT = "percent"
    BPS = "bps"
    INT = "int"
    NUMBER = "number"
    MONEY = "money"
    DURATION = "duration"
    CHOICE = "choice"
    CHOICES = "choices"
    BOOL = "bool"
    ENV_NAME = "env_name"  # a string naming an environment variable (secrets live there)


@dataclass(frozen=True, slots=True)
class SettingSpec:
    key: str
    value: Value
    doc: str
    required: bool = False
    param_ok: bool = False  # may name a param of the matching type
    low: float | None = None  # exclusive lower bound
    high: float | None = None  # inclusive upper bound
    choices: tuple[str, ...] = ()
    example: str = ""


def _table(*specs: SettingSpec) -> dict[str, SettingSpec]:
    return {s.key: s for s in specs}


DESCRIPTION = SettingSpec("description", Value.STRING, "one line a reviewer reads first",
                          example='description "SMA trend following on BTC"')

TIMEFRAMES: dict[str, int] = {
    "1m": 60, "3m": 180, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "2h": 7200,
    "4h": 14400, "6h": 21600, "8h": 28800, "12h": 43200, "1d": 86400, "3d": 259200,
    "1w": 604800,
}

CALENDARS = ("always", "weekdays")  # `calendar` values; crypto's default is `always`

STRATEGY_SETTINGS = _table(
    DESCRIPTION,
    SettingSpec("market", Value.MARKET, "the traded market, BASE/QUOTE", required=True,
                example="market BTC/EUR"),
    SettingSpec("timeframe", Value.TIMEFRAME, "bar interval: " + " ".join(TIMEFRAMES),
                required=True, example="timeframe 1h"),
    SettingSpec("stop_loss", Value.PERCENT, "exit when price moves this far against the entry",
                param_ok=True, low=0, high=1, example="stop_loss 3%"),
    SettingSpec("take_profit", Value.PERCENT, "exit when price moves this far in favour",
                param_ok=True, low=0, high=10, example="take_profit 6%"),
    SettingSpec("trailing_stop", Value.PERCENT,
                "exit when price retraces this far from the best price since entry",
                param_ok=True, low=0, high=1, example="trailing_stop 2%"),
    SettingSpec("vol_target", Value.PERCENT,
                "size positions to this annualised volatility (instead of `size`)",
                param_ok=True, low=0, high=10, example="vol_target 20%"),
    SettingSpec("min_hold", Value.INT, "bars a position is held before an exit rule (or a "
                "flip) can close it; stops still act", low=0, high=100_000,
                example="min_hold 3"),
    SettingSpec("max_hold", Value.INT, "bars after which a position is closed at the next "
                "fill (exit reason `max_hold`)", low=0, high=100_000, example="max_hold 100"),
    SettingSpec("cooldown_after_stop", Value.INT, "bars without entries after a stop-loss or "
                "trailing-stop exit", low=0, high=100_000, example="cooldown after stop 5"),
    SettingSpec("max_consecutive_losses", Value.INT, "losing trades in a row after which the "
                "strategy takes no more entries", low=0, high=100_000,
                example="max_consecutive_losses 3"),
    SettingSpec("reversal", Value.CHOICE, "an opposite entry while in a position: `flip` "
                "(close and enter the other side, the default) or `flat` (close only)",
                choices=("flip", "flat"), example="reversal flat"),
    SettingSpec("calendar", Value.CHOICE,
                "trading days behind annualised metrics: `always` (24/7, 365 days) or "
                "`weekdays` (252 days)", choices=CALENDARS, example="calendar weekdays"),
)

EXECUTION_SETTINGS = _table(
    SettingSpec("fill", Value.CHOICE, "when orders fill: next bar's open or the signal bar's close",
                choices=("next_open", "close"), example="fill next_open"),
    SettingSpec("fees", Value.BPS, "fee per side, charged on notional", param_ok=True,
                low=-1e-12, high=0.1, example="fees 10bps"),
    SettingSpec("slippage", Value.BPS, "adverse price slippage per fill", param_ok=True,
                low=-1e-12, high=0.1, example="slippage 5bps"),
    SettingSpec("qty_step", Value.NUMBER, "order quantity precision (exchange lot step)", low=0,
                example="qty_step 0.0001"),
    SettingSpec("min_notional", Value.MONEY, "smallest order the exchange accepts", low=0,
                example="min_notional 10 EUR"),
    SettingSpec("end_of_data", Value.CHOICE,
                "a position open at the end: `close` it at the last close (exit fee and "
                "slippage) or `mark` it there, left open", choices=("close", "mark"),
                example="end_of_data mark"),
    SettingSpec("leverage", Value.NUMBER,
                "an entry's notional plus fee may reach this multiple of equity (1: a cash "
                "account, never borrows)", low=0, high=100, example="leverage 3"),
)

STRESS_SCENARIOS = ("crash", "vol_spike", "flat_market", "fee_x2", "slippage_x3", "fill_delay",
                    "data_gap")

PORTFOLIO_SETTINGS = _table(
    DESCRIPTION,
    SettingSpec("capital", Value.MONEY, "starting capital shared by the components", required=True,
                low=0, example="capital 10000 EUR"),
    SettingSpec("rebalance", Value.DURATION, "how often the sleeves are restored to their weights",
                low=0, example="rebalance 7d"),
    SettingSpec("rebalance_drift", Value.PERCENT,
                "restore the sleeves when one drifts this far from its weight (percentage points)",
                low=0, high=1, example="rebalance drift 5%"),
)

ROBUSTNESS_SETTINGS = _table(
    SettingSpec("monte_carlo", Value.INT, "runs of each Monte-Carlo resampling", low=0,
                high=1_000_000, example="monte_carlo 3000"),
    SettingSpec("skip", Value.PERCENT, "share of trades each `skip` run drops at random", low=0,
                high=0.9, example="skip 10%"),
    SettingSpec("block_size", Value.INT, "block length in bars for the block bootstrap of bar "
                "returns (default: the cube root of the bars)", low=0, high=100_000,
                example="block_size 24"),
    SettingSpec("ruin", Value.PERCENT, "drawdown that counts as ruin (risk of ruin)", low=0,
                high=1, example="ruin 50%"),
    SettingSpec("jitter", Value.BOOL, "also run every parameter neighbour one step away",
                example="jitter true"),
    SettingSpec("seed", Value.INT, "random seed, for reproducible resampling", low=-1,
                high=2**31 - 1, example="seed 7"),
    SettingSpec("stress", Value.CHOICES, "deterministic stress scenarios",
                choices=STRESS_SCENARIOS, example="stress [crash, vol_spike, fee_x2]"),
)

RISK_SETTINGS = _table(
    DESCRIPTION,
    SettingSpec("max_order_notional", Value.MONEY, "largest single order", required=True, low=0,
                example="max_order_notional 1000 EUR"),
    SettingSpec("max_symbol_exposure", Value.PERCENT, "largest exposure to one market, of equity",
                required=True, low=0, high=10, example="max_symbol_exposure 30%"),
    SettingSpec("max_total_exposure", Value.PERCENT, "largest gross exposure, of equity",
                required=True, low=0, high=10, example="max_total_exposure 80%"),
    SettingSpec("max_open_positions", Value.INT, "most positions open at once", required=True,
                high=10_000, example="max_open_positions 3"),
    SettingSpec("max_daily_loss", Value.PERCENT,
                "loss in a UTC day, of equity, that halts new entries", required=True, high=1,
                example="max_daily_loss 2%"),
    SettingSpec("max_orders_per_minute", Value.INT, "order rate limit", required=True,
                high=100_000, example="max_orders_per_minute 10"),
    SettingSpec("daily_loss_warn", Value.PERCENT,
                "fraction of max_daily_loss at which to alert (default 80%)", low=0, high=1,
                example="daily_loss_warn 80%"),
)

SEVERITIES = ("info", "warning", "critical")
SEVERITY = SettingSpec("severity", Value.CHOICE, "the least severe alert this sink receives "
                       "(default: info for log and stderr, warning for the others)",
                       choices=SEVERITIES, example="severity warning")
URL_ENV = SettingSpec("url_env", Value.ENV_NAME,
                      "the environment variable that holds the sink's URL (never the URL "
                      "itself: a webhook URL is a credential)", required=True,
                      example='url_env "PEAK_SLACK_WEBHOOK_URL"')
ALERTS_SETTINGS = _table(
    SettingSpec("throttle", Value.DURATION, "at most one message per condition in this long; "
                "the ones in between are counted into the next (default 5m)", low=-1,
                high=86400, example="throttle 5m"),
    SettingSpec("queue", Value.INT, "messages held for slow sinks before the oldest "
                "non-critical one is dropped (default 1000)", low=0, high=1_000_000,
                example="queue 1000"),
)
# The sinks of an `alerts` block, each a block of its own: log and stderr are local; webhook
# (JSON POST), slack (incoming webhook) and apprise (any service apprise knows, its URLs
# separated by spaces or commas) read their URL from the environment when the deployment runs.
SINK_SETTINGS: dict[str, dict[str, SettingSpec]] = {
    "log": _table(SEVERITY), "stderr": _table(SEVERITY), "webhook": _table(URL_ENV, SEVERITY),
    "slack": _table(URL_ENV, SEVERITY), "apprise": _table(URL_ENV, SEVERITY),
}

SETTINGS: dict[str, dict[str, SettingSpec]] = {
    "strategy": STRATEGY_SETTINGS, "portfolio": PORTFOLIO_SETTINGS, "risk": RISK_SETTINGS,
    "promotion": _table(DESCRIPTION),
}
BLOCKS: dict[str, dict[str, dict[str, SettingSpec]]] = {
    "strategy": {"execution": EXECUTION_SETTINGS, "robustness": ROBUSTNESS_SETTINGS},
    "portfolio": {"robustness": ROBUSTNESS_SETTINGS},
    "risk": {"alerts": ALERTS_SETTINGS}, "promotion": {},
}
# Blocks inside a block, by the outer block's path (the checker walks these the same way).
NESTED_BLOCKS: dict[str, dict[str, dict[str, SettingSpec]]] = {"alerts": SINK_SETTINGS}

STATEMENTS: dict[str, tuple[type, ...]] = {
    "strategy": (ast.Param, ast.Require, ast.Let, ast.Rule, ast.Size, ast.Setting, ast.Block),
    "portfolio": (ast.Component, ast.RiskRef, ast.Setting, ast.Block),
    "risk": (ast.Setting, ast.Block),
    "promotion": (ast.Require, ast.Setting),
}
STATEMENT_NAMES: dict[type, str] = {
    ast.Param: "param", ast.Require: "require", ast.Let: "let", ast.Rule: "entry/exit rule",
    ast.Size: "size", ast.Component: "component", ast.RiskRef: "risk", ast.Setting: "setting",
    ast.Block: "block",
}

SIZE_BASES = ("equity",)


@dataclass(frozen=True, slots=True)
class Metric:
    """A metric as a promotion criterion sees it: the unit its literal must have and the
    bounds that make a criterion unsatisfiable (G001). Derived from ``peakdsl.metrics``."""

    name: str
    unit: Unit  # PERCENT, NUMBER or INT
    low: float | None
    high: float | None
    doc: str


def _criterion_metric(info: catalogue.MetricInfo) -> Metric:
    unit = Unit(catalogue.criterion_unit(info).value)
    return Metric(info.name, unit, info.low, info.high, info.doc)


METRICS: dict[str, Metric] = {name: _criterion_metric(info)
                              for name, info in catalogue.CATALOGUE.items()}
