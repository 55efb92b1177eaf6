"""Damped harmonic oscillator (benchmark `oscillator`): m u'' + mu u' + k u = 0.

python examples/oscillator.py                 # random features (tanh)
python examples/oscillator.py --basis poly    # Legendre polynomials instead
"""

import argparse
import time

import sympy as sp

import pdedsl as pd
from pdedsl import D

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--basis", choices=["rf", "poly"], default="rf")
parser.add_argument("--subdomains", type=int, default=20)
parser.add_argument("--features", type=int, default=12)
parser.add_argument("--points", type=int, default=720)
args = parser.parse_args()
start = time.perf_counter()

t = pd.Symbol("t")
u = pd.Function("u")(t)
d, w0 = 2.0, 80.0
m, mu, k = 1.0, 2 * d, w0**2

# fmt: off
problem = pd.Problem(
    m*D(u, t, 2) + mu*D(u, t) + k*u == 0,
    domain=pd.Interval(t, 0, 1),
    conditions=[u.at(t=0) == 1, D(u, t).at(t=0) == 0],
)
# fmt: on

# Exact solution of the under-damped oscillator.
w = sp.sqrt(w0**2 - d**2)
phi = sp.atan(-d / w)
exact = sp.exp(-d * t) * sp.cos(phi + w * t) / sp.cos(phi)

basis = {
    "rf": pd.RandomFeatures(args.features, activation="tanh"),
    "poly": pd.Polynomial(args.features - 1),  # same number of functions per subdomain
}[args.basis]
model = pd.FBPINN(pd.Grid(problem.domain, subdomains=args.subdomains, overlap=2.9), basis=basis)

sol = pd.solve(problem, model, points=args.points)
print(sol.report())
err = sol.errors(exact, n=2000)
print(f"errors on 2000 test points: rel_l2={err['rel_l2']:.3e} max_abs={err['max_abs']:.3e}")
wall = time.perf_counter() - start  # the whole script: imports, lowering, JIT compilation
# The same solve again: compiled now, as in a parameter study or the benchmarks' warm times.
t0 = time.perf_counter()
pd.solve(problem, model, points=args.points)
warm = time.perf_counter() - t0
print(f"the same solve again, compiled: {warm * 1e3:.1f} ms")
print(f"RESULT rel_l2={err['rel_l2']:.6e} warm_s={warm:.4f} wall_s={wall:.3f}")
