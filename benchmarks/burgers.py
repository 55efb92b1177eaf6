"""Benchmark `burgers`: u_t + u u_x = nu u_xx, nu = 0.01/pi, x in [-1, 1], t in [0, 1],
u(x, 0) = -sin(pi x), u(+-1, t) = 0, against the Cole-Hopf reference computed here
by Gauss-Hermite quadrature (its own convergence is printed: 150 vs 250 nodes).

pdedsl solves the space-time problem globally by Gauss-Newton (sparse normal
equations for each step), on a uniform grid and on grids graded towards the
front at x = 0 (sinh map, `stretch`); and time-marched (`pd.TimeMarching(t,
active=3)`: one Gauss-Newton solve per stage on 3 of the 10 slabs in t, earlier
slabs frozen inside the nonlinearity), on the graded grids.

    python benchmarks/burgers.py [--json PATH] [--quick]
"""

import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

import pdedsl as pd  # noqa: E402
from pdedsl.demos import burgers, burgers_reference  # noqa: E402


def run(quick=False, only_marched=False):
    if only_marched:
        configs = []
    elif quick:
        configs = [((10, 5), 4, (80, 40), 4.0)]
    else:
        configs = [
            ((40, 10), 6, (400, 100), 0.0),
            ((30, 10), 5, (300, 100), 4.0),
            ((40, 10), 6, (400, 100), 4.0),
        ]
    test = pd.Box([pd.Symbol("x"), pd.Symbol("t")], [-1, 0], [1, 1]).sample((201, 101), "grid")
    t0 = time.perf_counter()
    ref = burgers_reference(test[:, 0], test[:, 1], nodes=150)
    ref_s = time.perf_counter() - t0
    check = np.max(np.abs(ref - burgers_reference(test[:, 0], test[:, 1], nodes=250)))
    print(
        f"Cole-Hopf reference: {test.shape[0]} points in {ref_s:.2f} s; max change 150 -> 250 nodes {check:.1e}"
    )
    marched = (
        [((10, 5), 4, (80, 40), 4.0)]
        if quick
        else [((30, 10), 5, (300, 100), 4.0), ((40, 10), 6, (400, 100), 4.0)]
    )
    records = []
    for (subdomains, degree, points, stretch), schedule in [(c, None) for c in configs] + [
        (c, "march") for c in marched
    ]:
        problem, model, points, exact = burgers(
            subdomains=subdomains, degree=degree, points=points, stretch=stretch
        )
        solver = pd.GaussNewton(linear_solver=pd.SparseNormal(), max_steps=30)
        if schedule:
            schedule = pd.TimeMarching(problem.coords[1], active=3)
        t0 = time.perf_counter()
        pd.solve(problem, model, points=points, solver=solver, schedule=schedule, throw=False)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        sol = pd.solve(problem, model, points=points, solver=solver, schedule=schedule, throw=False)
        warm = time.perf_counter() - t0
        if schedule:
            print(sol.report())
        rec = common.record(
            "burgers",
            (f"time-marched (3 of {subdomains[1]} slabs, " if schedule else "")
            + f"Gauss-Newton + SparseNormal, {subdomains[0]}x{subdomains[1]} subdomains, degree {degree}, "
            + (f"graded (stretch {stretch:g})" if stretch else "uniform")
            + (
                f"; {len(sol.info['stages'])} systems of {sol.info['stages'][0]['unknowns']} unknowns)"
                if schedule
                else ""
            ),
            **common.errors(sol(test), ref),
            wall_s=warm,
            assemble_s=sol.info["assemble_s"],
            solve_s=sol.info["solve_s"],
            compile_s=max(cold - warm, 0.0),
            iterations=sol.info["nonlinear_steps"],
            unknowns=sol.info["unknowns"],
            points=sol.info["points"],
        )
        rec["note"] = "" if sol.info["success"] else "did not converge"
        records.append(rec)
    return records


if __name__ == "__main__":
    common.main("burgers", run, __doc__)
