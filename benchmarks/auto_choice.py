"""Why `pd.Auto()` leaves the sparse factorisation for large 3D systems: on the
`poisson-3d-large` problem with 8^3 subdomains of degree 4 (17,920 unknowns, 37^3
points), `SparseNormal()` against `CGNormal(TwoLevel(local=BoxSchwarz()),
rtol=1e-7)` (Auto's choice above `sparse_unknowns_3d`), each in its own process
so that the peak memory is its own. Not part of `run_all.py`; about 4 minutes:

    python benchmarks/auto_choice.py
"""

import pathlib
import resource
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

SOLVERS = {
    "sparse normal": "pd.SparseNormal()",
    "CG + two-level (box Schwarz), rtol 1e-7": "pd.CGNormal(pd.TwoLevel(local=pd.BoxSchwarz()), rtol=1e-7)",
}


def one(expr):
    import jax

    jax.config.update("jax_enable_x64", True)
    import poisson_3d_large

    import pdedsl as pd

    problem, exact, domain = poisson_3d_large.setup()
    model = pd.FBPINN(pd.Grid(domain, 8, 2.0), pd.Polynomial(4))
    solver = eval(expr, {"pd": pd})
    start = time.perf_counter()
    sol = pd.solve(problem, model, points=(37, 37, 37), solver=solver)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(
        f"rel_l2 {sol.errors(exact, n=40**3)['rel_l2']:.2e}, iterations {sol.info['iterations']}, "
        f"wall {wall:.1f} s (cold), peak RSS {peak:.2f} GB"
    )


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        one(sys.argv[2])
    else:
        for name, expr in SOLVERS.items():
            out = subprocess.run(
                [sys.executable, __file__, "--one", expr], capture_output=True, text=True, check=True
            )
            print(f"{name}: {out.stdout.strip()}", flush=True)
