"""One of two processes (python two_process.py PROCESS_ID PORT): jax.distributed
on localhost with CPU collectives (gloo), one CPU device per process. Solves the
same problems sharded across both processes' devices and on this process's own
device alone, and prints the relative coefficient differences as JSON."""

import sys

import jax

process_id, port = int(sys.argv[1]), int(sys.argv[2])
jax.distributed.initialize(
    coordinator_address=f"localhost:{port}",
    num_processes=2,
    process_id=process_id,
    initialization_timeout=120,
)

import json  # noqa: E402

import numpy as np  # noqa: E402
import sympy as sp  # noqa: E402

import pdedsl as pd  # noqa: E402
from pdedsl import D  # noqa: E402

assert jax.process_count() == 2 and len(jax.devices()) == 2 and len(jax.local_devices()) == 1
x = pd.Symbol("x")
y = pd.Symbol("y")
u = pd.Function("u")(x, y)
exact = sp.sin(sp.pi * x) * sp.sin(2 * sp.pi * y)
f = sp.diff(exact, x, 2) + sp.diff(exact, y, 2)
poisson = pd.Problem(D(u, x, 2) + D(u, y, 2) == f, pd.Box([x, y], [0, 0], [1, 1]), [u.on(pd.boundary) == 0])
pmodel = pd.FBPINN(pd.Grid(poisson.domain, (3, 3), 2.0), pd.Polynomial(5))
v = pd.Function("v")(x)
bratu = pd.Problem(D(v, x, 2) + pd.exp(v) == 0, pd.Interval(x, 0, 1), [v.at(x=0) == 0, v.at(x=1) == 0])
bmodel = pd.FBPINN(pd.Grid(bratu.domain, 4, 2.0), pd.Polynomial(6))

cases = [
    ("LSMR", poisson, pmodel, (25, 25), pd.LSMR(rtol=1e-13, max_steps=5000)),
    (
        "GaussNewton-LSMR",
        bratu,
        bmodel,
        60,
        pd.GaussNewton(linear_solver=pd.LSMR(rtol=1e-13, max_steps=5000)),
    ),
]
out = {"process": process_id}
for name, problem, model, points, solver in cases:
    # every process runs the same program: the sharded solve is one SPMD computation
    both = pd.solve(problem, model, points=points, solver=solver)  # default: all (global) devices
    alone = pd.solve(problem, model, points=points, solver=solver, devices=1)
    c2, c1 = np.asarray(both.coefficients), np.asarray(alone.coefficients)
    out[name] = {
        "devices": len(both.coefficients.sharding.device_set),
        "rel_diff": float(np.linalg.norm(c2 - c1) / np.linalg.norm(c1)),
        "rel_l2": both.errors(exact)["rel_l2"] if problem is poisson else None,
        "checksum": float(np.sum(c2 * np.arange(c2.size).reshape(c2.shape))),
    }
print(json.dumps(out))
