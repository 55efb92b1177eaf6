"""Preconditioners for the least-squares system M a = b.

Each is an `AbstractPreconditioner` whose `build(system)` does the expensive,
operator-only work once and returns a `BuiltPreconditioner`:

- right preconditioners `R` (for LSMR/GMRES on `M R y = b`, `a = R y`), whose
  `R R^T` is also a symmetric positive semidefinite preconditioner for CG on the
  normal equations `M^T M a = M^T b`: `ColumnScaling` (Jacobi) and `BlockFilter`
  (block Jacobi with rank-revealing filtering of near-dependent features);
- `AdditiveSchwarz`: overlapping patches of subdomains, for CG only; with a
  multilevel decomposition the coarser levels' patches act as coarse corrections.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..assemble import LinearSystem

_CHUNK_BYTES = 64 * 2**20


class BuiltPreconditioner(eqx.Module):
    """A preconditioner built for one system."""

    filtered: Array | int = eqx.field(default=0, kw_only=True)

    @property
    def has_right(self) -> bool:
        return True

    def right(self, y: Float[Array, "J K"]) -> Float[Array, "J K"]:
        """R y."""
        raise NotImplementedError(f"{type(self).__name__} is not a right preconditioner; use it with CG.")

    def normal(self, r: Float[Array, "J K"]) -> Float[Array, "J K"]:
        """An SPD approximation of (M^T M)^+ applied to r (default R R^T r)."""
        return self.right(jax.linear_transpose(self.right, r)(r)[0])


class AbstractPreconditioner(eqx.Module):
    @abc.abstractmethod
    def build(self, system: LinearSystem, levels=None) -> BuiltPreconditioner:
        """Do the operator-only work; `levels` (J,) gives each subdomain's level."""

    @property
    def name(self) -> str:
        return type(self).__name__


# ---------------------------------------------------------------------------------
class _Diagonal(BuiltPreconditioner):
    d: Float[Array, "J K"]

    def right(self, y):
        return self.d * y

    def normal(self, r):
        return self.d**2 * r


class Identity(AbstractPreconditioner):
    """No preconditioning."""

    def build(self, system, levels=None):
        return _Diagonal(d=jnp.ones((system.num_subdomains, system.num_features), system.values.dtype))


class ColumnScaling(AbstractPreconditioner):
    """Scale every column of M to unit norm (Jacobi for the normal equations)."""

    def build(self, system, levels=None):
        sq = system.rmv_squares()
        d = jnp.where(sq > 0, 1.0 / jnp.sqrt(jnp.where(sq > 0, sq, 1.0)), 0.0)
        return _Diagonal(d=d, filtered=jnp.sum(sq == 0))


# ---------------------------------------------------------------------------------
def block_gram(system: LinearSystem) -> Float[Array, "J K K"]:
    """Per-subdomain Gram matrices M_j^T M_j, accumulated over row chunks."""
    n, p, k = system.values.shape
    chunk = max(1, min(n, _CHUNK_BYTES // (8 * p * k * k)))
    pad = (-n) % chunk
    vals = jnp.pad(system.values, ((0, pad), (0, 0), (0, 0))).reshape(-1, chunk, p, k)
    idx = jnp.pad(system.index, ((0, pad), (0, 0))).reshape(-1, chunk, p)

    def body(gram, xs):
        v, i = xs
        outer = jnp.einsum("npk,npl->npkl", v, v).reshape(-1, k, k)
        return gram + jax.ops.segment_sum(outer, i.reshape(-1), num_segments=system.num_subdomains), None

    gram0 = jnp.zeros((system.num_subdomains, k, k), system.values.dtype)
    gram, _ = jax.lax.scan(body, gram0, (vals, idx))
    return gram


def _filtered_inverse_sqrt(gram, rtol):
    """Symmetric factors R with R R^T = pinv(gram), dropping directions whose singular
    value (sqrt of the eigenvalue) is below rtol times the block's largest."""
    lam, vec = jnp.linalg.eigh(gram)
    lam_max = jnp.max(lam, axis=-1, keepdims=True)
    keep = (lam > (rtol**2) * lam_max) & (lam > 0)
    inv = jnp.where(keep, 1.0 / jnp.sqrt(jnp.where(keep, lam, 1.0)), 0.0)
    return vec * inv[..., None, :], jnp.sum(~keep)


class _Block(BuiltPreconditioner):
    r: Float[Array, "J K K"]

    def right(self, y):
        return jnp.einsum("jkl,jl->jk", self.r, y)

    def normal(self, r):
        return jnp.einsum("jkl,jml,jm->jk", self.r, self.r, r)


class BlockFilter(AbstractPreconditioner):
    """Block-Jacobi right preconditioner with local feature filtering.

    For each subdomain j, the eigendecomposition of its Gram block
    `M_j^T M_j = V diag(s^2) V^T` gives `R_j = V_r diag(1/s_r)` over the directions
    with `s > rtol * s_max`: the columns of `M_j R_j` are orthonormal and
    near-dependent features (random features are) are filtered out. Used as `R R^T`
    it is block-Jacobi for CG on the normal equations.
    """

    rtol: float = 1e-7

    def build(self, system, levels=None):
        r, dropped = _filtered_inverse_sqrt(block_gram(system), self.rtol)
        return _Block(r=r, filtered=dropped)
