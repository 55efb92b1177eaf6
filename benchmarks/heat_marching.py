"""Benchmark `heat-marching`: the (1+1)D heat equation u_t = u_xx solved globally and
time-marched, x in [0, 1], t in [0, 0.5], zero Dirichlet walls,

    u = exp(-pi^2 t) sin(pi x) + exp(-4 pi^2 t) sin(2 pi x) / 2   (exact).

Decomposition 4 (x) x 8 (t) subdomains, overlap 2, Legendre polynomials of degree 8
(45 per subdomain, 1,440 unknowns), 81 x 81 collocation points. Time marching solves
3 slabs of 4 subdomains at a time (540 unknowns per system), earlier slabs frozen.
Errors on a 100 x 100 grid; times warm (best of 3 after a cold run).

    python benchmarks/heat_marching.py [--json PATH] [--quick]
"""

import pathlib
import sys

import sympy as sp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

import pdedsl as pd  # noqa: E402
from pdedsl import D  # noqa: E402

NAME = "heat-marching"


def setup(t_end=0.5):
    x, t = pd.Symbol("x"), pd.Symbol("t")
    u = pd.Function("u")(x, t)
    exact = (
        sp.exp(-(sp.pi**2) * t) * sp.sin(sp.pi * x) + sp.exp(-4 * sp.pi**2 * t) * sp.sin(2 * sp.pi * x) / 2
    )
    domain = pd.Box([x, t], [0, 0], [1, t_end])
    problem = pd.Problem(
        D(u, t) == D(u, x, 2),
        domain=domain,
        conditions=[u.at(t=0) == exact.subs(t, 0), u.at(x=0) == 0, u.at(x=1) == 0],
    )
    return problem, exact, t


def run(quick=False):
    problem, exact, t = setup()
    test = problem.domain.sample((100, 100))
    shape, degree, points = ((3, 6), 5, (40, 40)) if quick else ((4, 8), 8, (81, 81))
    model = pd.FBPINN(pd.Grid(problem.domain, shape, 2.0), pd.Polynomial(degree))
    label = f"[{shape[0]}x{shape[1]} subdomains, Legendre deg {degree}, {points[0]}x{points[1]} pts]"
    records = [
        common.pdedsl_run(NAME, f"global solve {label}", problem, model, None, points, exact, test, repeats=3)
    ]
    for active in (3,) if quick else (3, 4):
        records.append(
            common.pdedsl_run(
                NAME,
                f"time-marched, {active} slabs active {label}",
                problem,
                model,
                None,
                points,
                exact,
                test,
                repeats=3,
                schedule=pd.TimeMarching(t, active=active),
            )
        )
    sol = pd.solve(problem, model, points=points, schedule=pd.TimeMarching(t, active=3))
    print(sol.report() + "\n")
    return records


if __name__ == "__main__":
    common.main(NAME, run, __doc__)
