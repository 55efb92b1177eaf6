"""What progress reporting costs the iterative solvers, and pdedsl's LSMR/GMRES loops
against lineax's (which they replaced so that they can report and record a history).

A 2D Poisson problem (mid-size: about 1,800 unknowns, 4,000 rows) is assembled once;
each solver is then timed warm with `progress` off and on (best of `--repeats`,
alternating), in this process. Progress lines go to stderr; run with `2>/dev/null`
to time them without a terminal, as a piped run would.

    python benchmarks/progress_overhead.py [--repeats N] 2>/dev/null
"""

import argparse
import dataclasses
import functools
import time

import jax
import lineax as lx
import sympy as sp

import pdedsl as pd
from pdedsl import D
from pdedsl.assemble import assemble
from pdedsl.solve import collocation
from pdedsl.solve.iterative import LineaxSolver


def system_and_problem(subdomains=8, degree=6):
    x, y = pd.Symbol("x"), pd.Symbol("y")
    u = pd.Function("u")(x, y)
    exact = sp.sin(3 * x) * sp.cos(2 * y)
    problem = pd.Problem(
        D(u, x, 2) + D(u, y, 2) == sp.diff(exact, x, 2) + sp.diff(exact, y, 2),
        domain=pd.Box([x, y], [0, 0], [1, 1]),
        conditions=[u.on(pd.boundary) == exact],
    )
    model = pd.FBPINN(pd.Grid(problem.domain, subdomains, 2.0), pd.Polynomial(degree))
    blocks = collocation(problem, model, 2 * model.num_unknowns, "grid", None, 0)
    return assemble(model, blocks), model


def best(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = fn()
        jax.block_until_ready(r.coefficients)
        times.append(time.perf_counter() - t0)
    return min(times), r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    system, model = system_and_problem()
    print(f"system: {system.shape[0]} rows x {system.shape[1]} unknowns")
    solvers = [
        ("LSMR(ColumnScaling)", pd.LSMR(pd.ColumnScaling(), rtol=1e-10, max_steps=2000)),
        ("CGNormal(BlockFilter)", pd.CGNormal(pd.BlockFilter())),
    ]
    print(f"{'solver':<28s} {'iters':>6s} {'off s':>8s} {'on s':>8s} {'on/off':>7s}")
    for name, solver in solvers:
        on = dataclasses.replace(solver, progress=True)
        solver(system), on(system)  # compile both
        t_off, t_on = [], []
        for _ in range(args.repeats):
            t_off.append(best(functools.partial(solver, system), 1)[0])
            t_on.append(best(functools.partial(on, system), 1)[0])
        r = solver(system)
        print(
            f"{name:<28s} {int(r.iterations):>6d} {min(t_off):8.3f} {min(t_on):8.3f} {min(t_on) / min(t_off):7.3f}"
        )
    # pdedsl's LSMR against lineax's on the same right-preconditioned system
    ours = pd.LSMR(pd.ColumnScaling(), rtol=1e-10, max_steps=2000)
    theirs = LineaxSolver(lx.LSMR(rtol=1e-10, atol=0.0, max_steps=2000, conlim=1e30))
    ours(system), theirs(system)
    t_ours, t_theirs = (float("inf"), None), (float("inf"), None)
    for _ in range(args.repeats):  # alternating, best of each
        t_ours = min(t_ours, best(functools.partial(ours, system), 1), key=lambda p: p[0])
        t_theirs = min(t_theirs, best(functools.partial(theirs, system), 1), key=lambda p: p[0])
    print(
        f"LSMR per iteration: pdedsl {t_ours[0] / int(t_ours[1].iterations) * 1e3:.3f} ms "
        f"({int(t_ours[1].iterations)} it), lineax {t_theirs[0] / int(t_theirs[1].iterations) * 1e3:.3f} ms "
        f"({int(t_theirs[1].iterations)} it); ratio {t_ours[0] / int(t_ours[1].iterations) / (t_theirs[0] / int(t_theirs[1].iterations)):.3f}"
    )


if __name__ == "__main__":
    main()
