"""Random features (extreme learning machine): a fixed random hidden layer."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from . import draws
from .base import AbstractBasis

ACTIVATIONS: dict[str, Callable] = {"tanh": jnp.tanh, "sin": jnp.sin, "cos": jnp.cos}


def _by_name(activation):
    """jnp.tanh given as a callable is stored as "tanh": the name prints, and pickles
    (sol.save), where JAX's function object does not."""
    for name, fn in ACTIVATIONS.items():
        if activation is fn:
            return name
    return activation


class RandomFeatures(AbstractBasis):
    """`phi_k(z) = act(W_k . z + b_k)` with W, b drawn once, uniform in [-scale, scale].

    Each subdomain draws its own weights, from the model's seed
    (`pd.FBPINN(decomposition, pd.RandomFeatures(12), seed=3)`; the default is 0).
    `activation` is "tanh", "sin", "cos" or a callable.
    """

    size: int
    activation: str | Callable = eqx.field(default="tanh", converter=lambda a: _by_name(a))
    scale: float = 1.0

    def __check_init__(self):
        if not (isinstance(self.size, int) and self.size >= 1):
            raise ValueError(f"RandomFeatures size must be a positive int, got {self.size!r}.")
        if isinstance(self.activation, str) and self.activation not in ACTIVATIONS:
            raise ValueError(
                f"Unknown activation {self.activation!r}; choose one of {tuple(ACTIVATIONS)} "
                "or pass a callable."
            )
        if not self.scale > 0:
            raise ValueError(f"scale must be positive, got {self.scale}.")

    def num_features(self, dim: int) -> int:
        return self.size

    def init(self, key, num_subdomains: int, dim: int):
        return _draw(key, num_subdomains, self.size, dim, self.scale)

    def features(self, params, z):
        w, b = params
        act = ACTIVATIONS[self.activation] if isinstance(self.activation, str) else self.activation
        return act(w @ z + b)

    def derivatives(self, params, z, multi_indices):
        """Closed form for the named activations: `d^a act(w . z + b) = act^(|a|)(w . z
        + b) prod_i w_i^(a_i)`, the activation's derivatives taken elementwise. A
        callable activation is differentiated as a whole (it need not act elementwise)."""
        if not isinstance(self.activation, str):
            return super().derivatives(params, z, multi_indices)
        w, b = params
        pre = w @ z + b
        multi_indices = [tuple(int(i) for i in a) for a in multi_indices]
        orders = sorted({sum(a) for a in multi_indices})
        act = ACTIVATIONS[self.activation]
        ones = jnp.ones_like(pre)
        values, g, done = {}, act, 0
        for m in orders:
            while done < m:
                g = (lambda f: lambda t: jax.jvp(f, (t,), (ones,))[1])(g)
                done += 1
            values[m] = g(pre)
        out = []
        for a in multi_indices:
            term = values[sum(a)]
            for i, order in enumerate(a):
                if order:
                    term = term * w[:, i] ** order
            out.append(term)
        return tuple(out)


def _draw(key, num_subdomains: int, size: int, dim: int, scale):
    """The weights and biases: `jax.random.uniform` in [-1, 1] from the two halves of
    `key`, times `scale`, drawn on the host (`draws`: the same numbers, without ~1 s of
    compiling the generator for each new shape)."""
    kw, kb = draws.split(key)
    w = draws.uniform(kw, (num_subdomains, size, dim))
    b = draws.uniform(kb, (num_subdomains, size))
    return (jnp.asarray(scale * w), jnp.asarray(scale * b))
