"""Symbolic lookbacks: how many earlier bars a node needs, as a function of params.

A lookback is a maximum over linear forms ``const + Σ coeff·param``. That is closed under
the two operations lowering needs (``+`` and ``max``), stays exact for windows given by
params, and evaluates cheaply for any parameter set (sweeps need warm-up per combination).
"""

from __future__ import annotations

from collections.abc import Mapping
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


@dataclass(frozen=True, slots=True)
class Lookback:
    forms: tuple[Linear, ...]

    @staticmethod
    def const(n: int) -> Lookback:
        return Lookback((Linear(n),))

    @staticmethod
    def param(name: str) -> Lookback:
        return Lookback((Linear(0, ((name, 1),)),))

    def __add__(self, other: Lookback | int) -> Lookback:
        if isinstance(other, int):
            other = Lookback.const(other)
        return _normal(a + b for a in self.forms for b in other.forms)

    def max(self, *others: Lookback) -> Lookback:
        forms = list(self.forms)
        for other in others:
            forms.extend(other.forms)
        return _normal(forms)

    def evaluate(self, params: Mapping[str, float]) -> int:
        return max(0, *(f.evaluate(params) for f in self.forms))

    def text(self) -> str:
        if len(self.forms) == 1:
            return self.forms[0].text()
        return "max(" + ", ".join(f.text() for f in self.forms) + ")"


ZERO = Lookback.const(0)


def _normal(forms: object) -> Lookback:
    """Deduplicate and drop constant forms dominated by a larger constant."""
    unique = sorted(set(forms), key=lambda f: (f.terms, f.const))  # type: ignore[call-overload]
    best: dict[tuple[Term, ...], Linear] = {}
    for form in unique:
        kept = best.get(form.terms)
        if kept is None or form.const > kept.const:
            best[form.terms] = form
    return Lookback(tuple(sorted(best.values(), key=lambda f: (f.terms, f.const))))
