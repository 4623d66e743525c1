"""The run registry: every product of peak recorded as a run in SQLite.

``kinds`` is the table of kinds of run (backtest, sweep and its trials, walk-forward and its
windows, …); ``records`` the generic record (``RunStart``, ``RunOutcome``, ``RunRecord``);
``store`` the storage and queries (``Registry``); ``schema`` the migrations; ``encoding`` the
canonical JSON it stores; ``recording`` how a command opens it and records (with coded
diagnostics). The ``peak runs`` commands are ``peakdsl.cli.runs``. Nothing heavy is imported
here, so the command line stays light for ``peak check``. See docs/registry.md.
"""

from __future__ import annotations
