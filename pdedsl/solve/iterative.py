"""Matrix-free iterative solvers through lineax: LSMR on M, CG on the normal
equations, GMRES for square systems, and any user-provided lineax solver."""

from __future__ import annotations

import dataclasses
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx

from ..assemble import LinearSystem
from .base import AbstractSolver, SolverResult
from .preconditioners import AbstractPreconditioner, BlockFilter, ColumnScaling, build

_LSMR_STOP = {
    0: "not started",
    1: "converged: M a = b solved to tolerance",
    2: "converged: least-squares optimality ||M^T r|| small",
    3: "stopped: condition-number estimate above conlim",
    4: "stopped: max_steps reached",
}


def operator(system: LinearSystem, right=None) -> lx.FunctionLinearOperator:
    """M (times a right preconditioner) as a matrix-free lineax operator on (J, K)
    coefficient arrays; its transpose comes from JAX's linear transposition of the
    gather (a scatter-add), so nothing is materialised."""
    struct = jax.ShapeDtypeStruct((system.num_subdomains, system.num_features), system.values.dtype)
    fn = system.mv if right is None else (lambda y: system.mv(right(y)))
    return lx.FunctionLinearOperator(fn, struct)


def normal_operator(system: LinearSystem) -> lx.FunctionLinearOperator:
    """M^T M, symmetric positive semidefinite, matrix-free."""
    struct = jax.ShapeDtypeStruct((system.num_subdomains, system.num_features), system.values.dtype)
    return lx.FunctionLinearOperator(
        lambda a: system.rmv(system.mv(a)),
        struct,
        tags=(lx.symmetric_tag, lx.positive_semidefinite_tag),
    )


def _timed_build(pre, system):
    """Build a preconditioner and time it (the operator-only setup phase)."""
    t0 = time.perf_counter()
    built = build(pre, system)
    jax.block_until_ready(built)
    return built, time.perf_counter() - t0


def _with_setup(result: SolverResult, setup_s: float) -> SolverResult:
    return dataclasses.replace(result, setup_s=setup_s)


def _check_traceable(solver):
    if solver.preconditioner.host:
        raise NotImplementedError(
            f"{solver.name}: the {solver.preconditioner.name} preconditioner is built on the host "
            "and cannot run inside a jitted computation; use pd.BlockFilter() or pd.ColumnScaling()."
        )


def _finish(system, coeffs, iterations, ok, message, filtered=None, cond=None):
    res = jnp.linalg.norm(system.mv(coeffs) - system.rhs)
    return SolverResult(
        coefficients=coeffs,
        residual_norm=res,
        iterations=iterations,
        success=ok,
        message=message,
        filtered=filtered,
        condition_number=cond,
    )


class LSMR(AbstractSolver):
    """LSMR on the right-preconditioned system `M R y = b`, `a = R y`.

    Works on M itself (no squared condition number). Stops when
    `||M^T r|| <= rtol ||M R|| ||r||` or `||r|| <= rtol (||M R|| ||y|| + ||b||)`, or
    after `max_steps` (then the solve fails). Default preconditioner: `BlockFilter()`.
    """

    preconditioner: AbstractPreconditioner = BlockFilter()
    rtol: float = 1e-12
    max_steps: int = 20_000

    def __call__(self, system: LinearSystem) -> SolverResult:
        pre, setup = _timed_build(self.preconditioner, system)
        return _with_setup(_lsmr(self, system, pre), setup)

    @property
    def traceable(self) -> bool:
        return not self.preconditioner.host

    def traced(self, system: LinearSystem) -> SolverResult:
        _check_traceable(self)
        return _lsmr(self, system, build(self.preconditioner, system))

    @property
    def name(self):
        return f"LSMR({self.preconditioner.name})"


@eqx.filter_jit
def _lsmr(self: LSMR, system: LinearSystem, pre) -> SolverResult:
    solver = lx.LSMR(rtol=self.rtol, atol=0.0, max_steps=self.max_steps, conlim=1e30)
    sol = lx.linear_solve(operator(system, pre.right), system.rhs, solver, throw=False)
    coeffs = pre.right(sol.value)
    istop = sol.stats["istop"]
    ok = (sol.result == lx.RESULTS.successful) & (istop <= 2)
    return _finish(
        system,
        coeffs,
        sol.stats["num_steps"],
        ok,
        f"lineax LSMR, {self.preconditioner.name} right preconditioner",
        filtered=pre.filtered,
        cond=sol.stats["cond_A"],
    )


class CGNormal(AbstractSolver):
    """Preconditioned conjugate gradients on the normal equations `M^T M a = M^T b`,
    in the CGLS form (products with M and M^T, never M^T M; `p^T M^T M p` is
    computed as `||M p||^2`, which stays non-negative in floating point).

    Cheap per iteration, but it squares the condition number: it needs a good
    preconditioner (`BlockFilter()` = filtered block Jacobi, `AdditiveSchwarz()`).
    Stops when the preconditioned normal residual `sqrt(r^T P r)` falls below
    `rtol` times its initial value (success), after `max_steps`, or when the
    residual grows a million-fold above its best (rounding has taken over); it
    returns the best iterate seen, so running past the attainable accuracy cannot
    ruin the answer. (We use our own loop: lineax's CG has no such safeguard, and
    on a degree-8 Legendre Poisson problem it diverged to 1e98 after stagnating.)
    """

    preconditioner: AbstractPreconditioner = ColumnScaling()
    rtol: float = 1e-10
    max_steps: int = 20_000
    progress: bool = False

    def __call__(self, system: LinearSystem) -> SolverResult:
        pre, setup = _timed_build(self.preconditioner, system)
        return _with_setup(_cg(self, system, pre), setup)

    @property
    def traceable(self) -> bool:
        return not self.preconditioner.host

    def traced(self, system: LinearSystem) -> SolverResult:
        _check_traceable(self)
        quiet = dataclasses.replace(self, progress=False)
        return _cg(quiet, system, build(self.preconditioner, system))

    @property
    def name(self):
        return f"CGNormal({self.preconditioner.name})"


def _report(k, residual):
    print(
        f"\r  CG iteration {int(k):>6d}   residual {float(residual):.3e}", end="", file=sys.stderr, flush=True
    )


@eqx.filter_jit
def _cg(self: CGNormal, system: LinearSystem, pre) -> SolverResult:
    dot = lambda a, b: jnp.sum(a * b)
    x0 = jnp.zeros((system.num_subdomains, system.num_features), system.values.dtype)
    r0 = system.rmv(system.rhs)
    z0 = pre.normal(r0)
    g0 = dot(r0, z0)
    tol = (self.rtol**2) * g0

    def cond(c):
        k, _, _, _, g, _, best_g, _, _ = c
        return (k < self.max_steps) & (g > tol) & jnp.isfinite(g) & (g <= 1e12 * best_g)

    def body(c):
        k, x, r, p, g, best_x, best_g, best_k, hist = c
        q = system.mv(p)
        alpha = g / jnp.maximum(dot(q, q), jnp.finfo(g.dtype).tiny)
        x = x + alpha * p
        # recompute the residual now and then, against drift
        r = jax.lax.cond(
            (k + 1) % 50 == 0,
            lambda: system.rmv(system.rhs - system.mv(x)),
            lambda: r - alpha * system.rmv(q),
        )
        z = pre.normal(r)
        g_new = dot(r, z)
        p = z + (g_new / g) * p
        better = g_new < best_g
        best_x = jnp.where(better, x, best_x)
        best_k = jnp.where(better, k + 1, best_k)
        hist = hist.at[k + 1].set(jnp.sqrt(jnp.abs(g_new / g0)))
        if self.progress:
            jax.lax.cond(
                (k + 1) % 100 == 0,
                lambda: jax.debug.callback(_report, k + 1, hist[k + 1]),
                lambda: None,
            )
        return k + 1, x, r, p, g_new, best_x, jnp.where(better, g_new, best_g), best_k, hist

    hist0 = jnp.full((self.max_steps + 1,), jnp.nan, g0.dtype).at[0].set(1.0)
    init = (jnp.array(0), x0, r0, z0, g0, x0, g0, jnp.array(0), hist0)
    k, _, _, _, g, best_x, best_g, best_k, hist = jax.lax.while_loop(cond, body, init)
    ok = best_g <= tol
    result = _finish(
        system,
        best_x,
        k,
        ok,
        f"CG on the normal equations (CGLS form), {self.preconditioner.name} preconditioner",
        filtered=pre.filtered,
    )
    return eqx.tree_at(lambda r: r.history, result, hist, is_leaf=lambda x: x is None)


class GMRES(AbstractSolver):
    """Right-preconditioned GMRES for square systems (as many rows as unknowns)."""

    preconditioner: AbstractPreconditioner = BlockFilter(rtol=0.0)
    rtol: float = 1e-12
    max_steps: int = 20_000
    restart: int = 100

    def __call__(self, system: LinearSystem) -> SolverResult:
        n, m = system.shape
        if n != m:
            raise ValueError(
                f"GMRES needs a square system, got {n} rows for {m} unknowns; choose "
                f"points so that rows == unknowns, or use pd.LSMR()."
            )
        pre, setup = _timed_build(self.preconditioner, system)
        return _with_setup(_gmres(self, system, pre), setup)

    @property
    def name(self):
        return f"GMRES({self.preconditioner.name})"


@eqx.filter_jit
def _gmres(self: GMRES, system: LinearSystem, pre) -> SolverResult:
    m = system.shape[1]
    op = operator(system, pre.right)
    atol = self.rtol * jnp.max(jnp.abs(system.rhs))
    solver = lx.GMRES(rtol=self.rtol, atol=atol, max_steps=self.max_steps, restart=self.restart)
    # lineax's GMRES wants matching in/out structures: work on flat vectors.
    shape = (system.num_subdomains, system.num_features)
    flat = lx.FunctionLinearOperator(
        lambda y: op.mv(y.reshape(shape)), jax.ShapeDtypeStruct((m,), system.values.dtype)
    )
    sol = lx.linear_solve(flat, system.rhs, solver, throw=False)
    coeffs = pre.right(sol.value.reshape(shape))
    return _finish(
        system,
        coeffs,
        sol.stats["num_steps"],
        sol.result == lx.RESULTS.successful,
        f"lineax GMRES, {self.preconditioner.name} right preconditioner",
        filtered=pre.filtered,
    )


_RECTANGULAR = (lx.LSMR, lx.QR, lx.SVD, lx.Normal)


class LineaxSolver(AbstractSolver):
    """Any lineax solver, as given. LSMR/QR/SVD/Normal act on column-scaled M;
    other solvers (CG, GMRES, ...) act on the Jacobi-preconditioned normal equations
    (or on M itself when the system is square and the solver is not symmetric-only)."""

    solver: lx.AbstractLinearSolver

    def __call__(self, system: LinearSystem) -> SolverResult:
        return _lineax(self, system)

    @property
    def name(self):
        return f"lineax.{type(self.solver).__name__}"


@eqx.filter_jit
def _lineax(self: LineaxSolver, system: LinearSystem) -> SolverResult:
    pre = ColumnScaling().build(system)
    if isinstance(self.solver, _RECTANGULAR):
        sol = lx.linear_solve(operator(system, pre.right), system.rhs, self.solver, throw=False)
        coeffs = pre.right(sol.value)
    else:
        op = operator(system, pre.right)
        rhs = op.transpose().mv(system.rhs)
        normal = lx.TaggedLinearOperator(
            op.transpose() @ op, (lx.symmetric_tag, lx.positive_semidefinite_tag)
        )
        sol = lx.linear_solve(normal, rhs, self.solver, throw=False)
        coeffs = pre.right(sol.value)
    return _finish(
        system,
        coeffs,
        sol.stats.get("num_steps"),
        sol.result == lx.RESULTS.successful,
        f"lineax {type(self.solver).__name__} (user-provided)",
    )


def as_solver(solver) -> AbstractSolver:
    """Accept a pdedsl solver or a lineax solver."""
    if isinstance(solver, AbstractSolver):
        return solver
    if isinstance(solver, lx.AbstractLinearSolver):
        if isinstance(solver, lx.AutoLinearSolver):
            raise TypeError(
                "lineax.AutoLinearSolver materialises the matrix and never picks an iterative "
                "solver; pass solver=None for pdedsl's automatic choice, or a specific solver."
            )
        return LineaxSolver(solver)
    raise TypeError(
        f"solver must be a pdedsl solver (pd.DenseLeastSquares(), pd.LSMR(), pd.CGNormal(), "
        f"pd.GMRES()) or a lineax solver, got {solver!r}."
    )
