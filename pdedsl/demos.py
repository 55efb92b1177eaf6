"""Named demo problems for `pdedsl demo`: each returns (problem, model, points, exact)."""

from __future__ import annotations

import numpy as np
import sympy as sp

from .ansatz import FBPINN, Grid, Polynomial, RandomFeatures
from .geometry import Box, Interval
from .problem import Problem
from .symbolic import D, Function, Symbol, boundary


def oscillator(w0: float = 80.0, d: float = 2.0):
    """The damped oscillator of the FBPINN papers: m u'' + mu u' + k u = 0."""
    t = Symbol("t")
    u = Function("u")(t)
    m, mu, k = 1.0, 2 * d, w0**2
    # fmt: off
    problem = Problem(
        m*D(u, t, 2) + mu*D(u, t) + k*u == 0,
        domain=Interval(t, 0, 1),
        conditions=[u.at(t=0) == 1, D(u, t).at(t=0) == 0],
    )
    # fmt: on
    w = sp.sqrt(w0**2 - d**2)
    phi = sp.atan(-d / w)
    exact = sp.exp(-d * t) * sp.cos(phi + w * t) / sp.cos(phi)
    model = FBPINN(Grid(problem.domain, subdomains=20, overlap=2.9), RandomFeatures(12, activation="tanh"))
    return problem, model, 720, exact


def poisson():
    """Poisson on the unit square, u = sin(pi x) sin(pi y), zero Dirichlet data."""
    x, y = Symbol("x"), Symbol("y")
    u = Function("u")(x, y)
    exact = sp.sin(sp.pi * x) * sp.sin(sp.pi * y)
    domain = Box([x, y], [0, 0], [1, 1])
    f = sp.diff(exact, x, 2) + sp.diff(exact, y, 2)
    problem = Problem(D(u, x, 2) + D(u, y, 2) == f, domain=domain, conditions=[u.on(boundary) == 0])
    model = FBPINN(Grid(domain, 4, 2.0), Polynomial(8))
    return problem, model, (45, 45), exact


def poisson_3d():
    """Poisson on the unit cube, -Laplacian(u) = 3 pi^2 u with u = sin(pi x) sin(pi y)
    sin(pi z), zero Dirichlet data: the 3D case of the `poisson-fem` benchmark."""
    x, y, z = Symbol("x"), Symbol("y"), Symbol("z")
    u = Function("u")(x, y, z)
    exact = sp.sin(sp.pi * x) * sp.sin(sp.pi * y) * sp.sin(sp.pi * z)
    domain = Box([x, y, z], [0, 0, 0], [1, 1, 1])
    problem = Problem(
        -(D(u, x, 2) + D(u, y, 2) + D(u, z, 2)) == 3 * sp.pi**2 * exact,
        domain=domain,
        conditions=[u.on(boundary) == 0],
    )
    model = FBPINN(Grid(domain, 2, 2.0), Polynomial(8))
    return problem, model, (20, 20, 20), exact


def burgers_reference(x, t, nu: float = 0.01 / np.pi, nodes: int = 200):
    """Burgers' u_t + u u_x = nu u_xx, u(x, 0) = -sin(pi x), u(+-1, t) = 0, by the
    Cole-Hopf formula: u = -int sin(pi (x - e)) f(x - e) G(e) de / int f(x - e) G(e) de
    with f(y) = exp(-cos(pi y) / (2 pi nu)) and the heat kernel G, evaluated by
    Gauss-Hermite quadrature with `nodes` nodes (exponents shifted to avoid overflow)."""
    z, w = np.polynomial.hermite.hermgauss(nodes)
    x = np.asarray(x, dtype=float).reshape(-1, 1)
    t = np.asarray(t, dtype=float).reshape(-1, 1)
    s = np.sqrt(4 * nu * np.maximum(t, 0.0))
    y = x - s * z[None, :]
    e = -np.cos(np.pi * y) / (2 * np.pi * nu)
    f = np.exp(e - e.max(axis=1, keepdims=True))
    u = -(w * np.sin(np.pi * y) * f).sum(axis=1) / (w * f).sum(axis=1)
    return np.where(t[:, 0] > 0, u, -np.sin(np.pi * x[:, 0]))


def graded(n: int, lower: float, upper: float, centre: float, stretch: float) -> np.ndarray:
    """`n` points from `lower` to `upper`, clustered at `centre` by a sinh map
    (`stretch` = 0: uniform; 4: about 7x finer at the centre than on average)."""
    xi = np.linspace(-1.0, 1.0, n)
    if stretch == 0:
        return lower + (xi + 1) * (upper - lower) / 2
    left, right = centre - lower, upper - centre
    s = np.sinh(stretch * xi) / np.sinh(stretch)
    return np.where(s < 0, centre + s * left, centre + s * right)


def burgers(
    nu: float = 0.01 / np.pi, subdomains=(40, 10), degree: int = 6, points=(400, 100), stretch: float = 0.0
):
    """Burgers' equation on x in [-1, 1], t in [0, 1] (space-time, solved globally);
    `exact` is the Cole-Hopf reference, a callable on (N, 2) points (x, t).
    `stretch` > 0 clusters the subdomains (and the x points) at the front x = 0."""
    x, t = Symbol("x"), Symbol("t")
    u = Function("u")(x, t)
    domain = Box([x, t], [-1, 0], [1, 1])
    problem = Problem(
        D(u, t) + u * D(u, x) - nu * D(u, x, 2) == 0,
        domain=domain,
        conditions=[u.at(t=0) == -sp.sin(sp.pi * x), u.at(x=-1) == 0, u.at(x=1) == 0],
    )
    if stretch:
        cx = graded(subdomains[0], -1.0, 1.0, 0.0, stretch)
        model = FBPINN(Grid(domain, (cx, subdomains[1]), 2.0), Polynomial(degree))
        px = graded(points[0], -1.0, 1.0, 0.0, stretch)
        pt = np.linspace(0.0, 1.0, points[1])
        points = np.stack([m.ravel() for m in np.meshgrid(px, pt, indexing="ij")], axis=1)
    else:
        model = FBPINN(Grid(domain, subdomains, 2.0), Polynomial(degree))

    def exact(p):
        p = np.asarray(p)
        return burgers_reference(p[:, 0], p[:, 1], nu)

    return problem, model, points, exact


DEMOS = {"oscillator": oscillator, "poisson": poisson, "poisson-3d": poisson_3d}
