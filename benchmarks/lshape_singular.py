"""Benchmark `lshape-singular`: -Laplacian(u) = f on the L-shaped domain [0,1]^2 minus
[0.5,1]^2 with the classical corner singularity: u = r^(2/3) sin(2 theta / 3) +
sin(2x) e^y, (r, theta) polar around the re-entrant corner (0.5, 0.5) with theta
measured from the edge x = 0.5 through the domain; f = -Laplacian(sin(2x) e^y) (the
singular part is harmonic), Dirichlet data u on the six edges.

u is not in H^2, so the strong-form least-squares fit of a smooth ansatz converges
to another function; pdedsl adds the corner's singular functions to the features of
the subdomains containing it (`pd.solve(..., corners=None)`, automatic). Rows
"corners=False" show the fit without them. Against scikit-fem P1/P2 on uniform
meshes (whose convergence the singularity slows to about h^(4/3) in L^2), in the
same process. Errors on the 201 x 201 grid restricted to the L.

    python benchmarks/lshape_singular.py [--json PATH] [--quick]
"""

import pathlib
import sys

import sympy as sp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402
import references  # noqa: E402

import pdedsl as pd  # noqa: E402
from pdedsl import D  # noqa: E402

NAME = "lshape-singular"


def setup():
    x, y = pd.Symbol("x"), pd.Symbol("y")
    u = pd.Function("u")(x, y)
    X, Y = x - sp.Rational(1, 2), y - sp.Rational(1, 2)
    phi = sp.atan2(-X, Y)
    theta = sp.Piecewise((phi, phi >= 0), (phi + 2 * sp.pi, True))
    smooth = sp.sin(2 * x) * sp.exp(y)
    exact = (X**2 + Y**2) ** sp.Rational(1, 3) * sp.sin(2 * theta / 3) + smooth
    f = -(sp.diff(smooth, x, 2) + sp.diff(smooth, y, 2))
    domain = pd.Box([x, y], [0, 0], [1, 1]) - pd.Box([x, y], [0.5, 0.5], [1, 1])
    problem = pd.Problem(
        -D(u, x, 2) - D(u, y, 2) == f, domain=domain, conditions=[u.on(pd.boundary) == exact]
    )
    return problem, exact, domain


# (subdomains per axis, degree, points per axis, corners)
PDEDSL = [(4, 6, 60, None), (8, 5, 80, None), (8, 5, 80, False), (16, 5, 160, None), (16, 5, 160, False)]
FEM = {1: [6, 8, 9], 2: [5, 7, 8]}
QUICK_PDEDSL = [(4, 4, 40, None), (4, 4, 40, False)]
QUICK_FEM = {1: [4], 2: [4]}


def run(quick=False):
    problem, exact, domain = setup()
    test = domain.sample((201, 201))
    records = []
    for n, degree, p, corners in QUICK_PDEDSL if quick else PDEDSL:
        model = pd.FBPINN(pd.Grid(domain, n, 2.0), pd.Polynomial(degree))
        how = "with corner functions" if corners is None else "corners=False"
        label = f"pdedsl [{n}x{n} grid on the L, Legendre deg {degree}, {p}^2 grid pts, {how}]"
        records.append(
            common.pdedsl_run(NAME, label, problem, model, None, (p, p), exact, test, corners=corners)
        )
    for degree, resolutions in (QUICK_FEM if quick else FEM).items():
        for r in resolutions:
            records.append(references.fem_run(NAME, problem, r, degree, exact, test))
    return records


if __name__ == "__main__":
    common.main(NAME, run, __doc__)
