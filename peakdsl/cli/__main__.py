"""``python -m peakdsl.cli``: the same entry point as the ``peak`` script."""

from . import main

main()
