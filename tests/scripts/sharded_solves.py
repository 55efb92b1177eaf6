"""Run with 4 simulated CPU devices: solve the same problems on one device and
sharded across four, print the relative coefficient differences as JSON."""

import os

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"

import json  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
import sympy as sp  # noqa: E402

import pdedsl as pd  # noqa: E402
from pdedsl import D  # noqa: E402

assert len(jax.devices()) == 4, jax.devices()
x, y = pd.Symbol("x"), pd.Symbol("y")
u = pd.Function("u")(x, y)
exact = sp.sin(sp.pi * x) * sp.sin(2 * sp.pi * y)
f = sp.diff(exact, x, 2) + sp.diff(exact, y, 2)
poisson = pd.Problem(D(u, x, 2) + D(u, y, 2) == f, pd.Box([x, y], [0, 0], [1, 1]), [u.on(pd.boundary) == 0])
pmodel = pd.FBPINN(pd.Grid(poisson.domain, (3, 3), 2.0), pd.Polynomial(5))
# CG works on M^T M (condition number squared): a lower degree keeps rounding
# differences between reduction orders below 1e-10 in the coefficients
cmodel = pd.FBPINN(pd.Grid(poisson.domain, (3, 3), 2.0), pd.Polynomial(3))

v = pd.Function("v")(x)
bratu = pd.Problem(D(v, x, 2) + pd.exp(v) == 0, pd.Interval(x, 0, 1), [v.at(x=0) == 0, v.at(x=1) == 0])
bmodel = pd.FBPINN(pd.Grid(bratu.domain, 4, 2.0), pd.Polynomial(6))

# 2D nonlinear Poisson -div((1 + u^2) grad u) = f, manufactured solution
w = pd.Function("w")(x, y)
wexact = sp.sin(sp.pi * x) * sp.sin(sp.pi * y) + x * y
flux = lambda e: 1 + e**2  # noqa: E731
wf = -(sp.diff(flux(wexact) * sp.diff(wexact, x), x) + sp.diff(flux(wexact) * sp.diff(wexact, y), y))
nlp = pd.Problem(
    -(D(flux(w) * D(w, x), x) + D(flux(w) * D(w, y), y)) == wf,
    pd.Box([x, y], [0, 0], [1, 1]),
    [w.on(pd.boundary) == x * y],
)
# degree 4: 3.8e-12 apart; at degree 5 the two runs differed by 1.1e-10 (lineax LSMR), the rounding
# floor (machine epsilon x the Jacobian's condition number), whatever the tolerances
nmodel = pd.FBPINN(pd.Grid(nlp.domain, (2, 2), 2.0), pd.Polynomial(4))

cases = [
    ("LSMR", poisson, pmodel, (25, 25), pd.LSMR(rtol=1e-13, max_steps=5000)),
    ("CGNormal", poisson, cmodel, (25, 25), pd.CGNormal(pd.BlockFilter(), rtol=1e-12, max_steps=5000)),
    ("GaussNewton-LSMR", nlp, nmodel, (21, 21), pd.GaussNewton(pd.LSMR(rtol=1e-13, max_steps=5000))),
    (
        "GaussNewton-CGNormal",
        bratu,
        bmodel,
        60,
        pd.GaussNewton(linear_solver=pd.CGNormal(pd.BlockFilter(), rtol=1e-12, max_steps=5000)),
    ),
    # one device: our host-driven trust region; four: optimistix's own step
    (
        "LevenbergMarquardt-CGNormal",
        bratu,
        bmodel,
        60,
        pd.LevenbergMarquardt(linear_solver=pd.CGNormal(pd.BlockFilter(), rtol=1e-12, max_steps=5000)),
    ),
]
out = {}
for name, problem, model, points, solver in cases:
    one = pd.solve(problem, model, points=points, solver=solver, devices=1)
    four = pd.solve(problem, model, points=points, solver=solver, devices=4)
    c1, c4 = np.asarray(one.coefficients), np.asarray(four.coefficients)
    out[name] = {
        "rel_diff": float(np.linalg.norm(c1 - c4) / np.linalg.norm(c1)),
        "iterations": [one.info["iterations"], four.info["iterations"]],
        "points": [one.info["points"], four.info["points"]],
        "sharded": len(four.coefficients.sharding.device_set),
        "steps": [one.info.get("nonlinear_steps"), four.info.get("nonlinear_steps")],
        "devices": four.info.get("devices"),
    }
    if "nonlinear_steps" in one.info:  # the residual after every step, on one device and on four
        out[name]["residuals"] = [[h["residual"] for h in r.info["history"]] for r in (one, four)]
# Gauss-Newton with a host linear solver: sharding it explicitly is refused ...
try:
    pd.solve(bratu, bmodel, solver=pd.GaussNewton(linear_solver=pd.SparseNormal()), devices=4)
    out["GaussNewtonHost"] = "ran sharded"
except ValueError as e:
    out["GaussNewtonHost"] = str(e)
# ... and by default (several devices, no devices= argument) it runs on one device
default = pd.solve(bratu, bmodel)
out["GaussNewtonDefault"] = [default.info["devices"], default.info["solver"]]
# the default linear solver, asked to shard, becomes LSMR
out["GaussNewtonAuto"] = pd.solve(bratu, bmodel, devices=4).info["solver"]
# interface conditions: refused when asked to shard, on one device by default
xi = pd.Symbol("xi")
w = pd.Function("w")(xi)
kw = sp.Piecewise((1, xi < 0.5), (10, True))
layered = pd.Problem(
    -pd.D(kw * pd.D(w, xi), xi) == 1,
    pd.Interval(xi, 0, 1),
    [w.at(xi=0) == 0, w.at(xi=1) == 0, w.jump(xi=0.5) == 0, (kw * pd.D(w, xi)).jump(xi=0.5) == 0],
)
lmodel = pd.FBPINN(pd.Cut(pd.Grid(layered.domain, 6, 2.0), xi=0.5), pd.Polynomial(4))
try:
    pd.solve(layered, lmodel, devices=4)
    out["InterfaceSharded"] = "ran sharded"
except NotImplementedError as e:
    out["InterfaceSharded"] = str(e)
default = pd.solve(layered, lmodel)
out["InterfaceDefault"] = [len(default.coefficients.sharding.device_set), float(default(np.array([0.5]))[0])]
print(json.dumps(out))
