"""A basis fed periodic inputs: how a single network (`pd.PINN`) becomes periodic."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp

from .base import AbstractBasis


class PeriodicInput(AbstractBasis):
    """`basis` evaluated on `(..., cos(frequency * z_i), sin(frequency * z_i), ...)`:
    each periodic axis `i` of the normalised coordinate `z` is replaced by a point
    on the circle, so every feature is periodic in `z_i` with period
    `2 pi / frequency`, with all its derivatives.

    `pd.PINN(domain, periodic=[x])` uses it on its single subdomain (there is no
    window to wrap around, so the network itself must be periodic). A grid of
    several subdomains is made periodic with `pd.Grid(..., periodic=[x])` instead.
    """

    basis: AbstractBasis
    axes: tuple[int, ...] = eqx.field(static=True)
    frequency: float = eqx.field(static=True)

    @property
    def trainable(self) -> bool:  # type: ignore[override]
        return self.basis.trainable

    @property
    def periodic_axes(self) -> tuple[int, ...]:
        return self.axes

    def _inputs(self, dim: int) -> int:
        return dim + len(self.axes)

    def num_features(self, dim: int) -> int:
        return self.basis.num_features(self._inputs(dim))

    def init(self, key, num_subdomains: int, dim: int):
        return self.basis.init(key, num_subdomains, self._inputs(dim))

    def features(self, params, z):
        parts = []
        for i in range(z.shape[0]):
            if i in self.axes:
                angle = self.frequency * z[i]
                parts += [jnp.cos(angle), jnp.sin(angle)]
            else:
                parts.append(z[i])
        return self.basis.features(params, jnp.stack(parts))
