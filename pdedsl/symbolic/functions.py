"""Elementary functions that accept DSL expressions: `pd.sin(u)`, `pd.exp(-x) * u`.

sympy's own functions cannot take an `Expression` (it is deliberately not
sympifiable, so that `sympy_expr == expression` builds an equation instead of
comparing structurally); these wrappers unwrap, apply the sympy function, and
wrap the result again.
"""

from __future__ import annotations

import sympy as sp

from .expression import Expression, _unwrap


def _lift(fn):
    def lifted(*args):
        if any(isinstance(a, Expression) for a in args):
            return Expression(fn(*(_unwrap(a) for a in args)))
        return fn(*args)

    lifted.__name__ = fn.__name__
    lifted.__qualname__ = fn.__name__
    lifted.__doc__ = f"sympy.{fn.__name__} for numbers, sympy and pdedsl expressions."
    return lifted


sin = _lift(sp.sin)
cos = _lift(sp.cos)
tan = _lift(sp.tan)
exp = _lift(sp.exp)
log = _lift(sp.log)
sqrt = _lift(sp.sqrt)
sinh = _lift(sp.sinh)
cosh = _lift(sp.cosh)
tanh = _lift(sp.tanh)
asin = _lift(sp.asin)
acos = _lift(sp.acos)
atan = _lift(sp.atan)
Abs = _lift(sp.Abs)

__all__ = ["sin", "cos", "tan", "exp", "log", "sqrt", "sinh", "cosh", "tanh", "asin", "acos", "atan", "Abs"]
