"""Benchmark `oscillator`: PINN vs FBPINN (both Adam) vs ELM-FBPINN (least squares) on the
damped oscillator u'' + 4 u' + 6400 u = 0, u(0) = 1, u'(0) = 0 (w0 = 80, d = 2), t in [0, 1].

One problem object, one set of 720 collocation points, three ansatzes (BENCHMARKS.md):
- PINN: one network with two hidden layers of 64 tanh units (`pd.PINN`), Adam;
- FBPINN: 20 subdomains (overlap 2.9), one hidden layer of 32 tanh units each
  (`pd.MLP(hidden=(32,))`), Adam;
- ELM-FBPINN: the same decomposition with 12 fixed tanh random features per subdomain,
  coefficients by dense least squares (`pd.solve`);
and the ELM-FBPINN time-marched (20 subdomains, 3 active at a time, `pd.TimeMarching`);
and, in the same process, the classical solvers: SciPy's `solve_ivp` (DOP853) at two
tolerances and the matrix-exponential propagator.
Adam: 15,000 steps, learning rate 1e-3, the loss built from the same row-scaled equation
and condition rows as the linear solve. Times: Adam training after JIT compilation
(compile_s apart); least squares warm (best of 3 after a cold run). Errors on 2,000 points.

    python benchmarks/oscillator.py [--json PATH] [--quick]
"""

import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402
import references  # noqa: E402

import pdedsl as pd  # noqa: E402
from pdedsl import demos  # noqa: E402
from pdedsl.lower import compile_scalar  # noqa: E402

NAME = "oscillator"


def adam_run(label, problem, model, exact, test, steps, points):
    sol = pd.train(problem, model, steps=steps, learning_rate=1e-3, points=points, throw=False)
    ref = np.asarray(compile_scalar(exact, problem.coords)(test))
    rec = common.record(
        NAME,
        label,
        **common.errors(sol(test), ref),
        wall_s=sol.info["solve_s"],
        solve_s=sol.info["solve_s"],
        compile_s=sol.info["compile_s"],
        iterations=sol.info["iterations"],
        unknowns=sol.info["trainable_parameters"],
        points=sol.info["points"],
    )
    rec["note"] = f"Adam {steps} steps, lr 1e-3; unknowns = trainable parameters" + (
        "" if sol.info["success"] else "; training failed"
    )
    return rec


def run(quick=False):
    problem, _, points, exact = demos.oscillator(w0=80.0, d=2.0)
    test = np.linspace(0, 1, 2000)[:, None]
    steps = 300 if quick else 15_000
    dec = pd.Grid(problem.domain, subdomains=20, overlap=2.9)
    records = []

    elm = common.pdedsl_run(
        NAME,
        "ELM-FBPINN [20 subdomains x 12 tanh random features, dense least squares]",
        problem,
        pd.FBPINN(dec, pd.RandomFeatures(12, activation="tanh")),
        None,
        points,
        exact,
        test,
        repeats=3,
    )
    records.append(elm)
    fb_hidden = (8,) if quick else (32,)
    pinn_hidden = (16, 16) if quick else (64, 64)
    fbpinn = adam_run(
        f"FBPINN [20 subdomains x MLP{fb_hidden}, Adam {steps} steps]",
        problem,
        pd.FBPINN(dec, pd.MLP(hidden=fb_hidden)),
        exact,
        test,
        steps,
        points,
    )
    records.append(fbpinn)
    pinn = adam_run(
        f"PINN [MLP{pinn_hidden}, Adam {steps} steps]",
        problem,
        pd.PINN(problem.domain, hidden=pinn_hidden),
        exact,
        test,
        steps,
        points,
    )
    records.append(pinn)
    for overlap in (2.9, 2.0):
        records.append(
            common.pdedsl_run(
                NAME,
                f"ELM-FBPINN time-marched [20 subdomains (overlap {overlap}) x 12 tanh, 3 active]",
                problem,
                pd.FBPINN(pd.Grid(problem.domain, 20, overlap), pd.RandomFeatures(12, activation="tanh")),
                None,
                points,
                exact,
                test,
                repeats=3,
                schedule=pd.TimeMarching(problem.coords[0], active=3),
            )
        )

    ref = np.asarray(compile_scalar(exact, problem.coords)(test))
    classical = references.oscillator_references(NAME, "", 80.0, 2.0, test, ref, 1 if quick else 3)
    records.extend(classical)
    for rec in classical:
        print(
            f"ELM-FBPINN {elm['rel_l2']:.2e} in {elm['wall_s']:.3f} s against {rec['method']}: "
            f"{rec['rel_l2']:.2e} in {rec['wall_s']:.3f} s"
        )
    ratio_err = fbpinn["rel_l2"] / elm["rel_l2"]
    ratio_time = fbpinn["wall_s"] / elm["wall_s"]
    elm["note"] = (
        f"error {ratio_err:.2e} x smaller than FBPINN's and {pinn['rel_l2'] / elm['rel_l2']:.2e} x "
        f"smaller than PINN's; warm time {ratio_time:.0f} x smaller than FBPINN's training and "
        f"{pinn['wall_s'] / elm['wall_s']:.0f} x smaller than PINN's"
    )
    sol = pd.solve(
        problem,
        pd.FBPINN(pd.Grid(problem.domain, 20, 2.0), pd.RandomFeatures(12)),
        points=points,
        schedule=pd.TimeMarching(problem.coords[0], active=3),
    )
    print("\nthe time-marched solve (overlap 2.0):\n" + sol.report() + "\n")
    print(
        f"FBPINN rel_l2 {fbpinn['rel_l2']:.2e} (target <= 5e-3); PINN rel_l2 {pinn['rel_l2']:.2e} (target > 0.1)"
    )
    print(
        f"ELM-FBPINN: error ratio FBPINN/ELM {ratio_err:.2e} (target >= 1e3), time ratio {ratio_time:.1f} (>= 10)"
    )
    return records


if __name__ == "__main__":
    common.main(NAME, run, __doc__)
