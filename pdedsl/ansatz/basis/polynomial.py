"""Polynomials of bounded total degree: monomials, Legendre or Chebyshev."""

from __future__ import annotations

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .base import AbstractBasis

KINDS = ("monomial", "legendre", "chebyshev")
# selection products must not drop to a lower-precision matmul (e.g. TF32 on GPUs)
_EXACT = jax.lax.Precision.HIGHEST


def _one_d(kind: str, z, degree: int):
    """Values of the 1D family, degrees 0..degree, at z (array), stacked on axis 0."""
    out = [jnp.ones_like(z)]
    if degree >= 1:
        out.append(z)
    for n in range(1, degree):
        if kind == "monomial":
            out.append(out[-1] * z)
        elif kind == "legendre":
            out.append(((2 * n + 1) * z * out[n] - n * out[n - 1]) / (n + 1))
        else:
            out.append(2 * z * out[n] - out[n - 1])
    return jnp.stack(out)


def _one_d_derivatives(kind: str, z, degree: int, order: int):
    """Derivatives 0..order of the 1D family, degrees 0..degree, at z (array): shape
    (order + 1, degree + 1, *z.shape). The three-term recurrence differentiated k
    times: `(z p_n)^(k) = z p_n^(k) + k p_n^(k-1)`."""
    one, zero = jnp.ones_like(z), jnp.zeros_like(z)
    # out[k][n] = d^k p_n / dz^k
    out = [[one if k == 0 else zero] + [zero] * degree for k in range(order + 1)]
    if degree >= 1:
        out[0][1] = z
        if order >= 1:
            out[1][1] = one
    for n in range(1, degree):
        for k in range(order + 1):
            zp = z * out[k][n] + (k * out[k - 1][n] if k > 0 else 0.0)
            if kind == "monomial":
                out[k][n + 1] = zp
            elif kind == "legendre":
                out[k][n + 1] = ((2 * n + 1) * zp - n * out[k][n - 1]) / (n + 1)
            else:
                out[k][n + 1] = 2 * zp - out[k][n - 1]
    return jnp.stack([jnp.stack(row) for row in out])


class Polynomial(AbstractBasis):
    """All products `prod_i P_{a_i}(z_i)` with total degree `sum a_i <= degree`.

    `kind` is "legendre" (default: well conditioned on [-1, 1]), "chebyshev" or
    "monomial" (Taylor). In d dimensions there are binom(degree + d, d) functions.
    """

    degree: int
    kind: str = eqx.field(default="legendre", static=True)

    def __check_init__(self):
        if not (isinstance(self.degree, int) and self.degree >= 0):
            raise ValueError(f"Polynomial degree must be a non-negative int, got {self.degree!r}.")
        if self.kind not in KINDS:
            raise ValueError(f"Unknown polynomial kind {self.kind!r}; choose one of {KINDS}.")

    def exponents(self, dim: int) -> np.ndarray:
        e = [a for a in itertools.product(range(self.degree + 1), repeat=dim) if sum(a) <= self.degree]
        e.sort(key=lambda a: (sum(a), tuple(-i for i in a)))
        return np.asarray(e, dtype=int).reshape(len(e), dim)

    def num_features(self, dim: int) -> int:
        return len(self.exponents(dim))

    def _selection(self, dim: int, axis: int, dtype) -> np.ndarray:
        """(degree + 1, K) 0/1 matrix picking each feature's 1D factor along `axis`:
        `table @ selection` gathers by a small matrix product, which XLA batches over
        points and subdomains far better than an indexed gather (1.2-1.4x faster
        assembly at degree 8 in 2D; the product is exact: one 1 per column)."""
        e = self.exponents(dim)
        out = np.zeros((self.degree + 1, e.shape[0]), dtype=dtype)
        out[e[:, axis], np.arange(e.shape[0])] = 1.0
        return out

    def features(self, params, z):
        dim = z.shape[0]
        table = _one_d(self.kind, z, self.degree)  # (degree + 1, dim)
        out = None
        for i in range(dim):
            factor = jnp.dot(table[:, i], self._selection(dim, i, table.dtype), precision=_EXACT)
            out = factor if out is None else out * factor
        return out

    def derivatives(self, params, z, multi_indices):
        """Closed form: each feature is a product of 1D polynomials, so its
        derivative is the product of their derivatives (`_one_d_derivatives`)."""
        dim = z.shape[0]
        multi_indices = [tuple(int(i) for i in a) for a in multi_indices]
        order = max((max(a, default=0) for a in multi_indices), default=0)
        table = _one_d_derivatives(self.kind, z, self.degree, order)  # (order+1, degree+1, dim)
        # each axis's factor per derivative order, gathered once: (K,) arrays
        factors = {}
        for i in range(dim):
            orders = sorted({a[i] for a in multi_indices})
            picked = jnp.dot(
                table[np.asarray(orders), :, i], self._selection(dim, i, table.dtype), precision=_EXACT
            )
            for row, k in enumerate(orders):
                factors[i, k] = picked[row]
        out = []
        for a in multi_indices:
            value = factors[0, a[0]]
            for i in range(1, dim):
                value = value * factors[i, a[i]]
            out.append(value)
        return tuple(out)
