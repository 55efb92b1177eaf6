"""Sparse direct least squares on the host: the regularised normal equations, factorised by a multifrontal Cholesky (or SuperLU)."""

from __future__ import annotations

import os
import weakref

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg as sla
import scipy.sparse as sps
import scipy.sparse.linalg as spl

from ..assemble import LinearSystem
from .base import AbstractSolver, SolverResult, check_nonnegative


class HostBlocks(eqx.Module):
    """M's blocks on the host, as the system holds them (not copied), with each row's
    subdomains sorted: `key[n, i]` is the i-th smallest subdomain of row `n`, its block
    `values[n, order[n, i]]`, and the padding (all-zero) blocks come last as subdomain
    `J` (a sentinel). What `to_scipy`, `column_norms` and `normal_matrix` read; made
    once per solve. Sorting only the (N, P) keys and gathering blocks where they are
    used saves a sorted copy of all the values (3D, 27 x 84 blocks per row: 450 MB)."""

    values: np.ndarray  # (N, P, K), in the system's order
    key: np.ndarray  # (N, P) int64 subdomain indices, sorted; J for padding
    order: np.ndarray | None  # (N, P) positions in `values` of the sorted keys; None: in order

    @staticmethod
    def of(system) -> HostBlocks:
        if isinstance(system, HostBlocks):
            return system
        vals = np.asarray(system.values)
        known = _known(system)
        if known is not None:
            return HostBlocks(vals, known["key"], known["order"])
        index = np.asarray(system.index)
        j = system.num_subdomains
        # 64-bit, as pair keys s * J + t outgrow 32 bits past 46,340 subdomains
        key = np.where(np.any(vals != 0, axis=-1), index, j).astype(np.int64)
        order = None
        if key.shape[1] > 1 and np.any(key[:, 1:] < key[:, :-1]):
            order = np.argsort(key, axis=1, kind="stable")
            key = np.take_along_axis(key, order, axis=1)
        _remember(system, key, order)
        return HostBlocks(vals, key, order)

    def sorted_blocks(self, rows: np.ndarray, width: int) -> np.ndarray:
        """The first `width` sorted blocks of `rows` (any integer array shape S): an
        array of shape (*S, width, K), gathered whole (K,) blocks at a time."""
        n, p, k = self.values.shape
        if self.order is None:
            return self.values[rows, :width, :]
        flat = rows[..., None] * p + self.order[rows, :width]
        return self.values.reshape(n * p, k)[flat]


# The last system's sorted keys and elimination plan, kept while its values live:
# `pd.Auto` estimates a factorisation's memory from them before the solver it picks
# needs them again (at 7 levels, 32,766 unknowns, 0.4 s for the keys and 0.9 s for
# the plan). Only for JAX arrays, which cannot change in place.
_LAST: dict = {}


def _known(system) -> dict | None:
    """The remembered keys and plan of `system` (None: not the last system seen)."""
    last = _LAST.get("entry")
    if (
        last is not None
        and last["values"]() is system.values
        and last["index"]() is system.index
        and last["j"] == system.num_subdomains
    ):
        return last
    return None


def _remember(system, key, order) -> None:
    _LAST.clear()
    values, index = system.values, system.index
    if not (isinstance(values, jax.Array) and isinstance(index, jax.Array)):
        return
    try:  # forgotten as soon as the values are
        ref = weakref.ref(values, _forget)
        entry = {"values": ref, "index": weakref.ref(index), "j": system.num_subdomains}
    except TypeError:
        return
    _LAST["entry"] = {**entry, "key": key, "order": order, "plan": None}


def _forget(ref) -> None:
    if _LAST.get("entry", {}).get("values") is ref:
        _LAST.clear()


def elimination_plan(system, key: np.ndarray):
    """`sparse_qr._plan(key, J)` for `system`'s sorted keys `key`, made once while the
    system lives (`_known`)."""
    from .sparse_qr import _plan  # (sparse_qr imports this module)

    known = _known(system)
    if known is None or known["key"] is not key:
        return _plan(key, system.num_subdomains)
    if known["plan"] is None:
        known["plan"] = _plan(key, system.num_subdomains)
    return known["plan"]


def _size(nbytes: float) -> str:
    return f"{nbytes / 2**30:.2f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.1f} MiB"


def memory_limit() -> int | None:
    """The bytes this process may use: the machine's physical memory, or its
    container's limit (cgroup v2 `memory.max`, v1 `memory.limit_in_bytes`) where
    lower; None where neither can be read."""
    limits = []
    try:
        limits.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit():
            limits.append(int(text))
    limits = [x for x in limits if x > 0]
    return min(limits) if limits else None


def to_scipy(system: LinearSystem, blocks: HostBlocks | None = None) -> sps.csr_matrix:
    """M as a scipy CSR matrix, built block-row by block-row in O(nnz): padding
    blocks (all zero) are dropped and each row's blocks are sorted by subdomain.
    `blocks`: the system's `HostBlocks`, if already made."""
    blocks = HostBlocks.of(system) if blocks is None else blocks
    key = blocks.key
    n, p, k = blocks.values.shape
    counts = np.sum(key < system.num_subdomains, axis=1)
    keep = np.arange(p)[None, :] < counts[:, None]
    position = np.arange(p)[None, :] if blocks.order is None else blocks.order
    flat = (np.arange(n)[:, None] * p + position)[keep]
    data = blocks.values.reshape(n * p, k)[flat].reshape(-1)
    # 32-bit indices where they fit, as SciPy would convert them to anyway (a copy)
    small = max(system.shape[1], data.size) < 2**31
    itype = np.int32 if small else np.int64
    cols = (key[keep][:, None].astype(itype) * k + np.arange(k, dtype=itype)).reshape(-1)
    indptr = np.concatenate([[0], np.cumsum(counts * k)]).astype(itype)
    return sps.csr_matrix((data, cols, indptr), shape=system.shape, copy=False)


def column_norms(system: LinearSystem, blocks: HostBlocks | None = None) -> np.ndarray:
    """The Euclidean norms of M's J*K columns (host), summed a slice of rows at a time."""
    blocks = HostBlocks.of(system) if blocks is None else blocks
    j, k = system.num_subdomains, system.num_features
    n, p, _ = blocks.values.shape
    if blocks.order is None:
        index = blocks.key
    else:  # each block's own subdomain, in the values' order
        index = np.empty_like(blocks.key)
        np.put_along_axis(index, blocks.order, blocks.key, axis=1)
    out = np.zeros((j + 1, k))
    step = max(1, _SLICE // (p * k))
    for lo in range(0, n, step):
        sq = (blocks.values[lo : lo + step] ** 2).reshape(-1, k)
        where = index[lo : lo + step].ravel()  # padding blocks (zero) land in the sentinel J
        out += np.stack([np.bincount(where, weights=sq[:, c], minlength=j + 1) for c in range(k)], axis=1)
    return np.sqrt(out[:j]).ravel()


def normal_matrix(
    system: LinearSystem, scale: np.ndarray, chunk_bytes: int = 2**28, blocks: HostBlocks | None = None
) -> sps.bsr_matrix:
    """`(M D)^T (M D)` for the column scaling `D = diag(scale)` (length J*K), as a
    block-sparse matrix of K x K blocks, one per pair of subdomains that share rows.

    Rows touching the same subdomains (the same *pattern*: on a grid, the points of
    one overlap region), or, where patterns are wide, neighbouring patterns together
    (`_merge_patterns`), are gathered into a dense block over their subdomains and
    their Gram matrix is one BLAS product (batched over groups of one shape,
    `chunk_bytes` of work space at a time); the upper triangle of each Gram matrix
    is then added block by block into the pairs of its subdomains, and the lower
    one mirrored. Against SciPy's general sparse product `ms.T @ ms`, whose `sum
    over rows of (P K)^2` multiply-adds are its cost (warm, best of 3, 2 cores,
    2026-12-06): 0.11 s against 2.0 s for 16^2 subdomains of degree 8
    (laplace-multiscale's model, 11,520 unknowns), 1.24 s against 13.3 s on the
    6-level nested B-spline ansatz of laplace-multilevel (10,782 unknowns, up to 96
    subdomains per row) and 3.1 s against 14.9 s on its 7 cosine levels (32,766
    unknowns); one product per pattern took 0.19, 4.7 and 11.7 s, and before the
    patterns and pairs were found by `lexsort` and a table and the repeated pairs
    summed by a sparse product (`_unique_rows`, `_pair_keys`, `_add_blocks`),
    0.16, 2.35 and 4.7 s."""
    pairs = _normal_pairs(system, scale, chunk_bytes, blocks)
    if isinstance(pairs, sps.spmatrix):
        return pairs
    return _to_bsr(*pairs)


def _normal_pairs(system, scale, chunk_bytes=2**28, blocks=None, grow=None):
    """`normal_matrix`'s upper blocks: `(pair_keys, blocks, J, K)`, the pair `s <= t`
    as `s * J + t` (sorted) and its K x K block; or the whole matrix (BSR) where a
    row lists a subdomain twice. `grow`: see `_merge_patterns` (None: its default)."""
    host = HostBlocks.of(system) if blocks is None else blocks
    key = host.key  # each row's subdomains sorted, padding last as subdomain j
    n, p, k = host.values.shape
    j = system.num_subdomains
    if np.any((key[:, 1:] == key[:, :-1]) & (key[:, 1:] < j)):  # a subdomain twice in a row
        m = to_scipy(system, host) @ sps.diags(np.asarray(scale).ravel())
        return sps.bsr_matrix(m.T @ m, blocksize=(k, k))
    # the scaling is applied group by group below (all rows of a pattern share their
    # subdomains), not to a scaled copy of all the values at once
    col_scale = np.concatenate([np.asarray(scale).reshape(j, k), np.zeros((1, k))])
    patterns, inverse = _unique_rows(key)
    count = np.sum(patterns < j, axis=1)  # subdomains per pattern
    pair_keys = _pair_keys(patterns, j)
    group, union, ucount = _merge_patterns(patterns, count, j, k, _MERGE_GROW if grow is None else grow)
    single = np.bincount(group, minlength=len(ucount)) == 1  # groups of one pattern
    del patterns
    inverse = group[inverse]  # each row's group
    rows = np.argsort(inverse, kind="stable")  # rows grouped by group
    sizes = np.bincount(inverse, minlength=len(ucount))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    blocks = np.zeros((pair_keys.size, k, k), host.values.dtype)
    # groups of one shape (rows, subdomains) are multiplied together, a chunk at a time
    shapes, shape_of = np.unique(np.stack([sizes, ucount, single], axis=1), axis=0, return_inverse=True)
    shape_of = shape_of.ravel()
    groups = np.split(np.argsort(shape_of, kind="stable"), np.cumsum(np.bincount(shape_of))[:-1])
    for (r, c, one), members in zip(shapes, groups):
        if c == 0:
            continue
        ia, ib = np.triu_indices(c)
        # a Gram matrix of more than 2^21 entries is multiplied on its own: BLAS is
        # as fast on one, and its blocks go straight into their (distinct) pairs
        step = 1 if (c * k) ** 2 > 2**21 else max(1, chunk_bytes // (max(r * p * k, (c * k) ** 2) * 8 * 3))
        for lo in range(0, members.size, step):
            gs = members[lo : lo + step]
            sub = union[gs, :c]
            rws = rows[starts[gs][:, None] + np.arange(r)]
            if one:  # one pattern: each row's blocks are its columns, in order
                v = host.sorted_blocks(rws, c) * col_scale[sub][:, None, :, :]
            else:  # each row's blocks go to its subdomains' places in the union
                v = _place(host, rws, sub, col_scale, j)
            v = v.reshape(gs.size, r, c * k)
            want = (sub[:, ia] * j + sub[:, ib]).ravel()
            ids = np.searchsorted(pair_keys, want)
            if not one:  # a union pairs subdomains that share no row: no block there
                keep = pair_keys[np.minimum(ids, pair_keys.size - 1)] == want
            if gs.size == 1:  # each pair once: no sort, no sums of duplicates
                gram = (v[0].T @ v[0]).reshape(c, k, c, k)[ia, :, ib, :]
                if one:
                    blocks[ids] += gram
                else:
                    blocks[ids[keep]] += gram[keep]
                continue
            gram = np.matmul(v.transpose(0, 2, 1), v).reshape(gs.size, c, k, c, k)
            gram = gram[:, ia, :, ib, :].transpose(1, 0, 2, 3).reshape(-1, k, k)
            if not one:
                ids, gram = ids[keep], gram[keep]
            _add_blocks(blocks, ids, gram)
    return pair_keys, blocks, j, k


def _unique_rows(key):
    """`np.unique(key, axis=0, return_inverse=True)` (rows in lexicographic order)
    by one `lexsort`: 0.04 s against 0.9 s on the 7-level decomposition's 103,680
    rows of 50 subdomains."""
    order = np.lexsort(key.T[::-1])
    ordered = key[order]
    new = np.concatenate([[True], np.any(ordered[1:] != ordered[:-1], axis=1)])[: len(key)]
    inverse = np.empty(len(key), np.int64)
    inverse[order] = np.cumsum(new) - 1
    return ordered[new], inverse


def _pair_keys(patterns, j, table=2**26):
    """Every pair `s <= t` of subdomains that share a pattern, as `s * j + t`, sorted.
    Up to `table` possible pairs (J^2) they are marked in a table instead of sorted
    (at 7 levels, 10.5 million listed, 331,389 distinct: 0.15 s against 0.85 s)."""
    ia, ib = np.triu_indices(patterns.shape[1])
    listed = patterns[:, ia] * j + patterns[:, ib]
    listed = listed[patterns[:, ib] < j]  # padding (j) sorts last: ib < j implies ia < j
    if j * j > table:
        return np.unique(listed)
    mark = np.zeros(j * j, bool)
    mark[listed] = True
    return np.flatnonzero(mark)


def _add_blocks(blocks, ids, gram):
    """`blocks[ids] += gram` with repeated `ids` summed: a sparse matrix that sums
    each distinct id's rows, applied to the flattened blocks (4-5x faster than
    sorting the blocks and `np.add.reduceat`)."""
    distinct, inverse = np.unique(ids, return_inverse=True)
    n = ids.size
    select = sps.csr_matrix(
        (np.ones(n, gram.dtype), (inverse.ravel(), np.arange(n))), shape=(distinct.size, n)
    )
    blocks[distinct] += (select @ gram.reshape(n, -1)).reshape(-1, *gram.shape[1:])


_MERGE_GROW = 1.4
_MERGE_MIN = 32  # patterns with fewer columns than this are left alone


def _merge_patterns(patterns, count, j, k, grow):
    """Groups of patterns whose Gram matrices are formed together: consecutive
    patterns (in their sorted order, which keeps those that share their first,
    coarse-level subdomains together) join a group while the union of their
    subdomains stays within `grow` times the largest member's count (and its Gram
    matrix within 2^21 entries). Patterns of fewer than `_MERGE_MIN` columns stay
    alone. Returns each pattern's group, the groups' subdomains (sorted, padded with
    `j`) and their counts.

    Each pattern's Gram matrix must be added block by block into its pairs, and on
    a multilevel decomposition that scatter, not the products, is the cost: a pair
    gets contributions from about 20 patterns. One product over a group's rows, its
    union a little wider, scatters about 3x less there and uses BLAS better: at 6
    levels of windowed quadratics (2,500 patterns of about 37 subdomains)
    `normal_matrix` takes 0.58 s against 1.31 s pattern by pattern, at 7 levels 4.7 s
    against 11.7 s (warm, best of 3). `grow` = 1.4 was the fastest of 1.2 to 2.5 on
    both the cosine and the nested B-spline levels."""
    size = len(patterns)
    eligible = (count * k >= _MERGE_MIN) & ((count * k) ** 2 <= 2**21)
    if grow <= 1 or not eligible.any():
        return np.arange(size), patterns, count
    group = np.empty(size, np.int64)
    unions = []
    members = None  # the open group's subdomains (a set) and largest count
    for g in range(size):
        s = patterns[g, : count[g]]
        if eligible[g] and members is not None:
            both = members[0].union(s.tolist())
            most = max(members[1], count[g])
            if len(both) <= grow * most and (len(both) * k) ** 2 <= 2**21:
                members = (both, most)
                group[g] = len(unions) - 1
                continue
        if members is not None:
            unions[-1] = np.array(sorted(members[0]), dtype=patterns.dtype)
        members = (set(s.tolist()), count[g]) if eligible[g] else None
        group[g] = len(unions)
        unions.append(s)
    if members is not None:
        unions[-1] = np.array(sorted(members[0]), dtype=patterns.dtype)
    ucount = np.array([u.size for u in unions])
    union = np.full((len(unions), max(ucount.max(), 1)), j, dtype=patterns.dtype)
    for g, u in enumerate(unions):
        union[g, : u.size] = u
    return group, union, ucount


def _place(host, rws, sub, col_scale, j):
    """The scaled blocks of rows `rws` (G, r) in the columns of their groups'
    subdomains `sub` (G, c): an array (G, r, c, K), zero where a row does not touch
    a subdomain of its group."""
    g, c = sub.shape
    r = rws.shape[1]
    key = host.key[rws]  # (G, r, P), sorted, padding j last
    shift = np.arange(g) * (j + 1)  # one sorted list for all groups
    pos = np.searchsorted((sub + shift[:, None]).ravel(), key + shift[:, None, None])
    pos -= (np.arange(g) * c)[:, None, None]
    valid = key < j
    gi, ri, _ = np.nonzero(valid)
    out = np.zeros((g, r, c, host.values.shape[-1]), host.values.dtype)
    out[gi, ri, pos[valid]] = host.sorted_blocks(rws, key.shape[-1])[valid] * col_scale[key[valid]]
    return out


def _to_bsr(pair_keys, blocks, j, k) -> sps.bsr_matrix:
    """The symmetric block-sparse matrix of `_normal_pairs`' upper blocks: block
    (t, s) is block (s, t) transposed."""
    s_, t_ = pair_keys // j, pair_keys % j
    off = s_ != t_
    keys = np.concatenate([pair_keys, t_[off] * j + s_[off]])
    order = np.argsort(keys, kind="stable")
    blocks = np.concatenate([blocks, blocks[off].transpose(0, 2, 1)])[order]
    keys = keys[order]
    indptr = np.searchsorted(keys // j, np.arange(j + 1))
    return sps.bsr_matrix((blocks, keys % j, indptr), shape=(j * k, j * k))


def _to_csc(pair_keys, blocks, j, k, shift: float = 0.0) -> sps.csc_matrix:
    """The same matrix plus `shift` I in compressed sparse columns, for SuperLU.
    It is symmetric, so its CSC arrays are its CSR arrays: they are written once,
    block row by block row, from the upper blocks and their transposes, with the
    shift added on the stored diagonal. The way through `_to_bsr` made three more
    copies as large as the matrix (block-sparse, CSR, CSC) and a fourth for the sum
    with a sparse identity."""
    nu = pair_keys.size
    s_, t_ = pair_keys // j, pair_keys % j
    off = np.flatnonzero(s_ != t_)
    keys = np.concatenate([pair_keys, t_[off] * j + s_[off]])
    order = np.argsort(keys, kind="stable")  # every block, sorted by (row, column)
    keys = keys[order]
    rows, cols = keys // j, keys % j
    del keys
    mirror = order >= nu  # a lower block: the transpose of upper block `source`
    source = order  # (reused in place: `order` is not needed after this)
    source[mirror] = off[order[mirror] - nu]
    counts = np.bincount(rows, minlength=j)  # blocks per block row
    first = np.concatenate([[0], np.cumsum(counts)])
    nnz = int(first[-1]) * k * k
    itype = np.int32 if max(nnz, j * k) < 2**31 else np.int64
    data = np.empty(nnz, blocks.dtype)
    indices = np.empty(nnz, itype)
    # row (s, a) holds row a of each of block row s's blocks, in column order
    indptr = np.concatenate([[0], np.cumsum(np.repeat(counts * k, k))]).astype(itype)
    # block rows with the same number of blocks are written together, a slice at a time
    for m in np.unique(counts[counts > 0]):
        members = np.flatnonzero(counts == m)
        step = max(1, _SLICE // (m * k * k))
        for lo in range(0, members.size, step):
            rs = members[lo : lo + step]
            q = first[rs][:, None] + np.arange(m)  # (r, m) blocks, in order
            b = blocks[source[q]]
            b[mirror[q]] = b[mirror[q]].transpose(0, 2, 1)
            dest = (first[rs] * k * k)[:, None] + np.arange(m * k * k)
            data[dest] = b.transpose(0, 2, 1, 3).reshape(rs.size, -1)
            c = cols[q][:, None, :, None] * k + np.arange(k, dtype=itype)
            indices[dest] = np.broadcast_to(c, (rs.size, k, m, k)).reshape(rs.size, -1)
    out = sps.csc_matrix((data, indices, indptr), shape=(j * k, j * k), copy=False)
    if shift:
        diag = np.flatnonzero(rows == cols)
        if diag.size < j:  # a subdomain in no row: its (empty) diagonal is not stored
            return out + shift * sps.identity(j * k, format="csc")
        s = rows[diag]
        a = np.arange(k)
        where = (first[s] * k * k + (diag - first[s]) * k)[:, None] + a * (counts[s] * k + 1)[:, None]
        data[where.ravel()] += shift
    return out


def _to_dense(pair_keys, blocks, j, k) -> np.ndarray:
    """The same matrix dense, written straight from the upper blocks and their
    transposes (no block-sparse copy in between)."""
    out = np.zeros((j * k, j * k), blocks.dtype)
    view = out.reshape(j, k, j, k)
    s_, t_ = pair_keys // j, pair_keys % j
    view[t_, :, s_, :] = blocks.transpose(0, 2, 1)
    view[s_, :, t_, :] = blocks
    return out


_ORDERINGS = {"symmetric", "colamd"}
_SLICE = 2**22  # entries per slice of the in-place column scaling
_REFINEMENTS = {"cg", "richardson"}
_FACTORISATIONS = {"multifrontal", "superlu"}


class _DenseFactor:
    """Cholesky factors of a dense normal matrix, with SuperLU's `solve`."""

    def __init__(self, factor):
        self.factor = factor

    def solve(self, rhs):
        return sla.cho_solve(self.factor, rhs, check_finite=False)


def _dense_cholesky(a: np.ndarray, shift: float, nnz: int):
    """LAPACK's Cholesky factors of the dense symmetric normal matrix `a` (overwritten)
    plus `shift` I; None (and a reason) if it is not positive definite to rounding.
    `nnz`: the entries of its block-sparse form, for the message."""
    a[np.diag_indices_from(a)] += shift
    try:
        # a.T: the same (symmetric) matrix in Fortran order, so LAPACK works in place
        # rather than on a copy
        factor = sla.cho_factor(a.T, lower=False, overwrite_a=True, check_finite=False)
    except np.linalg.LinAlgError:
        return None, "not positive definite"
    if not np.all(np.isfinite(np.diag(factor[0]))):
        return None, "not finite"
    fill = nnz / a.shape[0] ** 2
    return _DenseFactor(factor), f"dense Cholesky of the regularised normal equations ({fill:.0%} full)"


def _factorise(a: sps.csc_matrix, ordering: str):
    """SuperLU factors of the symmetric positive (semi)definite `a` and how they
    were ordered: see `SparseNormal.ordering`."""
    if ordering == "symmetric":
        try:
            lu = spl.splu(
                a, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options=dict(SymmetricMode=True)
            )
        except RuntimeError:  # an exactly zero pivot: pivot after all
            lu = None
        if lu is not None and np.all(np.isfinite(lu.U.diagonal())):
            return lu, _superlu_message(lu, "minimum degree on A, no pivoting")
    lu = spl.splu(a)
    return lu, _superlu_message(lu, "COLAMD, partial pivoting")


def _superlu_message(lu, how: str) -> str:
    return f"SuperLU on regularised normal equations ({how}; nnz(L+U)={lu.L.nnz + lu.U.nnz})"


class SparseNormal(AbstractSolver):
    """Column-scaled, regularised normal equations `(M^T M + lam I) a = M^T b`,
    factorised once (a multifrontal Cholesky, below), then refined towards the unregularised
    least-squares solution by at most `refine` steps of conjugate gradients on
    `M^T M a = M^T b` preconditioned by those factors `F` (`refinement="cg"`, the
    default), with the residual `b - M a` kept by products with `M` (CGLS form:
    `M^T M` is never formed for the refinement). `refinement="richardson"` takes
    plain steps `a += F^{-1} M^T (b - M a)` instead (the default until 2026-12).

    The factors are those of the normal equations, so on their own they carry the
    squared condition number; the CG steps work with `M` itself and win most of the
    difference back. Poisson on the unit square (`u = sin(pi x) sin(pi y)`, default
    points, 16^2 subdomains of Legendre degree 8, 11,520 unknowns): three Richardson
    steps reach rel_l2 3.3e-8, three CG steps 3.6e-10, five 5.8e-12, ten 5.8e-14
    (the dense QR's accuracy); on the w0 = 320 oscillator (160 subdomains of degree
    11) five CG steps reach 1.9e-10 against 1.2e-9 (dense: 1.6e-10). Each step costs a
    solve with the factors and two products with `M`, a small part of the
    factorisation. The steps stop early when the preconditioned normal residual
    vanishes or stops being positive (the factors no longer a positive definite
    preconditioner to rounding); `info["iterations"]` is the number taken.

    `lam = regularisation` (the columns have unit norm, so it is relative):
    singular values of M below about sqrt(lam) are damped, as in a truncated
    SVD. The normal matrix is as sparse as the subdomain overlap graph, so this is
    the method of choice for 2D problems up to ~1e5 unknowns on a CPU. It runs on
    the host (NumPy/SciPy), outside JIT.

    For a redundant ansatz, a larger `regularisation` and `refine=0` can be more
    accurate: the refinement restores the near-null directions it damps. On the
    7-level `laplace-multilevel` ansatz, `SparseNormal(regularisation=1e-4, refine=0)`
    gives rel_l2 6.7e-3 against 0.60 for the default
    (`benchmarks/laplace_multilevel_regularised.py`).

    Where the normal matrix is at least `dense_fraction` full (and fits in
    `dense_bytes` as a dense array) it is factorised dense by LAPACK's Cholesky
    instead (falling back to SuperLU if that fails): a sparse factorisation gains
    nothing there, and SuperLU's is slower. On 3D Poisson, 4^3 subdomains of degree 6
    (5,376 unknowns, 27 subdomains per point, 67% full), 1.2 s against 4.5 s; in 2D,
    6^2 of degree 10 (44% full) 0.49 s against 0.60 s for the whole solve, but 8^2 of
    degree 8 (28% full) 0.78 s against 0.54 s, hence the default 0.4. The same
    accuracy (rel_l2 1.02e-8 and 1.03e-8 on the first 2D case).

    Memory: M is held on the host once, as a CSR matrix scaled in place; the
    system's blocks are read where they lie (`HostBlocks`: only the keys are
    sorted), and the normal matrix is written straight from its blocks, dense or
    as the CSC arrays SuperLU reads (with the shift on its diagonal). On the
    3D case above (28^3 points) the first solve in a process peaks 0.7 GB above the
    system instead of 2.2 GB, and takes 7.6 s instead of 13.3 s (warm: 5.0 s
    against 7.3 s; on this machine fresh memory is slow to touch, so the peak
    costs time too). `estimate(system)` bounds the memory of the whole solve from
    the structure alone, and before it factorises the solver raises `MemoryError`
    where that bound exceeds `max_bytes` (default: the machine's memory, or its
    container's limit), instead of being killed for memory part way (the
    multifrontal factorisation only; a system small enough for `dense_bytes` is not
    checked).

    `factorisation="multifrontal"` (the default, since 2026-12): a block Cholesky
    factorisation on `SparseQR`'s elimination plan (the subdomains in minimum-degree
    order, each front a dense matrix over the subdomains its members touch,
    factorised in place by LAPACK's `dpotrf`/`dtrsm`/`dsyrk`), with the normal
    matrix read from its blocks as they are (`pdedsl/solve/cholesky.py`). It is
    the same factorisation as SuperLU's up to rounding (the same rel_l2 to three
    digits in every case below) in half the memory for the factors, and 1.2 to 2.7
    times faster (whole solves, warm, best of 2, `python benchmarks/sparse_normal.py`):
    laplace-multiscale 16^2 subdomains of degree 8 (11,520 unknowns) 0.77 s against
    1.29 s, degree 10 (16,896) 1.75 s against 3.74 s, 32^2 of degree 6 (28,672)
    1.86 s against 3.77 s; 16^2 x 80 tanh features 2.63 s against 6.42 s; 3D Poisson
    on 8^3 subdomains of degree 3 (10,240) 1.21 s against 3.21 s; cold, 7 levels of
    the laplace-multilevel quadratics (32,766 unknowns) a solve of 12.5 s against
    22.2 s (`--multilevel`; alone in a process, 12.0 s and 2.4 GB against 21.3 s
    and 3.3 GB). Where a pivot is not positive (the matrix is not positive
    definite to rounding), or a row lists a subdomain twice, SuperLU factorises it
    as `factorisation="superlu"` does, and the message says so.

    `factorisation="superlu"`: SciPy's SuperLU. `ordering="symmetric"` (the default) orders the (symmetric positive definite)
    matrix by minimum degree on its own graph and factorises it without pivoting,
    which for such a matrix is its Cholesky factorisation up to a diagonal; should
    that fail (a zero pivot), it factorises again the general way.
    `ordering="colamd"` is SciPy's default: COLAMD column ordering with partial
    pivoting, which orders the columns of `A^T A` instead of `A` and fills in more:
    on the 6-level nested B-spline `laplace-multilevel` ansatz (10,782 unknowns)
    2.8x the factor entries and 5.7x the time (32.9 s against 5.8 s); at 7 levels
    (37,716 unknowns) 553 s and 19 GB against 45 s and 7.5 GB.
    """

    regularisation: float = 1e-12
    refine: int = 5
    ordering: str = "symmetric"
    refinement: str = "cg"
    dense_fraction: float = 0.4
    dense_bytes: int = 2 * 2**30
    factorisation: str = "multifrontal"
    max_bytes: float | None = None

    def __check_init__(self):
        b = self.max_bytes
        if b is not None and (isinstance(b, bool) or not isinstance(b, (int, float)) or not b > 0):
            raise ValueError(f"SparseNormal(max_bytes=...) must be None or a number > 0, got {b!r}.")
        if self.factorisation not in _FACTORISATIONS:
            raise ValueError(
                f"SparseNormal(factorisation=...) must be one of {sorted(_FACTORISATIONS)}, "
                f"got {self.factorisation!r}."
            )
        if self.refinement not in _REFINEMENTS:
            raise ValueError(
                f"SparseNormal(refinement=...) must be one of {sorted(_REFINEMENTS)}, got {self.refinement!r}."
            )
        if not (isinstance(self.refine, (int, np.integer)) and self.refine >= 0):
            raise ValueError(f"SparseNormal(refine=...) must be an int >= 0, got {self.refine!r}.")
        if isinstance(self.dense_fraction, bool) or not (
            isinstance(self.dense_fraction, (int, float)) and self.dense_fraction > 0
        ):
            raise ValueError(
                f"SparseNormal(dense_fraction=...) must be a number > 0 (above 1: never dense), "
                f"got {self.dense_fraction!r}."
            )
        check_nonnegative("SparseNormal", "regularisation", self.regularisation)
        if self.ordering not in _ORDERINGS:
            raise ValueError(
                f"SparseNormal(ordering=...) must be one of {sorted(_ORDERINGS)}, got {self.ordering!r}."
            )

    def estimate(self, system: LinearSystem) -> dict:
        """What the multifrontal factorisation of `system` will take, from its
        structure alone (the elimination plan; no arithmetic on its values): a dict
        of `fronts`, `widest` (columns of the widest front), `l_entries` (entries of
        the factor, exact: the solver's message reports the same), and upper bounds
        `peak_bytes` on the memory the whole solve holds at once (M as a CSR matrix,
        the normal matrix's blocks, the factor, the fronts and the updates between
        them, a host copy of M's blocks) and `flops` on the factorisation's
        arithmetic. On 2D grids, several levels and 3D, traced with `tracemalloc`,
        the bound was 1.9 to 2.3 times the real peak. It describes the sparse
        factorisation, also where the solve will factorise densely instead
        (`dense_fraction`) or with SuperLU (`factorisation="superlu"`), whose fill
        it does not know."""
        from .cholesky import sizes  # (cholesky builds on sparse_qr, which imports this module)

        key = HostBlocks.of(system).key
        return sizes(elimination_plan(system, key), key, system.num_features)

    def __call__(self, system: LinearSystem) -> SolverResult:
        blocks = HostBlocks.of(system)
        plan = None
        size = system.shape[1]
        limit = memory_limit() if self.max_bytes is None else self.max_bytes
        if self.factorisation == "multifrontal" and limit is not None and 8 * size**2 > self.dense_bytes:
            # (a system small enough to be factorised densely is not checked: at most
            # `dense_bytes` for its dense normal matrix)
            from .cholesky import sizes

            plan = elimination_plan(system, blocks.key)
            need = sizes(plan, blocks.key, system.num_features)
            if need["peak_bytes"] > limit:
                raise MemoryError(
                    f"SparseNormal would need up to {_size(need['peak_bytes'])} (its estimate, an upper "
                    f"bound; the widest front has {need['widest']} columns, the factor {need['l_entries']:,} "
                    f"entries), more than {_size(limit)}. Use an iterative solver (pd.CGNormal(pd.TwoLevel("
                    "local=pd.BoxSchwarz())) on a grid of polynomial patches, else pd.LSMR(pd.BlockFilter())), "
                    "fewer unknowns, or pass SparseNormal(max_bytes=...) to try anyway."
                )
        ms = to_scipy(system, blocks)  # M, then M D in place
        # the column norms from the CSR entries, then the scaling, both a slice at a
        # time: whole-matrix temporaries (or a scaled copy) would each cost as much
        # memory as M again
        cn = np.zeros(size)
        for lo in range(0, ms.nnz, _SLICE):
            part = slice(lo, lo + _SLICE)
            cn += np.bincount(ms.indices[part], weights=ms.data[part] ** 2, minlength=size)
        cn = np.sqrt(cn)
        scale = np.where(cn > 0, 1.0 / np.where(cn > 0, cn, 1.0), 0.0)
        for lo in range(0, ms.nnz, _SLICE):
            part = slice(lo, lo + _SLICE)
            ms.data[part] *= scale[ms.indices[part]]
        pairs = _normal_pairs(system, scale, blocks=blocks)
        key = blocks.key
        del blocks
        failed = None
        if isinstance(pairs, sps.spmatrix):
            nnz = pairs.nnz
        else:
            pair_keys, _, j, k = pairs
            nnz = int(2 * pair_keys.size - np.sum(pair_keys // j == pair_keys % j)) * k * k
        lu = None
        if nnz >= self.dense_fraction * size**2 and 8 * size**2 <= self.dense_bytes:
            dense = pairs.toarray() if isinstance(pairs, sps.spmatrix) else _to_dense(*pairs)
            lu, how = _dense_cholesky(dense, self.regularisation, nnz)
            del dense
        if lu is None and self.factorisation == "multifrontal" and not isinstance(pairs, sps.spmatrix):
            from .cholesky import factorise  # (it builds on sparse_qr, which imports this module)

            plan = elimination_plan(system, key) if plan is None else plan
            lu, how = factorise(pairs, plan, self.regularisation)
            if lu is None:  # not positive definite to rounding: SuperLU's, as below
                failed = how
            else:
                del pairs
        if lu is None:
            if isinstance(pairs, sps.spmatrix):
                a_mat = pairs.tocsc() + self.regularisation * sps.identity(size, format="csc")
            else:
                a_mat = _to_csc(*pairs, shift=self.regularisation)
            del pairs
            lu, how = _factorise(a_mat, self.ordering)
            if failed is not None:
                how = f"{how}, after a multifrontal Cholesky found the matrix {failed}"
        b = np.asarray(system.rhs)
        y = lu.solve(ms.T @ b)
        if self.refinement == "richardson":
            for _ in range(self.refine):
                y = y + lu.solve(ms.T @ (b - ms @ y))
            steps = self.refine
        else:
            y, steps = _cg_refine(ms, lu, b, y, self.refine)
        coeffs = (y * scale).reshape(system.num_subdomains, system.num_features)
        res = np.linalg.norm(ms @ y - b)
        ok = bool(np.all(np.isfinite(coeffs)))
        return SolverResult(
            coefficients=jnp.asarray(coeffs),
            residual_norm=jnp.asarray(res),
            iterations=steps,
            success=ok,
            message=(f"{how}, {steps} {self.refinement} refinement step(s)"),
            filtered=int(np.sum(cn == 0)),
        )


def _cg_refine(ms, lu, b, y, steps: int):
    """At most `steps` steps of CG on the unregularised normal equations
    `M^T M y = M^T b`, from `y`, preconditioned by the factors `lu` of the regularised
    normal matrix, in CGLS form: the residual `b - M y` is updated with products by
    `M`, never by `M^T M`. Stops early when the preconditioned normal residual
    `s^T F^{-1} s` (s = M^T r) vanishes or is no longer positive (the factors are no
    longer a positive definite preconditioner to rounding). Returns (y, steps taken)."""
    r = b - ms @ y
    s = ms.T @ r
    z = lu.solve(s)
    gamma = float(s @ z)
    start = gamma
    p = z
    for k in range(steps):
        if not (np.isfinite(gamma) and gamma > 1e-30 * start):
            return y, k
        q = ms @ p
        qq = float(q @ q)
        if not qq > 0:
            return y, k
        alpha = gamma / qq
        y = y + alpha * p
        r = r - alpha * q
        s = ms.T @ r
        z = lu.solve(s)
        new = float(s @ z)
        p = z + (new / gamma) * p
        gamma = new
    return y, steps
