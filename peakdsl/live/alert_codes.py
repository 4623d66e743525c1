"""The alerts a deployment raises: one stable code per condition, each with a runbook.

A table, not scattered literals: the runner and the monitor raise alerts by code, the
severity comes from here, ``docs/runbooks.md`` has one section per code (a test holds the two
together) and ``peak drill`` checks that each scenario raised the codes its runbook names.
Codes are never reused; a retired condition keeps its row, marked retired.
"""

from __future__ import annotations

from dataclasses import dataclass

from .alerts import Severity


@dataclass(frozen=True, slots=True)
class AlertCode:
    code: str
    name: str  # the condition, as a word an operator greps for
    severity: Severity
    summary: str  # one line: what happened
    reaction: str  # what peak itself already did about it


ALERT_CODES: dict[str, AlertCode] = {a.code: a for a in (
    AlertCode("A001", "risk_denied", "warning",
              "the risk stage denied or reduced an entry",
              "the order was not sent, or sent smaller; the session goes on"),
    AlertCode("A002", "daily_loss_warning", "warning",
              "the day's loss passed the warning share (`daily_loss_warn`) of max_daily_loss",
              "nothing yet: entries stop when the limit itself is reached"),
    AlertCode("A003", "daily_loss_halt", "critical",
              "the daily-loss limit was reached",
              "entries halted, the kill switch engaged, open orders cancelled"),
    AlertCode("A004", "kill_switch", "critical",
              "the kill switch was engaged (by an operator, the executor, reconciliation, "
              "the daily-loss limit or a failed step)",
              "no order is sent until `peak live reset`; open orders cancelled"),
    AlertCode("A005", "reconciliation_failed", "critical",
              "the store and the exchange disagree in a way peak cannot settle",
              "the deployment did not start; the kill switch is engaged"),
    AlertCode("A006", "reconciliation_adjusted", "warning",
              "reconciliation on start resolved pending orders or cancelled/adopted unknown "
              "exchange orders",
              "the store now matches the exchange; the session started"),
    AlertCode("A007", "feed_stale", "warning",
              "a market's closed candle came late or not at all (stale feed, data gap)",
              "no entry on that market's bar; exits still run"),
    AlertCode("A008", "exchange_error", "warning",
              "an exchange request failed (an order, a status query or market data)",
              "retried; after `max_errors` consecutive order failures the kill switch trips"),
    AlertCode("A009", "step_failed", "critical",
              "an exception inside the step (decide, risk, fill, book) stopped the session",
              "the kill switch is engaged and the session halted with its state kept"),
    AlertCode("A010", "pnl_divergence", "warning",
              "the live session's equity diverges from a backtest replay of the same candles",
              "nothing automatic: the session goes on; investigate before the next day"),
    AlertCode("A011", "alert_sink_down", "warning",
              "an alert sink stopped accepting messages (down, slow, refusing or rate-limiting)",
              "its messages are retried; critical ones stay in the outbox until delivered"),
)}


def severity_of(code: str) -> Severity:
    return ALERT_CODES[code].severity
