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
import dataclasses
import hashlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sps
from jaxtyping import Array, Float

from ..assemble import LinearSystem, chunks
from ..assemble.system import product_chunk_rows
from .base import check_count, check_tolerance

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

    def cg_start(self, b):
        """CG's start for `A a = b` (`A = M^T M`) and the part of the measure `b^T B b`
        (B: `normal`) that this start has removed, so that a relative tolerance means
        the same from any start; by default None (zero) and zero."""
        return None, jnp.zeros((), b.dtype)

    def cg_apply(self, r):
        """The preconditioner as CG applies it from `cg_start` (by default `normal`)."""
        return self.normal(r)


class AbstractPreconditioner(eqx.Module):
    """Builds a `BuiltPreconditioner` for a system. `host = True` (a class attribute)
    marks builders that run NumPy/SciPy code and so cannot be jitted;
    `right_form = False` marks those that only approximate `(M^T M)^+` (for
    `CGNormal`) and have no right form `M R` (for `LSMR` and `GMRES`)."""

    host = False
    right_form = True

    def bind(self, model) -> "AbstractPreconditioner":
        """This preconditioner prepared for `model` (most need nothing from it)."""
        return self

    @abc.abstractmethod
    def build(self, system: LinearSystem, levels=None) -> BuiltPreconditioner:
        """Do the operator-only work; `levels` (J,) gives each subdomain's level."""

    @property
    def name(self) -> str:
        return type(self).__name__


def check_preconditioner(owner: str, value, *, right: bool = False) -> None:
    """`value` must be a preconditioner instance, with a right form if `right`."""
    if isinstance(value, type) and issubclass(value, AbstractPreconditioner):
        raise TypeError(f"{owner}: pass a preconditioner, pd.{value.__name__}(), not the class itself.")
    if not isinstance(value, AbstractPreconditioner):
        raise TypeError(
            f"{owner}: the preconditioner must be a pdedsl preconditioner such as pd.BlockFilter() "
            f"or pd.ColumnScaling(), got {value!r}."
        )
    if right and not value.right_form:
        raise ValueError(
            f"{owner}: {value.name} approximates the inverse of the normal matrix M^T M and has no "
            f"right form M R, so it preconditions pd.CGNormal only; with {owner} use pd.BlockFilter() "
            "or pd.ColumnScaling(), or use pd.CGNormal."
        )


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

    def part(lo, chunk, weight):
        v = chunks.rows(system.values, lo, chunk) * weight[:, None, None]
        outer = jnp.einsum("npk,npl->npkl", v, chunks.rows(system.values, lo, chunk)).reshape(-1, k, k)
        i = chunks.rows(system.index, lo, chunk).reshape(-1)
        return jax.ops.segment_sum(outer, i, num_segments=system.num_subdomains)

    gram0 = jnp.zeros((system.num_subdomains, k, k), system.values.dtype)
    return chunks.sum_rows(gram0, part, n, max(1, _CHUNK_BYTES // (8 * p * k * k)))


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

    def __check_init__(self):
        check_tolerance("BlockFilter", "rtol", self.rtol)  # relative to the largest singular value

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
        return _patch_sum(self.members, self.inverses, r * self.scale) * self.scale


def _patch_sum(members, inverses, r):
    """sum over patches p of E_p inverses[p] E_p^T r: gather each patch's members'
    entries of r (J, K), multiply by the patch's dense block, scatter-add back.
    `members` (patches, Q) lists each patch's subdomains, -1 for padding."""
    k = r.shape[1]
    valid = members >= 0
    safe = jnp.where(valid, members, 0)
    rs = r[safe] * valid[..., None]  # (patches, Q, K)
    z = jnp.einsum("pab,pb->pa", inverses, rs.reshape(rs.shape[0], -1))
    z = z.reshape(rs.shape) * valid[..., None]
    return jax.ops.segment_sum(z.reshape(-1, k), safe.reshape(-1), num_segments=r.shape[0])


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
    right_form = False

    def __check_init__(self):
        check_tolerance("AdditiveSchwarz", "rtol", self.rtol)

    def build(self, system, levels=None):
        from .sparse import column_norms, normal_matrix

        cn = column_norms(system)
        scale = np.where(cn > 0, 1.0 / np.where(cn > 0, cn, 1.0), 0.0)
        a = normal_matrix(system, scale).tocsr()
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


# ---------------------------------------------------------------------------------
class _Boxes(BuiltPreconditioner):
    # one entry per box grid (kept apart: concatenating would copy the largest arrays)
    members: tuple[Array, ...]  # (B, Q) subdomains of each box, -1 = padding
    inverses: tuple[Array, ...]  # (B, Q*K, Q*K) filtered pseudo-inverses of the boxes' blocks

    @property
    def has_right(self) -> bool:
        return False

    def normal(self, r):
        return sum(_patch_sum(m, f, r) for m, f in zip(self.members, self.inverses))


def _box_partition(centres, levels, size: int, offset: int):
    """Each subdomain's box (of `size` per axis, the grid shifted by `offset`) and its
    slot in that box, per level; boxes numbered consecutively. Returns (box, slot, count)."""
    j, dim = centres.shape
    lev = np.zeros(j, int) if levels is None else np.asarray(levels)
    box = np.zeros(j, np.int64)
    slot = np.zeros(j, np.int64)
    count = 0
    for level in np.unique(lev):
        sel = np.flatnonzero(lev == level)
        ranks = np.stack(
            [np.unique(np.round(centres[sel, a], 12), return_inverse=True)[1].ravel() for a in range(dim)],
            axis=1,
        )
        shifted = ranks + offset
        _, local = np.unique(shifted // size, axis=0, return_inverse=True)
        box[sel] = count + local.ravel()
        slot[sel] = np.ravel_multi_index(tuple((shifted % size).T), (size,) * dim)
        count += int(local.max()) + 1
    return box, slot, count


def _box_rows(index, active, box, count: int):
    """For each box, the rows that touch it: a (count, R) array padded with -1 (host)."""
    n, p = index.shape
    b = np.where(active, box[index], -1)
    pairs = np.unique(b.astype(np.int64) * n + np.arange(n)[:, None])  # sorted by box, then row
    pairs = pairs[pairs >= 0]
    bs, rows = pairs // n, pairs % n
    counts = np.bincount(bs, minlength=count)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    out = -np.ones((count, max(int(counts.max()), 1)), np.int64)
    out[bs, np.arange(bs.size) - start[bs]] = rows
    return out


@eqx.filter_jit
def _box_inverses(system, box, slot, rows, q: int, rtol: float):
    """Filtered pseudo-inverses (count, Q*K, Q*K) of the boxes' blocks of the
    normal matrix: for a batch of boxes at a time, the rows touching each box are
    gathered into a dense (R, Q*K) matrix (each block in its member's slot), whose
    Gram matrix is eigendecomposed after unit diagonal scaling."""
    n, p, k = system.values.shape
    count = rows.shape[0]

    def one(b, rws):
        valid = rws >= 0
        r = jnp.where(valid, rws, 0)
        i = system.index[r]  # (R, P)
        mine = (box[i] == b) & valid[:, None]
        onehot = (slot[i][..., None] == jnp.arange(q)) & mine[..., None]  # (R, P, Q)
        local = jnp.einsum("rpq,rpk->rqk", onehot.astype(system.values.dtype), system.values[r])
        local = local.reshape(local.shape[0], q * k)
        g = local.T @ local
        # unit diagonal first, so that the filter is relative to each column's size
        d = jnp.sqrt(jnp.diagonal(g))
        inv_d = jnp.where(d > 0, 1.0 / jnp.where(d > 0, d, 1.0), 0.0)
        f, dropped = _filtered_inverse_sqrt(g * inv_d[:, None] * inv_d[None, :], rtol)
        f = f * inv_d[:, None]
        return f @ f.T, dropped - jnp.sum(d == 0)

    # batches of boxes, written in place (lax.map's own `batch_size` hung here in
    # jax 0.10 when one of its outputs was unused)
    batch = max(1, min(32, _CHUNK_BYTES // (8 * rows.shape[1] * q * k)))
    out = (jnp.zeros((count, q * k, q * k), system.values.dtype), jnp.zeros((count,), jnp.int32))

    def part(lo, chunk):
        return jax.vmap(one)(lo + jnp.arange(chunk), chunks.rows(rows, lo, chunk))

    inverses, dropped = chunks.fill_rows(out, part, count, batch)
    return inverses, jnp.sum(dropped)


class BoxSchwarz(AbstractPreconditioner):
    """Overlapping additive Schwarz over boxes of subdomains, for CG on the normal equations.

    The subdomains of each level are grouped into boxes of `size` per axis, twice:
    on the grid of boxes and on that grid shifted by half a box, so that (for
    `size=2`) every pair of neighbouring subdomains lies together in some box.
    By default (`size=None`) boxes are 4 per axis in one and two dimensions and 2
    in three or more: in 2D the larger boxes capture the coupling of wide windows
    and of high degrees at little cost (under `TwoLevel`, 2D Poisson with 32^2
    subdomains of degree 6: 556 iterations and 43 s with boxes of 2, 147 and 23 s
    with boxes of 4; 64^2 subdomains of quadratics with overlap 3: 97 and 40
    iterations; 64^2 and 128^2 of degree 2 with overlap 2: 14 and 13 iterations
    with boxes of 2, 10 and 10 with boxes of 4, in the same time), while in 3D
    the boxes' factorisations dominate (8^3 subdomains of degree 4: 85 iterations,
    18 s, 1.0 GB with boxes of 2; 37 iterations, 111 s, 2.7 GB with boxes of 4;
    and 273 iterations with boxes of 3; `benchmarks/auto_choice.py`, cold).
    Each box's block of the normal matrix is inverted exactly (a pseudo-inverse
    filtered at `rtol`, relative to its largest singular value after unit column
    scaling), and the preconditioner is the sum of all boxes' inverses.

    Against block Jacobi (`BlockFilter`) it also captures how the features of
    neighbouring subdomains nearly cancel in their overlap, which is what makes
    high-degree bases in 3D hard: 3D Poisson, 8^3 subdomains, degree 4, CG needs
    669 iterations with block Jacobi and 137 with boxes of 2. It stores about
    `2 (size^d K)^2` numbers per `size^d` subdomains (2 x 280^2 per 8 subdomains
    at degree 4 in 3D). Combine it with a coarse space through
    `TwoLevel(local=BoxSchwarz())`. Built on the host (the boxes' row lists) and
    under JIT (the blocks, a batch of boxes at a time).
    """

    size: int | None = None
    rtol: float = 1e-7
    host = True
    right_form = False

    def __check_init__(self):
        if self.size is not None:
            check_count("BoxSchwarz", "size", self.size)
        check_tolerance("BoxSchwarz", "rtol", self.rtol)

    def box_size(self, dim: int) -> int:
        """The box size used in `dim` dimensions."""
        if self.size is not None:
            return int(self.size)
        return 4 if dim <= 2 else 2

    def build(self, system, levels=None):
        if system.centres is None:
            raise ValueError("BoxSchwarz needs the subdomain centres (a system from pd.assemble).")
        centres = np.asarray(system.centres)
        index = np.asarray(system.index)
        active = np.asarray(jnp.any(system.values != 0, axis=-1))
        size = self.box_size(centres.shape[1])
        offsets = [0] if size == 1 else [0, size // 2]
        members, inverses, dropped = [], [], 0
        for offset in offsets:
            box, slot, count = _box_partition(centres, levels, size, offset)
            q = size ** centres.shape[1]
            rows = _box_rows(index, active, box, count)
            f, d = _box_inverses(
                system, jnp.asarray(box), jnp.asarray(slot), jnp.asarray(rows), q, float(self.rtol)
            )
            mem = -np.ones((count, q), np.int64)
            mem[box, slot] = np.arange(len(box))
            members.append(mem)
            inverses.append(f)
            dropped = dropped + jnp.sum(d)
        return _Boxes(
            members=tuple(jnp.asarray(m) for m in members),
            inverses=tuple(inverses),
            filtered=dropped,
        )


# ---------------------------------------------------------------------------------
class _Multiplicative(BuiltPreconditioner):
    inverses: Float[Array, "J K K"]  # filtered pinv of each subdomain's Gram block
    slots: Array  # (G, N) int8: the block of row n that belongs to group g, or -1
    local: Array  # (G, N) int32: that block's position in the group's member list
    members: Array  # (G, S) subdomains of each group, padded with 0
    member_mask: Array  # (G, S)
    values: Float[Array, "N P K"]

    @property
    def has_right(self) -> bool:
        return False

    def normal(self, r):
        s = self.members.shape[1]
        f = self.inverses
        vals = self.values
        dtype = r.dtype

        def step(carry, group):
            x, t = carry
            slot, loc, mem, mask = group
            valid = slot >= 0
            v = jnp.take_along_axis(vals, jnp.maximum(slot, 0).astype(jnp.int32)[:, None, None], axis=1)[
                :, 0, :
            ]
            v = v * valid[:, None]
            loc = jnp.where(valid, loc, s)
            gt = jax.ops.segment_sum(v * t[:, None], loc, num_segments=s + 1)[:s]
            delta = jnp.einsum("skl,sl->sk", f[mem], r[mem] - gt) * mask[:, None]
            x = x.at[mem].add(delta)
            padded = jnp.concatenate([delta, jnp.zeros((1, delta.shape[1]), dtype)])
            t = t + jnp.sum(v * padded[loc], axis=1)
            return (x, t), None

        groups = (self.slots, self.local, self.members, self.member_mask)
        init = (jnp.zeros_like(r), jnp.zeros(vals.shape[0], dtype))
        carry, _ = jax.lax.scan(step, init, groups)
        back = jax.tree_util.tree_map(lambda a: a[:-1], groups)
        (x, _), _ = jax.lax.scan(step, carry, back, reverse=True)
        return x


def _colour_groups(system: LinearSystem, levels) -> list[np.ndarray]:
    """Groups of subdomains that share no rows: each level's subdomains greedily
    coloured by their row-sharing graph; finest level first."""
    index = np.asarray(system.index)
    active = np.asarray(jnp.any(system.values != 0, axis=-1))
    j = system.num_subdomains
    n, p = index.shape
    rows = np.broadcast_to(np.arange(n)[:, None], (n, p))[active]
    pattern = sps.csr_matrix((np.ones(rows.size, np.int32), (rows, index[active])), shape=(n, j))
    adjacency = (pattern.T @ pattern).tocsr()
    lev = np.zeros(j, int) if levels is None else np.asarray(levels)
    colour = -np.ones(j, int)
    for s in range(j):
        nb = adjacency.indices[adjacency.indptr[s] : adjacency.indptr[s + 1]]
        taken = set(colour[nb[(lev[nb] == lev[s]) & (colour[nb] >= 0)]].tolist())
        c = 0
        while c in taken:
            c += 1
        colour[s] = c
    groups = []
    for level in sorted(set(lev.tolist()), reverse=True):
        for c in range(colour[lev == level].max() + 1):
            members = np.flatnonzero((lev == level) & (colour == c))
            if members.size:
                groups.append(members)
    return groups


class MultiplicativeSchwarz(AbstractPreconditioner):
    """Symmetric multiplicative Schwarz (block Gauss-Seidel) for CG on the normal equations.

    The subdomains of each level are coloured so that subdomains of one colour share
    no collocation rows; each colour is then one exact block solve (the filtered
    pseudo-inverse of each subdomain's Gram block, as in `BlockFilter`). One
    application sweeps the groups finest level first to coarsest and back,
    correcting the residual after every group, like a multigrid V-cycle whose levels
    are the decomposition's levels. It costs about two products with M and two with
    M^T. Built on the host (the colouring).

    It does not stop CG's count from growing with the subdomains or the levels: on
    one-level grids it roughly halves block Jacobi's count (2D Poisson, degree 2,
    64^2 subdomains: 1,465 iterations against 3,114), and on `pd.Multilevel`
    decompositions it is no better than block Jacobi (cosine levels, 3 levels of
    degree 2: 468 against 143). Its best use is as `TwoLevel`'s local part.
    """

    rtol: float = 1e-7
    host = True
    right_form = False

    def __check_init__(self):
        check_tolerance("MultiplicativeSchwarz", "rtol", self.rtol)

    def build(self, system, levels=None):
        inverses, dropped = _block_inverses(system, self.rtol)
        groups = _colour_groups(system, levels)
        index = np.asarray(system.index)
        active = np.asarray(jnp.any(system.values != 0, axis=-1))
        n, p = index.shape
        size = max(g.size for g in groups)
        slots = -np.ones((len(groups), n), np.int8)
        local = np.zeros((len(groups), n), np.int32)
        members = np.zeros((len(groups), size), np.int32)
        mask = np.zeros((len(groups), size), bool)
        where = -np.ones(system.num_subdomains, np.int64)
        for g, m in enumerate(groups):
            members[g, : m.size], mask[g, : m.size] = m, True
            where[:] = -1
            where[m] = np.arange(m.size)
            hit = (where[index] >= 0) & active
            if np.any(hit.sum(axis=1) > 1):
                raise AssertionError("two subdomains of one colour share a row")
            row, slot = np.nonzero(hit)
            slots[g, row] = slot
            local[g, row] = where[index[row, slot]]
        return _Multiplicative(
            inverses=inverses,
            slots=jnp.asarray(slots),
            local=jnp.asarray(local),
            members=jnp.asarray(members),
            member_mask=jnp.asarray(mask),
            values=system.values,
            filtered=dropped,
        )


@eqx.filter_jit
def _block_inverses(system, rtol):
    r, dropped = _filtered_inverse_sqrt(block_gram(system), rtol)
    return jnp.einsum("jkl,jml->jkm", r, r), dropped


# ---------------------------------------------------------------------------------
def _aggregates(centres, levels, size: int):
    """Group neighbouring subdomains of each level into boxes of `size` per axis (by
    the rank of their centre coordinates). Returns each subdomain's aggregate and
    the number of aggregates."""
    agg, _, count = _box_partition(centres, levels, size, 0)
    return agg, count


def _monomials(z, degree: int):
    """All monomials of total degree <= `degree` in the coordinates z (..., dim)."""
    dim = z.shape[-1]
    exps = [e for e in np.ndindex(*(degree + 1,) * dim) if sum(e) <= degree]
    # products of the nonzero powers only: `prod(z ** e)` with e = 0 left XLA a
    # product over a broadcast constant to fold (1.2 s and an error-level log line
    # on 16 x 16 x 6 subdomains in 3D)
    ones = jnp.ones(z.shape[:-1], z.dtype)
    columns = []
    for e in exps:
        column = ones
        for i, p in enumerate(e):
            if p:
                column = column * z[..., i] ** p
        columns.append(column)
    return jnp.stack(columns, axis=-1)


def _coarse_coefficients(model, agg, count, degree: int):
    """Coefficients (J, K, Kc) that make each subdomain's basis reproduce the
    monomials of degree <= `degree` in its aggregate's own coordinates, fitted in
    the least-squares sense on a grid of points in the subdomain (exact for a
    polynomial basis of at least that degree)."""
    dec = model.decomposition
    centres, half = np.asarray(dec.centres), np.asarray(dec.half_widths)
    lo = np.full((count, centres.shape[1]), np.inf)
    hi = np.full((count, centres.shape[1]), -np.inf)
    np.minimum.at(lo, agg, centres - half)
    np.maximum.at(hi, agg, centres + half)
    mid, rad = (lo + hi) / 2, (hi - lo) / 2
    k, dim = model.basis.num_features(model.dim), model.dim
    per_axis = int(np.ceil(k ** (1.0 / dim))) + 2
    s1 = np.cos(np.pi * (np.arange(per_axis) + 0.5) / per_axis)  # Chebyshev points in (-1, 1)
    samples = jnp.asarray(np.stack(np.meshgrid(*(s1,) * dim, indexing="ij"), -1).reshape(-1, dim))

    out = []
    for a in range(0, centres.shape[0], 4096):
        b = slice(a, a + 4096)
        params = jax.tree_util.tree_map(lambda p, b=b: p[b], model.params)
        out.append(
            _fit_monomials(
                model.basis,
                samples,
                degree,
                params,
                jnp.asarray(centres[b]),
                jnp.asarray(half[b]),
                jnp.asarray(mid[agg[b]]),
                jnp.asarray(rad[agg[b]]),
            )
        )
    coeffs = jnp.concatenate(out)
    # corner features (model.with_corners) take no part in the coarse space
    extra = model.num_features - k
    return jnp.pad(coeffs, ((0, 0), (0, extra), (0, 0))) if extra else coeffs


@eqx.filter_jit
def _fit_monomials(basis, samples, degree, params, c, h, m, r):
    def fit(params, c, h, m, r):
        phi = jax.vmap(lambda z: basis.features(params, z))(samples)  # (S, K)
        q = _monomials((c + h * samples - m) / r, degree)  # (S, Kc)
        return jnp.linalg.lstsq(phi, q, rcond=1e-10)[0]

    return jax.vmap(fit)(params, c, h, m, r)


class _ContentKey:
    """Model-dependent data of a bound preconditioner, compared and hashed by content
    (a digest of its description and arrays). It is a static field of the solver
    passed to the jitted solves, and `pd.solve` binds the model anew on every call:
    held by identity, each call missed the compilation cache and recompiled the whole
    CG loop (0.6 s on 8^2 subdomains)."""

    def _set_digest(self, description, arrays):
        digest = hashlib.blake2b(digest_size=16)
        digest.update(repr(description).encode())
        for a in arrays:
            a = np.asarray(a)
            digest.update(repr((a.shape, a.dtype.str)).encode())
            digest.update(np.ascontiguousarray(a).tobytes())
        self._digest = digest.digest()

    def __eq__(self, other):
        return type(other) is type(self) and self._digest == other._digest

    def __hash__(self):
        return hash(self._digest)


class _Bound(_ContentKey):
    """TwoLevel's coarse coefficients and aggregates."""

    def __init__(self, coefficients, aggregates, dim):
        self.coefficients = coefficients
        self.aggregates = aggregates
        self.dim = dim
        self._set_digest(dim, (coefficients, aggregates))


# Sparse LU factors of coarse problems live on the host, found by an integer key that
# the (jittable) built preconditioner carries; the newest `_MAX_FACTORS` are kept. Each
# entry is (factors, matrix): `matrix` is None where the factors are of the matrix
# itself, and the unshifted matrix where they are of a shifted one (see `_coarse_factor`).
_FACTORS: dict[int, tuple] = {}
_MAX_FACTORS = 32
_next_key = [0]


def _register(factor) -> int:
    key = _next_key[0]
    _next_key[0] += 1
    _FACTORS[key] = factor
    while len(_FACTORS) > _MAX_FACTORS:
        del _FACTORS[min(_FACTORS)]
    return key


def _host_coarse_solve(key, rhs):
    try:
        factor = _FACTORS[int(key)]
    except KeyError:
        raise RuntimeError(
            f"TwoLevel: this coarse factorisation was discarded (only the newest {_MAX_FACTORS} are "
            "kept); build the preconditioner again."
        ) from None
    rhs = np.asarray(rhs)
    lu, shifted = factor
    b = rhs.reshape(-1).astype(np.float64)
    y = lu.solve(b)
    if shifted is not None:  # one step of iterative refinement on the unshifted matrix
        y = y + lu.solve(b - shifted @ y)
    return y.reshape(rhs.shape).astype(rhs.dtype)


class _TwoLevel(BuiltPreconditioner):
    local: BuiltPreconditioner  # the one-level part B1
    basis: Float[Array, "J K Kc"]  # the coarse space Z, restricted to each subdomain
    agg: Array  # (J,) aggregate of each subdomain
    coarse_rows: LinearSystem  # M Z, block-sparse over the aggregates
    key: Array  # which host factorisation of (M Z)^T (M Z) to use
    system: LinearSystem
    deflated: bool = eqx.field(static=True)  # CG in the adapted-deflation form (below)

    @property
    def has_right(self) -> bool:
        return False

    def _coarse_solve(self, zr):
        out = jax.ShapeDtypeStruct(zr.shape, zr.dtype)
        return jax.pure_callback(_host_coarse_solve, out, self.key, zr, vmap_method="sequential")

    def _coarse(self, r):  # A_c^{-1} Z^T r
        num = self.coarse_rows.num_subdomains
        zr = jax.ops.segment_sum(jnp.einsum("jkm,jk->jm", self.basis, r), self.agg, num_segments=num)
        return self._coarse_solve(zr)

    def _prolong(self, yc):  # Z y
        return jnp.einsum("jkm,jm->jk", self.basis, yc[self.agg])

    def normal(self, r):
        # balancing two-level Schwarz: B = Q + (I - Q A) B1 (I - A Q),
        # Q = Z A_c^{-1} Z^T, A = M^T M, A_c = Z^T A Z = (M Z)^T (M Z)
        yc = self._coarse(r)
        s = r - self.system.rmv(self.coarse_rows.mv(yc))
        t = self.local.normal(s)
        tc = self._coarse_solve(self.coarse_rows.rmv(self.system.mv(t)))
        return t + self._prolong(yc - tc)

    # Adapted deflation (A-DEF2 in Tang, Nabben, Vuik & Erlangga 2009): CG started from
    # a0 = Q b, whose residual has Z^T r0 = 0, applies P = Q + (I - Q A) B1. On residuals
    # with Z^T r = 0, P r = B r (there (I - A Q) r = r), so CG takes B's steps without
    # B's products with M Z and M^T. Rounding moves r off Z^T r = 0; an inexact coarse
    # solve (nearly dependent levels) turns that into stagnation, hence `deflated` only
    # on one-level decompositions by default.
    def cg_start(self, b):
        if not self.deflated:
            return super().cg_start(b)
        a0 = self._prolong(self._coarse(b))
        # b^T B b = b^T Q b + r0^T P r0: the same start as the balancing form's from 0
        return a0, jnp.sum(b * a0)

    def cg_apply(self, r):
        if not self.deflated:
            return self.normal(r)
        t = self.local.normal(r)
        tc = self._coarse_solve(self.coarse_rows.rmv(self.system.mv(t)))
        return t + self._prolong(self._coarse(r) - tc)


class TwoLevel(AbstractPreconditioner):
    """Two-level Schwarz for CG on the normal equations: block Jacobi plus a coarse space.

    Neighbouring subdomains are grouped into aggregates of `aggregate` per axis.
    The coarse space holds, on each aggregate C, the functions `W_C(x) q(x)` for the
    monomials q of total degree <= `degree` (in C's own coordinates), where
    `W_C = sum_{j in C} w_j` is the aggregate's window: a coarse FBPINN whose
    functions are exactly representable by the fine one (each member's basis
    reproduces q), so it adds no unknowns. The coarse problem `(M Z)^T (M Z)` is
    solved exactly (sparse LU on the host, through a callback), and the two levels are combined as a
    balancing preconditioner `B = Q + (I - Q A) B1 (I - A Q)`, `Q = Z A_c^{-1} Z^T`,
    `A = M^T M`, with `B1` the one-level preconditioner `local` (`BlockFilter()`,
    block Jacobi, by default; `MultiplicativeSchwarz()` is stronger where the basis
    degree is high). One application costs products with M, M^T, M Z and (M Z)^T
    on top of `B1`; in return the iteration count stays nearly flat as the
    subdomains per axis grow, where one-level block Jacobi's grows like
    (subdomains per axis)^2.

    In a `pd.Multilevel` decomposition only the finest level gets aggregates (the
    coarser levels are coarse spaces already).

    `form` is how CG applies the two levels. `"balancing"` is `B` above.
    `"deflation"` starts CG from `Q b` and applies `Q + (I - Q A) B1` (adapted
    deflation): the same iterations in exact arithmetic, one product with M Z and one
    with M^T fewer per step (3D wave, 16 x 16 x 6 subdomains of degree 4: 158
    iterations either way, 66 s against 78 s for the whole cold solve in
    `wave-2p1d-large`), but rounding takes its residuals off `Z^T r = 0` on
    multilevel decompositions: on 3 levels it needed 512 iterations to rtol 1e-8
    where the balancing form needs 232. Rounding also costs the deflated form
    iterations where a weak `local` leaves CG hundreds of them on a badly conditioned
    basis (block Jacobi, 2D Poisson on 4^2 subdomains of degree 5: 369 against 248;
    docs/solving.md), and in 1D it lost on every grid measured (8 subdomains of 12
    tanh random features: no convergence in 3,000 iterations against 158). So
    `"auto"` (the default) takes deflation on one-level decompositions in 2D and
    3D, and the balancing form on multilevel ones and in 1D.

    It needs the model (to fit the monomials in each subdomain's basis): `pd.solve`
    binds it; a system assembled by hand needs `TwoLevel(...).bind(model)`. The
    coarse problem is limited to `max_coarse` unknowns (aggregates x monomials).
    Built on the host.
    """

    aggregate: int = 2
    degree: int = 2
    local: AbstractPreconditioner = BlockFilter()
    max_coarse: int = 200_000
    form: str = "auto"
    # set by `bind`: the coarse coefficients (J, K, Kc) and each subdomain's aggregate
    # (J,); static (compared by content) so that a bound solver stays hashable
    bound: "_Bound | None" = eqx.field(default=None, static=True)
    host = True
    right_form = False

    @property
    def coefficients(self):
        return None if self.bound is None else self.bound.coefficients

    @property
    def aggregates(self):
        return None if self.bound is None else self.bound.aggregates

    def __check_init__(self):
        check_count("TwoLevel", "aggregate", self.aggregate, 1)
        check_count("TwoLevel", "degree", self.degree, 0)
        check_count("TwoLevel", "max_coarse", self.max_coarse, 1)
        check_preconditioner("TwoLevel(local=...)", self.local)
        if self.form not in ("auto", "balancing", "deflation"):
            raise ValueError(f"TwoLevel: form must be 'auto', 'balancing' or 'deflation', got {self.form!r}.")

    def bind(self, model) -> "TwoLevel":
        """This preconditioner with its coarse space fitted to `model`'s basis."""
        dec = model.decomposition
        centres = np.asarray(dec.centres)
        # In a multilevel decomposition only the finest level gets a coarse space: the
        # coarser levels already are coarse spaces of the ansatz, and coarse spaces on
        # several levels would reproduce the same monomials (a singular coarse problem).
        levels = np.asarray(dec.levels)
        finest = np.argmax(np.bincount(levels))
        fine = levels == finest
        agg = np.zeros(len(centres), np.int64)
        agg[fine], count = _aggregates(centres[fine], None, int(self.aggregate))
        kc = _monomials(jnp.zeros((1, model.dim)), int(self.degree)).shape[-1]
        if count * kc > self.max_coarse:
            raise ValueError(
                f"TwoLevel: the coarse problem would have {count * kc} unknowns ({count} aggregates x "
                f"{kc} monomials), above max_coarse={self.max_coarse} (its sparse factorisation may not "
                "fit). Use a larger `aggregate` or a lower `degree`."
            )
        coeffs = _coarse_coefficients(model, agg, count, int(self.degree))
        coeffs = jnp.where(jnp.asarray(fine)[:, None, None], coeffs, 0.0)
        return dataclasses.replace(self, bound=_Bound(coeffs, jnp.asarray(agg), int(model.dim)))

    def build(self, system, levels=None):
        if self.coefficients is None:
            raise ValueError(
                "TwoLevel needs the model to build its coarse space: use it through pd.solve, or "
                "pass TwoLevel(...).bind(model)."
            )
        if self.coefficients.shape[:2] != (system.num_subdomains, system.num_features):
            raise ValueError(
                f"TwoLevel was bound to a different model than this system's: its coarse space has "
                f"{self.coefficients.shape[0]} subdomains x {self.coefficients.shape[1]} features, the "
                f"system {system.num_subdomains} x {system.num_features}. (Time-marching stages solve "
                "restricted systems; TwoLevel does not support them yet.)"
            )
        local = build(self.local, system)
        agg = self.aggregates
        count = int(jnp.max(agg)) + 1
        coarse_rows = _coarse_rows(system, self.coefficients, agg, count)
        factor = _coarse_factor(_coarse_gram(coarse_rows).tocsc())
        return _TwoLevel(
            local=local,
            basis=self.coefficients,
            agg=agg,
            coarse_rows=coarse_rows,
            key=jnp.asarray(_register(factor)),
            system=system,
            filtered=local.filtered,
            deflated=self.deflates(levels),
        )

    def deflates(self, levels=None) -> bool:
        """Whether CG applies this preconditioner in the deflated form, on a system with
        these subdomain `levels` (see `form`)."""
        if self.form != "auto":
            return self.form == "deflation"
        one_level = levels is None or np.unique(np.asarray(levels)).size <= 1
        return self.bound is not None and self.bound.dim >= 2 and one_level


def _coarse_factor(ac: sps.csc_matrix):
    """SuperLU factors of the coarse matrix `A_c` and, where they had to be of
    `A_c + s I`, `A_c` itself for the solve's refinement step.

    Symmetric ordering, no pivoting: the LU of an SPD matrix is then its Cholesky
    factorisation up to a diagonal, and the solves stay symmetric. `A_c` is
    factorised as it is unless a pivot comes out non-positive or below 1e-14 of the
    largest (two coarse functions (nearly) coincide on the collocation points); then
    with a relative shift s = 1e-12 max(diag A_c), and each solve takes one step of
    iterative refinement with `A_c` (error factor s / (lambda + s) per eigenvalue
    lambda of A_c, so it never grows). A shifted solve without the refinement is off
    by about s / lambda_min, and the deflated form does not forgive that: 1D Poisson
    on 8 subdomains of degree 4 (lambda_min / max(diag) = 1e-3) stalled at rtol 1e-10
    with the shift always applied, and takes 37 iterations without it.
    """
    from .sparse import _factorise

    try:
        lu, _ = _factorise(ac, "symmetric")
    except RuntimeError:  # exactly singular even with pivoting
        lu = None
    if lu is not None:
        pivots = lu.U.diagonal()
        big = float(np.max(np.abs(pivots), initial=0.0))
        if big > 0 and np.all(np.isfinite(pivots)) and np.all(pivots > 1e-14 * big):
            return lu, None
    return _shifted_factor(ac, 1e-12), ac


def _shifted_factor(a: sps.csc_matrix, relative: float):
    """SuperLU factors (symmetric ordering, no pivoting where it can) of `a + s I`,
    `s = relative * max(diag a)`."""
    from .sparse import _factorise

    shift = max(float(a.diagonal().max()), 1e-300) * relative
    lu, _ = _factorise((a + shift * sps.identity(a.shape[0], format="csc")).tocsc(), "symmetric")
    return lu


def _coarse_gram(coarse_rows: LinearSystem, nonzeros: int = 2**23) -> sps.csr_matrix:
    """`(M Z)^T (M Z)` on the host, summed over row chunks of about `nonzeros` entries
    (one scipy matrix of all of M Z, with its index arrays and the copies the product
    makes, took about 10 GB at 32^3 subdomains, degree 4 in 3D)."""
    from .sparse import to_scipy

    n, p, kc = coarse_rows.values.shape
    step = max(1, nonzeros // (p * kc))
    total = None
    for lo in range(0, n, step):
        part = to_scipy(
            LinearSystem(
                values=coarse_rows.values[lo : lo + step],
                index=coarse_rows.index[lo : lo + step],
                rhs=coarse_rows.rhs[lo : lo + step],
                row_scale=coarse_rows.row_scale[lo : lo + step],
                num_subdomains=coarse_rows.num_subdomains,
                groups=(),
            )
        )
        gram = (part.T @ part).tocsr()
        total = gram if total is None else total + gram
    return total


@eqx.filter_jit
def _coarse_rows(system, coeffs, agg, count):
    # row chunks: gathering the coefficients for all rows at once would hold an
    # (N, P, K, Kc) array (10 GB at 16^3 subdomains, degree 4 in 3D)
    n, p, k = system.values.shape
    kc = coeffs.shape[-1]

    def part(lo, chunk):
        idx = chunks.rows(system.index, lo, chunk)
        return (jnp.einsum("npk,npkm->npm", chunks.rows(system.values, lo, chunk), coeffs[idx]),)

    out = (jnp.zeros((n, p, kc), system.values.dtype),)
    (values,) = chunks.fill_rows(out, part, n, max(1, _CHUNK_BYTES // (8 * p * k * kc)))
    return LinearSystem(
        values=values,
        index=agg[system.index].astype(system.index.dtype),
        rhs=jnp.zeros_like(system.rhs),
        row_scale=jnp.ones_like(system.rhs),
        num_subdomains=count,
        groups=(),
        chunk_rows=product_chunk_rows(p, kc, values.dtype.itemsize) if system.chunk_rows > 0 else 0,
    )
