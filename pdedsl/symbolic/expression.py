"""The DSL's expression layer: a thin wrapper over sympy whose `==` builds equations.

Plain sympy's `==` is structural equality and returns a bool, so the unknown and
everything built from it are wrapped in `Expression`, whose arithmetic returns
`Expression` and whose `==` returns an `Equation`. Everything else (coordinates,
parameters, coefficient functions) is plain sympy.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import sympy as sp
from sympy.core.function import AppliedUndef

from .printing import latex, pretty


def _is_array(value) -> bool:
    """An array of numbers (NumPy, JAX, list or tuple), not a scalar or sympy object."""
    if isinstance(value, (list, tuple)):
        return True
    return hasattr(value, "__array__") and not isinstance(value, sp.Basic) and np.ndim(value) >= 1


def _unwrap(value: Any, what: str = "operand") -> sp.Expr:
    """Return the sympy expression behind a DSL object, number or sympy object."""
    if isinstance(value, Expression):
        return value.expr
    if isinstance(value, (Equation, Condition)):
        raise TypeError(
            f"An equation cannot be used as an {what}: {value}. "
            "Combine the left-hand sides first, then write `lhs == rhs` once."
        )
    if isinstance(value, bool):
        raise TypeError(
            f"Got the bool {value} as an {what}. A plain sympy `==` compares "
            "structurally and returns a bool; build the unknown with "
            "pd.Function('u')(x) so that `==` makes an equation, or use sympy.Eq."
        )
    if isinstance(value, sp.Basic):
        return value
    if isinstance(value, numbers.Number):
        return sp.sympify(value)
    if isinstance(value, (np.ndarray, np.generic)) and np.ndim(value) == 0:
        return sp.sympify(value.item())
    if hasattr(value, "shape") and hasattr(value, "dtype") and np.ndim(value) == 0:
        return sp.sympify(np.asarray(value).item())
    raise TypeError(
        f"Cannot use {value!r} (type {type(value).__name__}) as an {what}: expected a "
        "number, a sympy expression, or a pdedsl expression."
    )


class NotSympifiable(sp.SympifyError, TypeError):
    """A pdedsl expression was given to sympy (e.g. `sympy.sin(u)`); the message names the fix."""

    def __init__(self, value, restricted: bool = False):
        super().__init__(value)
        self.value = value
        self.restricted = restricted

    def __str__(self):
        if self.restricted:
            return (
                f"sympy cannot take `{self.value}`, a pdedsl restricted expression: write the condition "
                "as `lhs == rhs`, e.g. u.at(x=0) == 0 (not sympy.Eq(u.at(x=0), 0))."
            )
        return (
            f"sympy cannot take the pdedsl expression {self.value}. Apply pdedsl's elementary "
            "functions to it instead (pd.sin(u), pd.cos, pd.exp, pd.log, pd.sqrt, pd.tanh, pd.Abs, ...) "
            "and write equations as `lhs == rhs` (not sympy.Eq); `.expr` gives its plain sympy form, "
            "on which `==` compares structurally."
        )


def unknowns_in(expr: sp.Basic) -> set[AppliedUndef]:
    """The applied undefined functions (the unknowns) occurring in `expr`."""
    return {f for f in expr.atoms(AppliedUndef) if not isinstance(f, NormalDerivative)}


class NormalDerivative(sp.Function):
    """Unevaluated outward normal derivative; replaced by `n . grad` on a boundary face."""

    nargs = 1


class Expression:
    """A sympy expression that involves an unknown; `==` returns an `Equation`.

    Arithmetic with Python numbers, sympy expressions and other expressions
    returns an `Expression`. `.expr` is the underlying sympy object.
    """

    __slots__ = ("expr",)
    # numpy and sympy both defer to our reflected operators.
    __array_ufunc__ = None
    _op_priority = 1000.0

    def __init__(self, expr: Any):
        self.expr = _unwrap(expr)

    @property
    def __sympy__(self):
        # sympify() looks this attribute up first. Raising a SympifyError keeps
        # `x + u` and `sp.sin(t) == u` working (sympy's operators catch it and defer
        # to ours) and turns `sp.sin(u)` into a message that names pd.sin.
        raise NotSympifiable(self)

    # arithmetic -------------------------------------------------------------
    def __add__(self, other):
        return Expression(self.expr + _unwrap(other))

    def __radd__(self, other):
        return Expression(_unwrap(other) + self.expr)

    def __sub__(self, other):
        return Expression(self.expr - _unwrap(other))

    def __rsub__(self, other):
        return Expression(_unwrap(other) - self.expr)

    def __mul__(self, other):
        return Expression(self.expr * _unwrap(other))

    def __rmul__(self, other):
        return Expression(_unwrap(other) * self.expr)

    def __truediv__(self, other):
        return Expression(self.expr / _unwrap(other))

    def __rtruediv__(self, other):
        return Expression(_unwrap(other) / self.expr)

    def __pow__(self, other):
        return Expression(self.expr ** _unwrap(other))

    def __rpow__(self, other):
        return Expression(_unwrap(other) ** self.expr)

    def __neg__(self):
        return Expression(-self.expr)

    def __pos__(self):
        return self

    def __abs__(self):  # abs(D(u, x)), as pd.Abs
        return Expression(sp.Abs(self.expr))

    def __eq__(self, other):  # type: ignore[override]
        return Equation(self, other)

    def __ne__(self, other):
        raise TypeError("`!=` has no meaning for a differential equation; use `==`.")

    __hash__ = None  # type: ignore[assignment]

    def __bool__(self):
        raise TypeError(f"The truth value of the expression {self} is undefined.")

    # calculus and restriction -----------------------------------------------
    def diff(self, *variables) -> Expression:
        """Same as `D(self, *variables)`; mirrors sympy's `.diff`."""
        return D(self, *variables)

    def at(self, *positional, **fixed) -> Restricted:
        """Restrict to where the named coordinates take the given values.

        `u.at(t=0)` is a point in 1D; `u.at(x=0)` is the face (or interior plane)
        x = 0 of a box; fixing every coordinate gives a point.
        """
        if positional:
            names = ", ".join(f"{c}=..." for c in coordinates_of(self.expr))
            raise TypeError(
                f"`.at()` takes the coordinates by name: {self}.at({names}), with numbers or, for "
                "observations, arrays of the same length (e.g. u.at(t=t_obs) == data)."
            )
        if not fixed:
            raise ValueError("`.at()` needs at least one coordinate, e.g. u.at(t=0).")
        coords = {str(c): c for c in coordinates_of(self.expr)}
        values = {}
        for name, value in fixed.items():
            if name not in coords:
                raise ValueError(
                    f"`{name}` in `.at({name}=...)` is not a coordinate of {self}; "
                    f"its coordinates are {tuple(coords)}."
                )
            if _is_array(value):
                arr = np.asarray(value, dtype=float).reshape(-1)
                if arr.size == 0 or not np.all(np.isfinite(arr)):
                    raise ValueError(
                        f"`.at({name}=...)`: the points must be a non-empty array of finite numbers."
                    )
                values[coords[name]] = arr
                continue
            values[coords[name]] = _unwrap(value, "coordinate value")
            if values[coords[name]].free_symbols:
                raise ValueError(
                    f"`.at({name}={value})`: the value must be a number, got an expression with free symbols."
                )
        return Restricted(self, At(values))

    def jump(self, **at) -> Restricted:
        """The jump across an interface: this expression's value just above the plane
        `x = c` (the upper side) minus its value just below, `expr(c+) - expr(c-)`.

        `u.jump(x=0.5) == 0` (u continuous) and `(k*D(u, x)).jump(x=0.5) == 0` (the
        flux continuous, with a coefficient k that may jump there) are the interface
        conditions of a layered medium; a non-zero right-hand side prescribes the
        jump. The model must be cut there: `pd.Cut(pd.Grid(...), x=0.5)`.
        """
        if len(at) != 1:
            raise ValueError(
                "`.jump()` takes one coordinate and the value where it jumps, e.g. u.jump(x=0.5)."
            )
        ((name, value),) = at.items()
        coords = {str(c): c for c in coordinates_of(self.expr)}
        if name not in coords:
            raise ValueError(
                f"`{name}` in `.jump({name}=...)` is not a coordinate of {self}; its coordinates are "
                f"{tuple(coords)}."
            )
        if _is_array(value):
            raise ValueError(f"`.jump({name}=...)` takes one number (the interface), not an array.")
        v = _unwrap(value, "interface position")
        if v.free_symbols or not v.is_number:
            raise ValueError(f"`.jump({name}={value})`: the position must be a number.")
        return Restricted(self, Jump(coords[name], v))

    def on(self, region) -> Restricted:
        """Restrict to a region: `domain.boundary`, `domain.face(x=0)`, or `pd.boundary`."""
        return Restricted(self, region)

    # printing -----------------------------------------------------------------
    def __str__(self):
        return pretty(self.expr)

    def __repr__(self):
        return f"Expression({pretty(self.expr)})"

    def _repr_latex_(self):
        return f"${latex(self.expr)}$"

    def latex(self) -> str:
        return latex(self.expr)


def coordinates_of(expr: sp.Basic) -> tuple[sp.Symbol, ...]:
    """Coordinates of the unknowns in `expr`, in the order the unknown declares them."""
    out: list[sp.Symbol] = []
    for f in sorted(unknowns_in(expr), key=str):
        for a in f.args:
            if isinstance(a, sp.Symbol) and a not in out:
                out.append(a)
    return tuple(out)


def D(expr, *variables):
    """Derivative: `D(u, x)`, `D(u, x, 2)`, mixed `D(u, x, y)`, `D(u, x, 2, y)`.

    The derivative stays unevaluated (it is lowered later). Differentiating with
    respect to a symbol that is not a coordinate of any unknown in `expr` is an
    error, because it would silently give zero.
    """
    if hasattr(expr, "__pdedsl_derivative__"):
        return expr.__pdedsl_derivative__(*variables)
    if not variables:
        raise TypeError("D(u, x, ...) needs at least one variable to differentiate by.")
    e = _unwrap(expr, "expression to differentiate")
    first = variables[0]
    if isinstance(first, (numbers.Integral, sp.Integer)):
        raise TypeError(
            f"D(u, {first}): the first argument after the expression is a coordinate to "
            f"differentiate by, the order comes after it: D(u, x, {first})."
        )
    for v in variables:
        if isinstance(v, numbers.Integral) or (isinstance(v, sp.Integer)):
            if int(v) < 0:
                raise ValueError(f"Derivative order must be non-negative, got {v}.")
            continue
        if isinstance(v, tuple) and len(v) == 2:
            continue
        if not isinstance(v, sp.Symbol):
            raise TypeError(
                f"D(...) differentiates by coordinates (sympy Symbols) and integer orders; got {v!r}."
            )
    unknowns = unknowns_in(e)
    if unknowns:
        coords = set(coordinates_of(e))
        for v in variables:
            sym = v[0] if isinstance(v, tuple) else v
            if isinstance(sym, sp.Symbol) and sym not in coords:
                names = ", ".join(str(u) for u in sorted(unknowns, key=str))
                raise ValueError(
                    f"D(..., {sym}): {sym} is not a coordinate of {names}. Declare the "
                    f"unknown with it, e.g. pd.Function('u')(..., {sym}), or "
                    f"differentiate by one of {tuple(str(c) for c in coordinates_of(e))}."
                )
        return Expression(sp.Derivative(e, *variables))
    return sp.diff(e, *variables)


def Dn(expr) -> Expression:
    """Outward normal derivative, for Neumann and Robin conditions on faces/boundary.

    Of the unknown (`Dn(u).on(pd.boundary) == g`) or of a known expression of the
    coordinates, as data: `Dn(u).on(pd.boundary) == Dn(exact)` takes each face's own
    normal on both sides.
    """
    e = _unwrap(expr, "expression")
    return Expression(NormalDerivative(e))


def _finite(expr: sp.Basic, what: str) -> sp.Basic:
    """Refuse NaN and infinities in an equation or condition: sympy turns `nan * D(u, x, 2)`
    into `nan`, which later read as "contains no unknown"."""
    bad = [b for b in (sp.nan, sp.zoo, sp.oo, -sp.oo) if expr.has(b)]
    if bad:
        raise ValueError(
            f"The {what} `{pretty(expr)}` contains {bad[0]}: a coefficient or value that is NaN or "
            "infinite (float('nan'), float('inf'), or a division by zero)."
        )
    return expr


class Equation:
    """`lhs == rhs` for a differential equation. `residual` is `lhs - rhs`."""

    __slots__ = ("lhs", "rhs")

    def __init__(self, lhs, rhs):
        self.lhs = _finite(_unwrap(lhs, "left-hand side"), "equation's left-hand side")
        self.rhs = _finite(_unwrap(rhs, "right-hand side"), "equation's right-hand side")

    @classmethod
    def from_sympy(cls, eq: sp.Eq) -> Equation:
        return cls(eq.lhs, eq.rhs)

    @property
    def residual(self) -> sp.Expr:
        return self.lhs - self.rhs

    def __bool__(self):
        raise TypeError(
            f"The equation {self} has no truth value. (If you meant to compare "
            "expressions structurally, compare their `.expr`.)"
        )

    __hash__ = None  # type: ignore[assignment]

    def __str__(self):
        return f"{pretty(self.lhs)} = {pretty(self.rhs)}"

    def __repr__(self):
        return f"Equation({self})"

    def latex(self) -> str:
        return f"{latex(self.lhs)} = {latex(self.rhs)}"

    def _repr_latex_(self):
        return f"${self.latex()}$"


class At:
    """Where some coordinates are fixed to values: a point, a face, or a plane."""

    __slots__ = ("values",)

    def __init__(self, values: Mapping[sp.Symbol, sp.Expr]):
        self.values = dict(values)

    @property
    def is_observation(self) -> bool:
        """True when some coordinate is given as an array of observation points."""
        return any(isinstance(v, np.ndarray) for v in self.values.values())

    def __str__(self):
        return ", ".join(
            f"{k} = <{v.size} points>" if isinstance(v, np.ndarray) else f"{k} = {pretty(v)}"
            for k, v in self.values.items()
        )

    def latex(self):
        return ", ".join(
            rf"{latex(k)}=\{{{v.size}\ \mathrm{{points}}\}}"
            if isinstance(v, np.ndarray)
            else f"{latex(k)}={latex(v)}"
            for k, v in self.values.items()
        )


class Jump:
    """Where an interface condition holds: the plane `coordinate == value`, with the
    expression taken as upper side minus lower side (see `Expression.jump`)."""

    __slots__ = ("coord", "value")

    def __init__(self, coord: sp.Symbol, value: sp.Expr):
        self.coord = coord
        self.value = value

    def __str__(self):
        return f"the interface {self.coord} = {float(self.value):g} (jump: upper - lower side)"

    def latex(self):
        return rf"{latex(self.coord)}={latex(self.value)},\ \mathrm{{jump}}"


class WholeBoundary:
    """Marker for the whole boundary of the problem's domain (`pd.boundary`)."""

    def __str__(self):
        return "boundary"

    def latex(self):
        return r"\partial\Omega"

    def __repr__(self):
        return "pd.boundary"


boundary = WholeBoundary()


class Restricted:
    """An expression restricted to a region; `== value` builds a `Condition`."""

    __slots__ = ("expression", "where")

    def __init__(self, expression: Expression, where):
        self.expression = expression
        self.where = where

    def __eq__(self, other):  # type: ignore[override]
        if isinstance(other, Restricted):
            return Periodic(self, other)
        return Condition(self.expression, other, self.where)

    __hash__ = None  # type: ignore[assignment]

    @property
    def __sympy__(self):
        # `sympy.Eq(u.at(x=0), 0)` failed with a bare SympifyError; name the fix. (sympy's
        # `==` catches the SympifyError and defers to ours: `0 == u.at(x=0)` still works.)
        raise NotSympifiable(self, restricted=True)

    def __bool__(self):
        raise TypeError("A restricted expression has no truth value; write `== value`.")

    def __str__(self):
        return f"{self.expression} at {self.where}"

    def _arithmetic(self, other=None):
        two = isinstance(other, Restricted)
        raise TypeError(
            f"`{self}` is a restricted expression and takes no part in arithmetic: write the whole "
            "left-hand side first, then restrict it, e.g. (2*u + D(u, x)).at(x=0) == 1."
            + (
                " A periodic condition is written without arithmetic: u.at(x=0) == u.at(x=1); other "
                "conditions linking two places are not supported."
                if two
                else ""
            )
        )

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _arithmetic
    __truediv__ = __rtruediv__ = __pow__ = __rpow__ = _arithmetic

    def __neg__(self):
        self._arithmetic()


class Condition:
    """A condition `expr == rhs` holding on a region (point, face, boundary)."""

    __slots__ = ("lhs", "rhs", "where", "data")

    def __init__(self, lhs, rhs, where):
        self.lhs = _finite(_unwrap(lhs, "condition's left-hand side"), "condition's left-hand side")
        # Observed values: `u.at(t=points) == values` with one value per point.
        self.data = None
        if _is_array(rhs):
            data = np.asarray(rhs, dtype=float).reshape(-1)
            if not np.all(np.isfinite(data)):
                raise ValueError(f"The observed values for {pretty(self.lhs)} contain NaN or inf.")
            self.data = data
            rhs = 0
        self.rhs = _finite(_unwrap(rhs, "condition's right-hand side"), "condition's right-hand side")
        if not unknowns_in(self.lhs):
            raise ValueError(f"The condition {pretty(self.lhs)} = ... involves no unknown.")
        self.where = where

    @property
    def residual(self) -> sp.Expr:
        return self.lhs - self.rhs

    def __bool__(self):
        raise TypeError(f"The condition {self} has no truth value.")

    __hash__ = None  # type: ignore[assignment]

    def __str__(self):
        rhs = f"<{self.data.size} values>" if self.data is not None else pretty(self.rhs)
        return f"{pretty(self.lhs)} = {rhs} at {self.where}"

    def __repr__(self):
        return f"Condition({self})"

    def latex(self) -> str:
        where = self.where.latex() if hasattr(self.where, "latex") else str(self.where)
        return rf"\left.{latex(self.lhs)}\right|_{{{where}}} = {latex(self.rhs)}"

    def _repr_latex_(self):
        return f"${self.latex()}$"


class Periodic:
    """`u.at(x=a) == u.at(x=b)`: an expression equal at the two ends of the domain along
    one coordinate. `pd.Problem` checks it and records the coordinate as periodic; the
    model must then be periodic along it (`pd.Grid(..., periodic=[x])`), which makes
    `u` and all its derivatives periodic, so the condition needs no rows of its own."""

    __slots__ = ("first", "second")

    def __init__(self, first: Restricted, second: Restricted):
        self.first = first
        self.second = second

    def __bool__(self):
        raise TypeError(f"The condition {self} has no truth value.")

    __hash__ = None  # type: ignore[assignment]

    def __str__(self):
        return f"{self.first} = {self.second}"

    def __repr__(self):
        return f"Periodic({self})"

    def latex(self) -> str:
        parts = []
        for r in (self.first, self.second):
            where = r.where.latex() if hasattr(r.where, "latex") else str(r.where)
            parts.append(rf"\left.{latex(r.expression.expr)}\right|_{{{where}}}")
        return " = ".join(parts)

    def _repr_latex_(self):
        return f"${self.latex()}$"


class Function:
    """An unknown function: `u = pd.Function("u")(x, y)`."""

    def __init__(self, name: str):
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"Function name must be an identifier, got {name!r}.")
        self.name = name

    def __call__(self, *coords) -> Expression:
        if not coords:
            raise ValueError(f"{self.name}() needs its coordinates, e.g. {self.name}(x, y).")
        for c in coords:
            if not isinstance(c, sp.Symbol):
                raise TypeError(f"{self.name}(...) takes coordinate symbols (pd.Symbol), got {c!r}.")
        if len(set(coords)) != len(coords):
            raise ValueError(f"{self.name}{coords}: repeated coordinate.")
        return Expression(sp.Function(self.name)(*coords))

    def __repr__(self):
        return f"Function({self.name!r})"


def Symbol(name: str, **assumptions) -> sp.Symbol:
    """A coordinate or a symbolic constant; a plain `sympy.Symbol`."""
    return sp.Symbol(name, **assumptions)


def parameter_value(name, value) -> sp.Expr:
    """`value` as a sympy number, refusing what no solve can use: symbols, NaN,
    infinities, complex numbers, arrays (with the parameter's name in the message)."""
    if isinstance(value, Expression):
        value = value.expr
    try:
        value = sp.sympify(value)
    except (sp.SympifyError, TypeError, ValueError):
        value = None
    if not isinstance(value, sp.Expr) or value.free_symbols or not value.is_number:
        raise ValueError(f"The value of the parameter {name} must be a number, got {value!r}.")
    if value.is_finite is not True or value.is_real is not True:
        raise ValueError(f"The value of the parameter {name} must be a finite real number, got {value}.")
    return value


class Parameter(sp.Symbol):
    """A named constant with a value: `k = pd.Parameter("k", 80.0**2)`.

    It prints as its name and is replaced by its value when lowered.
    """

    __slots__ = ("value",)

    def __new__(cls, name: str, value=None, **assumptions):
        obj = sp.Symbol.__xnew__(cls, name, **assumptions)
        if value is not None:
            value = parameter_value(name, _unwrap(value, "parameter value"))
        obj.value = value
        return obj

    def __getnewargs_ex__(self):
        return ((self.name, self.value), self.assumptions0)

    def _hashable_content(self):
        return (*super()._hashable_content(), self.value)


def as_equation(obj) -> Equation:
    """Accept an `Equation`, a `sympy.Eq` (or a list of one); refuse anything else with a
    clear message."""
    if isinstance(obj, Equation):
        return obj
    if isinstance(obj, sp.Equality):
        return Equation.from_sympy(obj)
    # Expressions first: `obj in (...)` would call Expression.__eq__.
    if isinstance(obj, (Expression, sp.Expr)):
        raise TypeError(f"Got the expression {obj}, not an equation: write `{obj} == rhs` (e.g. `== 0`).")
    if isinstance(obj, (bool, np.bool_, sp.logic.boolalg.BooleanAtom)):
        raise TypeError(
            f"Got {obj} where an equation was expected: plain sympy `==` compares "
            "structurally and returns a bool. Use pd.Function('u')(x) for the unknown "
            "so that `==` builds an equation, or write sympy.Eq(lhs, rhs)."
        )
    if isinstance(obj, (list, tuple)) and any(isinstance(e, (Equation, sp.Equality)) for e in obj):
        if len(obj) == 1:
            return as_equation(obj[0])
        raise NotImplementedError(
            f"Got a {type(obj).__name__} of {len(obj)} equations: pdedsl solves one equation in one "
            "unknown, and systems of equations are not supported yet. A system that reduces to one "
            "equation can be written as that equation (u' = v, v' = -u as D(u, t, 2) == -u)."
        )
    raise TypeError(f"Expected an equation (lhs == rhs), got {type(obj).__name__}: {obj!r}.")
