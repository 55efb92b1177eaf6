"""Steps to the solution: Gauss-Newton against Levenberg-Marquardt with its
default damping (1e-3) and growth (10), optimistix's growth of 3.5, and damping
1.0, on the nonlinear test problems of tests/test_nonlinear.py (plus Bratu at
lambda = 3.4, the 2D problem with amplitude 3 and a steady Burgers layer). Each
cell: steps (rejected trial steps, rel_l2). The table in docs/nonlinear.md comes
from this script. Not part of `run_all.py`; about a minute:

    python benchmarks/levenberg_marquardt_steps.py
"""

import numpy as np
import scipy.optimize
import sympy as sp

import pdedsl as pd
from pdedsl import D

x, y = pd.Symbol("x"), pd.Symbol("y")
u = pd.Function("u")(x)


def bratu(lam):
    theta = scipy.optimize.brentq(lambda s: s - np.sqrt(2 * lam) * np.cosh(s / 4), 0.1, 4.79)  # lower branch
    exact = -2 * sp.log(sp.cosh((x - sp.Rational(1, 2)) * theta / 2) / sp.cosh(theta / 4))
    problem = pd.Problem(
        D(u, x, 2) + lam * pd.exp(u) == 0, pd.Interval(x, 0, 1), [u.at(x=0) == 0, u.at(x=1) == 0]
    )
    return problem, exact, pd.FBPINN(pd.Grid(problem.domain, 4, 2.0), pd.Polynomial(10)), None


def poisson_2d(amplitude):
    """-div((1 + u^2) grad u) = f, manufactured u = a sin(pi x) sin(pi y) + x y."""
    v = pd.Function("u")(x, y)
    exact = amplitude * sp.sin(sp.pi * x) * sp.sin(sp.pi * y) + x * y
    k = 1 + exact**2
    f = -(sp.diff(k * sp.diff(exact, x), x) + sp.diff(k * sp.diff(exact, y), y))
    problem = pd.Problem(
        -(D((1 + v**2) * D(v, x), x) + D((1 + v**2) * D(v, y), y)) == f,
        pd.Box([x, y], [0, 0], [1, 1]),
        [v.on(pd.boundary) == exact],
    )
    return problem, exact, pd.FBPINN(pd.Grid(problem.domain, (4, 4), 2.0), pd.Polynomial(4)), None


def burgers(nu):
    """nu u'' - u u' = 0, u = -tanh((x - 1/2) / (2 nu))."""
    exact = -sp.tanh((x - sp.Rational(1, 2)) / (2 * nu))
    problem = pd.Problem(
        nu * D(u, x, 2) - u * D(u, x) == 0,
        pd.Interval(x, 0, 1),
        [u.at(x=0) == float(exact.subs(x, 0)), u.at(x=1) == float(exact.subs(x, 1))],
    )
    return problem, exact, pd.FBPINN(pd.Grid(problem.domain, 16, 2.0), pd.Polynomial(8)), 400


CASES = {
    "2D nonlinear Poisson": poisson_2d(1.0),
    "2D nonlinear Poisson, amplitude 3": poisson_2d(3.0),
    "Bratu, lambda = 1": bratu(1.0),
    "Bratu, lambda = 3": bratu(3.0),
    "Bratu, lambda = 3.4": bratu(3.4),
    "steady Burgers, nu = 0.02": burgers(0.02),
}
SOLVERS = {
    "Gauss-Newton": pd.GaussNewton(max_steps=100),
    "LM (default)": pd.LevenbergMarquardt(max_steps=150),
    "LM, growth=3.5": pd.LevenbergMarquardt(max_steps=150, growth=3.5),
    "LM, damping=1.0": pd.LevenbergMarquardt(max_steps=150, damping=1.0),
}


def main():
    print("| problem | " + " | ".join(SOLVERS) + " |")
    print("|---" * (len(SOLVERS) + 1) + "|")
    for name, (problem, exact, model, points) in CASES.items():
        kw = {} if points is None else {"points": points}
        cells = []
        for solver in SOLVERS.values():
            sol = pd.solve(problem, model, solver=solver, throw=False, **kw)
            rejected = sum(not h["accepted"] for h in sol.info["history"][1:])
            flag = "" if sol.info["converged"] else ", not converged"
            cells.append(
                f"{sol.info['nonlinear_steps']} ({rejected}, {sol.errors(exact)['rel_l2']:.1e}{flag})"
            )
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
