"""A multifrontal block Cholesky factorisation of the normal matrix, on the host.

The normal matrix `A = (M D)^T (M D) + shift I` is block-sparse with one K x K block
per pair of subdomains that share rows (`sparse._normal_pairs`). Its Cholesky
factor has the block structure of the `R` of M's QR, so it is factorised on
`SparseQR`'s elimination plan (subdomains in minimum-degree order, chains of the
elimination tree merged into one front): each front is a dense matrix over the
subdomains its members touch, holding its members' block columns of `A` and the
update matrices its children passed on; LAPACK's `dpotrf` factors the members'
diagonal block, `dtrsm` the block column below it, and `dsyrk` forms the update
matrix passed to the parent, all in place on the front. The factor is kept as one
compressed-sparse-column matrix (unit lower triangular, with the pivots apart),
which SuperLU's triangular solve reads as it is.

Against SuperLU's factorisation of the same matrix (minimum degree on A, no
pivoting), which works column by column with level-2 kernels, this is BLAS-3 on
dense fronts and a Cholesky (half an LU's arithmetic and storage): see
`SparseNormal`'s `factorisation`.
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np
import scipy.sparse as sps
import scipy.sparse.linalg as spl

from .sparse_qr import _cython_functions


class CholeskyFactor:
    """`A = P L D^2 L^T P^T` for the multifrontal factorisation: `L` unit lower
    triangular in compressed sparse columns over the unknowns in elimination order,
    `D` the pivots, `P` the permutation. `solve(b)` applies `A^{-1}`, as SuperLU's
    factors do (the interface `SparseNormal`'s refinement uses)."""

    def __init__(self, lower: sps.csc_matrix, pivots: np.ndarray, perm: np.ndarray, fronts: int, widest: int):
        self.lower = lower
        self.d2 = pivots**2
        self.perm = perm  # position i in elimination order is unknown perm[i]
        self.fronts = fronts
        self.widest = widest
        n = lower.shape[0]
        self._indices = lower.indices.astype(np.intc, copy=False)
        self._indptr = lower.indptr.astype(np.intc, copy=False)
        self._none = (np.zeros(0), np.zeros(0, np.intc), np.zeros(n + 1, np.intc))  # no U

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        v = np.ascontiguousarray(rhs[self.perm], dtype=np.float64)
        w = self._triangular("N", v) / self.d2
        x = self._triangular("T", w)
        out = np.empty_like(x)
        out[self.perm] = x
        return out

    def _triangular(self, trans: str, v: np.ndarray) -> np.ndarray:
        """`L^{-1} v` ("N") or `L^{-T} v` ("T")."""
        gstrs = _gstrs()
        if gstrs is not None:
            n, lo = v.size, self.lower
            x, info = gstrs(trans, n, lo.nnz, lo.data, self._indices, self._indptr, n, 0, *self._none, v)
            if info == 0:
                return x
        matrix = self.lower if trans == "N" else self.lower.T
        return spl.spsolve_triangular(matrix, v, lower=trans == "N", unit_diagonal=True)


@functools.cache
def _gstrs():
    """SuperLU's triangular solve with given factors, as SciPy's `spsolve_triangular`
    calls it (without that function's copy and scaling of the matrix on every call:
    7 of them per `SparseNormal` solve); None where this SciPy has no such function,
    and `spsolve_triangular` is used instead."""
    try:
        from scipy.sparse.linalg._dsolve import _superlu

        gstrs = _superlu.gstrs
        # check it on a 2 x 2 unit lower triangle: [[1, 0], [2, 1]] x = [1, 4] -> x = [1, 2]
        one = np.array([0, 2, 3], np.intc)
        x, info = gstrs(
            "N", 2, 3, np.array([1.0, 2.0, 1.0]), np.array([0, 1, 1], np.intc), one,
            2, 0, np.zeros(0), np.zeros(0, np.intc), np.zeros(3, np.intc), np.array([1.0, 4.0]),
        )  # fmt: skip
        return gstrs if info == 0 and np.allclose(x, [1.0, 2.0]) else None
    except Exception:
        return None


def factorise(pairs, plan, shift: float) -> tuple[CholeskyFactor | None, str]:
    """The multifrontal Cholesky factor of the matrix of `pairs` (`sparse._normal_pairs`'
    upper blocks `(pair_keys, blocks, J, K)`, not modified) plus `shift` I, eliminated
    on `plan` (`sparse_qr._plan` of the system's rows). Returns (factor, message), or
    (None, why) where a pivot is not positive (the matrix is not positive definite to
    rounding)."""
    pair_keys, blocks, j, k = pairs
    routines = _cython_functions(
        ("lapack", "dpotrf", "c i p i i"),
        ("blas", "dtrsm", "c c c c i i d p i p i"),
        ("blas", "dsyrk", "c c i i d p i d p i"),
    )
    if routines is None:
        return None, "BLAS and LAPACK cannot be called in place with this SciPy"
    potrf, trsm, syrk = routines
    fronts = plan[3]
    order = np.concatenate([members for members, _ in fronts])
    pos = np.empty(j, np.int64)
    pos[order] = np.arange(j)
    # each pair's block goes to the block column of whichever of its two subdomains is
    # eliminated first: block (s, t) is A[s, t]; in column s it is A[t, s], its transpose
    s_, t_ = pair_keys // j, pair_keys % j
    in_t = pos[t_] < pos[s_]
    col = np.where(in_t, t_, s_)
    row = np.where(in_t, s_, t_)
    flip = ~in_t
    del s_, t_, in_t
    by = np.argsort(pos[col], kind="stable")  # the pairs by their column, in elimination order
    cstart = np.searchsorted(pos[col][by], np.arange(j + 1))
    widths = np.array([cols.size * k for _, cols in fronts])
    pivots = np.array([len(members) * k for members, _ in fronts])
    sizes = widths * pivots - pivots * (pivots - 1) // 2  # each front's lower trapezoid
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    itype = np.int32 if max(int(offsets[-1]), j * k) < 2**31 else np.int64
    data = np.empty(int(offsets[-1]))
    indices = np.empty(int(offsets[-1]), itype)
    diag = np.empty(j * k)
    ref = ctypes.byref
    one, minus = ctypes.c_double(1.0), ctypes.c_double(-1.0)
    info = ctypes.c_int(0)
    slot = np.zeros(j, np.int64)
    passed: dict = {}  # update matrices for each front (by its first member): [(subdomains, matrix)]
    lane = np.arange(k)
    done = 0  # unknowns eliminated so far
    for f, (members, cols) in enumerate(fronts):
        m, nc = len(members), cols.size
        w, p = nc * k, m * k
        slot[cols] = np.arange(nc)
        front = np.zeros((w, w), order="F")  # only its lower triangle is read
        mine = by[cstart[pos[members[0]]] : cstart[pos[members[-1]] + 1]]
        # the front as (K, nc, K, nc) blocks (a view): block (a, b) is [:, a, :, b]
        tiles = front.reshape((k, nc, k, nc), order="F")
        tr = flip[mine]
        there, here = mine[~tr], mine[tr]
        tiles[:, slot[row[there]], :, slot[col[there]]] = blocks[there]
        tiles[:, slot[row[here]], :, slot[col[here]]] = blocks[here].transpose(0, 2, 1)
        front[np.arange(p), np.arange(p)] += shift
        for sub, update in passed.pop(members[0], []):
            _extend_add(front, update, slot[sub], k)
        base = front.ctypes.data
        n1, lda = ctypes.c_int(p), ctypes.c_int(w)
        potrf(b"L", ref(n1), base, ref(lda), ref(info))
        if info.value != 0:
            return None, f"not positive definite to rounding (front {f} of {len(fronts)})"
        if w > p:
            n2 = ctypes.c_int(w - p)
            below = base + 8 * p
            trsm(b"R", b"L", b"T", b"N", ref(n2), ref(n1), ref(one), base, ref(lda), below, ref(lda))
            corner = below + 8 * p * w  # front[p, p]
            syrk(b"L", b"N", ref(n2), ref(n1), ref(minus), below, ref(lda), ref(one), corner, ref(lda))
            update = front[p:, p:]
            if 2 * (w - p) ** 2 < w * w:  # a copy, where the view would hold much more memory
                update = np.array(update, order="F")
            passed.setdefault(cols[m], []).append((cols[m:], update))
        piv = front[np.arange(p), np.arange(p)].copy()
        if not np.all(np.isfinite(piv)):
            return None, f"not finite (front {f} of {len(fronts)})"
        lower = front[:, :p]
        lower /= piv
        rows = (pos[cols][:, None] * k + lane).ravel().astype(itype)  # their places in elimination order
        at = offsets[f]
        for q in range(p):  # column q from its diagonal down: contiguous copies
            data[at : at + w - q] = lower[q:, q]
            indices[at : at + w - q] = rows[q:]
            at += w - q
        diag[done : done + p] = piv
        done += p
        del front
    q = np.arange(pivots.max())[None, :]
    lengths = (widths[:, None] - q)[q < pivots[:, None]]  # column q of a front: its rows from q on
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(itype)
    lower = sps.csc_matrix((data, indices, indptr), shape=(j * k, j * k), copy=False)
    perm = (order[:, None] * k + lane).ravel()
    widest = int(widths.max())
    factor = CholeskyFactor(lower, diag, perm, len(fronts), widest)
    return factor, (
        f"multifrontal Cholesky of the regularised normal equations ({len(fronts)} fronts, the widest "
        f"over {widest} columns; nnz(L)={lower.nnz})"
    )


def _extend_add(front, update, slots, k):
    """`front[at, at] += update` on and below the diagonal, `at` the K columns of each
    of `slots` (increasing): a child's subdomains are mostly a few runs of
    consecutive slots of its parent's, so the sum goes by slices, block by block
    over pairs of runs where they are few, else a run of columns at a time with
    the rows gathered (a 2D gather `front[np.ix_(at, at)]` was 5 to 20 times slower)."""
    cut = np.flatnonzero(np.diff(slots) != 1) + 1
    starts = np.concatenate([[0], cut]) * k
    ends = np.concatenate([cut, [slots.size]]) * k
    places = slots[starts // k] * k
    if starts.size <= 8:
        for a in range(starts.size):
            rows = slice(places[a], places[a] + ends[a] - starts[a])
            for b in range(a + 1):
                cols = slice(places[b], places[b] + ends[b] - starts[b])
                front[rows, cols] += update[starts[a] : ends[a], starts[b] : ends[b]]
        return
    at = (slots[:, None] * k + np.arange(k)).ravel()
    for b in range(starts.size):
        c0, c1, fb = starts[b], ends[b], places[b]
        front[at[c0:], fb : fb + c1 - c0] += update[c0:, c0:c1]


def sizes(plan, key: np.ndarray, k: int) -> dict:
    """What `SparseNormal`'s multifrontal factorisation of the system whose sorted
    row keys are `key` (`HostBlocks.key`) will take, from its structure alone (no
    arithmetic on values): a dict of the number of fronts, the widest (columns),
    the entries of the factor L (exact) and upper bounds on the bytes held at once
    and on the flops.

    The bytes count M held once as a CSR matrix (its nonzero blocks, exact), the
    normal matrix's blocks (bounded by L's blocks: each pair of subdomains that
    share a row is a block of L), L's arrays (allocated whole at the start), and
    during the factorisation the front being factorised with the update matrices
    passed on and not yet added (a whole front where the update is a view of it),
    and a host copy of M's blocks (where the system holds them on a device)."""
    fronts = plan[3]
    j = sum(len(members) for members, _ in fronts)
    n, width = key.shape
    host = n * width * (8 * k + 16)
    csr = int(np.sum(key < j)) * k * 12 + 4 * (n + 1)  # values and 32-bit column indices
    blocks = sum(len(m) * c.size - len(m) * (len(m) - 1) // 2 for m, c in fronts)
    normal = blocks * k * k * 8 + blocks * 33  # the blocks, their keys and the factorisation's indices
    entries = 0
    flops = 0.0
    widest = 0
    for members, cols in fronts:
        p, w = len(members) * k, cols.size * k
        entries += w * p - p * (p - 1) // 2
        r = w - p
        flops += p**3 / 3.0 + p * p * r + p * r * r
        widest = max(widest, w)
    itemsize = 12 if max(entries, j * k) < 2**31 else 16
    factor = entries * itemsize + 8 * j * k
    passed: dict = {}
    pending = peak = 0
    for members, cols in fronts:
        m = len(members)
        p, w = m * k, cols.size * k
        peak = max(peak, pending + 8 * w * w)  # the children's updates are added to the front
        pending -= sum(passed.pop(int(members[0]), []))
        if w > p:
            held = w * w if 2 * (w - p) ** 2 >= w * w else (w - p) ** 2
            passed.setdefault(int(cols[m]), []).append(8 * held)
            pending += 8 * held
    return {
        "fronts": len(fronts),
        "widest": widest,
        "l_entries": entries,
        # the host copy of M's blocks with their sorted keys; forming the normal
        # matrix's blocks takes up to 2^28 bytes of work space, at most a few times
        # what it gathers
        "peak_bytes": host + csr + normal + max(factor + peak, min(2**28, 3 * (csr + normal))),
        "flops": flops,
    }
