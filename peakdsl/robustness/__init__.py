"""Robustness statistics: seeded Monte-Carlo and bootstrap resampling of a run's returns.

Pure functions of numpy arrays (no specs, no engine, no I/O), so ``peak robustness`` can drive
them in process or farm their chunks out to Dask workers and get the same bytes back:
``montecarlo`` (the methods, jobs and chunks), ``bootstrap`` (how each method draws a run),
``paths`` (the numba kernel: return, drawdown and Sharpe of each run) and ``summary`` (the
distribution, its percentiles and the ``mc_*`` metric names).
"""
