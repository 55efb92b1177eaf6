"""The block-sparse least-squares system M a = b.

Row i of M has non-zeros only in the columns of the P subdomains covering its point,
so M is stored as per-row dense blocks `values[i, p, :]` (K entries each) with the
subdomain indices `index[i, p]`: O(N P K) memory, products by gather/segment-sum.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int


class LinearSystem(eqx.Module):
    """Block-sparse rows of M (already row-scaled) and the right-hand side b.

    Attributes:
        values: (N, P, K) entries of M at the (row, covering subdomain, feature) triples.
        index: (N, P) subdomain of each block.
        rhs: (N,) right-hand side b.
        row_scale: (N,) factor each row (and its rhs entry) was multiplied by.
        num_subdomains: J; the unknowns are a (J, K) array, flattened row-major.
        groups: (name, start, stop) row ranges: the equation, then each condition.
        levels: (J,) level of each subdomain in a multilevel decomposition (or None).
        centres: (J, dim) centre of each subdomain (or None): coarse preconditioners
            use it to group neighbouring subdomains.
    """

    values: Float[Array, "N P K"]
    index: Int[Array, "N P"]
    rhs: Float[Array, " N"]
    row_scale: Float[Array, " N"]
    num_subdomains: int = eqx.field(static=True)
    groups: tuple[tuple[str, int, int], ...] = eqx.field(static=True)
    levels: Int[Array, " J"] | None = None
    centres: Float[Array, "J dim"] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        n, _, k = self.values.shape
        return n, self.num_subdomains * k

    @property
    def num_features(self) -> int:
        return self.values.shape[2]

    def mv(self, a: Float[Array, "J K"]) -> Float[Array, " N"]:
        """M a."""
        return jnp.einsum("npk,npk->n", self.values, a[self.index])

    def rmv(self, r: Float[Array, " N"]) -> Float[Array, "J K"]:
        """M^T r."""
        contrib = self.values * r[:, None, None]
        n, p, k = contrib.shape
        return jax.ops.segment_sum(
            contrib.reshape(n * p, k), self.index.reshape(n * p), num_segments=self.num_subdomains
        )

    def rmv_squares(self) -> Float[Array, "J K"]:
        """Squared column norms of M."""
        n, p, k = self.values.shape
        return jax.ops.segment_sum(
            (self.values**2).reshape(n * p, k), self.index.reshape(n * p), num_segments=self.num_subdomains
        )

    def dense(self) -> Float[Array, "N JK"]:
        """M as a dense (N, J*K) matrix: for small systems and tests only."""
        n, p, k = self.values.shape
        cols = self.index[:, :, None] * k + jnp.arange(k)[None, None, :]
        rows = jnp.broadcast_to(jnp.arange(n)[:, None, None], cols.shape)
        return jnp.zeros((n, self.num_subdomains * k), self.values.dtype).at[rows, cols].add(self.values)
