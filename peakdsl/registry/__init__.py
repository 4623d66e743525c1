"""The run registry: every backtest (and, later, every sweep trial) recorded in SQLite.

``peakdsl.registry.store`` holds the storage and queries; ``peakdsl.registry.cli`` the
``peak runs`` commands. Nothing heavy is imported here, so mounting the commands keeps
``peak check`` light. See docs/registry.md.
"""

from __future__ import annotations
