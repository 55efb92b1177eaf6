"""Lowering: a sympy residual -> canonical linear form -> JAX functions.

A linear differential expression in one unknown u is brought to

    sum_a c_a(x) D^a u(x) = g(x),

one term per derivative multi-index `a` (a tuple of orders, one per coordinate),
with coefficient functions `c_a` and right-hand side `g` compiled to JAX.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import sympy as sp
from sympy.core.function import AppliedUndef

from ..symbolic import NormalDerivative, Parameter, pretty, unknowns_in
from . import smoothness

MultiIndex = tuple[int, ...]


class NonlinearError(NotImplementedError):
    """Raised when a nonlinear equation reaches the linear-only path."""


def substitute_parameters(expr: sp.Basic, values: Mapping | None = None, keep=()) -> sp.Basic:
    """Replace `Parameter`s that carry values, and symbols given in `values`, except
    the symbols in `keep` (unknown parameters)."""
    repl = {p: p.value for p in expr.atoms(Parameter) if p.value is not None and p not in keep}
    for k, v in (values or {}).items():
        if k not in keep:
            repl[k] = sp.sympify(v)
    return expr.xreplace(repl) if repl else expr


def substitute_normal(expr: sp.Basic, coords, normal) -> sp.Basic:
    """Replace `Dn(e)` by `n . grad e` for the outward unit normal `normal`."""
    nds = expr.atoms(NormalDerivative)
    if not nds:
        return expr
    if normal is None:
        raise ValueError(
            f"Dn(...) in {pretty(expr)} needs an outward normal; it is only defined on "
            "a boundary face (or a 1D end point), not in the interior or at a corner."
        )
    repl = {}
    for nd in nds:
        (inner,) = nd.args
        repl[nd] = sum(
            (sp.Float(float(n)) * sp.Derivative(inner, c) for n, c in zip(normal, coords) if n != 0),
            sp.Integer(0),
        )
    return expr.xreplace(repl)


def multi_index(derivative: sp.Derivative, coords) -> MultiIndex:
    orders = [0] * len(coords)
    for v, n in derivative.variable_count:
        orders[list(coords).index(v)] += int(n)
    return tuple(orders)


@dataclass(frozen=True)
class LinearForm:
    """`sum_a coefficients[a] * D^a u = rhs`, symbolic, over `coords`."""

    coords: tuple[sp.Symbol, ...]
    multi_indices: tuple[MultiIndex, ...]
    coefficients: tuple[sp.Expr, ...]
    rhs: sp.Expr

    @property
    def order(self) -> int:
        return max(sum(a) for a in self.multi_indices)

    def __str__(self):
        terms = []
        for a, c in zip(self.multi_indices, self.coefficients):
            d = "u" if not any(a) else "D^" + str(a) + "u"
            terms.append(f"({pretty(c)})*{d}")
        return " + ".join(terms) + f" = {pretty(self.rhs)}"

    def compile(self) -> CompiledLinearForm:
        return CompiledLinearForm(
            multi_indices=self.multi_indices,
            coefficients=tuple(compile_scalar(c, self.coords) for c in self.coefficients),
            rhs=compile_scalar(self.rhs, self.coords),
        )


class CompiledLinearForm(eqx.Module):
    """JAX callables of a `LinearForm`: each maps points (N, d) to values (N,).

    A pytree: the numbers in the coefficients and the right-hand side are its array
    leaves (see `CompiledScalar`), so forms that differ only in those numbers share
    every compiled assembly and solve.

    `jump=(axis, value)`: the rows are an interface condition on the cut
    `coordinate[axis] == value`: the form on the upper side minus the form on the
    lower side (each side's ansatz, coefficients taken as one-sided limits).
    `side=(axis, value, +1 or -1)`: the rows are on that cut, evaluated on its upper
    (+1) or lower side only (the equation collocated on an interface)."""

    multi_indices: tuple[MultiIndex, ...] = eqx.field(static=True)
    coefficients: tuple[Callable, ...]
    rhs: Callable
    jump: tuple[int, float] | None = eqx.field(default=None, static=True)
    side: tuple[int, float, int] | None = eqx.field(default=None, static=True)


class CompiledScalar(eqx.Module):
    """A sympy scalar of the coordinates as `f(points (N, d)) -> (N,)` in JAX.

    Its numbers (a parameter's value, the `6400` of `6400*u`, the `0.3` of
    `sin(0.3*x)`; see `abstract_numbers` for the few that stay) are not compiled in:
    `constants` holds them and `fn` is the expression with symbols in their place,
    compiled once per such template. Two problems that differ only in those numbers
    (a parameter sweep) then run the same compiled code; jitted callers see
    `constants` as an array argument. Exponents stay numbers (`x**2` keeps its power)."""

    fn: Callable = eqx.field(static=True)
    constants: np.ndarray

    def __call__(self, points):
        return self.fn(points, self.constants)


class ObservedData(eqx.Module):
    """The right-hand side of an observation condition, `u.at(x=points) == values`:
    the observed values, one per row of the block (an array leaf: new data reuse the
    compiled code). Called with the block's points it returns them all; the chunked
    assembly takes rows `offset .. offset + n - 1` with `rows`."""

    values: jnp.ndarray

    def __call__(self, points):
        return self.values

    def rows(self, offset, n: int):
        """Rows `offset .. offset + n - 1` (clipped to the block: a chunk of a group of
        blocks may start before this block or run past its end; those rows are
        another block's and are discarded)."""
        i = jnp.clip(offset + jnp.arange(n), 0, self.values.shape[0] - 1)
        return self.values[i]


def abstract_numbers(expr: sp.Basic) -> tuple[sp.Basic, np.ndarray]:
    """`(template, values)`: `expr` with its numbers replaced by the symbols
    `constant_symbols(len(values))`, in order of first occurrence, and their values.

    Replaced: every float, and every integer or rational that is a term or a factor
    (`4*u`, `sin(3*pi*x)`, `x - 1/2`) or the whole expression. Kept as they are:
    exponents (`x**2`, `x**2.5`: a power's code depends on it) and exact numbers that
    are arguments of other functions (an order, `besselj(0, x)`; a value of a
    `Piecewise`)."""
    numbers: dict[sp.Basic, sp.Symbol] = {}

    def symbol(n):
        if n not in numbers:
            numbers[n] = _constant_symbol(len(numbers))
        return numbers[n]

    def walk(e, loose: bool):
        if isinstance(e, sp.Float) or (loose and isinstance(e, sp.Rational)):
            return symbol(e)
        if isinstance(e, sp.Pow):
            base = walk(e.base, False)
            exp = e.exp if isinstance(e.exp, sp.Number) else walk(e.exp, False)
            return e if base is e.base and exp is e.exp else sp.Pow(base, exp)
        if not e.args:
            return e
        inner = isinstance(e, (sp.Add, sp.Mul))
        args = tuple(walk(a, inner) for a in e.args)
        return e if all(x is y for x, y in zip(args, e.args)) else e.func(*args)

    template = walk(sp.sympify(expr), True)
    return template, np.array([float(n) for n in numbers], dtype=np.float64)


@functools.lru_cache(maxsize=1024)
def _lambdified(template: sp.Expr, coords: tuple, count: int) -> Callable:
    """`fn(points, constants)` for `template`, a function of `coords` and of the
    symbols `constant_symbols(count)`; one per template, so equal templates share
    their compiled code."""
    symbols = constant_symbols(count)
    f = sp.lambdify([*coords, *symbols], template, modules="jax")

    def fn(points, constants):
        points = jnp.asarray(points)
        cols = [points[:, i] for i in range(len(coords))]
        consts = [constants[i] for i in range(count)]
        return jnp.broadcast_to(jnp.asarray(f(*cols, *consts), dtype=points.dtype), points.shape[:1])

    return fn


def _constant_symbol(i: int) -> sp.Symbol:
    return sp.Symbol(f"_pdedsl_constant_{i}", real=True)


def constant_symbols(count: int) -> tuple[sp.Symbol, ...]:
    """The symbols that stand for the first `count` numbers of a template."""
    return tuple(_constant_symbol(i) for i in range(count))


def compile_scalar(expr: sp.Expr, coords) -> CompiledScalar:
    """Compile a sympy scalar of `coords` to `f(points (N, d)) -> (N,)` in JAX."""
    expr = sp.sympify(expr)
    coords = tuple(coords)
    extra = expr.free_symbols - set(coords)
    if extra and {str(s) for s in extra} <= {str(c) for c in coords}:
        raise ValueError(
            f"The symbol(s) {', '.join(sorted(map(str, extra)))} in {pretty(expr)} have the names of "
            f"coordinates {tuple(map(str, coords))} but other assumptions (e.g. pd.Symbol('t', "
            "real=True) against pd.Symbol('t')): create each coordinate once and use that symbol "
            "everywhere."
        )
    if expr.has(sp.I) and expr.is_real is not True:
        raise ValueError(
            f"{pretty(expr)} is complex; pdedsl solves real-valued problems. Write a complex "
            "equation as two real ones (real and imaginary parts) for two real unknowns."
        )
    if extra:
        names = ", ".join(sorted(map(str, extra)))
        raise ValueError(
            f"The symbol(s) {names} in {pretty(expr)} have no value: give them one with "
            f"pd.Problem(..., parameters={{{names.split(', ')[0]}: value}}) or use "
            "pd.Parameter(name, value); coordinates are "
            f"{tuple(map(str, coords))}."
        )
    if expr.has(AppliedUndef):
        raise ValueError(f"Cannot compile {pretty(expr)}: it still contains an unknown.")
    template, values = abstract_numbers(expr)
    return CompiledScalar(fn=_lambdified(template, coords, len(values)), constants=values)


class _RealAbs(sp.Function):
    """`Abs` of a real argument, while derivatives are evaluated."""

    def fdiff(self, argindex=1):
        return sp.sign(self.args[0])


def prepare(
    residual, unknown, coords, *, values=None, normal=None, keep=(), context="equation", interfaces=()
) -> sp.Expr:
    """The first lowering steps shared by the linear and nonlinear paths: substitute
    parameter values (except `keep`) and normal derivatives, evaluate derivatives,
    and check that the one unknown appears only as a function of the coordinates."""
    expr = substitute_parameters(sp.sympify(residual), values, keep=keep)
    expr = substitute_normal(expr, tuple(coords), normal)
    smoothness.check(expr, unknown, tuple(coords), context, interfaces)
    # |a| of real a differentiates to sign(a) a'; sympy's Abs does so only for
    # arguments it knows to be real (pdedsl's coordinates carry no assumptions), and
    # otherwise goes through re() and im(), which cannot be lowered
    expr = expr.replace(sp.Abs, _RealAbs).doit().replace(_RealAbs, sp.Abs)
    expr = smoothness.drop_interface_deltas(expr, tuple(coords), interfaces)
    if expr.has(sp.re, sp.im):  # e.g. data made by sympy.diff of an Abs: everything is real here
        expr = expr.replace(sp.re, lambda a: a).replace(sp.im, lambda a: sp.S.Zero).doit()
    others = {f for f in unknowns_in(expr) if f.func != unknown.func}
    if others and not any(f.func == unknown.func for f in unknowns_in(expr)):
        names = ", ".join(map(str, sorted(others, key=str)))
        raise ValueError(
            f"The {context} is on {names}, but the problem's unknown is {unknown}: conditions "
            "constrain the unknown of the equation."
        )
    if others:
        names = ", ".join(map(str, sorted(others | {unknown}, key=str)))
        raise NotImplementedError(
            f"The {context} involves several unknowns ({names}); systems of equations are not supported yet."
        )
    for f in unknowns_in(expr):
        if f != unknown:
            raise ValueError(
                f"{pretty(f)} in the {context} evaluates the unknown at fixed values; write "
                f"this as a condition instead, e.g. u.at(...) == value."
            )
    return expr


def lower_linear(
    residual: sp.Expr,
    unknown: AppliedUndef,
    coords,
    *,
    values: Mapping | None = None,
    normal=None,
    context: str = "equation",
    interfaces=(),
) -> LinearForm:
    """Lower `residual == 0` to a `LinearForm` in `unknown` over `coords`.

    Raises `NonlinearError` naming the first nonlinear term, and `ValueError` if
    the unknown does not occur or occurs in a form that cannot be lowered.
    """
    coords = tuple(coords)
    expr = prepare(
        residual, unknown, coords, values=values, normal=normal, context=context, interfaces=interfaces
    )

    placeholders: dict[sp.Basic, sp.Dummy] = {}
    indices: dict[sp.Dummy, MultiIndex] = {}
    for d in sorted(expr.atoms(sp.Derivative), key=sp.default_sort_key):
        if d.expr == unknown:
            p = sp.Dummy(f"D{multi_index(d, coords)}")
            placeholders[d] = p
            indices[p] = multi_index(d, coords)
        elif d.expr.has(unknown):
            raise ValueError(f"Cannot lower the derivative {pretty(d)} in the {context}.")
    p0 = sp.Dummy("u")
    placeholders[unknown] = p0
    indices[p0] = (0,) * len(coords)

    # Replace derivatives first so that u inside them is not replaced on its own.
    lowered = expr.xreplace({k: v for k, v in placeholders.items() if k != unknown})
    lowered = lowered.xreplace({unknown: p0})
    if lowered.has(unknown) or any(lowered.has(d) for d in placeholders if d != unknown):
        raise ValueError(f"Cannot lower the {context} {pretty(expr)}.")
    back = {v: k for k, v in placeholders.items()}
    syms = set(indices)
    present = lowered.free_symbols & syms
    if not present:
        raise ValueError(
            f"The {context} `{pretty(residual)} = 0` does not contain the unknown {pretty(unknown)} "
            "(after simplification); did you differentiate by a variable it does not depend on?"
        )

    coeffs: dict[MultiIndex, sp.Expr] = {}
    rest = sp.Integer(0)
    # expand_mul distributes products over sums at every depth (c(x)*(u_xx + u) ->
    # two terms) without rewriting powers or functions of the coefficients.
    for term in sp.Add.make_args(sp.expand_mul(lowered)):
        dep = term.free_symbols & syms
        if not dep:
            rest += term
            continue
        c, factor = term.as_independent(*dep, as_Add=False)
        if len(dep) == 1 and factor in dep:
            a = indices[factor]
            coeffs[a] = coeffs.get(a, sp.Integer(0)) + c
            continue
        raise NonlinearError(
            f"The {context} is nonlinear in {pretty(unknown)}: the term "
            f"`{pretty(term.xreplace(back))}` is not linear in the unknown and its "
            "derivatives. Nonlinear equations need a nonlinear solver such as pd.GaussNewton()."
        )
    coeffs = {a: sp.simplify(c) if c.free_symbols else c for a, c in coeffs.items()}
    coeffs = {a: c for a, c in coeffs.items() if c != 0}
    if not coeffs:
        raise ValueError(f"The unknown cancels out of the {context} {pretty(residual)} = 0.")
    order = sorted(coeffs, key=lambda a: (sum(a), tuple(-i for i in a)))
    return LinearForm(
        coords=coords,
        multi_indices=tuple(order),
        coefficients=tuple(coeffs[a] for a in order),
        rhs=-rest,
    )


def apply_form(form: CompiledLinearForm, derivatives: Mapping[MultiIndex, jnp.ndarray], points):
    """`sum_a c_a(points) * derivatives[a]`, broadcasting over trailing axes."""
    out = None
    for a, c in zip(form.multi_indices, form.coefficients):
        cv = c(points)
        d = derivatives[a]
        term = cv.reshape(cv.shape + (1,) * (d.ndim - 1)) * d
        out = term if out is None else out + term
    return out


__all__ = [
    "LinearForm",
    "CompiledLinearForm",
    "CompiledScalar",
    "ObservedData",
    "NonlinearError",
    "apply_form",
    "compile_scalar",
    "lower_linear",
]
