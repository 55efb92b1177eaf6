"""Named demo problems for `pdedsl demo`: each returns (problem, model, points, exact)."""

from __future__ import annotations

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


DEMOS = {"oscillator": oscillator, "poisson": poisson}
