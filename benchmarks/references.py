"""Benchmark runs of the classical references built from the same pd.Problem:
finite elements (`pd.finite_elements`, scikit-fem) and, where this pdedsl has them,
finite differences (`pd.finite_differences`). Timed warm, like pdedsl's runs.
"""

from __future__ import annotations

import time

import common
import numpy as np

import pdedsl as pd
from pdedsl.lower import compile_scalar

_WARMED: set = set()


def _best_of(fn, repeats):
    out, best = fn(), np.inf  # the cold call (SciPy has nothing to compile; it warms caches)
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def oscillator_references(problem_name, prefix, w0, d, test, ref, repeats=3):
    """The classical solvers of u'' + 2 d u' + w0^2 u = 0, u(0) = 1, u'(0) = 0 on the
    test times (N, 1): SciPy's solve_ivp (DOP853) at two tolerances and the
    matrix-exponential propagator (exact for this linear constant-coefficient system).
    Warm (best of `repeats` after one call); methods named `prefix + ...`."""
    import scipy.integrate
    import scipy.linalg

    t = test[:, 0]
    if not (t[0] == 0.0 and np.allclose(np.diff(t), t[1] - t[0])):
        raise ValueError(
            "oscillator_references needs equispaced test times from t = 0 (the propagator steps)."
        )
    a = np.array([[0.0, 1.0], [-(w0**2), -2 * d]])  # (u, u')' = a (u, u')
    records = []
    for rtol in (1e-8, 1e-11):

        def ivp(rtol=rtol):
            return scipy.integrate.solve_ivp(
                lambda _, y: a @ y,
                (0.0, 1.0),
                [1.0, 0.0],
                method="DOP853",
                t_eval=t,
                rtol=rtol,
                atol=rtol * 1e-3,
            )

        res, wall = _best_of(ivp, repeats)
        rec = common.record(
            problem_name,
            f"{prefix}scipy solve_ivp DOP853, rtol {rtol:.0e}",
            **common.errors(res.y[0], ref),
            wall_s=wall,
            solve_s=wall,
            iterations=int(res.nfev),
            unknowns=2,
            points=len(t),
        )
        rec["note"] = f"{res.nfev} right-hand-side evaluations; iterations = evaluations"
        records.append(rec)

    def propagate():  # one step matrix for the test spacing, applied in sequence
        step = scipy.linalg.expm(a * (t[1] - t[0]))
        y = np.empty((len(t), 2))
        y[0] = (1.0, 0.0)
        for i in range(1, len(t)):
            y[i] = step @ y[i - 1]
        return y[:, 0]

    u, wall = _best_of(propagate, repeats)
    rec = common.record(
        problem_name,
        f"{prefix}matrix-exponential propagator",
        **common.errors(u, ref),
        wall_s=wall,
        solve_s=wall,
        unknowns=2,
        points=len(t),
    )
    rec["note"] = "linear constant-coefficient systems only; one 2x2 product per test time"
    records.append(rec)
    return records


def _warm_up(kind, problem, build):
    """One small untimed run per (kind, problem): imports and first-call caches."""
    key = (kind, id(problem))
    if key not in _WARMED:
        build()
        _WARMED.add(key)


def _exact_values(problem, exact, test_points):
    return np.asarray(compile_scalar(exact, problem.coords)(test_points))


def fem_run(problem_name, problem, resolution, degree, exact, test_points, repeats=2, solver="auto"):
    """FEM P1/P2 at `resolution` (refinements, or an element size); best of `repeats` warm runs."""
    _warm_up(("fem", degree, solver), problem, lambda: pd.finite_elements(problem, 1, degree, solver=solver))
    best = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        ref = pd.finite_elements(problem, resolution, degree, solver=solver)
        wall = time.perf_counter() - t0
        if best is None or wall < best[0]:
            best = (wall, ref)
    wall, ref = best
    h = ref.info["mesh_size"]
    n = round(1 / h) if abs(1 / h - round(1 / h)) < 1e-9 else None
    size = f"h=1/{n}" if n else f"h={h:.3g}"
    rec = common.record(
        problem_name,
        f"FEM P{degree} {size} ({ref.info['solver']})",
        **common.errors(ref(test_points), _exact_values(problem, exact, test_points)),
        wall_s=wall,
        assemble_s=ref.info["setup_s"],
        solve_s=ref.info["solve_s"],
        iterations=ref.info["iterations"],
        unknowns=ref.info["dofs"],
    )
    rec["note"] = f"scikit-fem, {ref.info['elements']} elements"
    return rec


def has_finite_differences() -> bool:
    return hasattr(pd, "finite_differences")


def fd_run(problem_name, problem, shape, exact, test_points, order=2, repeats=2):
    """Finite differences (`pd.finite_differences`) on a grid of `shape`; best of `repeats`."""
    small = tuple(8 for _ in range(problem.dim))
    _warm_up(("fd", order), problem, lambda: pd.finite_differences(problem, small, order=order))
    best = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        ref = pd.finite_differences(problem, shape, order=order)
        wall = time.perf_counter() - t0
        if best is None or wall < best[0]:
            best = (wall, ref)
    wall, ref = best
    info = getattr(ref, "info", {})
    size = "x".join(str(s) for s in np.atleast_1d(shape))
    rec = common.record(
        problem_name,
        f"FD order {order} {size}",
        **common.errors(np.asarray(ref(test_points)), _exact_values(problem, exact, test_points)),
        wall_s=wall,
        assemble_s=info.get("setup_s"),
        solve_s=info.get("solve_s"),
        unknowns=info.get("unknowns", int(np.prod(shape))),
    )
    rec["note"] = "pd.finite_differences, interpolated to the test points"
    return rec
