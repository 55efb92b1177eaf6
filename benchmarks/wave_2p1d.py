"""Benchmark `wave-2p1d`: u_tt = c^2 (u_xx + u_yy) on [-1, 1]^2 x [0, 0.5], c = 1,
u(x, y, 0) = exp(-(x^2 + y^2) / (2 * 0.2^2)), u_t(x, y, 0) = 0, u = 0 on the walls.

"Gaussian initial pulse of width 0.2" is read as the FBPINN library reads its source
width: a Gaussian of standard deviation 0.2 centred at the origin (its value on the
walls, exp(-12.5) = 3.7e-6, is the only mismatch with u = 0 there).

No exact solution is known. The reference is pdedsl's own finite-difference solve of
the same `pd.Problem` (order 4 in space, Radau IIA of order 5 in time) on
101 x 101 x 51 nodes; its accuracy is checked by solving again on 51 x 51 x 26 nodes:
for a fourth-order method the fine solve's error is about the difference / 15.
All errors are measured against the reference at its grid nodes (every second one).
pdedsl solves the problem as one space-time least-squares problem (ELM-FBPINN,
literature: 8^3 subdomains, K = 8, 24^3 points, 2.2e-2 in 77 s). A sweep of coarser
finite-difference solves, timed in the same run, shows what a classical method needs
for the same accuracy.

    python benchmarks/wave_2p1d.py [--json PATH] [--quick]
"""

import pathlib
import sys
import time

import numpy as np
import sympy as sp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

import pdedsl as pd  # noqa: E402
from pdedsl import D  # noqa: E402

NAME = "wave-2p1d"
SIGMA, C, T = 0.2, 1.0, 0.5


def setup():
    x, y, t = pd.Symbol("x"), pd.Symbol("y"), pd.Symbol("t")
    u = pd.Function("u")(x, y, t)
    u0 = sp.exp(-(x**2 + y**2) / (2 * SIGMA**2))
    domain = pd.Box([x, y, t], [-1, -1, 0], [1, 1, T])
    walls = [u.at(x=-1) == 0, u.at(x=1) == 0, u.at(y=-1) == 0, u.at(y=1) == 0]
    problem = pd.Problem(
        D(u, t, 2) == C**2 * (D(u, x, 2) + D(u, y, 2)),
        domain=domain,
        conditions=[u.at(t=0) == u0, D(u, t).at(t=0) == 0, *walls],
    )
    return problem, domain


def fd_shape(n):
    """n nodes per unit-free side of [-1, 1], the same spacing in t (dt = h)."""
    return (n, n, (n - 1) // 4 + 1)


def fd_timed(problem, n, order, repeats=2):
    best = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        sol = pd.finite_differences(problem, fd_shape(n), order)
        wall = time.perf_counter() - t0
        if best is None or wall < best[0]:
            best = (wall, sol)
    return best


def fd_record(label, wall, sol, test, uref):
    rec = common.record(
        NAME,
        label,
        **common.errors(sol(test), uref),
        wall_s=wall,
        assemble_s=sol.info["setup_s"],
        solve_s=sol.info["solve_s"],
        unknowns=sol.info["unknowns"],
        points=sol.info["unknowns"],
    )
    rec["note"] = f"{sol.info['time_steps']} Radau IIA steps, systems of {sol.info['system_size']}"
    return rec


def pdedsl_record(label, problem, model, solver, points, test, uref):
    t0 = time.perf_counter()
    sol = pd.solve(problem, model, points=points, solver=solver, throw=False)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    sol = pd.solve(problem, model, points=points, solver=solver, throw=False)
    warm = time.perf_counter() - t0
    rec = common.record(
        NAME,
        label,
        **common.errors(np.asarray(sol(test)), uref),
        wall_s=warm,
        assemble_s=sol.info["assemble_s"],
        solve_s=sol.info["solve_s"],
        compile_s=max(cold - warm, 0.0),
        iterations=sol.info["iterations"],
        unknowns=sol.info["unknowns"],
        points=sol.info["points"],
    )
    rec["note"] = "" if sol.info["success"] else "did not meet its tolerance"
    print(f"  {label}: rel_l2 {rec['rel_l2']:.2e}, warm {warm:.1f} s", flush=True)
    return rec


def configurations(quick):
    """(basis label, subdomains, basis, points, solver, solver label)."""
    if quick:
        return [
            ("Legendre deg 3", (4, 4, 2), pd.Polynomial(3), (24, 24, 8), pd.SparseNormal(), "sparse normal")
        ]
    deg5 = ("Legendre deg 5", (8, 8, 3), pd.Polynomial(5), (56, 56, 18))
    return [
        # the literature's setting (8^3 subdomains, K = 8 features, 24^3 points)
        ("tanh K=8", (8, 8, 8), pd.RandomFeatures(8), (24, 24, 24), pd.SparseNormal(), "sparse normal"),
        (*deg5, pd.SparseNormal(), "sparse normal"),
        (*deg5, pd.CGNormal(pd.AdditiveSchwarz(), max_steps=3000), "CG-normal + additive Schwarz"),
        # boxes of 2^3 subdomains instead of each subdomain's 3^3 neighbours: patches of
        # 448 columns, not 1,512 (whose inverses took 10 GB in the row above)
        (*deg5, pd.CGNormal(pd.BoxSchwarz(), max_steps=3000), "CG-normal + box Schwarz"),
        ("tanh K=40", (10, 10, 4), pd.RandomFeatures(40), (60, 60, 20), pd.SparseNormal(), "sparse normal"),
        ("Legendre deg 6", (8, 8, 3), pd.Polynomial(6), (60, 60, 22), pd.SparseNormal(), "sparse normal"),
    ]


def run(quick=False):
    problem, domain = setup()
    ref_n, check_n = (41, 21) if quick else (101, 51)
    t0 = time.perf_counter()
    ref = pd.finite_differences(problem, fd_shape(ref_n), order=4)
    ref_wall = time.perf_counter() - t0
    test = ref.nodes(max_points=70_000)
    uref = ref(test)
    check_wall, check = fd_timed(problem, check_n, 4, repeats=1)
    diff = common.errors(check(test), uref)["rel_l2"]
    print(
        f"reference: finite differences order 4 on {'x'.join(map(str, fd_shape(ref_n)))} nodes "
        f"({ref_wall:.1f} s); the {'x'.join(map(str, fd_shape(check_n)))} solve differs by "
        f"rel_l2 {diff:.2e}, so the reference's error is about {diff / 15:.1e}",
        flush=True,
    )
    records = []
    rec = common.record(
        NAME,
        f"reference: finite differences order 4, {'x'.join(map(str, fd_shape(ref_n)))}",
        wall_s=ref_wall,
        assemble_s=ref.info["setup_s"],
        solve_s=ref.info["solve_s"],
        unknowns=ref.info["unknowns"],
        points=ref.info["unknowns"],
    )
    rec["note"] = f"estimated error {diff / 15:.1e} (the half-resolution solve differs by {diff:.2e})"
    records.append(rec)

    for basis_name, sub, basis, pts, solver, solver_name in configurations(quick):
        model = pd.FBPINN(pd.Grid(domain, sub, 2.0), basis)
        label = (
            f"pdedsl {solver_name} [{'x'.join(map(str, sub))} subdomains, {basis_name}, "
            f"{'x'.join(map(str, pts))} pts]"
        )
        records.append(pdedsl_record(label, problem, model, solver, pts, test, uref))

    sweep = (
        [(2, 21), (4, 21)]
        if quick
        else [(2, 41), (2, 81), (2, 161), (4, 21), (4, 25), (4, 33), (4, 41), (4, 51)]
    )
    for order, n in sweep:
        wall, sol = fd_timed(problem, n, order)
        records.append(
            fd_record(
                f"finite differences order {order}, {'x'.join(map(str, fd_shape(n)))}", wall, sol, test, uref
            )
        )

    best = min((r for r in records if r["method"].startswith("pdedsl")), key=lambda r: r["rel_l2"])
    cheaper = [r for r in records if r["method"].startswith("finite") and r["rel_l2"] <= best["rel_l2"]]
    if cheaper:
        fd = min(cheaper, key=lambda r: r["wall_s"])
        print(
            f"best pdedsl: rel_l2 {best['rel_l2']:.2e} in {best['wall_s']:.1f} s warm; the fastest finite-"
            f"difference solve at least as accurate: {fd['method']}, rel_l2 {fd['rel_l2']:.2e} in "
            f"{fd['wall_s']:.2f} s, {best['wall_s'] / fd['wall_s']:.0f} times less"
        )
    return records


if __name__ == "__main__":
    common.main(NAME, run, __doc__)
