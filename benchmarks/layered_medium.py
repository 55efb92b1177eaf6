"""Benchmark `layered-medium`: -div(k grad u) = f on [0,1]^2 with k = 1 for x < 0.4
and k = K (10 or 1000) for x > 0.4, u = 0 on the boundary, and the interface
conditions of a layered medium at x = 0.4: u and the flux k du/dx continuous.

Exact solution (sympy): u = g(x) sin(pi y) with
g = sin(3 pi x) + A x on the left and sin(3 pi x) + B (1 - x) on the right, A and B
chosen so that g and k g' are continuous; f = -k Laplacian(u) on each side. The
solution has a kink at x = 0.4 (its x-derivative jumps by a factor K).

pdedsl (a grid cut at the interface, `pd.Cut`, with `u.jump(x=0.4) == 0` and
`(k*D(u, x)).jump(x=0.4) == 0`) against scikit-fem P1/P2 built from the same
pd.Problem (its mesh has nodes on the interface, where the flux condition is
natural), in the same process. Errors on a 201 x 201 grid.

    python benchmarks/layered_medium.py [--json PATH] [--quick]
"""

import pathlib
import sys

import sympy as sp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402
import references  # noqa: E402

import pdedsl as pd  # noqa: E402
from pdedsl import D  # noqa: E402

C = 0.4


def setup(contrast):
    x, y = pd.Symbol("x"), pd.Symbol("y")
    u = pd.Function("u")(x, y)
    a, b = sp.symbols("a b")
    c = sp.Rational(2, 5)
    left = sp.sin(3 * sp.pi * x) + a * x
    right = sp.sin(3 * sp.pi * x) + b * (1 - x)
    coef = sp.solve(
        [(left - right).subs(x, c), (sp.diff(left, x) - contrast * sp.diff(right, x)).subs(x, c)], [a, b]
    )
    left, right = (g.subs(coef) * sp.sin(sp.pi * y) for g in (left, right))
    k = sp.Piecewise((1, x < C), (contrast, True))
    exact = sp.Piecewise((left, x < C), (right, True))
    lap = lambda w: sp.diff(w, x, 2) + sp.diff(w, y, 2)  # noqa: E731
    f = sp.Piecewise((-lap(left), x < C), (-contrast * lap(right), True))
    domain = pd.Box([x, y], [0, 0], [1, 1])
    problem = pd.Problem(
        -(D(k * D(u, x), x) + D(k * D(u, y), y)) == f,
        domain=domain,
        conditions=[u.on(pd.boundary) == 0, u.jump(x=C) == 0, (k * D(u, x)).jump(x=C) == 0],
    )
    return problem, exact, domain


# (subdomains per axis, basis); points: the default 2 per unknown
PDEDSL = [(6, pd.Polynomial(6)), (10, pd.Polynomial(8)), (8, pd.RandomFeatures(40))]
FEM = {1: [6, 8], 2: [5, 7]}
QUICK_PDEDSL = [(4, pd.Polynomial(6))]
QUICK_FEM = {1: [4], 2: [3]}


def run(quick=False):
    records = []
    for contrast in (10, 1000):
        name = f"layered-medium-k{contrast}"
        problem, exact, domain = setup(contrast)
        test = domain.sample((201, 201))
        for n, basis in QUICK_PDEDSL if quick else PDEDSL:
            model = pd.FBPINN(pd.Cut(pd.Grid(domain, n, 2.0), x=C), basis)
            label = f"K={contrast}: pdedsl [{n}^2 subdomains cut at x = {C}, {basis}]"
            points = 2 * model.num_unknowns
            records.append(common.pdedsl_run(name, label, problem, model, None, points, exact, test))
        for degree, resolutions in (QUICK_FEM if quick else FEM).items():
            for r in resolutions:
                rec = references.fem_run(name, problem, r, degree, exact, test)
                rec["method"] = f"K={contrast}: {rec['method']}"
                records.append(rec)
    return records


if __name__ == "__main__":
    common.main("layered-medium", run, __doc__)
