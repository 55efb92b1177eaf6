"""3D random features past the factorisation's size limit: LSMR with block Jacobi
against `pd.SparseQR()`, the choice `pd.Auto()` makes between them.

Poisson on the unit cube (`demos.poisson_3d`), tanh random features on a grid of
subdomains (overlap 2), one cold `pd.solve` each (compilation included), rel_l2
on a 30^3 grid. `pd.LSMR(pd.BlockFilter(), max_steps=3000)` against the QR:
where few features limit the error LSMR converges and is up to 2 times faster;
from a few dozen features per subdomain it converges slowly or not at all, and
the QR is many times faster. Not part of `run_all.py`; about four minutes:

    python benchmarks/random_features_3d.py
"""

import time

import numpy as np

import pdedsl as pd
from pdedsl import demos

# (subdomains per axis, features, points per axis)
CASES = [(14, 12, 44), (6, 40, 30), (5, 80, 30)]


def main():
    problem, _, _, exact = demos.poisson_3d()
    test = problem.domain.sample((30, 30, 30))
    ref = np.asarray(pd.lower.compile_scalar(exact, problem.coords)(test)).ravel()
    print("| case (unknowns, points) | solver | rel_l2 | iterations | converged | wall |")
    print("|---|---|---|---|---|---|")
    for side, features, points in CASES:
        model = pd.FBPINN(pd.Grid(problem.domain, (side,) * 3, 2.0), pd.RandomFeatures(features))
        for name, solver in [
            ("LSMR(BlockFilter)", pd.LSMR(pd.BlockFilter(), max_steps=3000)),
            ("SparseQR", pd.SparseQR()),
        ]:
            t0 = time.perf_counter()
            sol = pd.solve(problem, model, points=(points,) * 3, solver=solver, throw=False)
            wall = time.perf_counter() - t0
            u = np.asarray(sol(test)).ravel()
            err = np.linalg.norm(u - ref) / np.linalg.norm(ref)
            its = sol.info["iterations"]
            print(
                f"| {side}^3 x {features} ({sol.info['unknowns']:,}, {points}^3) | {name} | {err:.2e} "
                f"| {'-' if its is None else its} | {sol.info['success']} | {wall:.1f} s |",
                flush=True,
            )


if __name__ == "__main__":
    main()
