"""Finite-difference stencils on a uniform axis, and local Lagrange interpolation.

A derivative of order m to accuracy p (p even) uses the centred stencil of
2*ceil(m/2) - 1 + p nodes where it fits, and near an end the m + p nodes that
stay inside the axis (off-centred, still O(h^p)). The weights are exact
rationals from sympy's Fornberg recursion, scaled by h^-m.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.sparse as sps
import sympy as sp


def centred_width(m: int, p: int) -> int:
    """Nodes of the centred stencil for D^m to accuracy p."""
    return 2 * ((m + 1) // 2) - 1 + p


def required_nodes(m: int, p: int) -> int:
    """Fewest nodes an axis needs for D^m to accuracy p (the off-centred stencil's width)."""
    return 0 if m == 0 else m + p


@functools.lru_cache(maxsize=256)
def weights(m: int, offsets: tuple[int, ...]) -> np.ndarray:
    """Weights w with sum_j w_j f(j*h) ~ h^m f^(m)(0) on the integer `offsets`."""
    w = sp.finite_diff_weights(m, [sp.Integer(o) for o in offsets], 0)[m][-1]
    return np.array([float(v) for v in w])


def stencil(k: int, n: int, m: int, p: int) -> tuple[int, ...]:
    """Node offsets used for D^m at node k of n (centred if it fits, else shifted inside)."""
    r = centred_width(m, p) // 2
    if k - r >= 0 and k + r <= n - 1:
        return tuple(range(-r, r + 1))
    w = m + p
    start = min(max(k - w // 2, 0), n - w)
    return tuple(range(start - k, start - k + w))


@functools.lru_cache(maxsize=256)
def derivative_matrix(n: int, h: float, m: int, p: int) -> sps.csr_matrix:
    """The n x n matrix of D^m to accuracy p on n uniform nodes of spacing h."""
    if m == 0:
        return sps.identity(n, format="csr")
    if n < required_nodes(m, p):
        raise ValueError(f"D^{m} to order {p} needs at least {required_nodes(m, p)} nodes, got {n}.")
    rows, cols, vals = [], [], []
    r = centred_width(m, p) // 2
    inner = np.arange(r, n - r)
    if inner.size:
        off = np.arange(-r, r + 1)
        w = weights(m, tuple(off.tolist()))
        rows.append(np.repeat(inner, off.size))
        cols.append((inner[:, None] + off[None, :]).ravel())
        vals.append(np.tile(w, inner.size))
    for k in [*range(0, min(r, n)), *range(max(n - r, r), n)]:
        off = stencil(k, n, m, p)
        rows.append(np.full(len(off), k))
        cols.append(k + np.asarray(off))
        vals.append(weights(m, off))
    mat = sps.csr_matrix(
        (np.concatenate(vals) / h**m, (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )
    mat.sum_duplicates()
    return mat


def periodic_derivative_matrix(n: int, h: float, m: int, p: int) -> sps.csr_matrix:
    """D^m to accuracy p on n uniform nodes of spacing h along a periodic axis whose
    last node repeats the first (period `(n - 1) h`): the centred stencil, wrapped
    around over the first n - 1 nodes. The last node's column is empty and its row
    repeats the first (a caller replaces it by the row u_last = u_first)."""
    if m == 0:
        return sps.identity(n, format="csr")
    r = centred_width(m, p) // 2
    if n - 1 < 2 * r + 1:
        raise ValueError(f"D^{m} to order {p} on a periodic axis needs at least {2 * r + 2} nodes, got {n}.")
    off = np.arange(-r, r + 1)
    w = weights(m, tuple(off.tolist()))
    k = np.arange(n - 1)
    rows = np.repeat(np.append(k, n - 1), off.size)
    cols = np.mod(np.append(k, 0)[:, None] + off[None, :], n - 1).ravel()
    vals = np.tile(w, n) / h**m
    mat = sps.csr_matrix((vals, (rows, cols)), shape=(n, n))
    mat.sum_duplicates()
    return mat


def lagrange(x: np.ndarray, lower: float, h: float, n: int, npts: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (N, npts) and weights (N, npts) of degree npts-1 interpolation at `x`
    from the nearest `npts` nodes `lower + i*h` (shifted inside near the ends)."""
    npts = min(npts, n)
    s = (np.asarray(x, dtype=float) - lower) / h
    start = np.clip(np.floor(s).astype(int) - (npts // 2 - 1), 0, n - npts)
    local = s - start
    idx = start[:, None] + np.arange(npts)[None, :]
    w = np.ones((s.size, npts))
    for j in range(npts):
        for k in range(npts):
            if k != j:
                w[:, j] *= (local - k) / (j - k)
    return idx, w


__all__ = ["centred_width", "derivative_matrix", "lagrange", "required_nodes", "stencil", "weights"]
