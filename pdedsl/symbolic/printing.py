"""Readable text and LaTeX for DSL objects: `D(u, t, 2)` instead of sympy's `Derivative(...)`."""

from __future__ import annotations

import sympy as sp
from sympy.core.function import AppliedUndef
from sympy.printing.latex import LatexPrinter
from sympy.printing.str import StrPrinter


def _is_unknown(e) -> bool:
    return isinstance(e, AppliedUndef) and all(isinstance(a, sp.Symbol) for a in e.args)


class _Printer(StrPrinter):
    def _print_Derivative(self, e):
        inner = self._print(e.expr.func if _is_unknown(e.expr) else e.expr)
        parts = []
        for v, n in e.variable_count:
            parts.append(f"{self._print(v)}" if n == 1 else f"{self._print(v)}, {n}")
        return f"D({inner}, {', '.join(parts)})"

    def _print_Function(self, e):
        if _is_unknown(e):
            return e.func.__name__
        if type(e).__name__ == "NormalDerivative":
            return f"Dn({self._print(e.args[0])})"
        return super()._print_Function(e)


class _Latex(LatexPrinter):
    def _print_Function(self, e, exp=None):
        if _is_unknown(e):
            name = self._print(sp.Symbol(e.func.__name__))
            return name if exp is None else f"{name}^{{{exp}}}"
        if type(e).__name__ == "NormalDerivative":
            s = rf"\partial_n {self._print(e.args[0])}"
            return s if exp is None else rf"\left({s}\right)^{{{exp}}}"
        return super()._print_Function(e, exp)


def pretty(expr) -> str:
    """One-line text, with unknowns shown by name and derivatives as `D(u, x, 2)`."""
    return _Printer().doprint(expr)


def latex(expr) -> str:
    """LaTeX, with unknowns shown by name."""
    return _Latex().doprint(expr)
