"""Evaluation of compiled strategies on candles.

``kernels`` holds the fast indicator kernels (numpy + numba) the compiled program calls;
``reference`` is a slow, obvious AST interpreter used to cross-check them. Nothing is
imported here, so importing ``peakdsl.engine.reference`` does not pull in numba.
"""
