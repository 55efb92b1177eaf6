"""`pd.SparseNormal()`'s two factorisations of the normal equations, side by side.

`factorisation="multifrontal"` (the default: a block Cholesky on `SparseQR`'s
elimination plan, LAPACK on dense fronts) against `factorisation="superlu"`
(SciPy's SuperLU, minimum degree on A, no pivoting), each followed by the same five
CG refinement steps; warm, best of 2, in the same process (2 cores):

- `laplace-multiscale` on 16^2 subdomains of Legendre degree 6, 8 and 10 and 32^2
  of degree 6, and 16^2 x 40 and 16^2 x 80 tanh random features;
- Poisson on the unit cube (`demos.poisson_3d`) on 6^3 subdomains of degree 4,
  8^3 of degree 3, and 4^3 x 40 tanh features.

`--multilevel` adds the 7 levels of `laplace-multilevel` with quadratics (32,766
unknowns, 320^2 points), one cold solve by each (about 1.5 minutes together,
3.3 GB). Not part of `run_all.py`.

    python benchmarks/sparse_normal.py [--json PATH] [--quick] [--multilevel]
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402
import laplace_multiscale  # noqa: E402

import pdedsl as pd  # noqa: E402

FACTORISATIONS = ("multifrontal", "superlu")


def run(quick=False):
    records = []

    def both(problem_name, label, problem, model, points, exact, test, repeats=2):
        for fac in FACTORISATIONS:
            solver = pd.SparseNormal(factorisation=fac)
            records.append(
                common.pdedsl_run(
                    problem_name,
                    f"{fac} [{label}]",
                    problem,
                    model,
                    solver,
                    points,
                    exact,
                    test,
                    repeats=repeats,
                )
            )

    problem, exact, domain = laplace_multiscale.setup()
    test = domain.sample((200, 200))
    cases = (
        [(8, pd.Polynomial(6), 80)]
        if quick
        else [
            (16, pd.Polynomial(6), 160),
            (16, pd.Polynomial(8), 200),
            (16, pd.Polynomial(10), 240),
            (32, pd.Polynomial(6), 320),
            (16, pd.RandomFeatures(40), 200),
            (16, pd.RandomFeatures(80), 280),
        ]
    )
    for side, basis, pts in cases:
        model = pd.FBPINN(pd.Grid(domain, side, 2.0), basis)
        both(
            "laplace-multiscale", f"{side}^2 x {basis}, {pts}^2 pts", problem, model, (pts, pts), exact, test
        )
    if not quick:
        from pdedsl import demos

        problem, _, _, exact = demos.poisson_3d()
        test = problem.domain.sample((30, 30, 30))
        for side, basis, pts in [
            (6, pd.Polynomial(4), 30),
            (8, pd.Polynomial(3), 32),
            (4, pd.RandomFeatures(40), 20),
        ]:
            model = pd.FBPINN(pd.Grid(problem.domain, (side,) * 3, 2.0), basis)
            both("poisson-3d", f"{side}^3 x {basis}, {pts}^3 pts", problem, model, (pts,) * 3, exact, test)
    if MULTILEVEL:
        import laplace_multilevel

        problem, exact, domain = laplace_multilevel.setup(7)
        model = pd.FBPINN(
            pd.Multilevel(domain, levels=7, overlap=laplace_multilevel.OVERLAP), pd.Polynomial(2)
        )
        test = domain.sample((200, 200))
        label = "7 levels x quadratics, 320^2 pts, cold"
        both("laplace-multilevel", label, problem, model, (320, 320), exact, test, repeats=0)
    return records


MULTILEVEL = "--multilevel" in sys.argv
if MULTILEVEL:
    sys.argv.remove("--multilevel")

if __name__ == "__main__":
    common.main("sparse-normal", run, __doc__)
