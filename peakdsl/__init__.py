"""peak: a spec-driven research and trading platform for crypto quant teams.

The package is a pipeline (see docs/architecture in DESIGN): ``lang`` parses and checks
``.peak`` sources, ``compile`` lowers them to a signal graph and canonical artifacts,
``engine`` evaluates compiled graphs on candles. Heavy dependencies (numpy, pandas,
numexpr, numba) are imported lazily so ``peak check`` stays fast.
"""

__version__ = "0.1.0"
