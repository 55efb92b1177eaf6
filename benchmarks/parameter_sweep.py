"""Benchmark `parameter-sweep`: one problem solved for many values of a parameter, as
a parameter study does, against a classical solver doing the same sweep in the same
process.

- Linear: the damped oscillator u'' + 4 u' + k u = 0, u(0) = 1, u'(0) = 0 on [0, 1]
  for w0 = sqrt(k) from 40 to 120 (10 values), the README's ansatz (20 subdomains x
  12 tanh random features, 720 points, dense least squares); against SciPy's
  `solve_ivp` (DOP853, rtol 1e-10) on the same values.
- Nonlinear: Bratu's equation u'' + lambda e^u = 0, u(0) = u(1) = 0, lower branch, for
  lambda from 0.5 to 3.4 (10 values; the fold is at 3.51), 4 subdomains x Legendre
  degree 10 by Gauss-Newton; against SciPy's `solve_bvp` (tol 1e-10, from u = 0 on 41
  nodes).

Each problem is a new `pd.Problem` with `parameters={k: value}`, as a user would
write the loop. The numbers of a problem are array arguments of the compiled code,
not part of it, so only the first value compiles. Per method: `wall_s` is the whole
sweep (first value's compilation included), `solve_s` the median time of one value
after the first, `compile_s` the first value's extra time; `rel_l2` the worst over
the sweep (against the exact solution on 2,000 points), `iterations` the total of
Gauss-Newton steps; the note counts the functions JAX compiled after the first value.

    python benchmarks/parameter_sweep.py [--json PATH] [--quick]
"""

import logging
import pathlib
import re
import statistics
import sys
import time

import numpy as np
import scipy.integrate
import scipy.optimize
import sympy as sp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

import pdedsl as pd  # noqa: E402
from pdedsl import D  # noqa: E402

NAME = "parameter-sweep"


class _Compilations(logging.Handler):
    """Counts the functions JAX compiles while `jax.log_compiles` is on."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record):
        self.count += bool(re.match(r"Compiling \S+", record.getMessage()))


def _sweep(label, values, problem_of, model, exact_of, test, solver=None, points=None):
    """Solve `problem_of(v)` for each value; one record for the whole sweep."""
    import jax

    times, worst, steps, counter = [], 0.0, 0, _Compilations()
    logger = logging.getLogger("jax")
    for i, v in enumerate(values):
        if i == 1:  # count what the values after the first compile
            logger.addHandler(counter)
            logger.propagate = False  # count the messages; keep them off the terminal
            jax.config.update("jax_log_compiles", True)
        t0 = time.perf_counter()
        sol = pd.solve(problem_of(v), model, solver=solver, points=points)
        u = np.asarray(sol(test))
        times.append(time.perf_counter() - t0)
        worst = max(worst, common.errors(u, exact_of(v, test[:, 0]))["rel_l2"])
        steps += sol.info.get("nonlinear_steps") or 0
    jax.config.update("jax_log_compiles", False)
    logger.removeHandler(counter)
    logger.propagate = True
    later = statistics.median(times[1:])
    rec = common.record(
        NAME,
        label,
        rel_l2=worst,
        wall_s=sum(times),
        solve_s=later,
        compile_s=max(times[0] - later, 0.0),
        iterations=steps or None,
        unknowns=sol.info["unknowns"],
        points=sol.info["points"],
    )
    rec["note"] = (
        f"{len(values)} values; rel_l2 the worst; {counter.count} functions compiled after the first value"
    )
    return rec


def _classical(label, values, solve_one, exact_of, test):
    times, worst = [], 0.0
    for v in values:
        t0 = time.perf_counter()
        u = solve_one(v, test[:, 0])
        times.append(time.perf_counter() - t0)
        worst = max(worst, common.errors(u, exact_of(v, test[:, 0]))["rel_l2"])
    rec = common.record(
        NAME, label, rel_l2=worst, wall_s=sum(times), solve_s=statistics.median(times), points=len(test)
    )
    rec["note"] = f"{len(values)} values; rel_l2 the worst"
    return rec


def _oscillator_exact(w0, t, d=2.0):
    w = np.sqrt(w0**2 - d**2)
    return np.exp(-d * t) * (np.cos(w * t) + d / w * np.sin(w * t))


def _bratu_theta(lam):
    # the lower branch: the root below 4.7987, where s = sqrt(2 lam) cosh(s / 4) folds
    return scipy.optimize.brentq(lambda s: s - np.sqrt(2 * lam) * np.cosh(s / 4), 0.1, 4.7987)


def _bratu_exact(lam, x):
    theta = _bratu_theta(lam)
    return -2 * np.log(np.cosh((x - 0.5) * theta / 2) / np.cosh(theta / 4))


def run(quick=False):
    count = 4 if quick else 10
    test = np.linspace(0, 1, 2000)[:, None]
    records = []

    t, k = pd.Symbol("t"), sp.Symbol("k")
    u = pd.Function("u")(t)
    domain = pd.Interval(t, 0, 1)

    def oscillator(w0):
        return pd.Problem(
            D(u, t, 2) + 4 * D(u, t) + k * u == 0,
            domain,
            [u.at(t=0) == 1, D(u, t).at(t=0) == 0],
            parameters={k: w0**2},
        )

    w0s = np.linspace(40.0, 120.0, count)
    model = pd.FBPINN(pd.Grid(domain, subdomains=20, overlap=2.9), pd.RandomFeatures(12, activation="tanh"))
    records.append(
        _sweep(
            "oscillator w0 = 40..120: ELM-FBPINN [20 x 12 tanh, dense least squares]",
            w0s,
            oscillator,
            model,
            _oscillator_exact,
            test,
            points=720,
        )
    )

    def ivp(w0, ts):
        a = np.array([[0.0, 1.0], [-(w0**2), -4.0]])
        res = scipy.integrate.solve_ivp(
            lambda _, y: a @ y, (0.0, 1.0), [1.0, 0.0], method="DOP853", t_eval=ts, rtol=1e-10, atol=1e-13
        )
        return res.y[0]

    records.append(
        _classical(
            "oscillator w0 = 40..120: scipy solve_ivp DOP853, rtol 1e-10", w0s, ivp, _oscillator_exact, test
        )
    )

    x, lam = pd.Symbol("x"), sp.Symbol("lam")
    v = pd.Function("v")(x)
    line = pd.Interval(x, 0, 1)

    def bratu(value):
        return pd.Problem(
            D(v, x, 2) + lam * pd.exp(v) == 0, line, [v.at(x=0) == 0, v.at(x=1) == 0], parameters={lam: value}
        )

    lams = np.linspace(0.5, 3.4, count)
    records.append(
        _sweep(
            "Bratu lambda = 0.5..3.4: ELM-FBPINN [4 x Legendre 10, Gauss-Newton]",
            lams,
            bratu,
            pd.FBPINN(pd.Grid(line, 4, 2.0), pd.Polynomial(10)),
            _bratu_exact,
            test,
        )
    )

    def bvp(value, xs):
        nodes = np.linspace(0, 1, 41)
        res = scipy.integrate.solve_bvp(
            lambda s, y: np.vstack([y[1], -value * np.exp(y[0])]),
            lambda ya, yb: np.array([ya[0], yb[0]]),
            nodes,
            np.zeros((2, nodes.size)),
            tol=1e-10,
            max_nodes=100_000,
        )
        return res.sol(xs)[0]

    records.append(
        _classical("Bratu lambda = 0.5..3.4: scipy solve_bvp, tol 1e-10", lams, bvp, _bratu_exact, test)
    )
    return records


if __name__ == "__main__":
    common.main(NAME, run, __doc__)
