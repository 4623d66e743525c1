"""The risk spec's ``alerts`` block compiles into ``RiskConfig.alerts``: declared sinks in
order, their severities (defaults per kind), the variables named, never a URL."""

from __future__ import annotations

from pathlib import Path

from peakdsl.api import compile_spec
from peakdsl.compile import models as m

LIMITS = """    max_order_notional 1000 USDT
    max_symbol_exposure 30%
    max_total_exposure 80%
    max_open_positions 3
    max_daily_loss 2%
    max_orders_per_minute 10
"""


def compiled(tmp_path: Path, body: str) -> m.RiskConfig:
    path = tmp_path / "specs" / "risk" / "r.peak"
    path.parent.mkdir(parents=True)
    path.write_text("risk r {\n" + LIMITS + body + "}\n")
    artifact = compile_spec(str(path), root=tmp_path)
    assert isinstance(artifact, m.RiskArtifact)
    return artifact.config


def test_sinks_in_order_with_their_severities(tmp_path: Path) -> None:
    config = compiled(tmp_path, """    alerts {
        throttle 90s
        queue 50
        stderr {}
        apprise { url_env "PEAK_APPRISE_URLS" }
        webhook {
            url_env "PEAK_PAGER"
            severity critical
        }
        log { severity warning }
    }
""")
    assert config.alerts == m.Alerts(throttle_seconds=90, queue=50, sinks=[
        m.AlertSink(kind="stderr", severity="info"),
        m.AlertSink(kind="apprise", severity="warning", url_env="PEAK_APPRISE_URLS"),
        m.AlertSink(kind="webhook", severity="critical", url_env="PEAK_PAGER"),
        m.AlertSink(kind="log", severity="warning")])


def test_without_the_block_there_is_no_alerts_config(tmp_path: Path) -> None:
    assert compiled(tmp_path, "").alerts is None


def test_an_empty_block_has_the_defaults_and_no_sink(tmp_path: Path) -> None:
    assert compiled(tmp_path, "    alerts {}\n").alerts == m.Alerts(throttle_seconds=300,
                                                                     queue=1000, sinks=[])
