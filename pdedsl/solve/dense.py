"""Exact least squares on the dense matrix, through lineax (small/medium problems)."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import lineax as lx

from ..assemble import LinearSystem
from .base import AbstractSolver, SolverResult


class DenseLeastSquares(AbstractSolver):
    """Column-scaled dense least squares: truncated SVD (default) or QR via lineax.

    Columns are scaled to unit norm first, then `lineax.SVD` returns the
    minimum-norm solution, discarding singular values below `rcond * s_max`
    (default: machine epsilon times the larger dimension). Random features are
    nearly dependent (cond(M) ~ 1e16), so the truncation is what keeps the
    coefficients bounded; `method="qr"` is faster but only for full-rank M.
    Memory is O(N * J * K): use an iterative solver beyond a few thousand unknowns.
    """

    method: str = "svd"
    rcond: float | None = None

    def __check_init__(self):
        if self.method not in ("svd", "qr"):
            raise ValueError(f"method must be 'svd' or 'qr', got {self.method!r}.")

    def __call__(self, system: LinearSystem) -> SolverResult:
        return _dense(self, system)


@eqx.filter_jit
def _dense(self: DenseLeastSquares, system: LinearSystem) -> SolverResult:
    a = system.dense()
    colnorm = jnp.sqrt(jnp.sum(a**2, axis=0))
    colscale = jnp.where(colnorm > 0, 1.0 / jnp.where(colnorm > 0, colnorm, 1.0), 0.0)
    a = a * colscale[None, :]
    op = lx.MatrixLinearOperator(a)
    if self.method == "svd":
        solver = lx.SVD(rcond=self.rcond)
    else:
        solver = lx.QR()
    state = solver.init(op, {})
    sol = lx.linear_solve(op, system.rhs, solver, state=state, throw=False)
    x = sol.value * colscale
    coeffs = x.reshape(system.num_subdomains, system.num_features)
    res = jnp.linalg.norm(system.mv(coeffs) - system.rhs)
    rank = cond = None
    if self.method == "svd":
        _, s, _ = state[0]  # lineax keeps the (u, s, vt) factorisation first
        cutoff = (self.rcond if self.rcond is not None else jnp.finfo(a.dtype).eps * max(a.shape)) * s[0]
        rank = jnp.sum(s > cutoff)
        cond = s[0] / s[-1]
    ok = sol.result == lx.RESULTS.successful
    return SolverResult(
        coefficients=coeffs,
        residual_norm=res,
        rank=rank,
        condition_number=cond,
        success=ok,
        message=f"lineax {type(solver).__name__}",
    )
