"""Benchmark `wave-2p1d-large`: the `wave-2p1d` problem (u_tt = u_xx + u_yy on
[-1, 1]^2 x [0, 0.5], Gaussian pulse of width 0.2, u = 0 on the walls) on larger
decompositions than `wave-2p1d`, solved matrix-free: CG on the normal equations with
boxes of 2^3 subdomains (`BoxSchwarz`), the same under a coarse level (`TwoLevel`,
what `pd.solve` picks by default here) and LSMR with the block-filter right
preconditioner (the method of this benchmark before 2026-12-05).

Each pdedsl configuration runs in its own process, so that its peak memory (maximum
resident set size of the whole process) is its own; its time is cold (one solve,
JIT compilation and the preconditioner build included). The reference is the same
order-4 finite-difference solve on 101 x 101 x 26 nodes as in `wave-2p1d`, and a
sweep of finite-difference solves timed in the same run shows what a classical
method needs for the same accuracy.

    python benchmarks/wave_2p1d_large.py [--json PATH] [--quick]
"""

import json
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402
import wave_2p1d as wave  # noqa: E402

import pdedsl as pd  # noqa: E402

NAME = "wave-2p1d-large"
REF_N = 101


def reference(n=REF_N):
    problem, domain = wave.setup()
    t0 = time.perf_counter()
    ref = pd.finite_differences(problem, wave.fd_shape(n), order=4)
    wall = time.perf_counter() - t0
    test = ref.nodes(max_points=70_000)
    return problem, domain, ref, test, np.asarray(ref(test)), wall


def one(sub, degree, pts, rtol, max_steps, ref_n, solver_name="cg-box"):
    problem, domain, _, test, uref, _ = reference(ref_n)
    model = pd.FBPINN(pd.Grid(domain, sub, 2.0), pd.Polynomial(degree))
    label, solver = common.iterative(solver_name, rtol, max_steps)
    t0 = time.perf_counter()
    sol = pd.solve(problem, model, points=pts, solver=solver, throw=False)
    wall = time.perf_counter() - t0
    rec = common.record(
        NAME,
        f"pdedsl {label} [{'x'.join(map(str, sub))} = {int(np.prod(sub))} subdomains, "
        f"Legendre deg {degree}, {'x'.join(map(str, pts))} pts]",
        **common.errors(np.asarray(sol(test)), uref),
        wall_s=wall,
        assemble_s=sol.info["assemble_s"],
        solve_s=sol.info["solve_s"],
        iterations=sol.info["iterations"],
        unknowns=sol.info["unknowns"],
        points=sol.info["points"],
    )
    rec["note"] = "cold (includes JIT compilation and the preconditioner build)" + (
        "" if sol.info["success"] else f"; did not meet its tolerance ({sol.info['solver_message']})"
    )
    return rec


def isolated(*args) -> dict:
    """Run `one(...)` in a fresh process; return its record."""
    return common.isolated(__file__, [json.dumps(args)])


def run(quick=False):
    ref_n = 41 if quick else REF_N
    problem, domain, ref, test, uref, ref_wall = reference(ref_n)
    records = [
        common.record(
            NAME,
            f"reference: finite differences order 4, {'x'.join(map(str, wave.fd_shape(ref_n)))}",
            wall_s=ref_wall,
            unknowns=ref.info["unknowns"],
            points=ref.info["unknowns"],
        )
    ]
    if quick:
        configs = [((4, 4, 2), 3, (24, 24, 8), 1e-8, 5000, ref_n, "cg-box")]
    else:
        # Degree 4 on more subdomains converges faster than degree 5 on fewer: an
        # earlier run gave 8x8x3, degree 5: 2.16e-3 after 1,960 LSMR iterations (510 s).
        # LSMR(BlockFilter) on 16x16x6 (measured 2026-12-05, `--one` in its own
        # process): 1.32e-4 after 1,091 iterations, 164 s, against 60 s for the boxes
        # (631 s on 2026-11-27, before the faster products). The coarse level of
        # TwoLevel (pd.solve's default above 12,000 unknowns in 3D) takes fewer
        # iterations than boxes alone but costs a little more than it saves on this
        # hyperbolic problem (2026-12-05 run, 16x16x6: 158 iterations, 66 s against
        # 261, 60 s; 78 s in the balancing form, before the deflated one); on
        # 3D Poisson it is needed (16^3, degree 4: BoxSchwarz alone stops at 1,000
        # iterations with rel_l2 2.8e-3, `poisson-3d-large`).
        configs = [
            ((12, 12, 4), 4, (72, 72, 24), 1e-9, 6000, ref_n, "lsmr"),
            ((12, 12, 4), 4, (72, 72, 24), 1e-8, 3000, ref_n, "cg-twolevel-box"),
            ((12, 12, 4), 4, (72, 72, 24), 1e-8, 3000, ref_n, "cg-box"),
            ((16, 16, 6), 4, (96, 96, 36), 1e-8, 3000, ref_n, "cg-twolevel-box"),
            ((16, 16, 6), 4, (96, 96, 36), 1e-8, 3000, ref_n, "cg-box"),
            ((20, 20, 8), 4, (120, 120, 48), 1e-8, 3000, ref_n, "cg-box"),
        ]
    for c in configs:
        records.append(isolated(*c))
    sweep = [(4, 21), (4, 33)] if quick else [(4, 21), (4, 25), (4, 33), (4, 41), (4, 51), (4, 65)]
    for order, n in sweep:
        wall, sol = wave.fd_timed(problem, n, order)
        rec = wave.fd_record(
            f"finite differences order {order}, {'x'.join(map(str, wave.fd_shape(n)))}", wall, sol, test, uref
        )
        rec["problem"] = NAME
        records.append(rec)
    best = min((r for r in records if r["method"].startswith("pdedsl")), key=lambda r: r["rel_l2"])
    cheaper = [r for r in records if r["method"].startswith("finite") and r["rel_l2"] <= best["rel_l2"]]
    if cheaper:
        fd = min(cheaper, key=lambda r: r["wall_s"])
        print(
            f"best pdedsl: rel_l2 {best['rel_l2']:.2e} in {best['wall_s']:.1f} s; the fastest finite-"
            f"difference solve at least as accurate: {fd['method']}, rel_l2 {fd['rel_l2']:.2e} in "
            f"{fd['wall_s']:.2f} s"
        )
    return records


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        sub, degree, pts, rtol, steps, ref_n, name = json.loads(sys.argv[2])
        print(json.dumps(one(tuple(sub), degree, tuple(pts), rtol, steps, ref_n, name)))
    else:
        common.main(NAME, run, __doc__)
