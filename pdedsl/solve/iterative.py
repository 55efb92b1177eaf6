"""Matrix-free iterative solvers through lineax: LSMR on M, CG on the normal
equations, GMRES for square systems, and any user-provided lineax solver."""

from __future__ import annotations

import abc
import dataclasses
import functools
import time
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import scipy.linalg

from ..assemble import LinearSystem
from . import progress
from .base import AbstractSolver, SolverResult, check_count, check_tolerance
from .preconditioners import (
    AbstractPreconditioner,
    BlockFilter,
    ColumnScaling,
    build,
    check_preconditioner,
)


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


def _finish(
    system,
    coeffs,
    iterations,
    ok,
    message,
    filtered=None,
    cond=None,
    stop_measure=None,
    stop_rule="",
    condition_rule="",
):
    res = jnp.linalg.norm(system.mv(coeffs) - system.rhs)
    return SolverResult(
        coefficients=coeffs,
        residual_norm=res,
        iterations=iterations,
        success=ok,
        message=message,
        filtered=filtered,
        condition_number=cond,
        stop_measure=stop_measure,
        stop_rule=stop_rule,
        condition_rule=condition_rule if cond is not None else "",
    )


class _PreconditionedIterative(AbstractSolver):
    """Shared driver of LSMR and CGNormal: build the preconditioner (timed), run the
    compiled loop `_run`, report progress; `traced` runs the same loop inside a
    jitted computation (no timing, no host callbacks: used in sharded steps)."""

    label: ClassVar[str] = ""
    # whether the solver applies its preconditioner as a right preconditioner `M R`
    right_preconditioned: ClassVar[bool] = True

    def __check_init__(self):
        owner = type(self).__name__
        check_preconditioner(owner, self.preconditioner, right=self.right_preconditioned)
        check_tolerance(owner, "rtol", self.rtol)
        check_count(owner, "max_steps", self.max_steps)

    @abc.abstractmethod
    def _run(self, system, pre) -> SolverResult:
        """The compiled solve with a built preconditioner."""

    def __call__(self, system: LinearSystem) -> SolverResult:
        pre, setup = _timed_build(self.preconditioner, system)
        if self.progress:
            progress.start()
        result = _lanczos_condition(self._run(system, pre))
        if self.progress:
            k = int(result.iterations)
            progress.done(self.label, k, result.history[k])
        return _with_setup(result, setup)

    def bind(self, model) -> "_PreconditionedIterative":
        """This solver with its preconditioner prepared for `model` (see `TwoLevel`)."""
        return dataclasses.replace(self, preconditioner=self.preconditioner.bind(model))

    @property
    def traceable(self) -> bool:
        return not self.preconditioner.host

    def traced(self, system: LinearSystem) -> SolverResult:
        _check_traceable(self)
        quiet = dataclasses.replace(self, progress=False)  # no host callbacks inside sharded steps
        return quiet._run(system, build(self.preconditioner, system))


class LSMR(_PreconditionedIterative):
    """LSMR (Fong and Saunders, 2011) on the right-preconditioned system `M R y = b`, `a = R y`.

    Works on M itself (no squared condition number). Stops when
    `||M^T r|| <= rtol ||M R|| ||r||` or `||r|| <= rtol (||M R|| ||y|| + ||b||)`, or
    after `max_steps` (then the solve fails). Default preconditioner: `BlockFilter()`.
    Records the estimate of `||r|| / ||b||` per iteration (`sol.info["history"]`);
    `progress=True` prints the iteration and that residual while it runs
    (`pd.solve(..., progress=...)` sets it).
    """

    preconditioner: AbstractPreconditioner = BlockFilter()
    rtol: float = 1e-12
    max_steps: int = 20_000
    progress: bool = False

    label = "LSMR"

    def _run(self, system, pre):
        return _lsmr(self, system, pre)

    @property
    def name(self):
        return f"LSMR({self.preconditioner.name})"


def _rotation(a, b):
    """(c, s, r) with r = hypot(a, b) >= 0, [c s; -s c] [a; b] = [r; 0]."""
    r = jnp.hypot(a, b)
    safe = jnp.where(r == 0, 1.0, r)
    return jnp.where(r == 0, 1.0, a / safe), jnp.where(r == 0, 0.0, b / safe), r


@eqx.filter_jit
def _lsmr(self: LSMR, system: LinearSystem, pre) -> SolverResult:
    op = operator(system, pre.right)
    mv, rmv = op.mv, op.transpose().mv
    norm = lambda v: jnp.sqrt(jnp.sum(v * v))
    b = system.rhs
    dtype = b.dtype
    normb = norm(b)
    beta = normb
    u = b / jnp.where(beta == 0, 1.0, beta)
    v = rmv(u)
    alpha = norm(v)
    v = v / jnp.where(alpha == 0, 1.0, alpha)
    zero = jnp.zeros((), dtype)
    one = jnp.ones((), dtype)
    stop = jnp.where(beta == 0, 1, jnp.where(alpha == 0, 2, 0))
    hist0 = jnp.full((self.max_steps + 1,), jnp.nan, dtype).at[0].set(1.0)
    # Bidiagonalisation (u, v, alpha, beta); the QR factors of the lower bidiagonal
    # matrix (rho, c) and of its transpose (rhobar, cbar, sbar) give x's update
    # directions (h, hbar) and ||M^T r|| = |zetabar|; the rotations applied to
    # beta_1 e_1 (betadd, betad, the tau's) give the estimate of ||r||.
    init = dict(
        k=jnp.array(0),
        stop=stop,
        x=jnp.zeros_like(v),
        u=u,
        v=v,
        h=v,
        hbar=jnp.zeros_like(v),
        alpha=alpha,
        alphabar=alpha,
        zeta=zero,
        zetabar=alpha * beta,
        rho=one,
        rhobar=one,
        cbar=one,
        sbar=zero,
        betadd=beta,
        betad=zero,
        rhodold=one,
        tautilde=zero,
        thetatilde=zero,
        normA2=alpha**2,
        maxrbar=zero,
        minrbar=jnp.array(jnp.finfo(dtype).max, dtype),
        condA=one,
        normr=beta,
        hist=hist0,
        measure=jnp.where(beta == 0, zero, jnp.where(alpha == 0, zero, one)),
    )

    def body(st):
        st = dict(st)
        k = st["k"] + 1
        u = mv(st["v"]) - st["alpha"] * st["u"]
        beta = norm(u)
        u = u / jnp.where(beta == 0, 1.0, beta)
        v = jnp.where(beta == 0, st["v"], rmv(u) - beta * st["v"])
        alpha = jnp.where(beta == 0, st["alpha"], norm(v))
        v = v / jnp.where(alpha == 0, 1.0, alpha)

        # rotation turning the bidiagonal matrix into upper triangular R
        rho_old = st["rho"]
        c, s, rho = _rotation(st["alphabar"], beta)
        theta = s * alpha
        alphabar = c * alpha
        # rotation turning R^T into upper triangular Rbar
        rhobar_old = st["rhobar"]
        zeta_old = st["zeta"]
        thetabar = st["sbar"] * rho
        rhotemp = st["cbar"] * rho
        cbar, sbar, rhobar = _rotation(st["cbar"] * rho, theta)
        zeta = cbar * st["zetabar"]
        zetabar = -sbar * st["zetabar"]
        # update the directions and the iterate
        hbar = st["h"] - (thetabar * rho / (rho_old * rhobar_old)) * st["hbar"]
        x = st["x"] + (zeta / (rho * rhobar)) * hbar
        h = v - (theta / rho) * st["h"]

        # estimate of ||r||
        betahat = c * st["betadd"]
        betadd = -s * st["betadd"]
        thetatilde_old = st["thetatilde"]
        ctilde, stilde, rhotilde = _rotation(st["rhodold"], thetabar)
        thetatilde = stilde * rhobar
        rhodold = ctilde * rhobar
        betad = -stilde * st["betad"] + ctilde * betahat
        tautilde = (zeta_old - thetatilde_old * st["tautilde"]) / rhotilde
        taud = (zeta - thetatilde * tautilde) / rhodold
        normr = jnp.sqrt((betad - taud) ** 2 + betadd**2)

        # estimates of ||M R|| and cond(M R)
        normA = jnp.sqrt(st["normA2"] + beta**2)
        normA2 = normA**2 + alpha**2
        maxrbar = jnp.maximum(st["maxrbar"], rhobar_old)
        minrbar = jnp.where(k > 1, jnp.minimum(st["minrbar"], rhobar_old), st["minrbar"])
        condA = jnp.maximum(maxrbar, rhotemp) / jnp.minimum(minrbar, rhotemp)

        normAr = jnp.abs(zetabar)
        tiny = jnp.finfo(dtype).tiny
        measure = jnp.minimum(
            normAr / jnp.maximum(normA * normr, tiny), normr / jnp.maximum(normA * norm(x) + normb, tiny)
        )
        stop = jnp.where(k >= self.max_steps, 4, 0)
        stop = jnp.where(condA > 1e30, 3, stop)
        stop = jnp.where(normAr <= self.rtol * normA * normr, 2, stop)
        stop = jnp.where(normr <= self.rtol * (normA * norm(x) + normb), 1, stop)
        rel = normr / jnp.where(normb == 0, 1.0, normb)
        hist = st["hist"].at[k].set(rel)
        if self.progress:
            _tick("LSMR", k, rel)
        return dict(
            k=k, stop=stop, x=x, u=u, v=v, h=h, hbar=hbar, alpha=alpha, alphabar=alphabar, zeta=zeta,
            zetabar=zetabar, rho=rho, rhobar=rhobar, cbar=cbar, sbar=sbar, betadd=betadd, betad=betad,
            rhodold=rhodold, tautilde=tautilde, thetatilde=thetatilde, normA2=normA2, maxrbar=maxrbar,
            minrbar=minrbar, condA=condA, normr=normr, hist=hist, measure=measure,
        )  # fmt: skip

    st = jax.lax.while_loop(lambda st: st["stop"] == 0, body, init)
    coeffs = pre.right(st["x"])
    result = _finish(
        system,
        coeffs,
        st["k"],
        st["stop"] <= 2,
        f"LSMR, {self.preconditioner.name} right preconditioner",
        filtered=pre.filtered,
        cond=st["condA"],
        condition_rule="LSMR's estimate of cond(M R), after preconditioning",
        stop_measure=st["measure"],
        stop_rule="min(||(M R)^T r|| / (||M R|| ||r||), ||r|| / (||M R|| ||y|| + ||b||)), LSMR's two tests",
    )
    return eqx.tree_at(lambda r: r.history, result, st["hist"], is_leaf=lambda x: x is None)


def _tick(label, k, residual, skip=False):
    """Inside a compiled loop: hand (k, residual) to the host every `progress.EVERY` iterations
    (not where `skip`)."""
    jax.lax.cond(
        (k % progress.EVERY == 0) & jnp.logical_not(skip),
        lambda: jax.debug.callback(functools.partial(progress.tick, label), k, residual),
        lambda: None,
    )


class CGNormal(_PreconditionedIterative):
    """Preconditioned conjugate gradients on the normal equations `M^T M a = M^T b`,
    in the CGLS form (products with M and M^T, never M^T M; `p^T M^T M p` is
    computed as `||M p||^2`, which stays non-negative in floating point).

    Cheap per iteration, but it squares the condition number: it needs a good
    preconditioner (`BlockFilter()` = filtered block Jacobi, `AdditiveSchwarz()`).
    Stops when the preconditioned normal residual `sqrt(r^T P r)` falls below
    `rtol` times its initial value, or (LSMR's second test, for an inconsistent
    system) below `rtol ||M P^(1/2)|| ||b - M a||` (success; the norm estimated from
    below by CG's Lanczos coefficients), after `max_steps`, or when the
    residual grows a million-fold above its best (rounding has taken over); it
    returns the best iterate seen, so running past the attainable accuracy cannot
    ruin the answer. It also stops, failing, if `r^T P r` turns negative (a
    preconditioner that is not positive definite in floating point, e.g. a block
    pseudo-inverse filtered at 1e-12 on near-dependent columns): a breakdown,
    reported as such (`SolverResult.breakdown`), never mistaken for convergence.
    (We use our own loop: lineax's CG has no such safeguard, and on a degree-8
    Legendre Poisson problem it diverged to 1e98 after stagnating.)
    """

    preconditioner: AbstractPreconditioner = ColumnScaling()
    rtol: float = 1e-10
    max_steps: int = 20_000
    progress: bool = False

    label = "CG"
    right_preconditioned = False

    def _run(self, system, pre):
        return _cg(self, system, pre)

    @property
    def name(self):
        return f"CGNormal({self.preconditioner.name})"


@eqx.filter_jit
def _cg(self: CGNormal, system: LinearSystem, pre) -> SolverResult:
    dot = lambda a, b: jnp.sum(a * b)
    # (a two-level preconditioner in deflation form starts from its coarse solution;
    # `done` is the part of the start's measure b^T B b that this removes)
    x0, done = pre.cg_start(system.rmv(system.rhs))
    if x0 is None:  # from zero
        x0 = jnp.zeros((system.num_subdomains, system.num_features), system.values.dtype)

    # The second test, LSMR's for an inconsistent system: the gradient of the
    # preconditioned least-squares problem small against ||M P^(1/2)|| ||s||, s = b - M x
    # the least-squares residual (||(M P^(1/2))^T s||^2 = r^T P r = g). Without it CG
    # cannot stop where b is nearly orthogonal to the range of M, as in Gauss-Newton's
    # later steps: there ||M^T b|| is at the rounding level of ||M|| ||b||. ||M P^(1/2)||^2
    # is estimated from below by the largest diagonal entry of CG's Lanczos matrix (so
    # the test is stricter than with the true norm).
    def small_gradient(g, norm2, s2):
        return g <= (self.rtol**2) * norm2 * s2

    def cond(c):
        k, _, _, _, g, _, best_g, _, _, (norm2, s2, _), (_, tol, _) = c
        # g < 0: the preconditioner is not positive definite in floating point (a
        # breakdown, not convergence; never accepted as the best iterate)
        return (k < 0) | (
            (k < self.max_steps)
            & (g > tol)
            & ~small_gradient(g, norm2, s2)
            & jnp.isfinite(g)
            & (g <= 1e12 * best_g)
            & (g >= 0)
        )

    # Iteration k = -1 only starts: its step is zero, its residual is computed from x0
    # (the periodic recomputation below) and its preconditioned residual is the first
    # direction. So the preconditioner and the products appear once in the compiled
    # loop, not once more before it (a two-level preconditioner's application took a
    # third of the loop's compilation).
    def body(c):
        k, x, r, p, g, best_x, best_g, hist, (alphas, betas), (norm2, s2, previous), (start, tol, g0) = c
        first = k < 0
        q = system.mv(p)
        alpha = jnp.where(first, 0.0, g / jnp.maximum(dot(q, q), jnp.finfo(g.dtype).tiny))
        x = x + alpha * p

        def recompute():  # now and then, against drift; and at the start
            s = system.rhs - system.mv(x)
            return system.rmv(s), dot(s, s)

        # ||s - alpha q||^2 = ||s||^2 - alpha g (s^T q = r^T p = r^T z = g, alpha ||q||^2 = g)
        r, s2 = jax.lax.cond(
            (k + 1) % 50 == 0,
            recompute,
            lambda: (r - alpha * system.rmv(q), jnp.maximum(s2 - alpha * g, 0.0)),
        )
        z = pre.cg_apply(r)
        g_new = dot(r, z)
        start = jnp.where(first, g_new + done, start)
        tol = jnp.where(first, (self.rtol**2) * start, tol)
        g0 = jnp.where(first, g_new, g0)
        beta = jnp.where(first, 0.0, g_new / g)
        # the Lanczos matrix's diagonal entry 1/alpha_k + beta_(k-1)/alpha_(k-1)
        diagonal = 1.0 / alpha + previous
        norm2 = jnp.where(first, norm2, jnp.maximum(norm2, jnp.where(jnp.isfinite(diagonal), diagonal, 0.0)))
        p = jnp.where(first, z, z + beta * p)
        better = first | ((g_new < best_g) & (g_new >= 0))
        best_x = jnp.where(better, x, best_x)
        scale = jnp.where(first, jnp.where(start == 0, 1.0, start), start)
        hist = hist.at[k + 1].set(jnp.sqrt(jnp.abs(g_new / scale)))
        if self.progress:
            _tick("CG", k + 1, hist[k + 1], skip=first)
        at = jnp.where(first, self.max_steps, k)  # the start records no Lanczos coefficients
        lanczos = (alphas.at[at].set(alpha, mode="drop"), betas.at[at].set(beta, mode="drop"))
        best_g = jnp.where(better, g_new, best_g)
        previous = jnp.where(first, 0.0, beta / alpha)
        return k + 1, x, r, p, g_new, best_x, best_g, hist, lanczos, (norm2, s2, previous), (start, tol, g0)

    dtype = system.values.dtype
    hist0 = jnp.full((self.max_steps + 1,), jnp.nan, dtype)
    coefficients = jnp.zeros((self.max_steps,), dtype)
    zero = jnp.zeros((), dtype)
    one = jnp.ones((), dtype)
    init = (
        jnp.array(-1),
        x0,
        jnp.zeros_like(x0),
        jnp.zeros_like(x0),
        one,
        x0,
        one,
        hist0,
        (coefficients, coefficients),
        (zero, zero, zero),
        (one, zero, zero),
    )
    state = jax.lax.while_loop(cond, body, init)
    k, _, _, _, g, best_x, best_g, hist, lanczos, (norm2, _, _), (start, tol, g0) = state
    # the least-squares residual of the iterate returned
    s_best = system.rhs - system.mv(best_x)
    s2 = dot(s_best, s_best)
    ok = ((best_g <= tol) | small_gradient(best_g, norm2, s2)) & (g0 >= 0)
    first = jnp.sqrt(jnp.abs(best_g / jnp.where(start == 0, 1.0, start)))
    second = jnp.sqrt(jnp.abs(best_g / jnp.where(norm2 * s2 == 0, 1.0, norm2 * s2)))
    result = _finish(
        system,
        best_x,
        k,
        ok,
        f"CG on the normal equations (CGLS form), {self.preconditioner.name} preconditioner",
        filtered=pre.filtered,
        stop_measure=jnp.where(norm2 * s2 > 0, jnp.minimum(first, second), first),
        stop_rule=(
            "min(sqrt(r^T P r) relative to its start, ||(M P^(1/2))^T s|| / (||M P^(1/2)|| ||s||)): "
            "the preconditioned normal residual r = M^T s, s = b - M a"
        ),
    )
    result = eqx.tree_at(lambda r: r.breakdown, result, ~ok & ((g < 0) | (g0 < 0)))
    result = eqx.tree_at(lambda r: r.lanczos, result, lanczos, is_leaf=lambda x: x is None)
    return eqx.tree_at(lambda r: r.history, result, hist, is_leaf=lambda x: x is None)


def _lanczos_condition(result: SolverResult) -> SolverResult:
    """CG's estimate of the condition number of the preconditioned normal matrix
    `P M^T M`, on the host: CG's step lengths alpha_j and updates beta_j are the
    Lanczos tridiagonal T of that matrix on the Krylov space it explored
    (diagonal 1/alpha_j + beta_{j-1}/alpha_{j-1}, off-diagonal sqrt(beta_j)/alpha_j),
    and the ratio of T's extreme eigenvalues is the condition number CG saw. It
    falls short of the matrix's where CG converged before resolving its extreme
    eigenvalues (directions the right-hand side hardly excites, or that a filtering
    preconditioner drops), and rounding can move it either way. None after a
    breakdown or fewer than two iterations. Solvers without the coefficients pass
    unchanged."""
    if result.lanczos is None:
        return result
    k = int(result.iterations)
    alphas, betas = (np.asarray(a)[:k] for a in result.lanczos)
    cond = None
    if k >= 2 and not bool(result.breakdown) and np.all(np.isfinite(alphas)) and np.all(alphas > 0):
        diagonal = 1.0 / alphas
        diagonal[1:] += betas[:-1] / alphas[:-1]
        off = np.sqrt(np.maximum(betas[:-1], 0.0)) / alphas[:-1]
        lo = scipy.linalg.eigvalsh_tridiagonal(diagonal, off, select="i", select_range=(0, 0))[0]
        hi = scipy.linalg.eigvalsh_tridiagonal(diagonal, off, select="i", select_range=(k - 1, k - 1))[0]
        if lo > 0 and np.isfinite(hi):
            cond = float(hi / lo)
    rule = f"CG's Lanczos estimate of cond(P M^T M), the condition number its {k} iterations saw"
    return dataclasses.replace(
        result, condition_number=cond, condition_rule=rule if cond is not None else "", lanczos=None
    )


class GMRES(AbstractSolver):
    """Restarted GMRES on the right-preconditioned square system `M R y = b`, `a = R y`.

    Each cycle builds a Krylov basis of up to `restart` vectors (Arnoldi with
    classical Gram-Schmidt applied twice) and minimises the residual over it; it
    stops when `||r|| <= rtol ||b||` (success), after `max_steps` cycles, or when
    a whole cycle does not reduce the residual (stagnation). Records `||r|| / ||b||`
    at the end of every cycle (`sol.info["history"]`); `progress=True` prints the
    inner iteration and residual while it runs.
    """

    preconditioner: AbstractPreconditioner = BlockFilter(rtol=0.0)
    rtol: float = 1e-12
    max_steps: int = 20_000
    restart: int = 100
    progress: bool = False

    def __check_init__(self):
        check_preconditioner("GMRES", self.preconditioner, right=True)
        check_tolerance("GMRES", "rtol", self.rtol)
        check_count("GMRES", "max_steps", self.max_steps)
        check_count("GMRES", "restart", self.restart)

    def __call__(self, system: LinearSystem) -> SolverResult:
        n, m = system.shape
        if n != m:
            raise ValueError(
                f"GMRES needs a square system, got {n} rows for {m} unknowns; choose "
                f"points so that rows == unknowns, or use pd.LSMR()."
            )
        pre, setup = _timed_build(self.preconditioner, system)
        if self.progress:
            progress.start()
        result, inner = _gmres(self, system, pre)
        if self.progress:
            progress.done("GMRES", int(inner), result.history[int(result.iterations)])
        return _with_setup(result, setup)

    @property
    def name(self):
        return f"GMRES({self.preconditioner.name})"


@eqx.filter_jit
def _gmres(self: GMRES, system: LinearSystem, pre) -> tuple[SolverResult, jax.Array]:
    m = system.shape[1]
    shape = (system.num_subdomains, system.num_features)
    op = operator(system, pre.right)
    A = lambda y: op.mv(y.reshape(shape))
    b = system.rhs
    dtype = b.dtype
    normb = jnp.linalg.norm(b)
    tol = self.rtol * normb
    R = min(self.restart, m)

    def cycle(y, inner0):
        """One restart cycle from y: returns the new y, its residual norm, the inner count."""
        r = b - A(y)
        beta = jnp.linalg.norm(r)
        V = jnp.zeros((R + 1, m), dtype).at[0].set(r / jnp.where(beta == 0, 1.0, beta))
        H = jnp.zeros((R + 1, R), dtype)  # the Hessenberg matrix, rotated to upper triangular
        cs = jnp.zeros(R, dtype)
        sn = jnp.zeros(R, dtype)
        g = jnp.zeros(R + 1, dtype).at[0].set(beta)  # rotated beta e_1: |g[j]| is the residual

        def cond(c):
            j, _, _, _, _, g, broke = c
            return (j < R) & (jnp.abs(g[j]) > tol) & ~broke

        def body(c):
            j, V, H, cs, sn, g, _ = c
            w = A(V[j])
            mask = (jnp.arange(R + 1) <= j).astype(dtype)
            h = (V @ w) * mask
            w = w - V.T @ h
            h2 = (V @ w) * mask  # second pass against rounding
            w = w - V.T @ h2
            h = h + h2
            hn = jnp.linalg.norm(w)
            broke = hn <= 1e-14 * jnp.linalg.norm(h)
            V = V.at[j + 1].set(w / jnp.where(hn == 0, 1.0, hn))
            col = h.at[j + 1].set(hn)

            def rotate(i, col):  # the earlier rotations, in order
                ci, si = cs[i], sn[i]
                a, b2 = col[i], col[i + 1]
                return jnp.where(i < j, col.at[i].set(ci * a + si * b2).at[i + 1].set(-si * a + ci * b2), col)

            col = jax.lax.fori_loop(0, R, rotate, col)
            c, s, rr = _rotation(col[j], col[j + 1])
            col = col.at[j].set(rr).at[j + 1].set(0.0)
            H = H.at[:, j].set(col)
            cs, sn = cs.at[j].set(c), sn.at[j].set(s)
            g = g.at[j + 1].set(-s * g[j]).at[j].set(c * g[j])
            if self.progress:
                _tick("GMRES", inner0 + j + 1, jnp.abs(g[j + 1]) / normb)
            return j + 1, V, H, cs, sn, g, broke

        j, V, H, _, _, g, _ = jax.lax.while_loop(
            cond, body, (jnp.array(0), V, H, cs, sn, g, jnp.array(False))
        )
        # solve the leading j x j triangle (the rest: identity, zero right-hand side)
        used = jnp.arange(R) < j
        T = jnp.where(used[:, None] & used[None, :], H[:R], jnp.eye(R, dtype=dtype))
        z = jax.scipy.linalg.solve_triangular(T, jnp.where(used, g[:R], 0.0), lower=False)
        y = y + V[:R].T @ z
        return y, jnp.linalg.norm(b - A(y)), inner0 + j

    def outer_cond(c):
        k, _, res, best, _, _ = c
        return (k < self.max_steps) & (res > tol) & jnp.isfinite(res) & ((k == 0) | (res < best))

    def outer_body(c):
        k, y, res, _, inner, hist = c
        y, new, inner = cycle(y, inner)
        return k + 1, y, new, res, inner, hist.at[k + 1].set(new / normb)

    hist0 = jnp.full((self.max_steps + 1,), jnp.nan, dtype).at[0].set(1.0)
    y0 = jnp.zeros(m, dtype)
    init = (jnp.array(0), y0, normb, jnp.array(jnp.inf, dtype), jnp.array(0), hist0)
    k, y, res, _, inner, hist = jax.lax.while_loop(outer_cond, outer_body, init)
    result = _finish(
        system,
        pre.right(y.reshape(shape)),
        k,
        res <= tol,
        f"restarted GMRES({R}), {self.preconditioner.name} right preconditioner",
        filtered=pre.filtered,
        stop_measure=res / jnp.where(normb == 0, 1.0, normb),
        stop_rule="||r|| / ||b||",
    )
    return eqx.tree_at(lambda r: r.history, result, hist, is_leaf=lambda x: x is None), inner


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
    if isinstance(solver, type) and issubclass(solver, (AbstractSolver, lx.AbstractLinearSolver)):
        prefix = "pd" if issubclass(solver, AbstractSolver) else "lineax"
        raise TypeError(f"solver: pass a solver, {prefix}.{solver.__name__}(), not the class itself.")
    raise TypeError(
        f"solver must be a pdedsl solver (pd.DenseLeastSquares(), pd.LSMR(), pd.CGNormal(), "
        f"pd.GMRES()) or a lineax solver, got {solver!r}."
    )
