"""Radau IIA implicit Runge-Kutta steps for the linear system M(t) y' + K(t) y = F(t).

M may be singular (boundary rows are algebraic: an index-1 DAE). Radau IIA is
L-stable (stiff diffusion is damped, never amplified; waves do not grow) and
stiffly accurate (the step's end value is its last stage, so the algebraic
rows hold exactly at every step). s stages give order 2s - 1.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sps
import scipy.sparse.linalg as spl


def tableau(stages: int) -> tuple[np.ndarray, np.ndarray]:
    """(A, c) of the Radau IIA method with 2 or 3 stages (order 3 or 5)."""
    if stages == 2:
        a = np.array([[5 / 12, -1 / 12], [3 / 4, 1 / 4]])
        return a, np.array([1 / 3, 1.0])
    if stages == 3:
        r = np.sqrt(6.0)
        a = np.array(
            [
                [(88 - 7 * r) / 360, (296 - 169 * r) / 1800, (-2 + 3 * r) / 225],
                [(296 + 169 * r) / 1800, (88 + 7 * r) / 360, (-2 - 3 * r) / 225],
                [(16 - r) / 36, (16 + r) / 36, 1 / 9],
            ]
        )
        return a, np.array([(4 - r) / 10, (4 + r) / 10, 1.0])
    raise ValueError(f"Radau IIA with {stages} stages is not provided (2 or 3).")


def _factor(mat: sps.spmatrix):
    try:
        return spl.splu(sps.csc_matrix(mat))
    except RuntimeError as e:  # SuperLU: "Factor is exactly singular"
        raise ValueError(
            "The time-stepping matrix is singular: the boundary conditions do not determine "
            "the boundary values (check that every face has the conditions the equation needs)."
        ) from e


def integrate(
    matrices: Callable[[float], tuple[sps.spmatrix, sps.spmatrix]],
    forcing: Callable[[float], np.ndarray],
    y0: np.ndarray,
    times: np.ndarray,
    substeps: int,
    stages: int,
    constant: bool,
    record: Callable[[np.ndarray], np.ndarray],
) -> tuple[list[np.ndarray], float]:
    """Step from `times[0]` through every entry of `times`, `substeps` steps per interval.

    `matrices(t)` returns (M, K) and `forcing(t)` F at time t. With `constant` True, M and K are taken
    from the first call and, after diagonalising A^-1 = T diag(lam) T^-1, the stage
    system decouples into `lam_i/dt M + K`: one real and one complex sparse LU for 3
    stages, one complex LU for 2, factorised once per step size. Otherwise the
    coupled stage system is assembled and factorised at every step.
    Returns `record(y)` at every entry of `times`, and the factorisation time.
    """
    a, c = tableau(stages)
    winv = np.linalg.inv(a)
    y = np.asarray(y0, dtype=float)
    out = [record(y)]
    factor_s = 0.0
    dts = np.diff(np.asarray(times, dtype=float)) / substeps
    if constant:
        m0, k0 = matrices(times[0])
        lam, tmat = np.linalg.eig(winv)
        tinv = np.linalg.inv(tmat)
        cache: dict[float, dict[int, object]] = {}
        for interval, dt in enumerate(dts):
            key = float(f"{dt:.12e}")  # grid intervals differ by rounding only
            if key not in cache:
                t0 = time.perf_counter()
                # Conjugate eigenvalues share one LU: (conj(l)/dt M + K) v = r  <=>
                # (l/dt M + K) conj(v) = conj(r), since M and K are real.
                cache[key] = {
                    i: _factor((li / dt) * m0 + k0 if li.imag > 0 else (li.real / dt) * m0 + k0)
                    for i, li in enumerate(lam)
                    if li.imag >= 0
                }
                factor_s += time.perf_counter() - t0
            fac = cache[key]
            t = times[interval]
            for step in range(substeps):
                ts = t + step * dt
                mixed = tinv @ np.stack([forcing(ts + ci * dt) - k0 @ y for ci in c])
                z_last = np.zeros(y.shape, dtype=complex)
                for i, li in enumerate(lam):
                    if li.imag > 0:
                        v = fac[i].solve(np.ascontiguousarray(mixed[i]))
                    elif li.imag < 0:
                        j = int(np.argmin(np.abs(lam - np.conj(li))))
                        v = np.conj(fac[j].solve(np.ascontiguousarray(np.conj(mixed[i]))))
                    else:
                        v = fac[i].solve(np.ascontiguousarray(mixed[i].real))
                    z_last += tmat[-1, i] * v
                y = y + z_last.real
            out.append(record(y))
        return out, factor_s

    for interval, dt in enumerate(dts):
        t = times[interval]
        for step in range(substeps):
            ts = t + step * dt
            mats = [(*matrices(ts + ci * dt), forcing(ts + ci * dt)) for ci in c]
            blocks = [
                [
                    winv[i, j] / dt * mats[i][0] + (mats[i][1] if i == j else 0 * mats[i][1])
                    for j in range(stages)
                ]
                for i in range(stages)
            ]
            rhs = np.concatenate([f - k @ y for _, k, f in mats])
            t0 = time.perf_counter()
            lu = _factor(sps.bmat(blocks))
            factor_s += time.perf_counter() - t0
            y = y + lu.solve(rhs)[-y.size :]
        out.append(record(y))
    return out, factor_s


__all__ = ["integrate", "tableau"]
