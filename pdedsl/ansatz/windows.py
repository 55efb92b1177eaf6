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
