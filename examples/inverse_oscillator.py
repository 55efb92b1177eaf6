"""Inverse problem: find the damping mu of u'' + mu u' + w0^2 u = 0 (w0 = 20) from
20 observations of u, with u(0) = 1, u'(0) = 0 known; true mu = 4.

The field and mu are solved together by Gauss-Newton (or, with --varpro, by variable
projection: exact linear solves for the field, Gauss-Newton on mu only). The
estimate comes with a linearised standard error from the data misfit.

python examples/inverse_oscillator.py               # 1% Gaussian noise (seed 0)
python examples/inverse_oscillator.py --noise 0     # exact data
"""

import argparse
import time

import numpy as np
import sympy as sp

import pdedsl as pd
from pdedsl import D

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--noise", type=float, default=0.01, help="standard deviation of the noise (u(0) = 1)")
parser.add_argument("--observations", type=int, default=20)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--varpro", action="store_true", help="variable projection instead of joint Gauss-Newton")
args = parser.parse_args()
start = time.perf_counter()

w0, mu_true = 20.0, 4.0
d = mu_true / 2
w = np.sqrt(w0**2 - d**2)
phi = np.arctan(-d / w)


def exact(tt):
    return np.exp(-d * tt) * np.cos(phi + w * tt) / np.cos(phi)


t_obs = np.linspace(0, 1, args.observations)
data = exact(t_obs) + args.noise * np.random.default_rng(args.seed).standard_normal(t_obs.size)

t = pd.Symbol("t")
u = pd.Function("u")(t)
mu = sp.Symbol("mu")
problem = pd.Problem(
    D(u, t, 2) + mu * D(u, t) + w0**2 * u == 0,
    domain=pd.Interval(t, 0, 1),
    conditions=[u.at(t=0) == 1, D(u, t).at(t=0) == 0, u.at(t=t_obs) == data],
    unknown_parameters={mu: 1.0},  # initial guess
)
model = pd.FBPINN(pd.Grid(problem.domain, 10, 2.9), pd.Polynomial(10))
solver = pd.VariableProjection() if args.varpro else pd.GaussNewton()
sol = pd.solve(problem, model, solver=solver)

est, se = sol.parameters["mu"], sol.standard_errors["mu"]
err = sol.errors(lambda p: exact(np.asarray(p)[:, 0]))
print(sol.report())
print(f"mu = {est:.6f} +- {se:.2e} (true {mu_true}); |error| = {abs(est - mu_true) / se:.2f} standard errors")
print(
    f"RESULT rel_l2={err['rel_l2']:.3e} param_rel_err={abs(est - mu_true) / mu_true:.3e} wall_s={time.perf_counter() - start:.2f}"
)
