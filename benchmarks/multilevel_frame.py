"""Study: the nested B-spline levels as a multilevel frame (a BPX-type preconditioner).

`laplace-multilevel` with nested levels (`pd.Multilevel(domain, levels, bspline=3)`
and `pd.Polynomial(2)`) is a least-squares problem over a spline space: on level l
(2^l cells per axis), cubic B-spline windows x quadratics of total degree 2 span

    S3 (x) S5  +  S4 (x) S4  +  S5 (x) S3,

where Sp is the space of C2 splines of degree p on that level's cells (checked
below by ranks). Each of the three tensor spaces has a local, stable basis (its
B-splines with knots of multiplicity p - 2). The union of these B-splines over all
levels is a generating system in the sense of Griebel: CG on the normal equations
of the collocation matrix in these functions, with Jacobi scaling, is the additive
multilevel (BPX) preconditioner. Its iteration count should then barely grow with
the number of levels, where every one-level preconditioner's grows.

This script measures that in SciPy, outside the library (the frame is not a
preconditioner in pdedsl yet): the collocation matrix is assembled directly in the
B-spline functions (interior points on a cell-centred grid of 5 x 2^(L-1) per axis,
the Laplacian; the same number of points on each edge, u = 0), rows scaled to unit
norm as pdedsl does, columns scaled to unit norm (Jacobi), CG on the normal
equations (CGLS) to a normal residual of 1e-6 of its start, at most 3,000
iterations. Rows:

- "K=6": the three tensor spaces above on every level (the span of the issue's
  windows x quadratics), and on the finest level alone;
- "K=9": tensor quadratics instead (one space per level, S5 (x) S5);
- "K=9, u = 0 built in": the B-splines that do not vanish on the boundary dropped
  and no boundary rows, to separate the effect of the boundary penalty.

    python benchmarks/multilevel_frame.py [LEVELS ...]   (default 4 5 6 7; ~2 min)
"""

import sys
import time

import numpy as np
import scipy.sparse as sps
from scipy.interpolate import BSpline


def bsplines(cells: int, degree: int, x, derivative: int = 0) -> sps.csr_matrix:
    """The clamped C2 B-splines of `degree` on `cells` equal cells of [0, 1] at x."""
    inner = np.repeat(np.arange(1, cells) / cells, degree - 2)
    knots = np.concatenate([np.zeros(degree + 1), inner, np.ones(degree + 1)])
    count = len(knots) - degree - 1
    out = np.stack([BSpline(knots, np.eye(count)[m], degree)(x, derivative) for m in range(count)], axis=1)
    out[np.abs(out) < 1e-14] = 0.0
    return sps.csr_matrix(out)


def exact(levels):
    ws = [2.0**i for i in range(1, levels)]

    def u(x, y):
        return sum(np.sin(w * np.pi * x) * np.sin(w * np.pi * y) for w in ws) / len(ws)

    def f(x, y):
        return sum(-2 * (w * np.pi) ** 2 * np.sin(w * np.pi * x) * np.sin(w * np.pi * y) for w in ws) / len(
            ws
        )

    return u, f


def columns(cells, dx, dy, xs, xb, dirichlet):
    """Collocation rows (interior Laplacian, then the four edges) for the tensor
    B-splines of degrees (dx, dy) on `cells` cells per axis."""
    bx, by = (bsplines(cells, d, xs) for d in (dx, dy))
    bx2, by2 = (bsplines(cells, d, xs, 2) for d in (dx, dy))
    interior = sps.kron(bx2, by) + sps.kron(bx, by2)
    if dirichlet:  # only the first and last B-spline of each axis are non-zero on the edges
        mx, my = bx.shape[1], by.shape[1]
        keep = (np.arange(1, mx - 1)[:, None] * my + np.arange(1, my - 1)[None, :]).ravel()
        return interior.tocsc()[:, keep]
    ends = [np.array([0.0]), np.array([1.0])]
    edges = [sps.kron(bsplines(cells, dx, e), bsplines(cells, dy, xb)) for e in ends]
    edges += [sps.kron(bsplines(cells, dx, xb), bsplines(cells, dy, e)) for e in ends]
    return sps.vstack([interior, *edges]).tocsc()


def system(levels, spaces, which, dirichlet=False):
    points = 5 * 2 ** (levels - 1)
    xs = (np.arange(points) + 0.5) / points
    xb = np.linspace(0.0, 1.0, points)
    use = range(levels) if which == "all levels" else [levels - 1]
    a = sps.hstack([columns(2**lv, dx, dy, xs, xb, dirichlet) for lv in use for dx, dy in spaces]).tocsr()
    _, f = exact(levels)
    gx, gy = np.meshgrid(xs, xs, indexing="ij")
    b = np.concatenate([f(gx, gy).ravel(), np.zeros(a.shape[0] - points**2)])
    rows = np.sqrt(np.asarray(a.multiply(a).sum(axis=1)).ravel())
    a = sps.diags(1 / rows) @ a
    cols = np.sqrt(np.asarray(a.multiply(a).sum(axis=0)).ravel())
    return (a @ sps.diags(1 / cols)).tocsr(), b / rows


def cgls(a, b, rtol=1e-6, max_steps=3000):
    x, r = np.zeros(a.shape[1]), b.copy()
    s = a.T @ r
    p, gamma = s.copy(), s @ s
    start = gamma
    for it in range(1, max_steps + 1):
        q = a @ p
        alpha = gamma / (q @ q)
        x += alpha * p
        r -= alpha * q
        s = a.T @ r
        new = s @ s
        if new <= rtol**2 * start:
            return it
        p = s + (new / gamma) * p
        gamma = new
    return f"{max_steps} (cap)"


def span_check():
    """Ranks on a fine sample: windows x quadratics, the three tensor spaces, both."""
    out = []
    for cells in (2, 4):
        h = 1.0 / cells
        x = np.linspace(0, 1, 12 * cells + 1)
        centres = (np.arange(cells + 3) - 1) * h
        s = (x[:, None] - centres[None, :]) / h
        window = np.where(
            np.abs(s) < 1,
            2 / 3 - s**2 + np.abs(s) ** 3 / 2,
            np.where(np.abs(s) < 2, (2 - np.abs(s)) ** 3 / 6, 0.0),
        )
        g = [window * (s / 2) ** c for c in range(3)]
        prod = [
            np.einsum("xi,yj->xyij", g[i], g[j]).reshape(x.size**2, -1) for i in range(3) for j in range(3)
        ]
        wq = np.hstack([prod[3 * i + j] for i in range(3) for j in range(3) if i + j <= 2])
        fr = np.hstack(
            [
                np.einsum(
                    "xi,yj->xyij", bsplines(cells, dx, x).toarray(), bsplines(cells, dy, x).toarray()
                ).reshape(x.size**2, -1)
                for dx, dy in K6
            ]
        )

        def rank(m):
            return np.linalg.matrix_rank(m, 1e-9 * np.linalg.norm(m, 2))

        out.append((cells, rank(wq), wq.shape[1], rank(fr), fr.shape[1], rank(np.hstack([wq, fr]))))
    return out


K6 = [(3, 5), (4, 4), (5, 3)]
K9 = [(5, 5)]


def main(levels_list):
    print("Span check (rank of windows x quadratics / of the three tensor spaces / of both):")
    for cells, r1, n1, r2, n2, r3 in span_check():
        print(f"  {cells} cells per axis: {r1} of {n1} / {r2} of {n2} / {r3}")
    print()
    print("| ansatz | levels | functions | CG iterations, all levels | CG iterations, finest level alone |")
    print("|---|---|---|---|---|")
    for name, spaces, dirichlet in [
        ("K=6 (S3xS5 + S4xS4 + S5xS3)", K6, False),
        ("K=9 (S5xS5)", K9, False),
        ("K=9, u = 0 built in", K9, True),
    ]:
        for levels in levels_list:
            t0 = time.perf_counter()
            a, b = system(levels, spaces, "all levels", dirichlet)
            its = cgls(a, b)
            fa, fb = system(levels, spaces, "finest", dirichlet)
            fits = cgls(fa, fb)
            print(
                f"| {name} | {levels} | {a.shape[1]:,} | {its} | {fits} |"
                f"  <!-- {time.perf_counter() - t0:.1f} s -->",
                flush=True,
            )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [4, 5, 6, 7])
