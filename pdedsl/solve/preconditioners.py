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
import numpy as np
import scipy.sparse as sps
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
    """Builds a `BuiltPreconditioner` for a system. `host = True` (a class attribute)
    marks builders that run NumPy/SciPy code and so cannot be jitted."""

    host = False

    @abc.abstractmethod
    def build(self, system: LinearSystem, levels=None) -> BuiltPreconditioner:
        """Do the operator-only work; `levels` (J,) gives each subdomain's level."""

    @property
    def name(self) -> str:
        return type(self).__name__


@eqx.filter_jit
def _build_jit(pre, system):
    return pre.build(system, system.levels)


def build(pre: AbstractPreconditioner, system: LinearSystem) -> BuiltPreconditioner:
    """Build a preconditioner, under JIT unless it is a host builder."""
    return pre.build(system, system.levels) if pre.host else _build_jit(pre, system)


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


# ---------------------------------------------------------------------------------
class _Schwarz(BuiltPreconditioner):
    members: Array  # (patches, Q) subdomain indices, -1 = padding
    inverses: Array  # (patches, Q*K, Q*K) filtered pseudo-inverses of the patch blocks
    scale: Array  # (J, K) column scaling

    @property
    def has_right(self) -> bool:
        return False

    def normal(self, r):
        k = r.shape[1]
        valid = self.members >= 0
        safe = jnp.where(valid, self.members, 0)
        rs = (r * self.scale)[safe] * valid[..., None]  # (patches, Q, K)
        z = jnp.einsum("pab,pb->pa", self.inverses, rs.reshape(rs.shape[0], -1))
        z = z.reshape(rs.shape) * valid[..., None]
        out = jax.ops.segment_sum(z.reshape(-1, k), safe.reshape(-1), num_segments=r.shape[0])
        return out * self.scale


class AdditiveSchwarz(AbstractPreconditioner):
    """Overlapping additive Schwarz for CG on the normal equations.

    One patch per subdomain: the subdomain and its neighbours of the same level
    (those sharing collocation rows). The preconditioner is
    `D (sum_p E_p pinv(A_pp) E_p^T) D`, with `A = D M^T M D` the column-scaled
    normal matrix and `pinv` filtered at `rtol` (relative singular values of the
    patch's columns). In a `pd.Multilevel` decomposition the patches of the coarse
    levels are coarse corrections, which is what keeps the iteration count flat as
    the number of subdomains grows. Built on the host (SciPy sparse).
    """

    rtol: float = 1e-7
    host = True

    def build(self, system, levels=None):
        from .sparse import to_scipy

        m = to_scipy(system)
        cn = np.sqrt(np.asarray(m.multiply(m).sum(axis=0))).ravel()
        scale = np.where(cn > 0, 1.0 / np.where(cn > 0, cn, 1.0), 0.0)
        ms = (m @ sps.diags(scale)).tocsr()
        a = (ms.T @ ms).tocsr()
        j, k = system.num_subdomains, system.num_features
        lev = np.zeros(j, int) if levels is None else np.asarray(levels)
        # subdomain adjacency from the block pattern of the normal matrix
        blocks = (abs(a) > 0).astype(np.int8)
        coarse = _block_pattern(blocks, j, k)
        patches = []
        for s in range(j):
            nb = coarse.indices[coarse.indptr[s] : coarse.indptr[s + 1]]
            nb = nb[lev[nb] == lev[s]]
            patches.append(np.union1d(nb, [s]))
        q = max(len(p) for p in patches)
        members = -np.ones((j, q), dtype=np.int64)
        inverses = np.zeros((j, q * k, q * k))
        for s, p in enumerate(patches):
            members[s, : len(p)] = p
            cols = (p[:, None] * k + np.arange(k)).ravel()
            local = a[cols][:, cols].toarray()
            lam, vec = np.linalg.eigh(local)
            keep = lam > max(lam[-1], 0) * self.rtol**2
            n = len(cols)
            inverses[s, :n, :n] = (vec[:, keep] / lam[keep]) @ vec[:, keep].T
        return _Schwarz(
            members=jnp.asarray(members),
            inverses=jnp.asarray(inverses),
            scale=jnp.asarray(scale.reshape(j, k)),
            filtered=int(np.sum(cn == 0)),
        )


def _block_pattern(pattern, j, k):
    """Subdomain-level (J x J) sparsity of a (JK x JK) pattern."""
    coo = pattern.tocoo()
    sub = sps.coo_matrix((np.ones_like(coo.data), (coo.row // k, coo.col // k)), shape=(j, j))
    return sub.tocsr()
