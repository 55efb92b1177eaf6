"""How `pd.solve` lays out a count of collocation points: shaped like the model's
subdomain grid (the default, `pdedsl.solve.solve.default_layout`) against shaped
like the domain (the default before), and without the per-axis floors (the default
before 2026-12-04; the second floor, 1.25 points per basis function along each axis
per subdomain spacing, since 2026-12-05), 2 points per unknown, `pd.SparseNormal()`.
Prints the table of docs/solving.md ("Collocation points"). Not part of
`run_all.py`; about a minute on 2 cores.

    python benchmarks/default_points.py
"""

import sympy as sp

import pdedsl as pd
from pdedsl import D, demos
from pdedsl.solve.solve import default_layout

x, y, t = pd.Symbol("x"), pd.Symbol("y"), pd.Symbol("t")
u = pd.Function("u")(x, y)
ex = sp.sin(2 * x) * sp.cos(3 * y) + sp.exp(x * y / 2)
dom = pd.Box([x, y], [0, 0], [2, 1])
poisson = pd.Problem(
    D(u, x, 2) + D(u, y, 2) == sp.diff(ex, x, 2) + sp.diff(ex, y, 2),
    domain=dom,
    conditions=[u.on(pd.boundary) == ex],
)
w = pd.Function("w")(x, t)
trav = sp.exp(-t / 20) * sp.sin(x - t)
adv = pd.Problem(
    D(w, t) + D(w, x) - D(w, x, 2) / 20 == 0,
    domain=pd.Box([x, t], [0, 0], [2 * sp.pi, 1]),
    conditions=[w.at(t=0) == sp.sin(x), w.at(x=0) == w.at(x=2 * sp.pi)],
)
v = pd.Function("v")(x, y, t)
heat_exact = sp.sin(2 * x) * sp.exp(y - t)
heat = pd.Problem(
    D(v, t) - D(v, x, 2) - D(v, y, 2) == 2 * heat_exact,
    domain=pd.Box([x, y, t], [0, 0, 0], [1, 1, 0.5]),
    conditions=[v.at(t=0) == heat_exact.subs(t, 0)]
    + [v.at(**{str(c): e}) == heat_exact for c in (x, y) for e in (0, 1)],
)
cube, _, _, cube_exact = demos.poisson_3d()
print(
    "| model | shaped like the domain | like the subdomains, no floor | like the subdomains with the per-axis floor (now) |"
)
print("|---|---|---|---|")
for name, prob, exact, shape, deg, periodic, overlap in [
    ("Poisson", poisson, ex, (4, 4), 6, [], 2.9),
    ("Poisson", poisson, ex, (8, 2), 6, [], 2.9),
    ("Poisson", poisson, ex, (6, 6), 4, [], 2.9),
    ("advection", adv, trav, (10, 4), 6, [x], 2.9),
    ("advection", adv, trav, (8, 3), 6, [x], 2.9),
    ("advection", adv, trav, (12, 6), 7, [x], 2.9),
    ("heat in space-time", heat, heat_exact, (8, 8, 2), 5, [], 2.0),
    ("Poisson in 3D", cube, cube_exact, (4, 4, 4), 6, [], 2.9),
]:
    model = pd.FBPINN(pd.Grid(prob.domain, shape, overlap, periodic=periodic), pd.Polynomial(deg))
    n = 2 * model.num_unknowns
    row = []
    layouts = (
        prob.domain.grid_shape(n),
        default_layout(prob, model, n, floor=False),
        default_layout(prob, model, n),
    )
    for pts in layouts:
        sol = pd.solve(prob, model, solver=pd.SparseNormal(), points=pts)
        row.append(f"{' x '.join(map(str, pts))}: {sol.errors(exact)['rel_l2']:.1e}")
    print(f"| {name}, {' x '.join(map(str, shape))}, degree {deg} | {' | '.join(row)} |", flush=True)
