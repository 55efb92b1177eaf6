"""A small trainable network per subdomain (the FBPINN basis)."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax

from .base import AbstractBasis
from .random_features import ACTIVATIONS, _by_name


def _as_tuple(hidden):
    if isinstance(hidden, list):
        return tuple(hidden)
    if isinstance(hidden, int) and not isinstance(hidden, bool):
        return (hidden,)
    return hidden


class MLP(AbstractBasis):
    """A fully connected network per subdomain; its features are the last hidden layer.

    `phi(z) = output_scale * h_L(z)`, `h_l = act(W_l h_{l-1} + b_l)`, `h_0 = z`, with
    `hidden = (n_1, ..., n_L)` units: K = n_L features. The ansatz's coefficients
    `a_jk` are the output layer, so `w_j(x) sum_k a_jk phi_jk(z)` is exactly a
    windowed network with a linear output, and:

    - `pd.train` (Adam) trains the hidden weights and the output layer together
      (this is an FBPINN; with one subdomain, a PINN: see `pd.PINN`);
    - `pd.solve` treats the hidden layers as fixed random features and finds the
      output layer by least squares (a deep extreme learning machine).

    The input is the subdomain's normalised coordinate `z = (x - centre) / half_width`
    in [-1, 1]^d (input normalisation); `output_scale` multiplies the output
    (output unnormalisation: set it to the solution's expected magnitude).
    Weights and biases start uniform in `[-1/sqrt(fan_in), 1/sqrt(fan_in)]`,
    drawn per subdomain from the model's seed.
    """

    hidden: tuple[int, ...] = eqx.field(default=(32,), converter=lambda h: _as_tuple(h))
    activation: str | Callable = eqx.field(default="tanh", converter=lambda a: _by_name(a))
    output_scale: float = 1.0
    trainable: ClassVar[bool] = True

    def __check_init__(self):
        hidden = self.hidden
        if not (
            isinstance(hidden, tuple)
            and len(hidden) >= 1
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in hidden)
        ):
            raise ValueError(
                f"MLP hidden must be a non-empty tuple of positive ints (units per hidden layer), "
                f"e.g. hidden=(32,) or (64, 64); got {hidden!r}."
            )
        if isinstance(self.activation, str) and self.activation not in ACTIVATIONS:
            raise ValueError(
                f"Unknown activation {self.activation!r}; choose one of {tuple(ACTIVATIONS)} "
                "or pass a callable."
            )
        if not (isinstance(self.output_scale, (int, float)) and self.output_scale > 0):
            raise ValueError(f"output_scale must be a positive number, got {self.output_scale!r}.")

    def num_features(self, dim: int) -> int:
        return self.hidden[-1]

    def init(self, key, num_subdomains: int, dim: int):
        layers = []
        fan_in = dim
        for n, k in zip(self.hidden, jax.random.split(key, len(self.hidden))):
            kw, kb = jax.random.split(k)
            bound = 1.0 / fan_in**0.5
            w = jax.random.uniform(kw, (num_subdomains, n, fan_in), minval=-bound, maxval=bound)
            b = jax.random.uniform(kb, (num_subdomains, n), minval=-bound, maxval=bound)
            layers.append((w, b))
            fan_in = n
        return tuple(layers)

    def features(self, params, z):
        act = ACTIVATIONS[self.activation] if isinstance(self.activation, str) else self.activation
        h = z
        for w, b in params:
            h = act(w @ h + b)
        return self.output_scale * h
