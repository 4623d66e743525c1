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

Window and lag arithmetic (``lang/intexpr.py``: ``2 * n``, ``n - m``, ``k * n``) makes forms
with negative coefficients and with products of params: a term's name is then a monomial,
its params joined by ``*`` (``"k*n"``; param names never contain ``*``). A difference stays
one form; a product of two single forms is their polynomial product; anything a maximum of
such forms cannot express exactly (``min``, a maximum scaled by a param) is bounded instead
and marked inexact, like the forms past ``MAX_FORMS``. The dominating form stays an upper
bound because every param a form names is never negative (``intexpr.lookback`` bounds
windows over params that may be) and a term's coefficient there is at least 0.
"""

from __future__ import annotations

import math
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
        return self.const + sum(int(c * monomial(n, params)) for n, c in self.terms)

    def scaled(self, k: int) -> Linear:
        return Linear(self.const * k, tuple((n, c * k) for n, c in self.terms if c * k))

    def times(self, other: Linear) -> Linear:
        """The polynomial product: monomials multiply by joining their params."""
        out = Linear(self.const * other.const)
        for p, c in _monomials(self):
            for q, d in _monomials(other):
                if p or q:
                    out = out + Linear(0, (("*".join(sorted(p + q)), c * d),))
        return out

    def text(self) -> str:
        parts = [n if c == 1 else f"-{n}" if c == -1 else f"{c}*{n}" for n, c in self.terms]
        if self.const or not parts:
            # after the terms (``n - 1``), unless they start negative (``20 - n``)
            at = 0 if parts and self.terms[0][1] < 0 < self.const else len(parts)
            parts.insert(at, str(self.const))
        return " + ".join(parts).replace("+ -", "- ")


def _monomials(form: Linear) -> list[tuple[tuple[str, ...], int]]:
    """The form's constant (no params) and terms, each as its params and coefficient."""
    return [((), form.const), *((tuple(n.split("*")), c) for n, c in form.terms)]


def monomial(name: str, params: Mapping[str, float]) -> float:
    """The value of a term's name: one param, or the product of the params of ``"k*n"``."""
    return math.prod(params[p] for p in name.split("*"))


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

    def negated(self) -> Lookback | None:
        """``-self`` if it is one form (minus a maximum is a minimum: not a form)."""
        if len(self.forms) != 1:
            return None
        return Lookback((self.forms[0].scaled(-1),), self.exact)

    def times(self, other: Lookback) -> Lookback | None:
        """``self * other``: a maximum scaled by a constant >= 0, or the product of two
        single forms; None for anything else (the sign of a param factor is not known)."""
        exact = self.exact and other.exact
        for a, b in ((self, other), (other, self)):
            k = b.forms[0] if len(b.forms) == 1 else None
            if k is not None and not k.terms and k.const >= 0:
                return _normal((f.scaled(k.const) for f in a.forms), exact)
        if len(self.forms) == len(other.forms) == 1:
            return Lookback((self.forms[0].times(other.forms[0]),), exact)
        return None

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
