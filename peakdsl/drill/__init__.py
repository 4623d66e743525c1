"""`peak drill`: rehearse incidents on a scratch deployment and check peak reacts as its
runbook (docs/runbooks.md) says."""
