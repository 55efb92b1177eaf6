"""Sparse direct least squares on the host by a multifrontal Householder QR of M itself."""

from __future__ import annotations

import ctypes
import functools
import math

import jax.numpy as jnp
import numpy as np
import scipy.linalg as sla
import scipy.sparse as sps
import scipy.sparse.linalg as spl
from scipy.linalg import lapack

from ..assemble import LinearSystem
from .base import AbstractSolver, SolverResult
from .sparse import HostBlocks, _size, column_norms, elimination_plan, memory_limit


class SparseQR(AbstractSolver):
    """Least squares by a sparse QR factorisation of the column-scaled `M` itself,
    never its normal equations, so the condition number is not squared.

    The unknowns of one subdomain form one block column. The subdomains are ordered
    by minimum degree on the graph of subdomains that share rows, and eliminated in
    that order (a multifrontal, row-merge QR): the front of subdomain `s` gathers the
    rows whose first subdomain in that order is `s`, plus the rows its earlier
    fronts passed on, as a dense matrix over the subdomains they touch; a
    Householder QR of it (with `b` as one more column) gives `s`'s block row of `R`
    and `Q^T b`, and its remaining rows go on to the front of the next subdomain
    they touch (a chain of subdomains with one column structure shares one front,
    which spares a QR of each triangle passed along it: 10 s against 2.2 s on
    48^2 subdomains x 12 tanh features). The front's rows are sorted by their
    leading column and its QR runs in column panels (LAPACK's `dgeqrf` and
    `dormqr`) over only the rows that reach each panel, so the zeros below that
    staircase (the triangles passed on from earlier fronts are half zeros) cost
    nothing: 1.4-2.2x faster than a dense QR of each front. LAPACK works on the
    front's own memory (through the pointers `scipy.linalg.cython_lapack` exports;
    SciPy's Python wrappers copied every panel in and out, 13-23% of the time in
    3D). A back substitution
    over the blocks gives the coefficients. The result is the dense QR's (it is the
    same factorisation, up to the order of the rows), at the cost of the fronts.

    This is the accurate choice for random features, whose nearly dependent columns
    (cond(M) ~ 1e8 and more) lose half the digits in `SparseNormal`'s normal
    equations. On the `oscillator-solvers` problem (20 subdomains x 12 tanh
    features, 720 points) it reaches rel_l2 8.9e-9 where `SparseNormal()` reaches
    7.3e-6 (dense QR: 8.5e-8, dense SVD: 1.0e-8); on 16^2 subdomains x 40 tanh
    features of `laplace-multiscale` (10,240 unknowns, 200^2 points) 5.6e-4 against
    1.1e-3, and on 16^2 x 80 2.4e-7 against 9.6e-6; in 3D on 3^3 x 200, 7.2e-8
    against 7.3e-7 (`python benchmarks/sparse_qr.py`). It takes 1.5 to 2.5 times
    `SparseNormal`'s time since that solver's multifrontal Cholesky (2026-12-05;
    before, with SuperLU, about the same time): 1.19 s against 0.74 s, 7.0 s against
    2.8 s and 6.2 s against 4.0 s on those three (warm, 2 cores), and the same answer
    on polynomial bases (16^2 x Legendre degree 8: 1.60 s against 0.86 s), where
    `pd.Auto()` keeps `SparseNormal`. It needs less memory: 96^2 x 12 tanh features
    (110,592 unknowns) 13.3 s and a 1.28 GB process against 9.3 s and 1.57 GB, cold,
    the same rel_l2 (SparseNormal with SuperLU: 17.9 s and 3.0 GB); on 7 levels of 6
    tanh features the two solves take 13.5 s and 13.7 s.

    `damp` adds the rows `damp * I` to the column-scaled system (as LSQR's `damp`:
    the problem solved is `min ||M D y - b||^2 + damp^2 ||y||^2`, `a = D y`, `D` the
    unit column scaling), which keeps every front's triangular block invertible
    (a subdomain with no rows, or with exactly dependent features, gets zero
    coefficients in those directions). The default `1e-12` is far below the
    singular values that carry the solution; it must be positive. On an exactly
    rank-deficient system (levels of polynomials repeat the global polynomials) the
    coefficients are not the minimum-norm ones: `damp` bounds the null directions,
    but they take large values that cancel at the points.

    Memory: the factor `R` (each subdomain's block row over the subdomains its front
    touches) and one front at a time. `estimate(system)` gives, from the structure
    alone and in a fraction of a second, an upper bound on that memory and the
    arithmetic; before it factorises, the solver raises `MemoryError` where the bound
    exceeds `max_bytes` (default: the machine's memory, or its container's limit),
    instead of being killed for memory part way. Runs on the host (NumPy/SciPy),
    outside JIT.
    """

    damp: float = 1e-12
    max_bytes: float | None = None

    def __check_init__(self):
        d = self.damp
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not (math.isfinite(d) and d > 0):
            raise ValueError(f"SparseQR(damp=...) must be a finite number > 0, got {d!r}.")
        b = self.max_bytes
        if b is not None and (isinstance(b, bool) or not isinstance(b, (int, float)) or not b > 0):
            raise ValueError(f"SparseQR(max_bytes=...) must be None or a number > 0, got {b!r}.")

    def estimate(self, system: LinearSystem) -> dict:
        """What factorising `system` will take, from its structure alone (no
        arithmetic on its values; 0.03 s for 40,000 unknowns in 3D, 0.5 s for 64,000
        unknowns on 20^3 subdomains). A dict:

        - `fronts`, `widest` (columns of the widest front, b's included), `r_entries`
          (entries of `R`, exact: the solver's message reports the same three);
        - `peak_bytes`: an upper bound on the memory the factorisation holds at once
          (R so far, the rows passed between fronts, the front being factorised,
          counted three times for the copies SciPy's LAPACK wrappers make where
          LAPACK cannot be called in place), M's own blocks not counted. Measured
          with `tracemalloc` on 3D Poisson with tanh features (2,560 to 27,648
          unknowns) it was 1.3 to 1.7 times the real peak;
        - `flops`: the floating-point operations of a dense Householder QR of every
          front, an upper bound (the staircase skips part of it). Those cases ran at
          26 to 44 GFlop/s by this count on 2 cores, so here seconds are about
          `flops / 30e9` (`python benchmarks/sparse_qr_estimate.py`).
        """
        blocks = HostBlocks.of(system)
        j, k = system.num_subdomains, system.num_features
        return _front_sizes(elimination_plan(system, blocks.key), j, k, blocks.key.shape[1])

    def __call__(self, system: LinearSystem) -> SolverResult:
        blocks = HostBlocks.of(system)
        j, k = system.num_subdomains, system.num_features
        plan = elimination_plan(system, blocks.key)
        limit = memory_limit() if self.max_bytes is None else self.max_bytes
        if limit is not None:
            need = _front_sizes(plan, j, k, blocks.key.shape[1])
            if need["peak_bytes"] > limit:
                raise MemoryError(
                    f"SparseQR would need up to {_size(need['peak_bytes'])} (its estimate, an upper bound; "
                    f"the widest front has {need['widest']} columns, R {need['r_entries']:,} entries), more "
                    f"than {_size(limit)}. Use an iterative solver (pd.LSMR(pd.BlockFilter())), "
                    "fewer features per subdomain or fewer subdomains, or pass SparseQR(max_bytes=...) to try "
                    "anyway."
                )
        cn = column_norms(system, blocks)
        scale = np.where(cn > 0, 1.0 / np.where(cn > 0, cn, 1.0), 0.0)
        y, res2, widest, stored, count = _factor_solve(
            blocks, np.asarray(system.rhs), scale, j, k, float(self.damp), plan
        )
        coeffs = (y.ravel() * scale).reshape(j, k)
        ok = bool(np.all(np.isfinite(coeffs)))
        return SolverResult(
            coefficients=jnp.asarray(coeffs),
            residual_norm=jnp.asarray(math.sqrt(res2)),
            success=ok,
            message=(
                f"multifrontal Householder QR of M ({count} fronts over {j} subdomains, the widest over {widest} columns, "
                f"{stored} entries in R)"
            ),
            filtered=int(np.sum(cn == 0)),
        )


def _elimination_order(key: np.ndarray, j: int) -> np.ndarray:
    """Each subdomain's position in a minimum-degree order of the graph of
    subdomains that share a row (SuperLU's, on an SPD matrix with that pattern)."""
    n, p = key.shape
    valid = key < j
    incidence = sps.csr_matrix(
        (np.ones(int(valid.sum())), key[valid], np.concatenate([[0], np.cumsum(valid.sum(axis=1))])),
        shape=(n, j),
    )
    graph = (incidence.T @ incidence).tocsc()
    graph.data[:] = -1.0
    degree = np.asarray(abs(graph).sum(axis=0)).ravel()
    spd = (graph + sps.diags(degree + 2.0)).tocsc()  # diagonally dominant: no pivoting needed
    lu = spl.splu(spd, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options=dict(SymmetricMode=True))
    return np.asarray(lu.perm_c)  # original subdomain s is eliminated at position perm_c[s]


def _factor_solve(
    blocks: HostBlocks, b: np.ndarray, scale: np.ndarray, j: int, k: int, damp: float, plan=None
):
    """QR of the column-scaled system front by front, then the back substitution
    (`plan`: `_plan(blocks.key, j)`, if already made). Returns (y (J, K) in scaled
    columns, squared residual, widest front, entries of R, number of fronts)."""
    key = blocks.key  # (N, P) sorted subdomains, J = padding
    n, p, _ = blocks.values.shape
    col_scale = np.concatenate([scale.reshape(j, k), np.zeros((1, k))])
    first, rows_by_front, starts, fronts = _plan(key, j) if plan is None else plan
    repeated = bool(np.any((key[:, 1:] == key[:, :-1]) & (key[:, 1:] < j)))
    slot = np.zeros(j + 1, np.int64)
    passed: dict = {}  # rows passed on to each front (by its first subdomain): [(subdomains, rows)]
    factor: list = []  # each front's block rows of [R | Q^T b]: (subdomains, pivots, rows)
    res2 = float(np.sum(b[first == j] ** 2))  # rows that touch no subdomain stay residual
    widest = 0
    stored = 0
    for members, cols in fronts:
        m = len(members)
        rows = np.concatenate([rows_by_front[starts[s] : starts[s + 1]] for s in members])
        keys = key[rows]
        incoming = passed.pop(members[0], [])
        nc = cols.size
        width = nc * k
        widest = max(widest, width)
        slot[cols] = np.arange(nc)
        slot[j] = nc + 1  # padding blocks land past the right-hand side's column (a spare block)
        count = rows.size + sum(r.shape[0] for _, r in incoming) + m * k
        # each row's leading column (structurally: a row is zero before it); the front
        # is written with its rows sorted by it, so that the QR can skip the zeros
        # below the staircase they form
        slots = slot[keys]
        at_raw = _raw_columns(slots, k)
        at_in = [(slot[c][:, None] * k + np.arange(k)).ravel() for c, _ in incoming]
        # the damping rows, M's rows, then the passed rows (row i of a passed block
        # starts at or after its column i)
        passed_lead = [at[: r.shape[0]] for at, (_, r) in zip(at_in, incoming)]
        lead = np.concatenate([np.arange(m * k), np.min(slots, axis=1) * k] + passed_lead)
        perm = np.argsort(lead, kind="stable")
        dest = np.empty(count, np.int64)
        dest[perm] = np.arange(count)
        # Fortran order: the leading `width + 1` columns are then one contiguous block
        front = np.zeros((count, width + 2 * k), order="F")
        front[dest[: m * k], np.arange(m * k)] = damp
        top = m * k
        if rows.size:
            vals = blocks.sorted_blocks(rows, p) * col_scale[keys]
            where = dest[top : top + rows.size][:, None]
            if repeated:
                np.add.at(front, (np.broadcast_to(where, at_raw.shape), at_raw), vals.reshape(rows.size, -1))
            else:
                front[where, at_raw] = vals.reshape(rows.size, -1)
            front[where[:, 0], width] = b[rows]
            top += rows.size
        for at, (_, r) in zip(at_in, incoming):
            where = dest[top : top + r.shape[0]]
            front[where[:, None], at[None, :]] = r[:, :-1]
            front[where, width] = r[:, -1]
            top += r.shape[0]
        done = _staircase_qr(front, lead[perm], width)
        pivots = m * k
        factor.append((cols, m, np.array(front[:pivots, : width + 1])))
        stored += pivots * (width + 1)
        if nc > m and done > pivots:  # the rest of the rows go on to the next subdomain they touch
            passed.setdefault(cols[m], []).append(
                (cols[m:], np.array(front[pivots:done, pivots : width + 1]))
            )
        res2 += float(np.sum(front[done:, width] ** 2))  # rows left with b's column alone
        del front
    y = np.zeros((j, k))
    for cols, m, rs in reversed(factor):
        c = rs[:, -1] - rs[:, m * k : -1] @ y[cols[m:]].ravel()
        y[cols[:m]] = sla.solve_triangular(rs[:, : m * k], c, check_finite=False).reshape(m, k)
    return y, res2, widest + 1, stored, len(factor)


def _plan(key: np.ndarray, j: int):
    """The elimination's structure: each row's first subdomain to go, the rows sorted
    by it (`rows_by_front[starts[s]:starts[s + 1]]` are subdomain s's), and the
    fronts in elimination order (`_supernodes`)."""
    n = key.shape[0]
    pos = np.concatenate([_elimination_order(key, j), [np.iinfo(np.int64).max]])
    first = key[np.arange(n), np.argmin(pos[key], axis=1)]
    rows_by_front = np.argsort(first, kind="stable")
    starts = np.searchsorted(first[rows_by_front], np.arange(j + 1))
    order = np.argsort(pos[:j])
    return first, rows_by_front, starts, _supernodes(key, rows_by_front, starts, order, pos, j)


def _front_sizes(plan, j: int, k: int, p: int):
    """The factorisation's sizes from its structure alone, before any arithmetic: a
    dict of the number of fronts, the widest (columns, with b's), the entries of R,
    the largest front (rows x columns) and an upper bound on the bytes it holds at
    once (R so far, the rows passed on and not yet used, the front being factorised
    with LAPACK's copies of it, the row indices; M's own blocks not counted). A passed
    block is taken to have as many rows as it can (the front's rows or columns,
    whichever is fewer), so the bound holds whatever the values."""
    first, _, starts, fronts = plan
    n = first.size
    passed: dict = {}  # rows passed on to each front, by its first subdomain: [(rows, columns)]
    pending = stored = peak = 0
    widest = largest = 0
    flops = 0.0
    for members, cols in fronts:
        m, nc = len(members), cols.size
        width = nc * k
        incoming = passed.pop(members[0], [])
        raw = int(np.sum(starts[members + 1] - starts[members]))
        count = raw + sum(r for r, _ in incoming) + m * k
        front = count * (width + 2 * k)
        # the front, LAPACK's copy of its trailing columns (f2py takes no strided
        # arrays) and the copy it returns; M's rows gathered, scaled and their column
        # indices (each P x K a row)
        peak = max(peak, stored + pending + 3 * front + 4 * raw * p * k + 3 * n)
        pending -= sum(r * c for r, c in incoming)
        widest, largest = max(widest, width + 1), max(largest, front)
        pivots = m * k
        # Householder QR of the dense front, eliminating its first min(rows, width) columns
        # (the staircase skips part of it)
        r, c, e = float(count), float(width + 1), float(min(count, width))
        flops += 2.0 * e * r * c - e * e * (r + c) + 2.0 * e**3 / 3.0
        stored += pivots * (width + 1)
        done = min(count, width)
        if nc > m and done > pivots:
            rows, wide = done - pivots, width + 1 - pivots
            passed.setdefault(int(cols[m]), []).append((rows, wide))
            pending += rows * wide
    # before the fronts: the ordering's graph of subdomains (a few words an entry of
    # M's (N, P) block pattern)
    peak = max(peak, 6 * n * p)
    return {
        "fronts": len(fronts),
        "widest": widest,
        "r_entries": stored,
        "front_entries": largest,
        "peak_bytes": 8 * peak,
        "flops": flops,
    }


def _raw_columns(slots, k):
    """The front columns of raw rows' entries, (rows, P * K), from their blocks' slots
    (rows, P); padding blocks (slot `nc + 1`) land in the spare block after the
    right-hand side's column `nc * k`. (NumPy's native index type: a fancy
    assignment with 32-bit indices was 20 times slower.)"""
    return (slots[:, :, None] * k + np.arange(k)).reshape(slots.shape[0], slots.shape[1] * k)


def _staircase_qr(a, lead, width, panel=64, inplace=None):
    """Householder QR, in place, of the leading `width` columns of the F-ordered `a`,
    whose rows are sorted by `lead` (row i is zero before column lead[i]); column
    `width` (the right-hand side) is transformed with them. Column panels of `panel`
    take only the rows that reach them, so the zeros below the staircase are never
    touched (stacked triangles from earlier fronts are most of it). The first rows
    hold R (row i's diagonal at column i, at least while every column has a row
    starting at or before it); returns the number of rows of R. The rows after it
    hold the right-hand side's residual in column `width`.

    `inplace` (default: where available): LAPACK works on `a`'s own memory through
    the function pointers SciPy exports for Cython, instead of SciPy's Python
    wrappers, which copy every strided panel and trailing block in and out (the
    same factorisation; 13-23% less time in 3D, 8-16% in 2D)."""
    lapack_ = _inplace_lapack() if inplace is None or inplace else None
    if inplace and lapack_ is None:
        raise RuntimeError("in-place LAPACK (scipy.linalg.cython_lapack) is not available")
    if lapack_ is not None and a.flags.f_contiguous and a.dtype == np.float64:
        qr_panel = _inplace_panels(a, width, panel, *lapack_)
    else:
        qr_panel = functools.partial(_copied_panel, a, width, panel)
    m = a.shape[0]
    top = 0
    for c0 in range(0, width, panel):
        c1 = min(c0 + panel, width)
        end = int(np.searchsorted(lead, c1))  # the rows that start before c1
        if end <= top:
            continue
        qr_panel(top, end, c0, c1)
        top += min(c1 - c0, end - top)
        if top >= m:
            break
    return top


def _copied_panel(a, width, panel, top, end, c0, c1):
    """QR of `a[top:end, c0:c1]`, applied to the columns after it up to `width`, by
    SciPy's LAPACK wrappers (which copy the strided blocks in and out)."""
    qr, tau, _, info = lapack.dgeqrf(a[top:end, c0:c1])
    if info != 0:
        raise RuntimeError(f"LAPACK dgeqrf failed (info={info}).")
    c, _, info = lapack.dormqr(
        "L", "T", qr[:, : tau.size], tau, a[top:end, c1 : width + 1], (width + 1 - c1) * panel
    )
    if info != 0:
        raise RuntimeError(f"LAPACK dormqr failed (info={info}).")
    a[top:end, c1 : width + 1] = c
    a[top:end, c0:c1] = np.triu(qr)


def _inplace_panels(a, width, panel, geqrf, ormqr):
    """`_copied_panel` with LAPACK called on `a`'s own memory (leading dimension: its
    rows), its work space made once; the Householder vectors left below the panel's
    diagonal are zeroed."""
    m = a.shape[0]
    ref = ctypes.byref
    lda = ctypes.c_int(m)
    base = a.ctypes.data
    tau = np.empty(panel)
    # dormqr's blocked form wants (columns x block) + a 65 x 64 triangular factor
    work = np.empty(max(panel * panel, (width + 1) * panel + 65 * 64))
    lwork, info = ctypes.c_int(work.size), ctypes.c_int(0)

    def qr_panel(top, end, c0, c1):
        rows, cols = ctypes.c_int(end - top), ctypes.c_int(c1 - c0)
        at = base + 8 * (top + c0 * m)  # a[top, c0]
        geqrf(ref(rows), ref(cols), at, ref(lda), tau.ctypes.data, work.ctypes.data, ref(lwork), ref(info))
        if info.value != 0:
            raise RuntimeError(f"LAPACK dgeqrf failed (info={info.value}).")
        reflectors, rest = ctypes.c_int(min(end - top, c1 - c0)), ctypes.c_int(width + 1 - c1)
        ormqr(
            b"L", b"T", ref(rows), ref(rest), ref(reflectors), at, ref(lda), tau.ctypes.data,
            base + 8 * (top + c1 * m), ref(lda), work.ctypes.data, ref(lwork), ref(info),
        )  # fmt: skip
        if info.value != 0:
            raise RuntimeError(f"LAPACK dormqr failed (info={info.value}).")
        for q in range(min(c1 - c0, end - top - 1)):
            a[top + q + 1 : end, c0 + q] = 0.0

    return qr_panel


def _inplace_lapack():
    """LAPACK's dgeqrf and dormqr as ctypes functions; None where they cannot be loaded."""
    return _cython_functions(
        ("lapack", "dgeqrf", "i i p i p p i i"), ("lapack", "dormqr", "c c i i i p i p p i p i i")
    )


_CTYPES = {
    "c": ctypes.c_char_p,
    "i": ctypes.POINTER(ctypes.c_int),
    "d": ctypes.POINTER(ctypes.c_double),
    "p": ctypes.c_void_p,
}


@functools.cache
def _cython_functions(*specs):
    """BLAS/LAPACK routines as ctypes functions, from the capsules that
    `scipy.linalg.cython_blas` and `cython_lapack` export for Cython, so that they
    work on an array's own memory: `specs` are (`"blas"` or `"lapack"`, name,
    argument letters: c char*, i int*, d double*, p any pointer). None where that
    fails (an unusual SciPy build), for the callers to take another way."""
    try:
        from scipy.linalg import cython_blas, cython_lapack

        api = ctypes.pythonapi
        api.PyCapsule_GetName.restype = ctypes.c_char_p
        api.PyCapsule_GetName.argtypes = [ctypes.py_object]
        api.PyCapsule_GetPointer.restype = ctypes.c_void_p
        api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
        out = []
        for library, name, letters in specs:
            capsule = (cython_blas if library == "blas" else cython_lapack).__pyx_capi__[name]
            pointer = api.PyCapsule_GetPointer(capsule, api.PyCapsule_GetName(capsule))
            out.append(ctypes.CFUNCTYPE(None, *(_CTYPES[x] for x in letters.split()))(pointer))
        return tuple(out)
    except Exception:
        return None


def _supernodes(key, rows_by_front, starts, order, pos, j):
    """The fronts, in elimination order: (members, subdomains touched), the members
    first. A subdomain joins its only child's front when its own rows touch no
    subdomain that the child's front does not (a chain of the elimination tree with
    one column structure): QR on the triangular rows passed up such a chain would
    redo, at full dense cost, work that one front does once."""
    struct: dict = {}
    children = np.zeros(j, np.int64)
    own_cols: list = [None] * j
    for s in order:
        rows = rows_by_front[starts[s] : starts[s + 1]]
        touched = [key[rows].ravel()] + struct.pop(s, [])
        cols = np.unique(np.concatenate(touched))  # (a subdomain without rows: empty, below)
        cols = cols[cols < j]
        if cols.size == 0:
            cols = np.array([s])
        cols = cols[np.argsort(pos[cols])]  # s first: every row here starts at s
        own_cols[s] = cols
        if cols.size > 1:
            struct.setdefault(cols[1], []).append(cols[1:])
            children[cols[1]] += 1
    fronts = []
    for s in order:
        cols = own_cols[s]
        if fronts and children[s] == 1:
            members, prev = fronts[-1]
            m = len(members)
            if prev.size > m and prev[m] == s and cols.size == prev.size - m:
                members.append(s)
                continue
        fronts.append(([s], cols))
    return [(np.array(members), cols) for members, cols in fronts]
