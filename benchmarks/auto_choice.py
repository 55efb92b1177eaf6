"""Where `pd.Auto()` should leave the sparse factorisation: `SparseNormal()`
against the two-level CG on Poisson problems, each solve in its own process so
that the peak memory is its own (cold times, 2 cores). Not part of `run_all.py`.

    python benchmarks/auto_choice.py                # 3D, 8^3 subdomains of degree 4 (4 minutes)
    python benchmarks/auto_choice.py 2d-64-deg2 ... # the 2D cases below

- `3d-N-degP`: the `poisson-3d-large` problem, N^3 subdomains of degree P
  (`3d-8-deg4`: 17,920 unknowns, 37^3 points; round(37 N / 8) points per axis)
  against `CGNormal(TwoLevel(local=BoxSchwarz()), rtol=1e-7)`, Auto's choice in
  3D above `sparse_unknowns_3d`.
- `wave-AxBxC`: the `wave-2p1d-large` problem on A x B x C subdomains of degree 4
  (6 points per subdomain and axis, as that benchmark's), rel_l2 against its
  finite-difference reference.
- `2d-N-degP`: 2D Poisson with u = sin(pi x) sin(pi y) e^x (the
  `preconditioner-scaling` problem) on N^2 subdomains of degree P, against the
  same CG with `TwoLevel(local=MultiplicativeSchwarz())` (the 2D advice in
  docs/solving.md) and with `TwoLevel(local=BoxSchwarz())`.
- `laplace-multiscale`: that benchmark's 16^2 subdomains of degree 8 (11,520
  unknowns, 200^2 points), where the factorisation is twice as fast.
- `nested-L`: the `laplace-multilevel` problem on L nested B-spline levels
  (`pd.Multilevel(domain, L, bspline=3)`, quadratics, (5 x 2^(L-1))^2 points)
  against `CGNormal(SplineFrame(), rtol=1e-7)`.
"""

import pathlib
import resource
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

SOLVERS = {
    "sparse normal": "pd.SparseNormal()",
    "CG + two-level (box Schwarz), rtol 1e-7": "pd.CGNormal(pd.TwoLevel(local=pd.BoxSchwarz()), rtol=1e-7)",
    "CG + two-level (multiplicative Schwarz), rtol 1e-7": (
        "pd.CGNormal(pd.TwoLevel(local=pd.MultiplicativeSchwarz()), rtol=1e-7)"
    ),
    "CG + spline frame, rtol 1e-7": "pd.CGNormal(pd.SplineFrame(), rtol=1e-7)",
}


def case(name):
    import sympy as sp

    import pdedsl as pd
    from pdedsl import D

    if name.startswith("3d-"):
        import poisson_3d_large

        side, degree = (int(part.removeprefix("deg")) for part in name.removeprefix("3d-").split("-"))
        problem, exact, domain = poisson_3d_large.setup()
        n = round(37 * side / 8)  # 37^3 points on 8^3 subdomains, as poisson-3d-large's
        return problem, exact, pd.FBPINN(pd.Grid(domain, side, 2.0), pd.Polynomial(degree)), (n, n, n)
    if name.startswith("wave-"):
        import wave_2p1d_large

        sub = tuple(int(a) for a in name.removeprefix("wave-").split("x"))
        problem, domain, _, test, uref, _ = wave_2p1d_large.reference()
        model = pd.FBPINN(pd.Grid(domain, sub, 2.0), pd.Polynomial(4))
        return problem, (test, uref), model, (6 * sub[0], 6 * sub[1], 6 * sub[2])
    if name.startswith("nested-"):
        import laplace_multilevel

        levels = int(name.removeprefix("nested-"))
        problem, exact, domain = laplace_multilevel.setup(levels)
        model = pd.FBPINN(pd.Multilevel(domain, levels=levels, bspline=3), pd.Polynomial(2))
        return problem, exact, model, (5 * 2 ** (levels - 1),) * 2
    if name == "laplace-multiscale":
        import laplace_multiscale

        problem, exact, domain = laplace_multiscale.setup()
        return problem, exact, pd.FBPINN(pd.Grid(domain, 16, 2.0), pd.Polynomial(8)), (200, 200)
    side, degree = (int(part.removeprefix("deg")) for part in name.removeprefix("2d-").split("-"))
    x, y = pd.Symbol("x"), pd.Symbol("y")
    u = pd.Function("u")(x, y)
    exact = sp.sin(sp.pi * x) * sp.sin(sp.pi * y) * sp.exp(x)
    f = sp.diff(exact, x, 2) + sp.diff(exact, y, 2)
    domain = pd.Box([x, y], [0, 0], [1, 1])
    problem = pd.Problem(D(u, x, 2) + D(u, y, 2) == f, domain=domain, conditions=[u.on(pd.boundary) == 0])
    n = (degree + 3) * side + 3
    return problem, exact, pd.FBPINN(pd.Grid(domain, side, 2.0), pd.Polynomial(degree)), (n, n)


def one(name, expr):
    import jax

    jax.config.update("jax_enable_x64", True)
    import pdedsl as pd

    problem, exact, model, points = case(name)
    solver = eval(expr, {"pd": pd})
    start = time.perf_counter()
    sol = pd.solve(problem, model, points=points, solver=solver)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    if isinstance(exact, tuple):  # (test points, reference values)
        test, ref = exact
        err = float(np.linalg.norm(np.asarray(sol(test)) - ref) / np.linalg.norm(ref))
    else:
        err = sol.errors(exact, n=40_000)["rel_l2"]
    print(
        f"{model.num_unknowns} unknowns: rel_l2 {err:.2e}, "
        f"iterations {sol.info['iterations']}, wall {wall:.1f} s (cold), peak RSS {peak:.2f} GB"
    )


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "--one":
        one(sys.argv[2], sys.argv[3])
    else:
        for name in sys.argv[1:] or ["3d-8-deg4"]:
            # the spline frame needs nested B-spline levels: only the nested cases have them
            names = [label for label in SOLVERS if label != "CG + spline frame, rtol 1e-7"]
            if name.startswith("nested-"):
                names = ["sparse normal", "CG + spline frame, rtol 1e-7"]
            if name.startswith(("3d", "wave")):
                names.remove("CG + two-level (multiplicative Schwarz), rtol 1e-7")
            for label in names:
                out = subprocess.run(
                    [sys.executable, __file__, "--one", name, SOLVERS[label]], capture_output=True, text=True
                )
                result = out.stdout.strip() or f"failed: {out.stderr.strip().splitlines()[-1]}"
                print(f"{name}, {label}: {result}", flush=True)
