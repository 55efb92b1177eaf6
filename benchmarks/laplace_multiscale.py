"""Benchmark `laplace-multiscale`: Laplacian(u) = f on [0,1]^2, zero Dirichlet,
u = (1/4) sum_{w in 2,4,8,16} sin(w pi x) sin(w pi y).

pdedsl (16x16 subdomains, Legendre degree 8) with several solvers, against a
second-order finite-difference solve (5-point stencil, SciPy sparse direct) at
several resolutions, in the same process. Errors on a 200 x 200 grid.

    python benchmarks/laplace_multiscale.py [--json PATH]
"""

import pathlib
import sys
import time

import numpy as np
import scipy.sparse as sps
import scipy.sparse.linalg as spl
import sympy as sp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

import pdedsl as pd  # noqa: E402
from pdedsl import D  # noqa: E402

WS = (2, 4, 8, 16)


def exact_np(x, y):
    return sum(np.sin(w * np.pi * x) * np.sin(w * np.pi * y) for w in WS) / len(WS)


def setup():
    x, y = pd.Symbol("x"), pd.Symbol("y")
    u = pd.Function("u")(x, y)
    exact = sum(sp.sin(w * sp.pi * x) * sp.sin(w * sp.pi * y) for w in WS) / len(WS)
    f = sp.diff(exact, x, 2) + sp.diff(exact, y, 2)
    domain = pd.Box([x, y], [0, 0], [1, 1])
    problem = pd.Problem(D(u, x, 2) + D(u, y, 2) == f, domain=domain, conditions=[u.on(pd.boundary) == 0])
    return problem, exact, domain


def finite_differences(n):
    """5-point Laplacian on an n x n interior grid; returns (interior points, values)."""
    h = 1.0 / (n + 1)
    g = np.linspace(h, 1 - h, n)
    X, Y = np.meshgrid(g, g, indexing="ij")
    lap1 = sps.diags([1, -2, 1], [-1, 0, 1], shape=(n, n)) / h**2
    eye = sps.identity(n)
    A = (sps.kron(lap1, eye) + sps.kron(eye, lap1)).tocsc()
    f = sum(-2 * (w * np.pi) ** 2 * np.sin(w * np.pi * X) * np.sin(w * np.pi * Y) for w in WS) / len(WS)
    return X, Y, A, f.ravel()


def fd_run(n, repeats=3):
    best = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        X, Y, A, f = finite_differences(n)
        t1 = time.perf_counter()
        v = spl.spsolve(A, f)
        t2 = time.perf_counter()
        if best is None or t2 - t0 < best[0]:
            best = (t2 - t0, t1 - t0, t2 - t1, v)
    wall, asm, slv, v = best
    rec = common.record(
        "laplace-multiscale",
        f"finite differences {n}x{n} (SciPy spsolve)",
        **common.errors(v, exact_np(X, Y).ravel()),
        wall_s=wall,
        assemble_s=asm,
        solve_s=slv,
        unknowns=n * n,
        points=n * n,
    )
    rec["note"] = "error at the grid nodes"
    return rec


def run(quick=False):
    problem, exact, domain = setup()
    test = domain.sample((200, 200))
    records = []
    configs = (
        [(8, 8, 120, pd.SparseNormal(), "sparse normal")]
        if quick
        else [
            (16, 8, 200, pd.SparseNormal(), "sparse normal"),
            (16, 6, 160, pd.SparseNormal(), "sparse normal"),
            (16, 8, 200, pd.CGNormal(pd.AdditiveSchwarz(), max_steps=3000), "CG-normal + additive Schwarz"),
            (16, 8, 200, pd.LSMR(pd.BlockFilter(), max_steps=3000), "LSMR + block filter"),
        ]
    )
    for j, deg, pts, solver, name in configs:
        model = pd.FBPINN(pd.Grid(domain, j, 2.0), pd.Polynomial(deg))
        label = f"pdedsl {name} [{j}x{j} subdomains, Legendre deg {deg}, {pts}^2 pts]"
        records.append(
            common.pdedsl_run("laplace-multiscale", label, problem, model, solver, (pts, pts), exact, test)
        )
    for n in [64] if quick else [128, 256, 512, 1024]:
        records.append(fd_run(n))
    return records


if __name__ == "__main__":
    common.main("laplace-multiscale", run, __doc__)
