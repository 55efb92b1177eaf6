"""Sparse direct least squares on the host by a multifrontal Householder QR of M itself."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import scipy.linalg as sla
import scipy.sparse as sps
import scipy.sparse.linalg as spl

from ..assemble import LinearSystem
from .base import AbstractSolver, SolverResult
from .sparse import HostBlocks, column_norms


class SparseQR(AbstractSolver):
    """Least squares by a sparse QR factorisation of the column-scaled `M` itself,
    never its normal equations, so the condition number is not squared.

    The unknowns of one subdomain form one block column. The subdomains are ordered
    by minimum degree on the graph of subdomains that share rows, and eliminated in
    that order (a multifrontal, row-merge QR): the front of subdomain `s` gathers the
    rows whose first subdomain in that order is `s`, plus the rows its earlier
    fronts passed on, as a dense matrix over the subdomains they touch; LAPACK's
    Householder QR of it (with `b` as one more column) gives `s`'s block row of `R`
    and `Q^T b`, and its remaining rows go on to the front of the next subdomain
    they touch (a chain of subdomains with one column structure shares one front,
    which spares a dense QR of each triangle passed along it: 10 s against 2.2 s on
    48^2 subdomains x 12 tanh features). A back substitution over the blocks gives
    the coefficients. The
    result is the dense QR's (it is the same factorisation, up to the order of the
    rows), at the cost of the fronts.

    This is the accurate choice for random features, whose nearly dependent columns
    (cond(M) ~ 1e8 and more) lose half the digits in `SparseNormal`'s normal
    equations. On the `oscillator-solvers` problem (20 subdomains x 12 tanh
    features, 720 points) it reaches rel_l2 8.9e-9 where `SparseNormal()` reaches
    7.3e-6 (dense QR: 8.5e-8, dense SVD: 1.0e-8); on 16^2 subdomains x 40 tanh
    features of `laplace-multiscale` (10,240 unknowns, 200^2 points) 5.6e-4 against
    1.1e-3, in 2.0 s against 1.2 s (warm, 2 cores; `python benchmarks/sparse_qr.py`),
    and on 16^2 x 80 2.4e-7 against 9.6e-6 in 13.6 s against 6.8 s. QR costs more than Cholesky:
    on polynomial bases, where the normal equations lose nothing that their
    refinement does not win back, `SparseNormal` is the faster choice.

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
    touches) and one front at a time. Runs on the host (NumPy/SciPy), outside JIT.
    """

    damp: float = 1e-12

    def __check_init__(self):
        d = self.damp
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not (math.isfinite(d) and d > 0):
            raise ValueError(f"SparseQR(damp=...) must be a finite number > 0, got {d!r}.")

    def __call__(self, system: LinearSystem) -> SolverResult:
        blocks = HostBlocks.of(system)
        j, k = system.num_subdomains, system.num_features
        cn = column_norms(system, blocks)
        scale = np.where(cn > 0, 1.0 / np.where(cn > 0, cn, 1.0), 0.0)
        y, res2, widest, stored, count = _factor_solve(
            blocks, np.asarray(system.rhs), scale, j, k, float(self.damp)
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


def _factor_solve(blocks: HostBlocks, b: np.ndarray, scale: np.ndarray, j: int, k: int, damp: float):
    """QR of the column-scaled system front by front, then the back substitution.
    Returns (y (J, K) in scaled columns, squared residual, widest front, entries of R,
    number of fronts)."""
    key = blocks.key  # (N, P) sorted subdomains, J = padding
    n, p, _ = blocks.values.shape
    col_scale = np.concatenate([scale.reshape(j, k), np.zeros((1, k))])
    pos = np.concatenate([_elimination_order(key, j), [np.iinfo(np.int64).max]])
    first = key[np.arange(n), np.argmin(pos[key], axis=1)]  # each row's first subdomain to go
    rows_by_front = np.argsort(first, kind="stable")
    starts = np.searchsorted(first[rows_by_front], np.arange(j + 1))
    order = np.argsort(pos[:j])
    fronts = _supernodes(key, rows_by_front, starts, order, pos, j)
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
        slot[j] = nc + 1  # padding blocks land past the right-hand side's column
        count = rows.size + sum(r.shape[0] for _, r in incoming) + m * k
        # Fortran order: the leading `width + 1` columns are then one contiguous block
        # that LAPACK factorises in place
        front = np.zeros((count, width + 1 + k), order="F")
        if rows.size:
            vals = blocks.sorted_blocks(rows, p) * col_scale[keys]
            at = (slot[keys][:, :, None] * k + np.arange(k)).reshape(rows.size, -1)
            at = np.where(at >= (nc + 1) * k, at - k + 1, at)  # padding: columns after b's
            where = np.arange(rows.size)[:, None]
            if repeated:
                np.add.at(front, (np.broadcast_to(where, at.shape), at), vals.reshape(rows.size, -1))
            else:
                front[where, at] = vals.reshape(rows.size, -1)
            front[: rows.size, width] = b[rows]
        top = rows.size
        for c, r in incoming:
            at = (slot[c][:, None] * k + np.arange(k)).ravel()
            front[top : top + r.shape[0], at] = r[:, :-1]
            front[top : top + r.shape[0], width] = r[:, -1]
            top += r.shape[0]
        front[top : top + m * k, : m * k] = damp * np.eye(m * k)
        r = sla.qr(front[:, : width + 1], mode="r", overwrite_a=True, check_finite=False)[0]
        del front
        pivots = m * k
        factor.append((cols, m, np.array(r[:pivots])))
        stored += pivots * (width + 1)
        if nc > m:  # the rest of the rows go on to the next subdomain they touch
            passed.setdefault(cols[m], []).append((cols[m:], np.array(r[pivots:width, pivots:])))
        res2 += float(np.sum(r[width:, width] ** 2))  # rows left with b's column alone
    y = np.zeros((j, k))
    for cols, m, rs in reversed(factor):
        c = rs[:, -1] - rs[:, m * k : -1] @ y[cols[m:]].ravel()
        y[cols[:m]] = sla.solve_triangular(rs[:, : m * k], c, check_finite=False).reshape(m, k)
    return y, res2, widest + 1, stored, len(factor)


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
