"""Poisson on the unit square with a manufactured solution u = sin(pi x) sin(pi y),
u = 0 on the whole boundary.

    python examples/poisson_2d.py
    python examples/poisson_2d.py --basis rf    # random features instead of polynomials
"""

import argparse
import time

import sympy as sp

import pdedsl as pd
from pdedsl import D

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--basis", choices=["rf", "poly"], default="poly")
parser.add_argument("--subdomains", type=int, default=4, help="per axis")
args = parser.parse_args()
start = time.perf_counter()

x, y = pd.Symbol("x"), pd.Symbol("y")
u = pd.Function("u")(x, y)
exact = sp.sin(sp.pi * x) * sp.sin(sp.pi * y)
f = sp.diff(exact, x, 2) + sp.diff(exact, y, 2)

domain = pd.Box([x, y], [0, 0], [1, 1])
problem = pd.Problem(D(u, x, 2) + D(u, y, 2) == f, domain=domain, conditions=[u.on(pd.boundary) == 0])

basis = {"poly": pd.Polynomial(8), "rf": pd.RandomFeatures(45, activation="tanh")}[args.basis]
model = pd.FBPINN(pd.Grid(domain, subdomains=args.subdomains, overlap=2.0), basis=basis)
sol = pd.solve(problem, model, points=(45, 45))
print(sol.report())
err = sol.errors(exact, n=2500)
print(f"errors on {err['points']} test points: rel_l2={err['rel_l2']:.3e} max_abs={err['max_abs']:.3e}")
print(f"RESULT rel_l2={err['rel_l2']:.6e} wall_s={time.perf_counter() - start:.3f}")
