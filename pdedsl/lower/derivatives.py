"""Derivatives of JAX functions by multi-index, by nested forward-mode JVPs."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp


def derivative(f: Callable, multi_index) -> Callable:
    """`x -> d^|a| f(x) / dx^a` for `f` taking one point `x` of shape (d,).

    `f` may return any array; differentiation is elementwise in the output.
    """
    for axis, order in enumerate(multi_index):
        if int(order) < 0:
            raise ValueError(f"Derivative orders must be non-negative, got {tuple(multi_index)}.")
        for _ in range(int(order)):
            f = _directional(f, axis)
    return f


def _directional(f, axis):
    def g(x):
        if axis >= x.shape[-1]:
            raise ValueError(f"Multi-index axis {axis} out of range for {x.shape[-1]}D points.")
        e = jnp.zeros_like(x).at[axis].set(1.0)
        return jax.jvp(f, (x,), (e,))[1]

    return g


def apply_to_function(form, f: Callable, points):
    """Apply a compiled linear form's operator `sum_a c_a D^a` to a scalar JAX function
    `f(x)` of one point, at `points` (N, d): returns (N,). For tests and references."""
    derivs = {a: jax.vmap(derivative(f, a))(points) for a in form.multi_indices}
    out = 0.0
    for a, c in zip(form.multi_indices, form.coefficients):
        out = out + c(points) * derivs[a]
    return out
