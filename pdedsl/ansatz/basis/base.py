"""The basis-family extension point."""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
from jaxtyping import Array, Float, PRNGKeyArray, PyTree


class AbstractBasis(eqx.Module):
    """A family of K functions per subdomain, evaluated on normalised coordinates.

    Implement `num_features` and `features`; override `init` if the family has
    per-subdomain parameters (random weights). The rest of the library accepts any
    subclass unchanged.

    `trainable` (a class attribute, False by default) says whether `pd.train` may
    optimise the parameters returned by `init` (True for `pd.MLP`); fixed random
    features and polynomials are for the linear solvers.
    """

    trainable: ClassVar[bool] = False

    @abc.abstractmethod
    def num_features(self, dim: int) -> int:
        """K, the number of functions per subdomain in `dim` dimensions."""

    def init(self, key: PRNGKeyArray, num_subdomains: int, dim: int) -> PyTree:
        """Per-subdomain parameters, each leaf with leading axis `num_subdomains`."""
        return None

    @abc.abstractmethod
    def features(self, params: PyTree, z: Float[Array, " dim"]) -> Float[Array, " K"]:
        """The K features at one normalised point `z` in [-1, 1]^dim, given one
        subdomain's slice of the parameters."""

    def derivatives(self, params: PyTree, z: Float[Array, " dim"], multi_indices) -> tuple:
        """`d^a features / dz^a` at `z` for each multi-index `a` of `multi_indices`
        (a tuple of (K,) arrays, in the same order).

        The default differentiates `features` by nested forward-mode JVPs. A family
        whose derivatives have a closed form overrides it (`pd.Polynomial`,
        `pd.RandomFeatures`): nested JVPs through a whole feature vector cost about
        ten times the values for each second derivative, and assembly is mostly
        this."""
        from ...lower.derivatives import derivative

        f = lambda y: self.features(params, y)  # noqa: E731
        return tuple(derivative(f, a)(z) for a in multi_indices)
