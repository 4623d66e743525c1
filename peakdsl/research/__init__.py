"""Research on top of the backtest engine: parameter sweeps and walk-forward analysis."""
