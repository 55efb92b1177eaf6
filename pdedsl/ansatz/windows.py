"""Window functions. Raw windows live on the normalised subdomain (-1, 1)^d and vanish
outside it; the ansatz divides by their sum over the covering subdomains, which makes
them a partition of unity for any overlap."""

from __future__ import annotations

import abc
import functools
from fractions import Fraction
from math import comb, factorial

import equinox as eqx
import jax.numpy as jnp
import numpy as np


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
        # piece i = floor(t) is a polynomial in u = t - i, evaluated by Horner: d
        # multiply-adds instead of the Cox-de Boor recursion's O(d^2) array ops (3D
        # Laplacian, 4^3 cubic B-spline windows: assembly compiled in 2.3 s instead of
        # 3.0 s, and ran in half the time)
        piece = jnp.clip(jnp.floor(t), 0, d)
        u = t - piece
        coef = jnp.asarray(_cardinal_pieces(d), t.dtype)[piece.astype(jnp.int32)]
        value = coef[..., d]
        for m in range(d - 1, -1, -1):
            value = value * u + coef[..., m]
        return jnp.where(inside, value, 0.0)


@functools.cache
def _cardinal_pieces(d: int) -> np.ndarray:
    """(d + 1, d + 1): row i holds the coefficients (ascending powers of u) of the
    cardinal B-spline of degree d on the knots 0..d+1, on its piece t = i + u, u in
    [0, 1). Exact rational arithmetic from `N(t) = sum_j (-1)^j C(d+1, j) (t - j)_+^d / d!`."""
    rows = []
    for i in range(d + 1):
        row = [Fraction(0)] * (d + 1)
        for j in range(i + 1):  # (t - j)_+ = u + (i - j) on piece i
            c = Fraction((-1) ** j * comb(d + 1, j), factorial(d))
            for m in range(d + 1):
                row[m] += c * comb(d, m) * (i - j) ** (d - m)
        rows.append([float(x) for x in row])
    out = np.array(rows)
    out.setflags(write=False)
    return out


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
