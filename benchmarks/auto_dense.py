"""Where `pd.Auto()` should leave the dense SVD: `DenseLeastSquares()` against
`SparseNormal()` and `SparseQR()` on 2D Poisson problems of 700 to 3,000 unknowns,
the sizes where Auto used to pick the dense solve for every basis. The solvers run in the same
process on the same model, twice each (cold, then warm); the errors are on a
101^2 grid. Not part of `run_all.py`.

    python benchmarks/auto_dense.py                 # every case (about 3 minutes, 2 cores)
    python benchmarks/auto_dense.py poly-9x9-d7     # some of them

Cases: `poly-NxN-dP`, N^2 cosine-windowed subdomains (overlap 2.9) of Legendre
polynomials of degree P; `rf-NxN-K`, the same grid with K tanh random features.
The problem: u = sin(2 pi x) sin(pi y) + x y^2 on the unit square, Dirichlet data.
"""

import sys
import time

import sympy as sp

import pdedsl as pd
from pdedsl import D

CASES = {
    "poly-4x4-d8": (4, "poly", 8),
    "poly-6x6-d6": (6, "poly", 6),
    "poly-7x7-d5": (7, "poly", 5),
    "poly-8x8-d6": (8, "poly", 6),
    "poly-9x9-d7": (9, "poly", 7),
    "rf-3x3-150": (3, "rf", 150),
    "rf-4x4-80": (4, "rf", 80),
    "rf-6x6-40": (6, "rf", 40),
    "rf-8x8-40": (8, "rf", 40),
}


def main(names):
    x, y = pd.Symbol("x"), pd.Symbol("y")
    u = pd.Function("u")(x, y)
    exact = sp.sin(2 * sp.pi * x) * sp.sin(sp.pi * y) + x * y**2
    domain = pd.Box([x, y], [0, 0], [1, 1])
    problem = pd.Problem(
        D(u, x, 2) + D(u, y, 2) == sp.diff(exact, x, 2) + sp.diff(exact, y, 2),
        domain=domain,
        conditions=[u.on(pd.boundary) == exact],
    )
    points = domain.sample((101, 101))
    print(
        "| case | unknowns | Auto picks | dense: warm s, rel_l2 | sparse normal: warm s, rel_l2 "
        "| sparse QR: warm s, rel_l2 | time ratio dense / normal |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in names:
        n, family, size = CASES[name]
        basis = pd.Polynomial(size) if family == "poly" else pd.RandomFeatures(size)
        model = pd.FBPINN(pd.Grid(domain, n, 2.9), basis)
        row = {}
        for solver in (pd.DenseLeastSquares(), pd.SparseNormal(), pd.SparseQR()):
            for _ in range(2):  # cold, then warm
                start = time.perf_counter()
                sol = pd.solve(problem, model, solver=solver, progress=False)
                wall = time.perf_counter() - start
            row[type(solver).__name__] = (wall, sol.errors(exact, points=points)["rel_l2"])
        auto = pd.solve(problem, model, progress=False).info["solver"]
        (td, ed), (ts, es), (tq, eq) = row["DenseLeastSquares"], row["SparseNormal"], row["SparseQR"]
        print(
            f"| {name} | {model.num_unknowns:,} | {auto} | {td:.2f}, {ed:.1e} | {ts:.2f}, {es:.1e} "
            f"| {tq:.2f}, {eq:.1e} | {td / ts:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:] or list(CASES))
