"""Symbolic lookbacks: how many earlier bars a node needs, as a function of params.

A lookback is a maximum over linear forms ``const + Σ coeff·param``. That is closed under
the two operations lowering needs (``+`` and ``max``), stays exact for windows given by
params, and evaluates cheaply for any parameter set (sweeps need warm-up per combination).

Adding two maxima multiplies their form counts, so a chain of lets that each add two windows
would double the forms per let. Past ``MAX_FORMS`` the forms are replaced by the single form
that dominates them all (largest constant, largest coefficient of each param: every
coefficient is a window or lag count, so non-negative, and params are non-negative) and the
lookback is marked inexact: the warm-up is then a safe upper bound (W005), and compile cost
stays polynomial.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

Term = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Linear:
    const: int
    terms: tuple[Term, ...] = ()

    def __add__(self, other: Linear) -> Linear:
        merged: dict[str, int] = dict(self.terms)
        for name, coeff in other.terms:
            merged[name] = merged.get(name, 0) + coeff
        terms = tuple(sorted((n, c) for n, c in merged.items() if c))
        return Linear(self.const + other.const, terms)

    def evaluate(self, params: Mapping[str, float]) -> int:
        return self.const + sum(int(c * params[n]) for n, c in self.terms)

    def text(self) -> str:
        parts = [f"{c}*{n}" if c != 1 else n for n, c in self.terms]
        if self.const or not parts:
            parts.append(str(self.const))
        return " + ".join(parts).replace("+ -", "- ")


MAX_FORMS = 16


@dataclass(frozen=True, slots=True)
class Lookback:
    forms: tuple[Linear, ...]
    exact: bool = True  # False: an upper bound (see module docstring)

    @staticmethod
    def const(n: int) -> Lookback:
        return Lookback((Linear(n),))

    @staticmethod
    def param(name: str) -> Lookback:
        return Lookback((Linear(0, ((name, 1),)),))

    def __add__(self, other: Lookback | int) -> Lookback:
        if isinstance(other, int):
            other = Lookback.const(other)
        return _normal((a + b for a in self.forms for b in other.forms),
                       self.exact and other.exact)

    def max(self, *others: Lookback) -> Lookback:
        forms = list(self.forms)
        for other in others:
            forms.extend(other.forms)
        return _normal(forms, self.exact and all(o.exact for o in others))

    def evaluate(self, params: Mapping[str, float]) -> int:
        return max(0, *(f.evaluate(params) for f in self.forms))

    def text(self) -> str:
        if len(self.forms) == 1:
            return self.forms[0].text()
        return "max(" + ", ".join(f.text() for f in self.forms) + ")"


ZERO = Lookback.const(0)


def _normal(forms: Iterable[Linear], exact: bool = True) -> Lookback:
    """Deduplicate, keep the largest constant per set of terms, and bound the form count."""
    best: dict[tuple[Term, ...], Linear] = {}
    for form in forms:
        kept = best.get(form.terms)
        if kept is None or form.const > kept.const:
            best[form.terms] = form
    if len(best) > MAX_FORMS:
        return Lookback((_dominating(best.values()),), exact=False)
    return Lookback(tuple(sorted(best.values(), key=lambda f: (f.terms, f.const))), exact)


def _dominating(forms: Iterable[Linear]) -> Linear:
    """The form at least as large as each of ``forms`` for every non-negative param set."""
    const = None
    coeffs: dict[str, int] = {}
    for form in forms:
        const = form.const if const is None else max(const, form.const)
        for name, coeff in form.terms:
            coeffs[name] = max(coeffs.get(name, 0), coeff)
    return Linear(const or 0, tuple(sorted(coeffs.items())))
