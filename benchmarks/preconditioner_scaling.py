"""Benchmark `preconditioner-scaling`: how CG's iteration count on the normal
equations grows with the number of subdomains, per preconditioner.

Laplacian(u) = f on [0, 1]^2, zero Dirichlet, u = sin(pi x) sin(pi y) e^x; a grid
of n x n subdomains (overlap 2) with Legendre polynomials of total degree 2 or 3,
(5 n + 3)^2 collocation points; CG on the normal equations to rtol 1e-8 with
block Jacobi (`BlockFilter`), `MultiplicativeSchwarz`, and `TwoLevel` (aggregates
of 2 x 2 subdomains, coarse monomials of degree 2 or 3, with either one-level
part), and LSMR with block Jacobi for reference. Warm times (best of 2).
The CG rows reach the same least-squares solution, so their rel_l2 is shared.
LSMR's stopping test is a different one (`||M^T r|| <= rtol ||M R|| ||r||`, with
`||M R||` its running estimate of the preconditioned norm, which grows with the
iterations), so at the same rtol it can stop earlier: on 64^2 subdomains of degree
3 it stopped at rel_l2 4.1e-4 where the CG rows reach 7.6e-5 (2026-12 run).

    python benchmarks/preconditioner_scaling.py [--json PATH] [--quick]
"""

import pathlib
import sys

import sympy as sp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

import pdedsl as pd  # noqa: E402
from pdedsl import D  # noqa: E402

NAME = "preconditioner-scaling"


def run(quick=False):
    x, y = pd.Symbol("x"), pd.Symbol("y")
    u = pd.Function("u")(x, y)
    exact = sp.sin(sp.pi * x) * sp.sin(sp.pi * y) * sp.exp(x)
    domain = pd.Box([x, y], [0, 0], [1, 1])
    f = sp.diff(exact, x, 2) + sp.diff(exact, y, 2)
    problem = pd.Problem(D(u, x, 2) + D(u, y, 2) == f, domain, [u.on(pd.boundary) == 0])
    test = domain.sample((100, 100))
    sides, degrees = ((4, 8), (2,)) if quick else ((8, 16, 32, 64), (2, 3))
    records = []
    for degree in degrees:
        methods = [
            ("CG + block Jacobi", pd.CGNormal(pd.BlockFilter(), rtol=1e-8, max_steps=20_000)),
            ("CG + multiplicative Schwarz", pd.CGNormal(pd.MultiplicativeSchwarz(), rtol=1e-8)),
            ("CG + two-level (block Jacobi)", pd.CGNormal(pd.TwoLevel(degree=degree), rtol=1e-8)),
            (
                "CG + two-level (multiplicative Schwarz)",
                pd.CGNormal(pd.TwoLevel(degree=degree, local=pd.MultiplicativeSchwarz()), rtol=1e-8),
            ),
            ("LSMR + block Jacobi", pd.LSMR(pd.BlockFilter(), rtol=1e-8, max_steps=20_000)),
        ]
        for side in sides:
            model = pd.FBPINN(pd.Grid(domain, (side, side), 2.0), pd.Polynomial(degree))
            n = 5 * side + 3
            for name, solver in methods:
                label = f"{name} [{side}^2 subdomains, degree {degree}]"
                records.append(
                    common.pdedsl_run(NAME, label, problem, model, solver, (n, n), exact, test, repeats=2)
                )
                r = records[-1]
                print(
                    f"  {label}: {r['iterations']} iterations, {r['wall_s']:.2f} s, rel_l2 {r['rel_l2']:.2e}"
                )
    return records


if __name__ == "__main__":
    common.main(NAME, run, __doc__)
