"""Benchmark `oscillator-solvers`: every solver on the damped oscillator (w0 = 60).

Two settings: the published one (J = 20, K = 8 tanh features, 180 points) and
ours (J = 20, K = 12, 720 points). Reference: the exact solution on 2,000 points.

    python benchmarks/oscillator_solvers.py [--json PATH]
"""

import pathlib
import sys

import numpy as np
import sympy as sp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

import pdedsl as pd  # noqa: E402
from pdedsl import D  # noqa: E402


def setup(w0=60.0, d=2.0):
    t = pd.Symbol("t")
    u = pd.Function("u")(t)
    problem = pd.Problem(
        D(u, t, 2) + 2 * d * D(u, t) + w0**2 * u == 0,
        domain=pd.Interval(t, 0, 1),
        conditions=[u.at(t=0) == 1, D(u, t).at(t=0) == 0],
    )
    w = sp.sqrt(w0**2 - d**2)
    phi = sp.atan(-d / w)
    return problem, sp.exp(-d * t) * sp.cos(phi + w * t) / sp.cos(phi)


SOLVERS = [
    ("dense SVD", pd.DenseLeastSquares()),
    ("dense QR", pd.DenseLeastSquares("qr")),
    ("sparse normal", pd.SparseNormal()),
    ("sparse QR (multifrontal)", pd.SparseQR()),
    ("LSMR + column scaling", pd.LSMR(pd.ColumnScaling())),
    ("LSMR + block-filter (RRQR-like)", pd.LSMR(pd.BlockFilter())),
    ("CG-normal + Jacobi", pd.CGNormal(pd.ColumnScaling())),
    ("CG-normal + block Jacobi", pd.CGNormal(pd.BlockFilter())),
    ("CG-normal + additive Schwarz", pd.CGNormal(pd.AdditiveSchwarz())),
]


def run(quick=False):
    problem, exact = setup()
    test = np.linspace(0, 1, 2000)[:, None]
    records = []
    settings = [("published: K=8 tanh, 180 pts", pd.RandomFeatures(8), 180)]
    if not quick:
        settings += [
            ("ours: K=12 tanh, 720 pts", pd.RandomFeatures(12), 720),
            ("ours: K=12 Legendre, 720 pts", pd.Polynomial(11), 720),
        ]
    for label, basis, points in settings:
        model = pd.FBPINN(pd.Grid(problem.domain, subdomains=20, overlap=2.9), basis)
        for name, solver in SOLVERS:
            rec = common.pdedsl_run(
                "oscillator-solvers",
                f"{name} [{label}]",
                problem,
                model,
                solver,
                points,
                exact,
                test,
                repeats=3,
            )
            records.append(rec)
    return records


if __name__ == "__main__":
    common.main("oscillator-solvers", run, __doc__)
