"""Slivers along holes: `pd.Grid(..., trim=False)` (every subdomain that meets the
domain) against the default `trim=True` (without the subdomains that have less than
40% of their box in the domain, unless needed to cover it).

Poisson, u = sin(2x) e^y with its Dirichlet data, on three domains: the L-shape
(hole [0.5, 1]^2), an L off the grid lines (hole [0.53, 1] x [0.41, 1]) and the unit
square with the hole [0.3, 0.62] x [0.35, 0.7]; three ansatzes: 12 x 12 cosine
windows x degree 5 polynomials, 20 x 20 cubic B-spline windows (overlap 4) x
quadratics, 10 x 10 cosine windows (overlap 2.9) x 12 tanh features. Then the
singular `lshape-singular` problem (corner functions on) at 8 x 8 and 16 x 16
subdomains of degree 5, at the default points and at denser grids. All solves use
`pd.solve`'s defaults except where points are given; `corners=False` on the smooth
problem (so that only the subdomains differ). rel_l2 on a 201 x 201 grid restricted
to the domain. Not part of `run_all.py`; about two minutes:

    python benchmarks/hole_slivers.py
"""

import pathlib
import sys

import numpy as np
import sympy as sp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import lshape_singular  # noqa: E402

import pdedsl as pd  # noqa: E402
from pdedsl import D  # noqa: E402
from pdedsl.lower import compile_scalar  # noqa: E402


def rel_l2(problem, model, exact, test, **kw):
    sol = pd.solve(problem, model, throw=False, **kw)
    ref = np.asarray(compile_scalar(exact, problem.coords)(test))
    return np.linalg.norm(sol(test) - ref) / np.linalg.norm(ref)


def main():
    x, y = pd.Symbol("x"), pd.Symbol("y")
    u = pd.Function("u")(x, y)
    square = pd.Box([x, y], [0, 0], [1, 1])
    domains = {
        "L-shape": square - pd.Box([x, y], [0.5, 0.5], [1, 1]),
        "L off the grid lines": square - pd.Box([x, y], [0.53, 0.41], [1, 1]),
        "square with a hole": square - pd.Box([x, y], [0.3, 0.35], [0.62, 0.7]),
    }
    ansatzes = {
        "12 x 12 cosine x degree 5": lambda d, t: pd.FBPINN(pd.Grid(d, 12, 2.0, trim=t), pd.Polynomial(5)),
        "20 x 20 cubic B-spline x quadratics": lambda d, t: pd.FBPINN(
            pd.Grid(d, 20, 4.0, trim=t), pd.Polynomial(2), pd.BSpline()
        ),
        "10 x 10 cosine (overlap 2.9) x 12 tanh": lambda d, t: pd.FBPINN(
            pd.Grid(d, 10, 2.9, trim=t), pd.RandomFeatures(12)
        ),
    }
    smooth = sp.sin(2 * x) * sp.exp(y)
    f = -(sp.diff(smooth, x, 2) + sp.diff(smooth, y, 2))
    print("| domain | ansatz | trim=False: subdomains, rel_l2 | trim=True: subdomains, rel_l2 |")
    print("|---|---|---|---|")
    for dname, domain in domains.items():
        problem = pd.Problem(
            -D(u, x, 2) - D(u, y, 2) == f, domain=domain, conditions=[u.on(pd.boundary) == smooth]
        )
        test = domain.sample((201, 201))
        for aname, make in ansatzes.items():
            cells = []
            for trim in (False, True):
                model = make(domain, trim)
                e = rel_l2(problem, model, smooth, test, corners=False)
                cells.append(f"{model.num_subdomains}, {e:.2e}")
            print(f"| {dname} | {aname} | {cells[0]} | {cells[1]} |", flush=True)

    problem, exact, domain = lshape_singular.setup()
    test = domain.sample((201, 201))
    print()
    print("| lshape-singular, degree 5 | points | trim=False | trim=True |")
    print("|---|---|---|---|")
    for n, points in [(8, None), (8, (80, 80)), (16, None), (16, (160, 160)), (16, (200, 200))]:
        cells = []
        for trim in (False, True):
            model = pd.FBPINN(pd.Grid(domain, n, 2.0, trim=trim), pd.Polynomial(5))
            cells.append(f"{rel_l2(problem, model, exact, test, points=points):.2e}")
        where = "default" if points is None else f"{points[0]}^2 grid"
        print(f"| {n} x {n} | {where} | {cells[0]} | {cells[1]} |", flush=True)


if __name__ == "__main__":
    main()
