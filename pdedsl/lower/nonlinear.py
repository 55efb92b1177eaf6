"""Lowering of nonlinear equations (and of equations with unknown parameters).

A residual `R(x, u, D^a u, ..., theta) = 0` is brought to a sympy expression in the
coordinates, one placeholder `U_a` per derivative multi-index `a` of the unknown, and
the unknown parameters `theta`; it is compiled to one JAX function

    residual(points (N, d), U (N, A), theta (p,)) -> (N,)

whose derivatives with respect to `U` (by JAX autodiff, pointwise) give the
linearisation: `dR/dc_jk = sum_a dR/dU_a * D^a(w_j phi_jk)`, which has exactly the
block-sparse structure of the linear case.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp
from sympy.core.function import AppliedUndef

from ..symbolic import pretty
from .linear import MultiIndex, abstract_numbers, constant_symbols, multi_index, prepare


@dataclass(frozen=True)
class NonlinearForm:
    """`residual(x, U_a..., theta) = 0` with `U_a = D^a u`, symbolic.

    Attributes:
        coords: the coordinates.
        multi_indices: the derivatives of the unknown that occur, `(0, ..., 0)` first.
        placeholders: one sympy symbol per multi-index, standing for `D^a u`.
        residual: the residual in the coordinates, placeholders and `parameters`.
        parameters: the unknown parameters (symbols solved for) that occur.
        back: placeholders -> the derivatives of the unknown (for printing).
    """

    coords: tuple[sp.Symbol, ...]
    multi_indices: tuple[MultiIndex, ...]
    placeholders: tuple[sp.Symbol, ...]
    residual: sp.Expr
    parameters: tuple[sp.Symbol, ...]
    back: tuple[tuple[sp.Symbol, sp.Expr], ...]

    @property
    def order(self) -> int:
        return max(sum(a) for a in self.multi_indices)

    @property
    def free_symbols(self) -> set:
        """Symbols other than placeholders (coordinates, parameters, unbound ones)."""
        return self.residual.free_symbols - set(self.placeholders)

    @property
    def is_linear(self) -> bool:
        """Linear (affine) in the unknown and its derivatives."""
        return all(
            sp.diff(self.residual, p, 2).equals(0) and not sp.diff(self.residual, p).has(*self.placeholders)
            for p in self.placeholders
        )

    def linear_part(self) -> NonlinearForm | None:
        """The terms of degree <= 1 in the unknown (for an initial guess), or `None`
        if no term is linear in it (e.g. `u'' + exp(u)` keeps `u''`). Cached: the
        same form always returns the same object."""
        return _linear_part(self)

    def _linear_part(self) -> NonlinearForm | None:
        keep = sp.Integer(0)
        syms = set(self.placeholders)
        for term in sp.Add.make_args(sp.expand_mul(self.residual)):
            dep = term.free_symbols & syms
            if not dep:
                keep += term
                continue
            if len(dep) == 1:
                (p,) = dep
                c, f = term.as_independent(p, as_Add=False)
                if f == p:
                    keep += term
        if not (keep.free_symbols & syms):
            return None
        return NonlinearForm(
            self.coords, self.multi_indices, self.placeholders, keep, self.parameters, self.back
        )

    def __str__(self):
        return f"{pretty(self.residual.xreplace(dict(self.back)))} = 0"

    def compile(self, parameters: Sequence[sp.Symbol] | None = None) -> CompiledNonlinearForm:
        """Compile to JAX; `parameters` fixes the order of the theta vector (default:
        the form's own parameters)."""
        params = tuple(self.parameters if parameters is None else parameters)
        missing = set(self.parameters) - set(params)
        if missing:
            raise ValueError(f"compile(): parameters {sorted(map(str, missing))} are not in {params}.")
        extra = self.free_symbols - set(self.coords) - set(params)
        if extra:
            names = ", ".join(sorted(map(str, extra)))
            raise ValueError(
                f"The symbol(s) {names} in {self} have no value: pass parameters={{...}} to "
                "pd.Problem or declare them unknown with unknown_parameters={...}."
            )
        template, values = abstract_numbers(self.residual)
        return CompiledNonlinearForm(
            self.multi_indices,
            params,
            _lambdified(template, self.coords, self.placeholders, params, len(values)),
            values,
        )


@functools.lru_cache(maxsize=1024)
def _lambdified(template, coords, placeholders, params, count: int) -> Callable:
    """`fn(points, U, theta, constants)` for a residual template (see
    `abstract_numbers`: its numbers are the `constants`); one per template, so that
    residuals differing only in those numbers share their compiled code."""
    f = sp.lambdify((coords, placeholders, params, constant_symbols(count)), template, modules="jax")

    def fn(points, u, theta, constants):
        points = jnp.asarray(points)
        xs = [points[:, i] for i in range(len(coords))]
        us = [u[:, i] for i in range(len(placeholders))]
        th = [theta[i] for i in range(len(params))]
        cs = [constants[i] for i in range(count)]
        return jnp.broadcast_to(jnp.asarray(f(xs, us, th, cs), dtype=points.dtype), points.shape[:1])

    return fn


@functools.lru_cache(maxsize=256)
def _linear_part(form: NonlinearForm):
    return form._linear_part()


class CompiledNonlinearForm(eqx.Module):
    """JAX callables of a `NonlinearForm`: `residual(points (N, d), U (N, A), theta (p,))`.

    A pytree: the numbers of the residual are `constants`, its array leaf, and `fn` is
    compiled once per template (see `abstract_numbers`), so residuals differing only in
    those numbers (a sweep over a parameter) share every compiled solve."""

    multi_indices: tuple[MultiIndex, ...] = eqx.field(static=True)
    parameters: tuple[sp.Symbol, ...] = eqx.field(static=True)
    fn: Callable = eqx.field(static=True)
    constants: np.ndarray = eqx.field(default_factory=lambda: np.zeros(0))

    def residual(self, points, u, theta):
        """R(x, U, theta) (N,) at `points` (N, d), with U (N, A) the derivatives of u."""
        return self.fn(points, u, theta, self.constants)

    def linearise(self, points, u, theta):
        """Residual (N,), its derivatives in U (N, A) and in theta (N, p), pointwise."""

        def one(x, ux):
            return self.residual(x[None, :], ux[None, :], theta)[0]

        r = self.residual(points, u, theta)
        du = jax.vmap(jax.grad(one, argnums=1))(points, u)
        if len(self.parameters):
            dth = jax.jacfwd(lambda th: self.residual(points, u, th))(theta)
        else:
            dth = jnp.zeros((points.shape[0], 0), points.dtype)
        return r, du, dth


def placeholder(a: MultiIndex) -> sp.Symbol:
    """The symbol standing for `D^a u` in a nonlinear form (the same for equal `a`, so
    that equal problems lower to equal forms and share compiled code)."""
    return sp.Symbol("_pdedsl_U" + "_".join(map(str, a)))


@functools.lru_cache(maxsize=256)
def from_linear(form) -> NonlinearForm:
    """The residual `sum_a c_a U_a - g` of a `LinearForm` as a `NonlinearForm`."""
    placeholders = tuple(placeholder(a) for a in form.multi_indices)
    residual = sum((c * p for c, p in zip(form.coefficients, placeholders)), sp.Integer(0)) - form.rhs
    names = tuple(
        sp.Symbol("u" if not any(a) else "D^" + "".join(map(str, a)) + "u") for a in form.multi_indices
    )
    return NonlinearForm(
        coords=tuple(form.coords),
        multi_indices=tuple(form.multi_indices),
        placeholders=placeholders,
        residual=residual,
        parameters=(),
        back=tuple(zip(placeholders, names)),
    )


def lower_nonlinear(
    residual: sp.Expr,
    unknown: AppliedUndef,
    coords,
    *,
    values: Mapping | None = None,
    normal=None,
    unknown_parameters: Sequence[sp.Symbol] = (),
    context: str = "equation",
    interfaces=(),
) -> NonlinearForm:
    """Lower `residual == 0` (any sympy-expressible dependence on the unknown and
    its derivatives) to a `NonlinearForm`. Unknown parameters stay symbolic."""
    coords = tuple(coords)
    unknown_parameters = tuple(unknown_parameters)
    expr = prepare(
        residual,
        unknown,
        coords,
        values=values,
        normal=normal,
        keep=unknown_parameters,
        context=context,
        interfaces=interfaces,
    )
    repl: dict[sp.Basic, sp.Symbol] = {}
    index_of: dict[sp.Symbol, MultiIndex] = {}
    for d in sorted(expr.atoms(sp.Derivative), key=sp.default_sort_key):
        if d.expr == unknown:
            a = multi_index(d, coords)
            p = placeholder(a)
            repl[d] = p
            index_of[p] = a
        elif d.expr.has(unknown):
            raise ValueError(f"Cannot lower the derivative {pretty(d)} in the {context}.")
    lowered = expr.xreplace(repl)
    p0 = placeholder((0,) * len(coords))
    lowered = lowered.xreplace({unknown: p0})
    if lowered.has(unknown):
        raise ValueError(f"Cannot lower the {context} {pretty(expr)}.")
    index_of[p0] = (0,) * len(coords)
    present = [p for p in index_of if lowered.has(p)]
    if not present:
        raise ValueError(
            f"The {context} `{pretty(residual)} = 0` does not contain the unknown {pretty(unknown)} "
            "(after simplification)."
        )
    present.sort(key=lambda p: (sum(index_of[p]), tuple(-i for i in index_of[p])))
    back = {v: k for k, v in repl.items()}
    back[p0] = unknown
    return NonlinearForm(
        coords=coords,
        multi_indices=tuple(index_of[p] for p in present),
        placeholders=tuple(present),
        residual=lowered,
        parameters=tuple(p for p in unknown_parameters if lowered.has(p)),
        back=tuple((p, back[p]) for p in present),
    )


__all__ = ["NonlinearForm", "CompiledNonlinearForm", "from_linear", "lower_nonlinear"]
