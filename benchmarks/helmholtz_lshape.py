"""Benchmark `helmholtz-lshape`: Laplacian(u) + k^2 u = f on the L-shaped domain
[0,1]^2 minus [0.5,1]^2, k = 1, u = sin(a x) sin(2 a y) + sin(3 a x y), a = 8 pi,
Dirichlet data u on the six edges (from the exact solution).

A very oscillatory solution (up to 8 periods across the domain in y). pdedsl
(Legendre polynomials on a grid of subdomains built on the L-shape, sparse normal
equations) against scikit-fem P1/P2 built from the same pd.Problem, in the same
process. Errors on the 200 x 200 grid of the bounding box restricted to the L-shape.
Published (ELM-FBPINN, 16x16 subdomains, K=16): 1.3e-2 in 37 s; FBPINN 2.7e-3 in 1,500 s.

    python benchmarks/helmholtz_lshape.py [--json PATH] [--quick]
"""

import pathlib
import sys

import sympy as sp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402
import references  # noqa: E402

import pdedsl as pd  # noqa: E402
from pdedsl import D  # noqa: E402

NAME = "helmholtz-lshape"


def setup(k=1.0, a=8 * sp.pi):
    x, y = pd.Symbol("x"), pd.Symbol("y")
    u = pd.Function("u")(x, y)
    exact = sp.sin(a * x) * sp.sin(2 * a * y) + sp.sin(3 * a * x * y)
    f = sp.diff(exact, x, 2) + sp.diff(exact, y, 2) + k**2 * exact
    domain = pd.Box([x, y], [0, 0], [1, 1]) - pd.Box([x, y], [0.5, 0.5], [1, 1])
    problem = pd.Problem(
        D(u, x, 2) + D(u, y, 2) + k**2 * u == f, domain=domain, conditions=[u.on(pd.boundary) == exact]
    )
    return problem, exact, domain


def run(quick=False):
    problem, exact, domain = setup()
    test = domain.sample((200, 200))
    # (subdomains per axis, Legendre degree, collocation grid per axis)
    configs = [(4, 5, 40)] if quick else [(12, 8, 150), (16, 6, 160), (16, 8, 200), (16, 10, 240)]
    records = []
    for j, deg, pts in configs:
        model = pd.FBPINN(pd.Grid(domain, j, 2.0), pd.Polynomial(deg))
        label = (
            f"pdedsl sparse normal [{j}x{j} grid on the L ({model.num_subdomains} subdomains), "
            f"Legendre deg {deg}, {pts}^2 grid pts]"
        )
        records.append(
            common.pdedsl_run(NAME, label, problem, model, pd.SparseNormal(), (pts, pts), exact, test)
        )
    fem = [(1, 5), (2, 5)] if quick else [(1, 7), (1, 8), (1, 9), (2, 6), (2, 7), (2, 8)]
    for degree, refinements in fem:
        records.append(references.fem_run(NAME, problem, refinements, degree, exact, test))
    return records


if __name__ == "__main__":
    common.main(NAME, run, __doc__)
