"""Polynomials of bounded total degree: monomials, Legendre or Chebyshev."""

from __future__ import annotations

import itertools

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .base import AbstractBasis

KINDS = ("monomial", "legendre", "chebyshev")


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

    def features(self, params, z):
        dim = z.shape[0]
        table = _one_d(self.kind, z, self.degree)  # (degree + 1, dim)
        e = self.exponents(dim)
        return jnp.prod(table[e, np.arange(dim)[None, :]], axis=-1)
