"""Bratu's problem u'' + lambda e^u = 0 on [0, 1], u(0) = u(1) = 0 (nonlinear).

The lower-branch solution is known in closed form:
u(x) = -2 log(cosh((x - 1/2) theta / 2) / cosh(theta / 4)), theta = sqrt(2 lambda) cosh(theta / 4).
pd.solve sees the nonlinear term and runs Gauss-Newton (optimistix) over the same
window x basis structure as a linear solve.

python examples/bratu.py                  # lambda = 1
python examples/bratu.py --lam 3.5        # close to the fold at lambda ~ 3.51
"""

import argparse
import time

import numpy as np
import scipy.optimize
import sympy as sp

import pdedsl as pd
from pdedsl import D

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--lam", type=float, default=1.0)
parser.add_argument("--subdomains", type=int, default=4)
parser.add_argument("--degree", type=int, default=10)
args = parser.parse_args()
start = time.perf_counter()

x = pd.Symbol("x")
u = pd.Function("u")(x)
lam = args.lam
problem = pd.Problem(
    D(u, x, 2) + lam * pd.exp(u) == 0,
    domain=pd.Interval(x, 0, 1),
    conditions=[u.at(x=0) == 0, u.at(x=1) == 0],
)
model = pd.FBPINN(pd.Grid(problem.domain, args.subdomains, 2.0), pd.Polynomial(args.degree))
sol = pd.solve(problem, model)  # nonlinear -> pd.GaussNewton() by default

theta = scipy.optimize.brentq(lambda s: s - np.sqrt(2 * lam) * np.cosh(s / 4), 1e-9, 4.0)
exact = -2 * sp.log(sp.cosh((x - sp.Rational(1, 2)) * theta / 2) / sp.cosh(theta / 4))
err = sol.errors(exact)
print(sol.report())
print(f"Gauss-Newton steps: {sol.info['nonlinear_steps']}")
print(f"RESULT rel_l2={err['rel_l2']:.3e} wall_s={time.perf_counter() - start:.2f}")
