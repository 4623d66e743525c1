"""The two numba decorators of the engine core, typed so mypy keeps the Python signatures.

``jit`` compiles a function callable from Python and from other jitted code; ``inline``
also inlines it at numba IR level into its jitted callers (the bar loop's helpers: fewer
refcounted calls in the hot path), while staying callable from Python on its own.
Both cache to disk and release the GIL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba

_F = TypeVar("_F", bound=Callable[..., Any])


def jit(fn: _F) -> _F:
    return cast(_F, numba.njit(cache=True, nogil=True)(fn))


def inline(fn: _F) -> _F:
    return cast(_F, numba.njit(cache=True, nogil=True, inline="always")(fn))
