"""Benchmark `poisson-fem`: -Laplacian(u) = f in 1D, 2D and 3D, the problems of the
"can physics-informed networks beat finite elements?" study, with Dirichlet data
from the exact solution:

- 1D: u = x exp(-x^2) on [-2, 2] (u(-2) = -2 e^-4, u(2) = 2 e^-4);
- 2D: u = x^2 (x-1)^2 y (y-1)^2 on [0,1]^2 (zero on the boundary);
- 3D: u = sin(pi x) sin(pi y) sin(pi z) on [0,1]^3 (zero on the boundary).

pdedsl against scikit-fem P1/P2 (and finite differences where this pdedsl has
`pd.finite_differences`) built from the same pd.Problem, in the same process.
Errors on a grid of 2,000 (1D), 200^2 (2D) or 40^3 (3D) points. The 2D case is also
swept over resolutions in benchmarks/time_to_accuracy.py.

Note: in 2D the exact solution is a polynomial of degree 7, so a Legendre basis of
degree >= 7 on a single subdomain represents it exactly; the runs below use
several subdomains and degree 6, which do not.

    python benchmarks/poisson_fem.py [--json PATH] [--quick]
"""

import pathlib
import sys

import sympy as sp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402
import references  # noqa: E402

import pdedsl as pd  # noqa: E402
from pdedsl import D  # noqa: E402

x, y, z = pd.Symbol("x"), pd.Symbol("y"), pd.Symbol("z")


def setup(dim: int):
    """(problem, exact, domain, test points) of the `dim`-dimensional case."""
    coords = (x, y, z)[:dim]
    u = pd.Function("u")(*coords)
    if dim == 1:
        exact = x * sp.exp(-(x**2))
        domain = pd.Interval(x, -2, 2)
        conditions = [u.at(x=-2) == exact.subs(x, -2), u.at(x=2) == exact.subs(x, 2)]
        test = domain.sample(2000)
    elif dim == 2:
        exact = x**2 * (x - 1) ** 2 * y * (y - 1) ** 2
        domain = pd.Box([x, y], [0, 0], [1, 1])
        conditions = [u.on(pd.boundary) == 0]
        test = domain.sample((200, 200))
    else:
        exact = sp.sin(sp.pi * x) * sp.sin(sp.pi * y) * sp.sin(sp.pi * z)
        domain = pd.Box([x, y, z], [0, 0, 0], [1, 1, 1])
        conditions = [u.on(pd.boundary) == 0]
        test = domain.sample((40, 40, 40))
    laplacian = sum(D(u, c, 2) for c in coords)
    f = -sum(sp.diff(exact, c, 2) for c in coords)
    problem = pd.Problem(-laplacian == f, domain=domain, conditions=conditions)
    return problem, exact, domain, test


# pdedsl configurations per dimension: (subdomains per axis, basis, points per axis, solver)
PDEDSL = {
    1: [(8, pd.Polynomial(8), 200, None), (16, pd.Polynomial(10), 400, None)],
    2: [
        (2, pd.Polynomial(6), 24, None),
        (4, pd.Polynomial(6), 32, None),
        (4, pd.RandomFeatures(40), 48, None),
    ],
    3: [
        (1, pd.Polynomial(10), 16, None),
        (2, pd.Polynomial(8), 20, None),
        (4, pd.Polynomial(6), 28, pd.SparseNormal()),
    ],
}
FEM = {1: {1: [8, 10, 12], 2: [5, 7, 9]}, 2: {1: [6, 8], 2: [5, 7]}, 3: {1: [4, 5], 2: [3, 4, 5]}}
FD = {1: [256, 4096], 2: [128, 512], 3: [32, 64]}
QUICK_PDEDSL = {1: [], 2: [(2, pd.Polynomial(6), 24, None)], 3: []}
QUICK_FEM = {1: {1: [6], 2: [4]}, 2: {1: [4], 2: [3]}, 3: {1: [2], 2: [1]}}


def run(quick=False):
    records = []
    for dim in (1, 2, 3):
        name = f"poisson-fem-{dim}d"
        problem, exact, domain, test = setup(dim)
        for j, basis, pts, solver in (QUICK_PDEDSL if quick else PDEDSL)[dim]:
            model = pd.FBPINN(pd.Grid(domain, j, 2.0), basis)
            label = f"pdedsl [{j}^{dim} subdomains, {basis}, {pts}^{dim} pts]"
            shape = (pts,) * dim
            records.append(common.pdedsl_run(name, label, problem, model, solver, shape, exact, test))
        for degree, resolutions in (QUICK_FEM if quick else FEM)[dim].items():
            for r in resolutions:
                records.append(references.fem_run(name, problem, r, degree, exact, test))
        if references.has_finite_differences() and not quick:
            for n in FD[dim]:
                records.append(references.fd_run(name, problem, (n,) * dim, exact, test))
    return records


if __name__ == "__main__":
    common.main("poisson-fem", run, __doc__)
