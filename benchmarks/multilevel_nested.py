"""Do exactly nested levels help the iterative solvers? `laplace-multilevel` at 4 to
6 levels with cubic B-spline windows on dyadic grids.

Level l has spacing h = 2^-l and the cubic B-splines centred at -h, 0, h, ...,
1 + h (including the two just outside the box, whose supports reach into it),
overlap 4: `pd.Multilevel(domain, levels, bspline=3)`. A coarse B-spline is then
a combination of five fine ones, so every coarse window x quadratic lies exactly
in the finest level's span: the levels form a generating system, as in Griebel's
multilevel methods, and the least-squares problem has an exact null space
instead of the near-null continuum of the cosine windows. The script runs CG on the normal equations (rtol 1e-6, at most 1,000
iterations) with block Jacobi (`BlockFilter`) and with per-level overlapping
patches (`AdditiveSchwarz`). For comparison it also runs the finest level alone
and the cosine multilevel ansatz of `laplace-multilevel` (overlap 3). Not part
of `run_all.py`; about five minutes:

    python benchmarks/multilevel_nested.py [LEVELS ...]

With `--finest LEVELS` it instead solves that problem (7: the benchmark's own)
on its finest level alone, `pd.BSpline()` windows on a plain grid with
2^(LEVELS-1) + 1 subdomains per axis and overlap 4, by `SparseNormal()` (cold,
then warm):

    python benchmarks/multilevel_nested.py --finest 7

With `--stopped LEVELS` it prints the error of CG (block Jacobi, additive
Schwarz) stopped after 25, 50 and 100 iterations and of block-Jacobi CG run to
rtol 1e-8 (at most 3,000 iterations), on the nested levels and on their finest
level alone (about ten minutes at 6 levels):

    python benchmarks/multilevel_nested.py --stopped 6

With `--frame LEVELS ...` it prints the CG iterations to rtol 1e-6 with
`pd.SplineFrame(boundary=0)`, `pd.SplineFrame()` and block Jacobi (about two
minutes for 4 to 6 levels):

    python benchmarks/multilevel_nested.py --frame 4 5 6
"""

import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import laplace_multilevel  # noqa: E402

import pdedsl as pd  # noqa: E402
from pdedsl.lower import compile_scalar  # noqa: E402


def main(levels_list):
    print("| levels | ansatz | unknowns | solver | CG iterations | rel_l2 | wall |")
    print("|---|---|---|---|---|---|---|")
    for levels in levels_list:
        problem, exact, domain = laplace_multilevel.setup(levels)
        points = 5 * 2 ** (levels - 1)
        test = domain.sample((200, 200))
        ref = np.asarray(compile_scalar(exact, problem.coords)(test))
        counts = [2**level for level in range(levels)]
        quad = pd.Polynomial(2)
        ansatz = [
            ("nested B-spline levels", pd.FBPINN(pd.Multilevel(domain, subdomains=counts, bspline=3), quad)),
            (
                "finest B-spline level alone",
                pd.FBPINN(pd.Multilevel(domain, subdomains=counts[-1:], bspline=3), quad),
            ),
            ("cosine levels (overlap 3)", pd.FBPINN(pd.Multilevel(domain, levels=levels, overlap=3.0), quad)),
        ]
        for name, model in ansatz:
            for sname, pre in [
                ("block Jacobi", pd.BlockFilter()),
                ("additive Schwarz", pd.AdditiveSchwarz()),
            ]:
                solver = pd.CGNormal(pre, rtol=1e-6, max_steps=1000)
                t0 = time.perf_counter()
                sol = pd.solve(problem, model, points=(points, points), solver=solver, throw=False)
                wall = time.perf_counter() - t0
                err = np.linalg.norm(np.asarray(sol(test)) - ref) / np.linalg.norm(ref)
                its = sol.info["iterations"] if sol.info["success"] else f"{sol.info['iterations']} (cap)"
                print(
                    f"| {levels} | {name} | {model.num_unknowns} | {sname} | {its} | {err:.2e} | {wall:.1f} s |",
                    flush=True,
                )


def finest(levels):
    problem, exact, domain = laplace_multilevel.setup(levels)
    points = 5 * 2 ** (levels - 1)
    test = domain.sample((200, 200))
    ref = np.asarray(compile_scalar(exact, problem.coords)(test))
    n = 2 ** (levels - 1) + 1
    model = pd.FBPINN(pd.Grid(domain, n, 4.0), pd.Polynomial(2), pd.BSpline())
    for run in ("cold", "warm"):
        t0 = time.perf_counter()
        sol = pd.solve(problem, model, points=(points, points), solver=pd.SparseNormal())
        wall = time.perf_counter() - t0
        err = np.linalg.norm(np.asarray(sol(test)) - ref) / np.linalg.norm(ref)
        print(
            f"{levels} levels' problem, finest level alone: {n}x{n} B-spline windows x quadratics "
            f"({model.num_unknowns} unknowns), SparseNormal, {run}: rel_l2 {err:.2e} in {wall:.1f} s",
            flush=True,
        )


def stopped(levels):
    """The error of CG stopped after 25, 50 and 100 iterations, against CG run to
    rtol 1e-8 (the least-squares solution), for the nested levels and for their
    finest level alone (the same space)."""
    problem, exact, domain = laplace_multilevel.setup(levels)
    points = 5 * 2 ** (levels - 1)
    test = domain.sample((200, 200))
    ref = np.asarray(compile_scalar(exact, problem.coords)(test))
    counts = [2**level for level in range(levels)]
    print(
        "| ansatz | preconditioner | iterations | rel_l2 | relative residual | preconditioned normal "
        "residual / initial |\n|---|---|---|---|---|---|"
    )
    for name, subdomains in [("nested B-spline levels", counts), ("finest level alone", counts[-1:])]:
        model = pd.FBPINN(pd.Multilevel(domain, subdomains=subdomains, bspline=3), pd.Polynomial(2))
        for sname, pre in [("block Jacobi", pd.BlockFilter()), ("additive Schwarz", pd.AdditiveSchwarz())]:
            for steps, rtol in [(25, 1e-8), (50, 1e-8), (100, 1e-8), (3000, 1e-8)]:
                if steps == 3000 and sname != "block Jacobi":
                    continue
                solver = pd.CGNormal(pre, rtol=rtol, max_steps=steps)
                sol = pd.solve(problem, model, points=(points, points), solver=solver, throw=False)
                err = np.linalg.norm(np.asarray(sol(test)) - ref) / np.linalg.norm(ref)
                its = sol.info["iterations"] if sol.info["success"] else f"{sol.info['iterations']} (cap)"
                print(
                    f"| {name} ({model.num_unknowns} unknowns) | {sname} | {its} | {err:.3e} | "
                    f"{sol.info['relative_residual']:.6f} | {np.nanmin(sol.info['history']):.1e} |",
                    flush=True,
                )


def frame(levels_list):
    """CG iterations to rtol 1e-6 with the spline frame (additive and the default,
    boundary B-splines exact) and with block Jacobi, by number of levels."""
    print("| levels | unknowns | SplineFrame(boundary=0) | SplineFrame() | block Jacobi |")
    print("|---|---|---|---|---|")
    for levels in levels_list:
        problem, _, domain = laplace_multilevel.setup(levels)
        points = 5 * 2 ** (levels - 1)
        model = pd.FBPINN(pd.Multilevel(domain, levels=levels, bspline=3), pd.Polynomial(2))
        row = [str(levels), f"{model.num_unknowns:,}"]
        for pre in [pd.SplineFrame(boundary=0), pd.SplineFrame(), pd.BlockFilter()]:
            solver = pd.CGNormal(pre, rtol=1e-6, max_steps=1000)
            sol = pd.solve(problem, model, points=(points, points), solver=solver, throw=False)
            row.append(str(sol.info["iterations"]) + ("" if sol.info["success"] else " (cap)"))
        print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--frame"]:
        frame([int(a) for a in sys.argv[2:]] or [4, 5, 6])
    elif sys.argv[1:2] == ["--finest"]:
        finest(int(sys.argv[2]) if len(sys.argv) > 2 else 7)
    elif sys.argv[1:2] == ["--stopped"]:
        stopped(int(sys.argv[2]) if len(sys.argv) > 2 else 6)
    else:
        main([int(a) for a in sys.argv[1:]] or [4, 5, 6])
