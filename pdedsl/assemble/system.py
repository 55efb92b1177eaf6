"""The block-sparse least-squares system M a = b.

Row i of M has non-zeros only in the columns of the P subdomains covering its point,
so M is stored as per-row dense blocks `values[i, p, :]` (K entries each) with the
subdomain indices `index[i, p]`: O(N P K) memory, products by gather/segment-sum.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from . import chunks

# bytes of `values` per chunk of the products of an assembled system. Besides
# bounding their temporaries, chunks that fit in cache are faster, and what fits is
# a number of bytes, not of rows: M^T (M v), best of 6 on 2 cores (2026-12-06,
# chunks of 256 to 8,192 rows), was fastest with chunks of 4 to 6 MB on every shape
# tried: 3D Poisson, 16^3 subdomains of degree 4 (438,080 rows x 8 x 35, 981 MB):
# 0.131 s at 2,048 rows (4.6 MB), 0.140 s at 4,096, 0.198 s at 8,192; 7 nested
# levels of windowed quadratics (103,680 rows x 112 x 6): 0.106 s at 1,024 rows
# (5.5 MB), 0.140 s at 4,096 (22 MB); 2D, 64^2 subdomains of degree 6 (4 x 28):
# 0.039 s at 4,096 and 8,192 rows, 0.050 s at 1,024; 2D, 316^2 subdomains of
# degree 2 (1.6 million rows x 4 x 6): 53-56 ms at 16,384 and 32,768 rows, 64 ms at
# 65,536, 71 ms at 4,096.
PRODUCT_CHUNK_BYTES = 5_000_000


def product_chunk_rows(p: int, k: int, itemsize: int = 8) -> int:
    """Rows per chunk for `values` of shape (N, p, k): the power of two nearest to
    `PRODUCT_CHUNK_BYTES` of values, between 256 and 16,384 rows."""
    rows = PRODUCT_CHUNK_BYTES / max(1, p * k * itemsize)
    return int(2 ** min(14, max(8, round(math.log2(rows)))))


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
        chunk_rows: if > 0, products run over chunks of this many rows, so that their
            temporaries (the gathered coefficients, the scaled values: each as large as
            `values`) stay one chunk in size. 0: in one go (sharded systems, whose
            rows XLA splits across the devices instead).
    """

    values: Float[Array, "N P K"]
    index: Int[Array, "N P"]
    rhs: Float[Array, " N"]
    row_scale: Float[Array, " N"]
    num_subdomains: int = eqx.field(static=True)
    groups: tuple[tuple[str, int, int], ...] = eqx.field(static=True)
    levels: Int[Array, " J"] | None = None
    centres: Float[Array, "J dim"] | None = None
    chunk_rows: int = eqx.field(default=0, static=True)

    @property
    def shape(self) -> tuple[int, int]:
        n, _, k = self.values.shape
        return n, self.num_subdomains * k

    @property
    def num_features(self) -> int:
        return self.values.shape[2]

    def _chunked(self) -> bool:
        return 0 < self.chunk_rows < self.values.shape[0]

    def mv(self, a: Float[Array, "J K"]) -> Float[Array, " N"]:
        """M a."""
        if not self._chunked():
            return jnp.einsum("npk,npk->n", self.values, a[self.index])

        def part(lo, c):
            return (
                jnp.einsum("npk,npk->n", chunks.rows(self.values, lo, c), a[chunks.rows(self.index, lo, c)]),
            )

        out = (jnp.zeros(self.values.shape[0], jnp.result_type(self.values, a)),)
        return chunks.fill_rows(out, part, self.values.shape[0], self.chunk_rows)[0]

    def group_rms(self, residual: Float[Array, " N"]) -> dict[str, float]:
        """The RMS of `residual` (of this system's rows, e.g. `M a - b`) per group of
        rows, with the row scaling undone: in the equation's and conditions' own units."""
        return {name: float(v) for (name, _, _), v in zip(self.groups, self.group_rms_scalars(residual))}

    def group_rms_scalars(self, residual: Float[Array, " N"]) -> tuple[Float[Array, ""], ...]:
        """`group_rms` as one scalar array per group, in the order of `groups`
        (traceable; scalars, so that they can be read on every process of a
        multi-process run, where a sharded array could not)."""
        unscaled = residual / self.row_scale
        return tuple(jnp.sqrt(jnp.mean(unscaled[a:b] ** 2)) for _, a, b in self.groups)

    def parts_norm(self, a: Float[Array, "J K"]) -> Float[Array, ""]:
        """sqrt(sum_j ||M_j a_j||^2): the norms of the subdomains' own contributions to
        `M a`, summed in squares (see `pd.solve`'s `info["cancellation"]`)."""

        def part(v, i, w):
            return jnp.sum(w[:, None] * jnp.einsum("npk,npk->np", v, a[i]) ** 2)

        n = self.values.shape[0]
        if not self._chunked():
            return jnp.sqrt(part(self.values, self.index, jnp.ones(n, self.values.dtype)))
        total = chunks.sum_rows(
            jnp.zeros((), jnp.result_type(self.values, a)),
            lambda lo, c, w: part(chunks.rows(self.values, lo, c), chunks.rows(self.index, lo, c), w),
            n,
            self.chunk_rows,
        )
        return jnp.sqrt(total)

    def _rmv(self, weights, square: bool) -> Float[Array, "J K"]:
        """sum over rows of weights[n] * values[n, p, :] (squared if `square`) into
        the rows' subdomains."""
        n, p, k = self.values.shape

        def part(v, i, w):
            v = v**2 if square else v
            return jax.ops.segment_sum(
                (v * w[:, None, None]).reshape(-1, k), i.reshape(-1), num_segments=self.num_subdomains
            )

        if not self._chunked():
            return part(self.values, self.index, weights)
        init = jnp.zeros((self.num_subdomains, k), jnp.result_type(self.values, weights))
        return chunks.sum_rows(
            init,
            lambda lo, c, w: part(
                chunks.rows(self.values, lo, c),
                chunks.rows(self.index, lo, c),
                chunks.rows(weights, lo, c) * w,
            ),
            n,
            self.chunk_rows,
        )

    def rmv(self, r: Float[Array, " N"]) -> Float[Array, "J K"]:
        """M^T r."""
        return self._rmv(r, square=False)

    def rmv_squares(self) -> Float[Array, "J K"]:
        """Squared column norms of M."""
        return self._rmv(jnp.ones(self.values.shape[0], self.values.dtype), square=True)

    def dense(self) -> Float[Array, "N JK"]:
        """M as a dense (N, J*K) matrix: for small systems and tests only."""
        n, p, k = self.values.shape
        cols = self.index[:, :, None] * k + jnp.arange(k)[None, None, :]
        rows = jnp.broadcast_to(jnp.arange(n)[:, None, None], cols.shape)
        return jnp.zeros((n, self.num_subdomains * k), self.values.dtype).at[rows, cols].add(self.values)
