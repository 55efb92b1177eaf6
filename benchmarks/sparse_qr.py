"""Sparse QR of M against the sparse normal equations, where the basis decides.

`pd.SparseQR()` (a multifrontal Householder QR of the column-scaled M) against
`pd.SparseNormal()` (the column-scaled normal equations by its Cholesky, refined by
five CG steps), warm, best of 2, in the same process (2 cores):

- the damped oscillator of `oscillator-solvers` (w0 = 60, 20 subdomains x 12
  tanh features, 720 points), with the dense QR and SVD for reference;
- the `laplace-multiscale` problem with tanh random features on one level of
  subdomains: 8^2 x 60 (with the dense QR for reference), 16^2 x 40, 16^2 x 80,
  32^2 x 20 and 48^2 x 12;
- the same problem with Legendre degree 8 on 16^2 subdomains (the benchmark's own
  model), where the normal equations lose nothing and are the faster choice;
- Poisson on the unit cube (`demos.poisson_3d`) with tanh features on 3^3 x 200
  (5,400 unknowns, 26^3 points) and 8^3 x 20 (10,240, 32^3 points).

`pd.Auto()` picks `SparseQR()` for random features in 1D to 3D because of these
numbers. Not part of `run_all.py`.

`--multilevel` adds the 7-level `laplace-multilevel` ansatz with 6 tanh features
(32,766 unknowns, 320^2 points), one cold solve each by `SparseQR()` (its exact
least-squares solution) and `SparseNormal()` (about a minute together, 2-3 GB).

    python benchmarks/sparse_qr.py [--json PATH] [--quick] [--multilevel]
"""

import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402
import laplace_multiscale  # noqa: E402
import oscillator_solvers  # noqa: E402

import pdedsl as pd  # noqa: E402


def run(quick=False):
    records = []

    def one(problem_name, label, problem, model, solver, points, exact, test):
        records.append(
            common.pdedsl_run(problem_name, label, problem, model, solver, points, exact, test, repeats=2)
        )

    problem, exact = oscillator_solvers.setup()
    test = np.linspace(0, 1, 2000)[:, None]
    model = pd.FBPINN(pd.Grid(problem.domain, subdomains=20, overlap=2.9), pd.RandomFeatures(12))
    solvers = [
        ("sparse QR", pd.SparseQR()),
        ("sparse normal", pd.SparseNormal()),
        ("dense QR", pd.DenseLeastSquares("qr")),
        ("dense SVD", pd.DenseLeastSquares()),
    ]
    for name, solver in solvers:
        one(
            "oscillator",
            f"{name} [20 subdomains x 12 tanh, 720 pts]",
            problem,
            model,
            solver,
            720,
            exact,
            test,
        )

    problem, exact, domain = laplace_multiscale.setup()
    test = domain.sample((200, 200))
    cases = (
        [(8, 60, 120, True)]
        if quick
        else [
            (8, 60, 120, True),
            (16, 40, 200, False),
            (16, 80, 280, False),
            (32, 20, 240, False),
            (48, 12, 300, False),
        ]
    )
    for side, k, pts, dense in cases:
        model = pd.FBPINN(pd.Grid(domain, side, 2.0), pd.RandomFeatures(k))
        chosen = solvers[:3] if dense else solvers[:2]
        for name, solver in chosen:
            label = f"{name} [{side}^2 subdomains x {k} tanh, {pts}^2 pts]"
            one("laplace-multiscale", label, problem, model, solver, (pts, pts), exact, test)
    if not quick:
        model = pd.FBPINN(pd.Grid(domain, 16, 2.0), pd.Polynomial(8))
        for name, solver in solvers[:2]:
            label = f"{name} [16^2 subdomains x Legendre deg 8, 200^2 pts]"
            one("laplace-multiscale", label, problem, model, solver, (200, 200), exact, test)
    if not quick:
        from pdedsl import demos

        problem, _, _, exact = demos.poisson_3d()
        domain = problem.domain
        test = domain.sample((30, 30, 30))
        for side, k, pts in [(3, 200, 26), (8, 20, 32)]:
            model = pd.FBPINN(pd.Grid(domain, (side,) * 3, 2.0), pd.RandomFeatures(k))
            for name, solver in solvers[:2]:
                label = f"{name} [{side}^3 subdomains x {k} tanh, {pts}^3 pts]"
                one("poisson-3d", label, problem, model, solver, (pts,) * 3, exact, test)
    if MULTILEVEL:
        import laplace_multilevel

        problem, exact, domain = laplace_multilevel.setup(7)
        model = pd.FBPINN(
            pd.Multilevel(domain, levels=7, overlap=laplace_multilevel.OVERLAP), pd.RandomFeatures(6)
        )
        test = domain.sample((200, 200))
        for name, solver in solvers[:2]:
            label = f"{name} [7 levels x 6 tanh, 320^2 pts, cold]"
            records.append(
                common.pdedsl_run(
                    "laplace-multilevel", label, problem, model, solver, (320, 320), exact, test, repeats=0
                )
            )
    return records


MULTILEVEL = "--multilevel" in sys.argv
if MULTILEVEL:
    sys.argv.remove("--multilevel")

if __name__ == "__main__":
    common.main("sparse-qr", run, __doc__)
