"""Benchmark `poisson-3d-large`: -Laplacian(u) = f on [0, 1]^3 with
u = sin(pi x) sin(pi y) sin(pi z) (zero on the boundary), on decompositions up to
32^3 = 32,768 subdomains (1,146,880 unknowns and 3.3 M rows at degree 4). Legendre
polynomials of total degree 3 (K = 20) or 4 (K = 35) per subdomain, overlap 2, a
grid of collocation points; matrix-free (only the (rows, 8, K) block values are
stored). Solvers: LSMR with the block-filter right preconditioner, CG on the
normal equations with block Jacobi (`BlockFilter`) or with boxes of 2^3 subdomains
(`BoxSchwarz`), optionally under a coarse level (`TwoLevel(local=BoxSchwarz())`).

Each configuration runs in its own process, so that its peak memory (maximum
resident set size, the whole process including JAX) is its own. The error is
measured against the exact solution on 40^3 points. Order-4 finite differences of the
same `pd.Problem` at about the same accuracy are timed in the same run.

    python benchmarks/poisson_3d_large.py [--json PATH] [--quick]
"""

import json
import pathlib
import sys
import time

import jax

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

import pdedsl as pd  # noqa: E402
from pdedsl import demos  # noqa: E402

NAME = "poisson-3d-large"


def setup():
    problem, _, _, exact = demos.poisson_3d()
    return problem, exact, problem.domain


def one(side: int, degree: int, n: int, rtol: float, max_steps: int, solver_name: str = "lsmr") -> dict:
    """Solve one configuration in this process and return its record."""
    problem, exact, domain = setup()
    model = pd.FBPINN(pd.Grid(domain, (side,) * 3, 2.0), pd.Polynomial(degree))
    label, solver = common.iterative(solver_name, rtol, max_steps)
    t0 = time.perf_counter()
    sol = pd.solve(problem, model, points=(n, n, n), solver=solver, throw=False)
    wall = time.perf_counter() - t0
    test = domain.sample((40, 40, 40))
    ref = pd.lower.compile_scalar(exact, problem.coords)(test)
    rec = common.record(
        NAME,
        f"pdedsl {label} [{side}^3 subdomains, Legendre deg {degree}, {n}^3 pts]",
        **common.errors(sol(test), ref),
        wall_s=wall,
        assemble_s=sol.info["assemble_s"],
        solve_s=sol.info["solve_s"],
        iterations=sol.info["iterations"],
        unknowns=sol.info["unknowns"],
        points=sol.info["points"],
    )
    rec["note"] = f"cold (includes JIT and the preconditioner build); {sol.info['solver_message']}" + (
        "" if sol.info["success"] else "; did not meet its tolerance"
    )
    dev = jax.devices()[0]
    if dev.platform != "cpu":  # an accelerator: say which, and its own memory peak
        peak = (dev.memory_stats() or {}).get("peak_bytes_in_use", 0) / 2**30
        rec["note"] += f"; on {dev.device_kind}, device memory peak {peak:.1f} GiB"
    return rec


def fd(n: int) -> dict:
    problem, exact, domain = setup()
    t0 = time.perf_counter()
    sol = pd.finite_differences(problem, (n, n, n), order=4)
    wall = time.perf_counter() - t0
    test = domain.sample((40, 40, 40))
    ref = pd.lower.compile_scalar(exact, problem.coords)(test)
    rec = common.record(
        NAME,
        f"finite differences order 4, {n}^3 nodes",
        **common.errors(sol(test), ref),
        wall_s=wall,
        unknowns=sol.info["unknowns"],
        points=sol.info["unknowns"],
    )
    rec["note"] = "cold"
    return rec


def isolated(*args) -> dict:
    """Run `one(...)` or `fd(...)` in a fresh process; return its record."""
    return common.isolated(__file__, [str(a) for a in args])


def run(quick=False):
    if quick:
        configs = [(4, 3, 17, 1e-8, 5000, "lsmr"), (4, 4, 19, 1e-8, 5000, "cg-box")]
        fds = [9, 17]
    else:
        # Measured while choosing these: at degree 4 a point grid aligned with the
        # subdomain centres fits worse (8^3: 7.8e-4 with 33^3 points, 1.9e-5 with
        # 37^3), and so do fewer points (8^3, degree 4, CG(BoxSchwarz): 2.9e-3 with
        # 31^3, 8.2e-4 with 35^3); too few rows per unknown fit worse too (16^3,
        # degree 3: 1.46e-2 with 59^3 points = 2.5 rows per unknown, 1.15e-3 with
        # 65^3 = 3.4 per unknown). Degree 3 converges only like h^2 (4.3e-3, 1.2e-3
        # at 8^3, 16^3; an earlier run at 32^3 reached 2.84e-4 after 838 LSMR
        # iterations, 1,519 s and 9.0 GB), so 1e-4 needs degree 4. CG tolerance at
        # degree 4: rtol 1e-6 is enough (16^3: rel_l2 1.30e-5 after 181 iterations,
        # 1.55e-5 after 302 to 1e-7); at 32^3 the CG residual stagnates near 2e-7
        # (seen on a GPU: 750 iterations without reaching 1e-7). The 32^3 configuration
        # on one NVIDIA H200 (this script, `--one pdedsl 32 4 147 1e-6 1000
        # cg-twolevel-box`, before the products were chunked): 239 iterations, rel_l2
        # 5.84e-5, 250 s, 23.6 GiB of GPU memory; on this machine it took 34 min
        # on 2026-11-27 and 18 min on 2026-12-03.
        configs = [
            (8, 3, 37, 1e-8, 20000, "lsmr"),
            (16, 3, 65, 1e-8, 20000, "lsmr"),
            (8, 4, 37, 1e-8, 20000, "cg-block"),
            (8, 4, 37, 1e-8, 20000, "cg-box"),
            (8, 4, 37, 1e-8, 20000, "cg-twolevel-box"),
            (16, 4, 75, 1e-6, 1000, "cg-twolevel-box"),
            (32, 4, 147, 1e-6, 1000, "cg-twolevel-box"),
        ]
        fds = [17, 25, 33]
    records = [isolated("pdedsl", *c) for c in configs]
    records += [isolated("fd", n) for n in fds]
    return records


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        kind, *rest = sys.argv[2:]
        if kind == "pdedsl":
            side, degree, n, rtol, steps, *name = rest
            rec = one(int(side), int(degree), int(n), float(rtol), int(steps), *name)
        else:
            rec = fd(int(rest[0]))
        print(json.dumps(rec))
    else:
        common.main(NAME, run, __doc__)
