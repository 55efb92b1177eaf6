"""Window functions. Raw windows live on the normalised subdomain (-1, 1)^d and vanish
outside it; the ansatz divides by their sum over the covering subdomains, which makes
them a partition of unity for any overlap."""

from __future__ import annotations

import abc

import equinox as eqx
import jax.numpy as jnp


class AbstractWindow(eqx.Module):
    """A raw window on the normalised subdomain. Subclasses implement `profile`."""

    @property
    def smoothness(self) -> float:
        """How many times the window is continuously differentiable (inf for C-infinity)."""
        return float("inf")

    @abc.abstractmethod
    def profile(self, s):
        """1D profile on s in (-1, 1), smooth, positive inside and zero at |s| >= 1."""

    def __call__(self, s):
        """Tensor-product window at a normalised point `s` of shape (d,)."""
        return jnp.prod(self.profile(s))


class Cosine(AbstractWindow):
    """`((1 + cos(pi s)) / 2) ** power`: C^(2*power - 1) at the support's edge.

    `power=2` (the default) is C^3, enough for second-order operators; use a higher
    power or `Bump` for fourth-order operators.
    """

    power: int = 2

    def __check_init__(self):
        if not (isinstance(self.power, int) and self.power >= 1):
            raise ValueError(f"Cosine power must be a positive int, got {self.power!r}.")

    @property
    def smoothness(self) -> float:
        return 2 * self.power - 1

    def profile(self, s):
        inside = jnp.abs(s) < 1
        s = jnp.where(inside, s, 0.0)
        return jnp.where(inside, (0.5 * (1 + jnp.cos(jnp.pi * s))) ** self.power, 0.0)


class BSpline(AbstractWindow):
    """The uniform B-spline of `degree` (default 3, cubic: C^2), stretched over the
    subdomain: a piecewise polynomial of `degree` on `degree + 1` equal pieces.

    Use it with `pd.Grid(..., overlap=degree + 1)`: the windows are then the grid's
    own B-splines, which sum to one before normalisation (away from the boundary),
    so windows x polynomials of degree p are piecewise polynomials of degree
    `p + degree`. On low-degree polynomial bases they are far more accurate per
    unknown than `pd.Cosine()` (docs/ansatz.md: 2.4e-4 against 8.9e-3 with
    quadratics on 33 x 33 subdomains for the same 6,534 unknowns), at the price of
    more subdomains per point (`(degree + 1)^d`). `degree` must exceed the
    equation's order: the default suits second-order equations.
    """

    degree: int = 3

    def __check_init__(self):
        if not (isinstance(self.degree, int) and 1 <= self.degree <= 9):
            raise ValueError(f"BSpline degree must be an int from 1 to 9, got {self.degree!r}.")

    @property
    def smoothness(self) -> float:
        return self.degree - 1

    def profile(self, s):
        d = self.degree
        t = s * (d + 1) / 2 + (d + 1) / 2  # the knots are then 0, 1, ..., d + 1
        inside = jnp.abs(s) < 1
        t = jnp.where(inside, t, 0.5)
        # Cox-de Boor on the integer knots: pieces i = 0..d, raised to degree d
        knots = jnp.arange(d + 2, dtype=t.dtype).reshape((-1,) + (1,) * t.ndim)
        n = ((knots[:-1] <= t) & (t < knots[1:])).astype(t.dtype)  # (d + 1, *s.shape)
        for k in range(1, d + 1):
            i = knots[: d + 1 - k]
            n = ((t - i) * n[:-1] + (i + k + 1 - t) * n[1:]) / k
        return jnp.where(inside, n[0], 0.0)


class Bump(AbstractWindow):
    """`exp(1 - 1 / (1 - s^2))`: C-infinity, compactly supported."""

    def profile(self, s):
        inside = jnp.abs(s) < 1
        s = jnp.where(inside, s, 0.0)
        return jnp.where(inside, jnp.exp(1.0 - 1.0 / (1.0 - s**2)), 0.0)


class Constant(AbstractWindow):
    """The window 1 everywhere: no window at all. Only for a model with a single
    subdomain (a global network, `pd.PINN`), where the partition of unity is trivial."""

    def profile(self, s):
        return jnp.ones_like(s)
