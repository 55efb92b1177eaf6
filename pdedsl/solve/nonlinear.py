"""Nonlinear least squares over the window x basis structure: Gauss-Newton and
Levenberg-Marquardt (optimistix), variable projection, unknown parameters.

The unknowns are the coefficients `c` (J, K) of the ansatz and the unknown
parameters `theta` (p,). The residual of every collocation row is
`w_i * (R(x_i, U(x_i), theta) - data_i)` with `U_a(x_i) = sum D^a(w_j phi_jk)(x_i) c_jk`.
The basis derivatives `D^a(w_j phi_jk)(x_i)` are evaluated once; each Gauss-Newton
step only recomputes the pointwise factors `dR/dU_a`, so the Jacobian is a
`LinearSystem` with exactly the block-sparse structure of the linear case and is
solved by the same linear solvers (dense SVD, sparse normal equations, LSMR/CG with
their preconditioners). The parameter columns `dR/dtheta` (dense: every row depends
on theta) ride along as one extra "subdomain" block that every row touches.

The steps are optimistix's (`AbstractGaussNewton`; for Levenberg-Marquardt its
classical trust region). On one device they are driven from the host
(`_HostGaussNewton`, `_HostLevenbergMarquardt`: residual and Jacobian jitted, the
linear solve on the host, the update jitted), so any pdedsl solver -- including
host-side ones such as `SparseNormal` -- can be used. (They used to solve in a
`jax.pure_callback` inside optimistix's jitted step, where a jitted solver could
hang.) On sharded systems optimistix's own step runs, with our descent solving
inside it (`_InGraphSolve`). Variable projection's Gauss-Newton on the parameters
alone is a small host loop of its own (`_variable_projection`).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from jax.sharding import NamedSharding, PartitionSpec as P
from jaxtyping import Array, Float, Int

from ..ansatz import FBPINN, evaluate
from ..assemble import LinearSystem
from ..assemble.assemble import _off_cut
from ..assemble.sharding import AXIS, mesh as shard_mesh, sharded_rows
from ..assemble.system import product_chunk_rows
from ..lower import CompiledNonlinearForm, LinearForm, NonlinearForm
from ..lower.nonlinear import from_linear
from .auto import Auto
from .base import AbstractSolver, SolverResult, check_count, check_nonnegative


class AbstractNonlinearSolver(eqx.Module):
    """Solves a nonlinear (or parameter-identification) least-squares problem."""

    @property
    def name(self) -> str:
        return type(self).__name__


# ---------------------------------------------------------------------------------
# The residual model: evaluated basis derivatives + compiled pointwise residuals.


class _Block(eqx.Module):
    points: Float[Array, "N d"]
    index: Int[Array, "N P"]
    derivs: tuple  # one (N, P, K) array per multi-index of `form`
    data: Float[Array, " N"]
    form: CompiledNonlinearForm  # a pytree: its numbers are leaves, its code static
    # known part of each `U_a` (N, A) not carried by `index`/`derivs`: the frozen
    # subdomains' contribution when time marching (it enters inside the nonlinearity)
    offset: Float[Array, "N A"] | None = None
    # an interface condition's rows: the lower side's points (just below the cut, for
    # the coefficients), subdomains and basis derivatives; the residual is the form on
    # the upper side (the fields above) minus the form on the lower side
    lower: tuple | None = None


class ResidualModel(eqx.Module):
    """Everything needed to evaluate the residual and its block-sparse Jacobian."""

    blocks: tuple[_Block, ...]
    weights: Float[Array, " N"]
    num_subdomains: int = eqx.field(static=True)
    num_features: int = eqx.field(static=True)
    num_parameters: int = eqx.field(static=True)
    groups: tuple[tuple[str, int, int], ...] = eqx.field(static=True)
    levels: Array | None = None
    # set on sharded solves: keeps the stacked rows split across the devices under jit
    rows: Any = eqx.field(static=True, default=None)

    def _rows(self, a):
        return a if self.rows is None else jax.lax.with_sharding_constraint(a, self.rows)

    @property
    def extra_blocks(self) -> int:
        """Number of virtual subdomains that carry the parameter columns."""
        k = self.num_features
        return -(-self.num_parameters // k)

    def fields(self, block: _Block, c):
        u = jnp.stack([jnp.einsum("npk,npk->n", d, c[block.index]) for d in block.derivs], axis=1)
        return u if block.offset is None else u + block.offset

    def _lower_fields(self, block: _Block, c):
        _, index, derivs = block.lower
        return jnp.stack([jnp.einsum("npk,npk->n", d, c[index]) for d in derivs], axis=1)

    def raw_residual(self, c, theta):
        out = []
        for b in self.blocks:
            r = b.form.residual(b.points, self.fields(b, c), theta)
            if b.lower is not None:
                r = r - b.form.residual(b.lower[0], self._lower_fields(b, c), theta)
            out.append(r - b.data)
        return self._rows(jnp.concatenate(out))

    def residual(self, y):
        c, theta = y
        return self.weights * self.raw_residual(c, theta)

    def jacobian(self, y, rhs) -> LinearSystem:
        """The Jacobian at `y` as a `LinearSystem` (row-weighted) with right-hand side `rhs`."""
        c, theta = y
        vals, idx = [], []
        j, k, p = self.num_subdomains, self.num_features, self.num_parameters
        q = self.extra_blocks
        width = max(b.index.shape[1] * (1 if b.lower is None else 2) for b in self.blocks)
        for b in self.blocks:
            _, du, dth = b.form.linearise(b.points, self.fields(b, c), theta)
            v = sum(du[:, i, None, None] * d for i, d in enumerate(b.derivs))
            ix = b.index
            if b.lower is not None:
                low_points, low_index, low_derivs = b.lower
                _, dl, dthl = b.form.linearise(low_points, self._lower_fields(b, c), theta)
                v = jnp.concatenate(
                    [v, -sum(dl[:, i, None, None] * d for i, d in enumerate(low_derivs))], axis=1
                )
                ix = jnp.concatenate([ix, low_index], axis=1)
                dth = dth - dthl
            if v.shape[1] < width:  # pad with zero blocks (index 0): no contribution
                v = jnp.pad(v, [(0, 0), (0, width - v.shape[1]), (0, 0)])
                ix = jnp.pad(ix, [(0, 0), (0, width - ix.shape[1])])
            if q:
                n = v.shape[0]
                th = jnp.zeros((n, q * k), v.dtype).at[:, :p].set(dth).reshape(n, q, k)
                v = jnp.concatenate([v, th], axis=1)
                ix = jnp.concatenate([ix, jnp.broadcast_to(j + jnp.arange(q), (n, q))], axis=1)
            vals.append(v)
            idx.append(ix)
        values = self._rows(jnp.concatenate(vals) * self.weights[:, None, None])
        levels = self.levels
        if levels is not None and q:
            levels = jnp.concatenate([levels, jnp.full((q,), jnp.max(levels) + 1, levels.dtype)])
        return LinearSystem(
            values=values,
            index=self._rows(jnp.concatenate(idx)),
            rhs=rhs,
            row_scale=self.weights,
            num_subdomains=j + q,
            groups=self.groups,
            levels=levels,
        )

    def split(self, delta):
        """(J + q, K) solver output -> (dc (J, K), dtheta (p,))."""
        j, p = self.num_subdomains, self.num_parameters
        return delta[:j], delta[j:].reshape(-1)[:p]


def _compiled_nonlinear(form) -> CompiledNonlinearForm:
    return from_linear(form) if isinstance(form, LinearForm) else form


def residual_model(
    problem, model: FBPINN, blocks, *, parameters=None, forms=None, weights=None, devices=None
) -> ResidualModel:
    """Evaluate the basis on each `(name, form, points, data)` block.

    `devices` (a list of jax devices): evaluate each block with its points split
    across the devices (`jax.shard_map`), padded to a multiple of the device count by
    repeating the last point; the padding rows get weight 0 (so they add nothing to
    the residual or the Jacobian) and lie outside the blocks' `groups` ranges."""
    params = tuple(problem.unknown_parameters if parameters is None else parameters)
    out, groups = [], []
    start = 0
    mask = []
    for i, (name, form, points, data, *where) in enumerate(blocks):
        # where: (jump, side) of an interface block (see `pd.Cut`), else absent
        jump, side = where[0] if where else (None, None)
        if forms is not None:
            form = forms[i]
        nl = _compiled_nonlinear(form)
        compiled = _compile(nl, params)
        pts = jnp.asarray(points)
        d = jnp.zeros(pts.shape[0], pts.dtype) if data is None else jnp.asarray(data, pts.dtype)
        n = pts.shape[0]
        mi = compiled.multi_indices
        lower = None
        if (jump is not None or side is not None) and devices:
            raise NotImplementedError(
                "Interface conditions are solved on one device for now; pass devices=1."
            )
        if devices:
            (index, derivs), extra = sharded_rows(lambda q, mi=mi: evaluate(model, q, mi), pts, devices)
            pts, d = (_pad_repeat(a, extra, devices) for a in (pts, d))
        elif jump is not None:
            (index, derivs), extra = _evaluate_side(model, pts, mi, (*jump, 1)), 0
            low_index, low_derivs = _evaluate_side(model, pts, mi, (*jump, -1))
            lower = (_off_cut(pts, *jump, -1), low_index, tuple(low_derivs[a] for a in mi))
            pts = _off_cut(pts, *jump, 1)
        elif side is not None:
            (index, derivs), extra = _evaluate_side(model, pts, mi, side), 0
            pts = _off_cut(pts, *side)
        else:
            (index, derivs), extra = _evaluate(model, pts, mi), 0
        out.append(_Block(pts, index, tuple(derivs[a] for a in mi), d, compiled, lower=lower))
        groups.append((name, start, start + n))
        mask.append(np.arange(n + extra) < n)
        start += n + extra
    w = jnp.asarray(np.concatenate(mask), float) if weights is None else weights
    rows = None
    if devices:
        rows = NamedSharding(shard_mesh(devices), P(AXIS))
        w = jax.device_put(w, rows)
    return ResidualModel(
        blocks=tuple(out),
        weights=w,
        num_subdomains=model.num_subdomains,
        num_features=model.num_features,
        num_parameters=len(params),
        groups=tuple(groups),
        levels=model.decomposition.levels,
        rows=rows,
    )


def _pad_repeat(a, extra, devices):
    """Pad rows by repeating the last one, and split them across `devices`."""
    if extra:
        a = jnp.concatenate([a, jnp.repeat(a[-1:], extra, axis=0)])
    return jax.device_put(a, NamedSharding(shard_mesh(devices), P(AXIS)))


@functools.lru_cache(maxsize=256)
def _compile(form: NonlinearForm, params) -> CompiledNonlinearForm:
    # keyed by value: equal forms share one compiled object, hence JIT caches
    return form.compile(params)


@eqx.filter_jit
def _evaluate(model, points, multi_indices):
    return evaluate(model, points, multi_indices)


@eqx.filter_jit
def _evaluate_side(model, points, multi_indices, side):
    return evaluate(model, points, multi_indices, side)


@eqx.filter_jit
def _jacobian(rm: ResidualModel, y, rhs) -> LinearSystem:
    return rm.jacobian(y, rhs)


@eqx.filter_jit
def _residual(rm: ResidualModel, y):
    return rm.residual(y)


@eqx.filter_jit
def _raw_residual(rm: ResidualModel, y):
    return rm.raw_residual(*y)


@eqx.filter_jit
def _row_weights(rm: ResidualModel, y):
    """1 / (norm of each Jacobian row in the coefficients), at `y`."""
    sys_ = rm.jacobian(y, jnp.zeros_like(rm.weights))
    j = rm.num_subdomains
    v = jnp.where((sys_.index < j)[:, :, None], sys_.values, 0.0)
    norms = jnp.sqrt(jnp.sum(v**2, axis=(1, 2)))
    return jnp.where(norms > 0, 1.0 / jnp.where(norms > 0, norms, 1.0), 1.0)


def _weights(rm: ResidualModel, y, problem, solver):
    """Row weights: unit-norm Jacobian rows, observation rows scaled by `data_weight`."""
    norms = _row_weights(rm, y)
    # the factor of each row (0 on padding rows), known on the host; the norms may be
    # sharded across processes, so they are only combined with it on the devices
    scale = np.zeros(norms.shape[0])
    names = {c.name for c in problem.data_conditions}
    for name, a, b in rm.groups:
        scale[a:b] = solver.data_weight if name in names else 1.0
    if rm.rows is None:
        return norms * jnp.asarray(scale)
    return norms * jax.device_put(scale, rm.rows)


# ---------------------------------------------------------------------------------
# Linear solves from inside optimistix's loop.


class _Recorder:
    """Host-side record of the linear solves (and progress printing)."""

    def __init__(self, progress: bool = False):
        self.history: list[dict] = []

    def log(self, entry: dict):
        self.history.append(entry)


_ACTIVE: list = [None]  # the recorder of the solve in progress (one at a time)


class _Centres:
    """Subdomain centres held by a static field (which must be hashable): hashed and
    compared by value."""

    def __init__(self, centres):
        self.array = np.asarray(centres)

    def __eq__(self, other):
        return isinstance(other, _Centres) and np.array_equal(self.array, other.array)

    def __hash__(self):
        return hash((self.array.shape, self.array.tobytes()))


class _HostSolve(eqx.Module):
    """(values, index, rhs, row_scale, levels, lam) -> delta, on the host.

    All fields are static and compare by value, so that a jitted function that calls
    it back (variable projection's reduced residual) is compiled once for repeated
    solves with the same solver and shapes. (Centres and a solver bound to the model
    are only set for solves run from the host: the Gauss-Newton and
    Levenberg-Marquardt steps, the initial guess, the standard errors.)"""

    solver: AbstractSolver = eqx.field(static=True)
    num_subdomains: int = eqx.field(static=True)
    groups: tuple = eqx.field(static=True)
    has_levels: bool = eqx.field(static=True)
    damping: bool = eqx.field(static=True, default=False)
    # where the Jacobian's columns are the model's: its subdomain centres (so that
    # Auto sees the dimension) and Auto's choice for the Jacobian, bound to the model
    centres: _Centres | None = eqx.field(static=True, default=None)
    chosen: AbstractSolver | None = eqx.field(static=True, default=None)

    def __call__(self, values, index, rhs, row_scale, levels, lam):
        t0 = time.perf_counter()
        system = LinearSystem(
            values=jnp.asarray(values),
            index=jnp.asarray(index),
            rhs=jnp.asarray(rhs),
            row_scale=jnp.asarray(row_scale),
            num_subdomains=self.num_subdomains,
            groups=self.groups,
            levels=jnp.asarray(levels) if self.has_levels else None,
            centres=None if self.centres is None else jnp.asarray(self.centres.array),
            # chunked products, as for an assembled system (bounded temporaries)
            chunk_rows=product_chunk_rows(values.shape[1], values.shape[2], values.dtype.itemsize),
        )
        if self.damping:
            system = _damped(system, float(lam))
        if isinstance(self.solver, Auto):
            chosen = self.chosen if self.chosen is not None else self.solver.choose(system)
            s, res, _ = self.solver.run(chosen, system)
        else:
            s = self.solver
            res: SolverResult = s(system)
        delta = np.asarray(res.coefficients)
        ok = bool(res.success) and bool(np.all(np.isfinite(delta)))
        recorder = _ACTIVE[0] if _ACTIVE[0] is not None else _Recorder()
        recorder.log(
            {
                "residual": float(jnp.linalg.norm(jnp.asarray(rhs))),
                "linear_solver": s.name,
                "linear_iterations": None if res.iterations is None else int(res.iterations),
                "linear_success": ok,
                "damping": float(lam) if self.damping else None,
                "seconds": time.perf_counter() - t0,
            }
        )
        return delta, np.asarray(ok)


def _host_solver(
    solver: AbstractSolver,
    template: LinearSystem,
    recorder: _Recorder,
    damping=False,
    model=None,
    centres=None,
):
    """A host function (values, index, rhs, row_scale, levels, lam) -> (delta, ok).

    With `model` (where the Jacobian's columns are exactly the model's: no unknown
    parameters among them), the solves see the subdomain centres, `Auto` chooses
    once for the Jacobian's size, dimension and basis as `pd.solve` does for a
    linear problem (in 2D and 3D: two-level CG for large polynomial grids), and a
    solver that needs the model (`TwoLevel`) is bound to it. `centres` (J, dim) alone
    gives a time-marching stage's solves the centres of its active subdomains
    (`BoxSchwarz` groups them by these)."""
    _ACTIVE[0] = recorder
    centres = None if centres is None else _Centres(centres)
    chosen = None
    if model is not None and template.num_subdomains == model.num_subdomains:
        centres = _Centres(model.decomposition.centres)
        template = eqx.tree_at(
            lambda s: s.centres, template, jnp.asarray(centres.array), is_leaf=lambda v: v is None
        )
        if isinstance(solver, Auto):
            chosen = solver.choose(template, model)
            chosen = chosen.bind(model) if hasattr(chosen, "bind") else chosen
        elif hasattr(solver, "bind"):
            solver = solver.bind(model)
    return _HostSolve(
        solver,
        template.num_subdomains,
        template.groups,
        template.levels is not None,
        damping,
        centres,
        chosen,
    )


def _run(run, system: LinearSystem, lam=0.0):
    levels = system.levels if system.levels is not None else jnp.zeros(0, jnp.int32)
    return run(system.values, system.index, system.rhs, system.row_scale, levels, lam)


def _damped(system: LinearSystem, lam: float) -> LinearSystem:
    """Append the rows sqrt(lam) * diag(column norms of J) for a Levenberg-Marquardt
    step (Marquardt's scaling: the damping does not depend on how the basis is scaled)."""
    n, p, k = system.values.shape
    j = system.num_subdomains
    rows = j * k
    colnorm = jnp.sqrt(system.rmv_squares()).reshape(-1)
    vals = jnp.zeros((rows, p, k), system.values.dtype)
    vals = vals.at[jnp.arange(rows), 0, jnp.tile(jnp.arange(k), j)].set(jnp.sqrt(lam) * colnorm)
    idx = jnp.zeros((rows, p), system.index.dtype).at[:, 0].set(jnp.repeat(jnp.arange(j), k))
    return LinearSystem(
        values=jnp.concatenate([system.values, vals]),
        index=jnp.concatenate([system.index, idx]),
        rhs=jnp.concatenate([system.rhs, jnp.zeros(rows, system.rhs.dtype)]),
        row_scale=jnp.concatenate([system.row_scale, jnp.ones(rows, system.row_scale.dtype)]),
        num_subdomains=j,
        groups=system.groups,
        levels=system.levels,
        centres=system.centres,
        chunk_rows=system.chunk_rows,
    )


class _InGraphSolve(eqx.Module):
    """The linear solve as part of the jitted Gauss-Newton step (no host callback):
    used on sharded systems, where a callback that launches sharded computations
    would deadlock with the collectives of the step it sits in."""

    solver: AbstractSolver = eqx.field(static=True)
    damping: bool = eqx.field(static=True, default=False)


def _solve_in_step(rm: ResidualModel, y, rhs, run: _InGraphSolve, lam):
    """One linearised least-squares solve inside a jitted optimistix step (sharded
    systems) -> ((dc, dtheta), result, (iterations, success)). On one device the
    steps are driven from the host instead (`_HostGaussNewton`,
    `_HostLevenbergMarquardt`) and never come here."""
    if not isinstance(run, _InGraphSolve):
        raise TypeError(f"solves inside the jitted step need an _InGraphSolve, got {type(run).__name__}")
    system = rm.jacobian(y, rhs)
    if run.damping:
        system = _damped(system, lam)
    res = run.solver.traced(system)
    delta = res.coefficients
    ok = jnp.asarray(res.success) & jnp.all(jnp.isfinite(delta))
    its = jnp.asarray(-1 if res.iterations is None else res.iterations, jnp.int32)
    dc, dth = rm.split(delta)
    result = optx.RESULTS.where(ok, optx.RESULTS.successful, optx.RESULTS.nonlinear_divergence)
    return (dc, dth), result, (its, ok)


class _DescentState(eqx.Module):
    y: Any
    residual: Any
    newton: Any
    result: optx.RESULTS
    # in-graph solves only: how many so far, the last one's iterations and success
    solves: Any
    linear: Any


class _BlockNewtonDescent(optx.AbstractDescent):
    """Gauss-Newton (damped=False) or Levenberg-Marquardt (damped=True) steps, with the
    Jacobian assembled in block-sparse form and solved by a pdedsl solver."""

    rm: ResidualModel
    run: Any  # _HostSolve (steps driven from the host) or _InGraphSolve (sharded)
    damped: bool = eqx.field(static=True)
    damping: float = eqx.field(static=True, default=1.0)  # lam = damping / trust radius

    def init(self, y, f_info_struct):
        del f_info_struct
        zero = jax.tree_util.tree_map(jnp.zeros_like, y)
        none = (jnp.asarray(-1, jnp.int32), jnp.asarray(True))
        return _DescentState(y, self.rm.weights * 0, zero, optx.RESULTS.successful, jnp.asarray(0), none)

    def query(self, y, f_info, state):
        if self.damped:
            return _DescentState(
                y, f_info.residual, state.newton, optx.RESULTS.successful, state.solves, state.linear
            )
        newton, result, lin = _solve_in_step(self.rm, y, f_info.residual, self.run, jnp.asarray(0.0))
        return _DescentState(y, f_info.residual, newton, result, state.solves + 1, lin)

    def step(self, step_size, state):
        if self.damped:
            lam = self.damping / jnp.maximum(step_size, jnp.finfo(jnp.result_type(step_size)).tiny)
            newton, result, _ = _solve_in_step(self.rm, state.y, state.residual, self.run, lam)
            # the trust-region radius enters through the damping, not as a step length
            return jax.tree_util.tree_map(lambda d: -d, newton), result
        return jax.tree_util.tree_map(lambda d: -step_size * d, state.newton), state.result


def _quiet(**kwargs):
    """optimistix's verbose hook: we report steps ourselves."""


class _Optimistix(optx.AbstractGaussNewton):
    rtol: float
    atol: float
    norm: Any
    descent: Any
    search: Any
    verbose: Any


# ---------------------------------------------------------------------------------
# The user-facing solvers.


def _check_common(solver, tolerances) -> None:
    """The arguments every nonlinear solver has: its linear solver, tolerances, steps."""
    owner = type(solver).__name__
    if not isinstance(solver.linear_solver, AbstractSolver):
        raise TypeError(
            f"{owner}: linear_solver must be a pdedsl linear solver such as pd.DenseLeastSquares() or "
            f"pd.LSMR(), got {solver.linear_solver!r}."
        )
    for name in tolerances:
        check_nonnegative(owner, name, getattr(solver, name))
    check_count(owner, "max_steps", solver.max_steps)


class _AbstractGaussNewton(AbstractNonlinearSolver):
    """Fields and checks shared by `GaussNewton` and `LevenbergMarquardt`."""

    linear_solver: AbstractSolver = dataclasses.field(default_factory=Auto)
    rtol: float = 1e-8
    atol: float = 1e-14
    ftol: float = 1e-6
    max_steps: int = 50
    initial: Any = None
    data_weight: float = 1e-3

    damped: ClassVar[bool] = False

    def __check_init__(self):
        _check_common(self, ("rtol", "atol", "ftol"))
        if isinstance(self.initial, str) and self.initial not in ("linear", "zero", "previous"):
            raise ValueError(
                f"initial must be 'linear', 'zero', 'previous' (time marching), a Solution or an "
                f"array, got {self.initial!r}."
            )

    def descent(self, rm, run) -> "_BlockNewtonDescent":
        return _BlockNewtonDescent(rm, run, self.damped, getattr(self, "damping", 1.0))

    def optimistix_solver(self, descent):
        search = (
            optx.ClassicalTrustRegion(high_constant=self.growth) if self.damped else optx.LearningRate(1.0)
        )
        return _Optimistix(self.rtol, self.atol, optx.max_norm, descent, search, _quiet)


class GaussNewton(_AbstractGaussNewton):
    """Gauss-Newton on the coefficients (and unknown parameters), through optimistix.

    Args:
        linear_solver: solves each linearised least-squares problem; default `pd.Auto()`
            (dense SVD for small systems, sparse normal equations for large ones).
            `pd.LSMR(...)`, `pd.CGNormal(...)`, ... with their preconditioners work too.
            On one device the linear solves run on the host between jitted pieces of
            each step (for `LevenbergMarquardt` too); on sharded systems they run
            inside the jitted step.
        rtol, atol, ftol: converged when a step is small (`||dy|| <= rtol ||y|| + atol`,
            2-norms over coefficients and parameters), or when an accepted step lowers the
            squared residual by less than a fraction `ftol` (the least-squares minimum
            of an overdetermined collocation is reached), or when `||r|| <= atol`. A
            run that has not improved on its best point for 5 steps, and whose last
            step lowered the squared residual by less than 10%, ends: as converged
            (returning the best point) within a factor 2 of the best squared residual,
            as a failure ("diverging") above it.
        max_steps: at most this many steps (raises if not converged).
        initial: "linear" (solve the equation with its nonlinear terms dropped,
            when that leaves the unknown in it; else zero), "zero", a `Solution` of
            the same model, or a (J, K) coefficient array. When time marching
            (`schedule=pd.TimeMarching(...)`) it applies to every stage: "linear"
            solves the stage's linear part, frozen subdomains included; "previous"
            (marching only) starts from the values the active subdomains got in the
            previous stage (zero for newly active ones; the first stage from its
            linear part). Default (None): "linear" for a global solve, "previous"
            when marching (fewer steps and smaller errors in our measurements,
            docs/training.md).
        data_weight: weight of observation rows (`u.at(t=points) == values`) relative
            to the equation and condition rows (which are scaled to unit norm). Small
            by default, so that the fitted field satisfies the equation and the data
            select the unknown parameters: a constrained least-squares estimate whose
            standard errors are calibrated (measured by Monte Carlo in
            tests/test_nonlinear.py). With weight 1 the field bends towards noisy data.
    """

    damped: ClassVar[bool] = False


class LevenbergMarquardt(_AbstractGaussNewton):
    """Levenberg-Marquardt: Gauss-Newton with optimistix's classical trust region.
    More robust far from the solution, slower near it. Each step solves
    `[J; sqrt(lam) S] d = [r; 0]` with the same linear solvers, where `S` holds the
    column norms of `J` (Marquardt's scaling: the damping does not depend on how the
    basis is scaled) and `lam = damping / radius`. The trust radius starts at 1; it
    grows `growth` times after a step whose actual decrease is within 1% of the
    predicted one, and shrinks 4 times after a step that decreases the loss by less
    than 1% of the prediction (the step is then rejected).

    Args:
        damping: the initial `lam` (default 1e-3). Smaller starts closer to
            Gauss-Newton. ELM systems are ill-conditioned, so any damping slows the
            final convergence (docs/nonlinear.md has measured step counts).
        growth: how much the trust radius grows (the damping falls) after a very
            good step (default 10, Marquardt's factor; optimistix's default is 3.5,
            which took 1.2 to 1.7 times as many steps on our test problems).
        The other arguments are as for `pd.GaussNewton`. The iteration also stops,
        as converged, at a rejected step when the next (more damped) trial step is
        predicted to lower the squared residual by less than `ftol`, and after 10
        rejected steps in a row: no step, however damped, lowers the residual, so
        the point is a least-squares minimum (or stationary point).
    """

    damping: float = 1e-3
    growth: float = 10.0

    damped: ClassVar[bool] = True

    def __check_init__(self):
        if not (isinstance(self.damping, (int, float)) and self.damping > 0 and np.isfinite(self.damping)):
            raise ValueError(f"damping must be a positive number, got {self.damping!r}.")
        if not (isinstance(self.growth, (int, float)) and self.growth > 1 and np.isfinite(self.growth)):
            raise ValueError(f"growth must be a number > 1, got {self.growth!r}.")


class VariableProjection(AbstractNonlinearSolver):
    """For equations linear in the unknown with unknown parameters: for each theta the
    coefficients are solved exactly by linear least squares, and Gauss-Newton (through
    optimistix) runs on theta only, with the Kaufman Jacobian
    `P_perp (dR/dtheta)` (`P_perp` projects out the range of the linear system).

    The steps run on the host (p is small: a dense least-squares solve per step),
    with the linear solves between jitted pieces, so any linear solver works, host
    ones (`pd.SparseNormal()`) included. A step that raises the reduced residual is
    halved, up to 10 times; each step costs 1 + p linear solves (one more per halving).

    Args:
        linear_solver: the linear solver (default `pd.Auto()`, which chooses for the
            coefficients' system as `pd.solve` does for a linear problem).
        data_weight: as for `pd.GaussNewton`.
        rtol, atol: optimistix's Cauchy termination test on the parameters and the
            reduced residual (elementwise: both changes below `atol + rtol * |value|`).
        max_steps: at most this many Gauss-Newton steps on the parameters.
    """

    linear_solver: AbstractSolver = dataclasses.field(default_factory=Auto)
    rtol: float = 1e-8
    atol: float = 1e-10
    max_steps: int = 50
    data_weight: float = 1e-3

    def __check_init__(self):
        _check_common(self, ("rtol", "atol"))


def _initial_coefficients(solver, problem, model, rm_builder, run_linear, theta0):
    j, k = model.num_subdomains, model.num_features
    init = "linear" if solver.initial is None else solver.initial
    if isinstance(init, str):
        if init == "previous":
            raise ValueError(
                "initial='previous' starts each time-marching stage from the previous stage's "
                "values; without schedule=pd.TimeMarching(...) there is no previous stage. Use "
                "'linear' or 'zero'."
            )
        if init == "zero":
            return jnp.zeros((j, k)), "zero"
        lin = rm_builder(linear=True)
        if lin is None:
            return jnp.zeros((j, k)), "zero (the equation has no linear part in the unknown)"
        y0 = (jnp.zeros((j, k)), theta0)
        r0 = _residual(lin, y0)
        delta = run_linear(lin, y0, r0)
        return -delta, "the solution of the linear part"
    coeffs = getattr(init, "coefficients", init)
    coeffs = jnp.asarray(coeffs, dtype=float)
    if coeffs.shape != (j, k):
        raise ValueError(
            f"initial has shape {coeffs.shape} but the model has {j} subdomains x {k} features; "
            "give a Solution of the same model or a (J, K) array."
        )
    return coeffs, "given"


def sharded_linear_solver(solver: AbstractNonlinearSolver) -> AbstractSolver:
    """The linear solver a sharded Gauss-Newton run uses: the one given if it can run
    inside the jitted step; `pd.LSMR()` in place of the default `pd.Auto()`."""
    if isinstance(solver, VariableProjection):
        raise NotImplementedError(
            "pd.VariableProjection runs on one device (its steps run on the host); pass "
            "devices=1, or use pd.GaussNewton()."
        )
    lin = solver.linear_solver
    if isinstance(lin, Auto):
        from .iterative import LSMR

        return LSMR()
    if not lin.traceable:
        raise ValueError(
            f"A sharded {solver.name} solve runs its linear solves inside the jitted step, on all "
            f"devices; {lin.name} cannot (it runs on the host). Use "
            f"linear_solver=pd.LSMR() or pd.CGNormal() (jittable preconditioners), or devices=1."
        )
    return lin


def solve_nonlinear(problem, model, blocks, solver, *, say, progress, devices=None) -> tuple[Any, dict]:
    """Run a nonlinear solver on collocation `blocks` [(name, form, points, data)].

    `devices` (a list of jax devices): shard the rows across them; the linear solves
    then run inside the jitted steps (`sharded_linear_solver`).

    Returns `(coefficients, info)`; `info` has the parameters, standard errors,
    history and timings.
    """
    params = problem.unknown_parameters
    theta0 = jnp.asarray(problem.initial_parameters, dtype=float)
    recorder = _Recorder(progress)
    t0 = time.perf_counter()
    if devices:
        solver = dataclasses.replace(solver, linear_solver=sharded_linear_solver(solver))
    rm = residual_model(problem, model, blocks, devices=devices)

    def linear_parts():
        # the same evaluated basis derivatives, with each form's linear part
        out = []
        for block, b in zip(blocks, rm.blocks):
            form = block[1]
            nl = from_linear(form) if isinstance(form, LinearForm) else form
            lp = nl.linear_part()
            if lp is None:
                return None
            out.append(dataclasses.replace(b, form=_compile(lp, params)))
        return dataclasses.replace(rm, blocks=tuple(out))

    def run_linear(rmx, y, r):
        template = _jacobian(rmx, y, r)
        run = _host_solver(solver.linear_solver, template, recorder, model=model)
        delta, ok = _run(run, template)
        dc, _ = rmx.split(jnp.asarray(delta))
        return dc

    if isinstance(solver, VariableProjection):
        return _variable_projection(problem, model, rm, solver, theta0, recorder, say, t0)

    def rm_builder(linear):
        lin = linear_parts()
        if lin is None:
            return None
        w = _weights(lin, (jnp.zeros((model.num_subdomains, model.num_features)), theta0), problem, solver)
        return eqx.tree_at(lambda r: r.weights, lin, w)

    c0, how = _initial_coefficients(solver, problem, model, rm_builder, run_linear, theta0)
    y0 = (c0, theta0)
    rm = eqx.tree_at(lambda r: r.weights, rm, _weights(rm, y0, problem, solver))
    t1 = time.perf_counter()
    say(
        f"pdedsl: {solver.name} from {how}; {rm.weights.shape[0]} rows x {model.num_unknowns} unknowns"
        + (f" + {len(params)} parameter(s)" if params else "")
    )
    template = _jacobian(rm, y0, rm.weights * 0)
    if devices:
        run = _InGraphSolve(solver.linear_solver, damping=solver.damped)
    else:
        run = _host_solver(solver.linear_solver, template, recorder, damping=solver.damped, model=model)
    descent = solver.descent(rm, run)
    opt = solver.optimistix_solver(descent)
    y, steps, ok, message, history = _iterate(opt, rm, y0, solver, recorder, say)
    c, theta = y
    t2 = time.perf_counter()
    info = _nonlinear_info(rm, (c, theta), params, history, steps, ok, message, solver, how)
    info.update(assemble_s=t1 - t0, solve_s=t2 - t1)
    # the linear solvers that ran (Auto's choice, a fallback), by name
    info["linear_solvers"] = sorted({e["linear_solver"] for e in recorder.history})
    if params:
        info["standard_errors"] = _standard_errors(problem, rm, (c, theta), solver.linear_solver, model)
    return c, info


def _fn(y, rm):
    return rm.residual(y), None


@eqx.filter_jit
def _init(opt, rm, y0):
    f_struct = jax.eval_shape(lambda: rm.residual(y0))
    return opt.init(_fn, y0, rm, {}, f_struct, None, frozenset())


@eqx.filter_jit
def _step(opt, rm, y, state):
    y, state, _ = opt.step(_fn, y, rm, {}, state, frozenset())
    loss = 0.5 * jnp.sum(state.f_info.residual**2)
    ds = state.descent_state
    linear = (ds.solves, ds.linear[0], ds.linear[1], state.result == optx.RESULTS.successful)
    return y, state, loss, state.num_accepted_steps, linear


def _flat(y):
    return jnp.concatenate([jnp.ravel(y[0]), jnp.ravel(y[1])])


@eqx.filter_jit
def _linearised(rm: ResidualModel, y):
    """The Jacobian system at `y` (right-hand side: the residual) and the loss there."""
    r = rm.residual(y)
    return rm.jacobian(y, r), 0.5 * jnp.sum(r**2)


@eqx.filter_jit
def _newton_update(rm: ResidualModel, y, delta):
    return jax.tree_util.tree_map(lambda a, d: a - d, y, rm.split(delta))


class _HostGaussNewton:
    """optimistix's undamped Gauss-Newton steps (learning rate 1, every step accepted)
    with the linear solve run on the host between jitted pieces: step k returns the
    point of step k - 1 (y0 first), its loss and the number of accepted steps, and
    solves for the next point, as `_step` does."""

    def __init__(self, rm, run, y0):
        self.rm, self.run, self.next, self.accepted = rm, run, y0, 0

    def step(self):
        y = self.next
        system, loss = _linearised(self.rm, y)
        delta, _ = _run(self.run, system)  # the host solver records its success
        self.next = _newton_update(self.rm, y, jnp.asarray(delta, system.values.dtype))
        self.accepted += 1
        return y, loss, self.accepted


@eqx.filter_jit
def _loss(rm: ResidualModel, y):
    return 0.5 * jnp.sum(rm.residual(y) ** 2)


def _model_change(rm: ResidualModel, y, step):
    """The Gauss-Newton model's change of the loss for `step` (a pytree like `y`):
    `(||r + J step||^2 - ||r||^2) / 2` (negative for a descent step)."""
    r, jd = jax.jvp(rm.residual, (y,), (step,))
    return 0.5 * (jnp.sum((r + jd) ** 2) - jnp.sum(r**2))


@eqx.filter_jit
def _predicted_change(rm: ResidualModel, y, delta):
    """The model's change of the loss for the step `-delta` (flat) from `y`."""
    return _model_change(rm, y, jax.tree_util.tree_map(jnp.negative, rm.split(delta)))


@eqx.filter_jit
def _predicted_to(rm: ResidualModel, y, y_new):
    """The model's change of the loss from `y` to `y_new`."""
    return _model_change(rm, y, jax.tree_util.tree_map(lambda a, b: a - b, y_new, y))


class _HostLevenbergMarquardt:
    """optimistix's Levenberg-Marquardt steps with the linear solves on the host
    between jitted pieces: the acceptance test and radius updates of `search` (the
    `optx.ClassicalTrustRegion` that the jitted step uses) and the damping
    `lam = damping / radius`. Step k evaluates the candidate of step k - 1, accepts or
    rejects it, and solves for the next candidate from the last accepted point.
    Returns that point, its loss and the number of accepted steps."""

    def __init__(self, rm, run, y0, damping, search: optx.ClassicalTrustRegion):
        self.rm, self.run, self.damping, self.search = rm, run, damping, search
        self.y = self.candidate = y0
        self.loss = None
        self.predicted = None
        self.radius = 1.0
        self.system = None
        self.accepted = 0

    def step(self):
        if self.loss is None:  # the first step: y0, always accepted
            system, loss = _linearised(self.rm, self.candidate)
            accept, factor = True, 1.0
        else:
            loss = _loss(self.rm, self.candidate)
            change, predicted = float(loss) - float(self.loss), float(self.predicted)
            tr = self.search
            low, high = float(tr.low_cutoff), float(tr.high_cutoff)
            accept = change <= low * predicted
            good = accept and change < high * predicted and predicted < 0
            factor = float(tr.high_constant) if good else (1.0 if accept else float(tr.low_constant))
            if accept:
                system, loss = _linearised(self.rm, self.candidate)
        self.radius *= factor
        if accept:
            self.y, self.loss, self.system = self.candidate, loss, system
            self.accepted += 1
        lam = self.damping / max(self.radius, np.finfo(float).tiny)
        delta, _ = _run(self.run, self.system, lam)  # the host solver records its success
        delta = jnp.asarray(delta, self.system.values.dtype)
        self.candidate = _newton_update(self.rm, self.y, delta)
        self.predicted = _predicted_change(self.rm, self.y, delta)
        return self.y, self.loss, self.accepted


_MAX_REJECTED = 10  # rejected trial steps in a row that end a Levenberg-Marquardt run
# Gauss-Newton steps without a 0.1% gain on the best point end a run once a step lowers
# the squared residual by less than 10% (_PROGRESS): as converged while it stays within
# _HOVER times the best (oscillation around a least-squares minimum), as diverging
# otherwise. (On 2026-12-03 an Allen-Cahn run jumped from residual 0.054 to 54 and came
# back down 3.4x per step to the solution in 12 steps; the old rule, five steps without
# a gain, stopped it at step 6 and called the 0.054 point converged, rel_l2 1.1.)
_MAX_SINCE_BEST = 5
_PROGRESS = 0.9
_HOVER = 2.0


def _iterate(opt, rm, y0, solver, recorder, say):
    """optimistix's Gauss-Newton / Levenberg-Marquardt steps, driven from Python so
    that every step is reported; our own termination test (see `GaussNewton`)."""
    in_graph = isinstance(opt.descent.run, _InGraphSolve)
    # on one device: the same steps as optimistix's, with the linear solves on the host
    # between jitted pieces instead of in a callback inside a jitted step (a jitted
    # solver run from that callback can hang: see `GaussNewton`); optimistix's own
    # step (`_step`) is used where the solves run inside the step (sharded systems)
    host = None
    if not in_graph and opt.descent.damped:
        host = _HostLevenbergMarquardt(rm, opt.descent.run, y0, opt.descent.damping, opt.search)
    elif not in_graph:
        host = _HostGaussNewton(rm, opt.descent.run, y0)
    state = _init(opt, rm, y0) if host is None else None
    y = y0
    loss0 = float(0.5 * jnp.sum(_residual(rm, y0) ** 2))
    history = [{"step": 0, "residual": float(np.sqrt(2 * loss0)), "step_norm": None, "accepted": True}]
    prev_loss, prev_y = loss0, _flat(y0)
    ok, message = False, f"not converged in max_steps={solver.max_steps} steps"
    steps = 0
    # optimistix's step k evaluates the candidate of step k - 1 and accepts or rejects
    # it; `y` is the last accepted point (step 1 only evaluates y0).
    n_accepted = 0
    best, since_best = (loss0, y0), 0
    loss = loss0
    solves = 0
    rejected = 0  # consecutive rejected trial steps
    for k in range(1, solver.max_steps + 2):
        n_solves = len(recorder.history)
        if host is None:
            y, state, loss, acc, linear = _step(opt, rm, y, state)
        else:
            y, loss, acc = host.step()
        loss = float(loss)
        if in_graph:  # the step's linear solve ran inside it: record it here
            count, its, lin_ok, step_ok = (np.asarray(v) for v in linear)
            if int(count) > solves or opt.descent.damped:
                recorder.log(
                    {
                        "residual": None,
                        "linear_solver": opt.descent.run.solver.name,
                        "linear_iterations": None if opt.descent.damped else int(its),
                        "linear_success": bool(lin_ok and step_ok)
                        if not opt.descent.damped
                        else bool(step_ok),
                        "damping": None,
                        "seconds": None,
                    }
                )
            solves = int(count)
        steps = k - 1
        accepted = int(acc) > n_accepted
        n_accepted = int(acc)
        lin = recorder.history[n_solves:]
        if k == 1:
            continue
        flat = _flat(y)
        dy = float(jnp.linalg.norm(flat - prev_y)) if accepted else 0.0
        history.append(
            {
                "step": steps,
                "residual": float(np.sqrt(2 * loss)),
                "step_norm": dy,
                "accepted": accepted,
                "linear_iterations": [e["linear_iterations"] for e in lin],
                "linear_success": all(e["linear_success"] for e in lin),
            }
        )
        its = [i for i in history[-1]["linear_iterations"] if i is not None]
        say(
            f"  {solver.name} step {steps:>3d}: residual {np.sqrt(2 * loss):.3e}, step {dy:.2e}"
            + (f", linear solver {'+'.join(map(str, its))} iterations" if its else "")
            + ("" if accepted else " (rejected)")
        )
        if not np.isfinite(loss) or not np.all(np.isfinite(np.asarray(flat))):
            message = "diverged: non-finite residual or coefficients"
            break
        if not all(e["linear_success"] for e in recorder.history[n_solves - 1 if n_solves else 0 :]):
            bad = [e for e in recorder.history if not e["linear_success"]]
            message = "a linear solve failed: " + ", ".join(
                f"{e['linear_solver']} ({e['linear_iterations']} iterations)" for e in bad
            )
            break
        if accepted:
            if loss < best[0] * (1 - 1e-3):
                best, since_best = (loss, y), 0
            else:
                since_best += 1
            size = float(jnp.linalg.norm(flat))
            small_step = dy <= solver.rtol * size + solver.atol
            # no progress: a tiny decrease now, or no 0.1% gain on the best in 5 steps and
            # no 10% gain on the previous step (a run that jumped away from its best point
            # and is coming down fast goes on), either near the best point (hovering around
            # a least-squares minimum) or far above it (diverging)
            stalled = 0 <= prev_loss - loss <= solver.ftol * prev_loss
            stuck = since_best >= _MAX_SINCE_BEST and loss > _PROGRESS * prev_loss
            hovering = stuck and loss <= _HOVER * best[0]
            if small_step or stalled or hovering or np.sqrt(2 * loss) <= solver.atol:
                ok = True
                message = "converged: " + (
                    "step below rtol" if small_step else "the residual no longer decreases"
                )
                break
            if stuck:  # moved away from the best point and stays away
                message = (
                    f"diverging: no step in the last {since_best} improved on the best point "
                    f"(residual {np.sqrt(2 * best[0]):.3e}), and the residual is now "
                    f"{np.sqrt(2 * loss):.3e}; returning the best point"
                )
                break
            prev_loss, prev_y = loss, flat
            rejected = 0
        else:  # (Levenberg-Marquardt) the trust region rejected the trial step
            rejected += 1
            # the next (more damped) trial step, as the linearisation predicts it: if even
            # it gains less than ftol, this is the least-squares minimum (MINPACK's ftol
            # test); at the rounding floor this ends the run at the first rejection
            predicted = float(host.predicted if host is not None else _predicted_to(rm, y, state.y_eval))
            if -predicted <= solver.ftol * loss:
                ok = True
                message = (
                    "converged: the residual no longer decreases (a trial step was rejected, "
                    "and the next one is predicted to gain less than ftol)"
                )
                break
            if rejected >= _MAX_REJECTED:
                ok = True
                message = (
                    f"converged: {rejected} trial steps in a row were rejected (no damped step "
                    "lowers the residual)"
                )
                break
    if best[0] < loss and ok:  # oscillating around a least-squares minimum: keep the best point
        y = best[1]
        message += f" (returning the best point, residual {np.sqrt(2 * best[0]):.3e})"
    elif message.startswith("diverging"):
        y = best[1]
    return y, steps, ok, message, history


def _nonlinear_info(rm, y, params, history, steps, ok, message, solver, how):
    r = _residual(rm, y)
    theta = np.asarray(y[1])
    rms = _group_rms(rm, y)
    # relative to the residual of the zero field (for a linear equation: to the right-hand
    # side, as for a linear solve); None where the zero field solves the equations exactly
    r0 = float(jnp.linalg.norm(_residual(rm, (jnp.zeros_like(y[0]), y[1]))))
    return {
        "relative_residual": float(jnp.linalg.norm(r)) / r0 if r0 > 0 else None,
        "group_rms": {name: float(v) for (name, _, _), v in zip(rm.groups, rms)},
        "nonlinear_solver": solver.name,
        "nonlinear_steps": steps,
        "initial_guess": how,
        "converged": ok,
        "solver_message": message,
        "residual_norm": float(jnp.linalg.norm(r)),
        "parameters": {str(p): float(v) for p, v in zip(params, theta)},
        "history": history,
        "linear_solver": solver.linear_solver.name,
    }


@eqx.filter_jit
def _group_rms(rm: ResidualModel, y):
    """Root-mean-square raw residual of each group (computed on the devices: the rows
    may be sharded across processes)."""
    raw = rm.raw_residual(*y)
    return [jnp.sqrt(jnp.mean(raw[a:b] ** 2)) for _, a, b in rm.groups]


def _standard_errors(problem, rm: ResidualModel, y, linear_solver, model=None) -> dict[str, float]:
    """Linearised standard errors of the parameters from the data's misfit.

    With Z = P_perp dr/dtheta (the parameter columns with the coefficients'
    range projected out), theta's sensitivity to the data is
    G = (Z^T Z)^{-1} Z_data^T diag(w_data), and cov = s^2 G G^T with
    s^2 = sum(misfit^2) / (n_data - p).
    """
    c, theta = y
    p = rm.num_parameters
    jt = _parameter_columns(rm, c, theta)
    rm_c = dataclasses.replace(rm, num_parameters=0)
    zs = []
    for i in range(p):
        system = _jacobian(rm_c, (c, theta), jt[:, i])
        run = _host_solver(linear_solver, system, _Recorder(), model=model)
        delta, _ = _run(run, system)
        zs.append(jt[:, i] - system.mv(jnp.asarray(delta)))
    z = jnp.stack(zs, axis=1)
    mask = np.zeros(rm.weights.shape[0], bool)
    raw = np.asarray(_raw_residual(rm, (c, theta)))
    misfit = []
    for name, a, b in rm.groups:
        if name in {c_.name for c_ in problem.data_conditions}:
            mask[a:b] = True
            misfit.append(raw[a:b])
    misfit = np.concatenate(misfit)
    n = misfit.size
    s2 = float(np.sum(misfit**2) / max(n - p, 1))
    zd = np.asarray(z)[mask] * np.asarray(rm.weights)[mask][:, None]
    ztz_inv = np.linalg.pinv(np.asarray(z.T @ z))
    g = ztz_inv @ zd.T
    cov = s2 * g @ g.T
    return {str(q): float(np.sqrt(max(cov[i, i], 0.0))) for i, q in enumerate(problem.unknown_parameters)}


def _variable_projection(problem, model, rm, solver, theta0, recorder, say, t0):
    """Gauss-Newton on theta alone; the coefficients are a linear least-squares
    solution for each theta (the equation is linear in the unknown).

    The steps are driven from the host, each linear solve between jitted pieces (as
    for `GaussNewton`; inside a callback in a jitted step a jitted solver could hang).
    A step that raises the reduced residual is halved, up to `_MAX_HALVINGS` times."""
    j, k = model.num_subdomains, model.num_features
    zero = jnp.zeros((j, k))
    rm = eqx.tree_at(lambda r: r.weights, rm, _weights(rm, (zero, theta0), problem, solver))
    rm_c = dataclasses.replace(rm, num_parameters=0)  # the coefficient columns only
    p = rm.num_parameters
    n = rm.weights.shape[0]

    runs = []  # one host solver for every theta (the Jacobian's shape does not change)

    def lsq(theta, rhs):
        system = _jacobian(rm_c, (zero, theta), rhs)
        if not runs:
            runs.append(_host_solver(solver.linear_solver, system, recorder, model=model))
        _ACTIVE[0] = recorder  # (other solves, e.g. of the standard errors, may have set theirs)
        delta, ok = _run(runs[0], system)
        if not ok:
            raise _LinearSolveFailed(recorder.history[-1])
        return jnp.asarray(delta), system

    def reduced(theta):
        """The coefficients solved for at theta and the residual there."""
        c, _ = lsq(theta, -_residual(rm, (zero, theta)))
        return c, np.asarray(_residual(rm, (c, theta)))

    def reduced_jacobian(theta, c):
        """Kaufman's Jacobian of the reduced residual: P_perp dr/dtheta, (n, p)."""
        jt = _parameter_columns(rm, c, theta)
        cols = []
        for i in range(p):
            d, system = lsq(theta, jt[:, i])
            cols.append(jt[:, i] - system.mv(d))
        return np.asarray(jnp.stack(cols, axis=1))

    def converged(theta, step, r, dr):  # optimistix's Cauchy test (max norms)
        small_step = np.max(np.abs(step) / (solver.atol + solver.rtol * np.abs(theta))) < 1
        return small_step and np.max(np.abs(dr) / (solver.atol + solver.rtol * np.abs(r))) < 1

    t1 = time.perf_counter()
    say(f"pdedsl: VariableProjection on {p} parameter(s); {n} rows x {model.num_unknowns} unknowns")
    theta = np.asarray(theta0, dtype=float)
    try:
        c, r = reduced(jnp.asarray(theta))
        history = [{"step": 0, "residual": float(np.linalg.norm(r)), "step_norm": None, "accepted": True}]
        ok, message, steps = False, f"not converged in max_steps={solver.max_steps} steps", 0
        for steps in range(1, solver.max_steps + 1):
            n_solves = len(recorder.history)
            z = reduced_jacobian(jnp.asarray(theta), c)
            delta = np.linalg.lstsq(z, r, rcond=None)[0]
            size, accepted = 1.0, False
            for _ in range(_MAX_HALVINGS + 1):
                trial = theta - size * delta
                c_new, r_new = reduced(jnp.asarray(trial))
                # (a relative 1e-10 allows for rounding near the minimum)
                if np.all(np.isfinite(r_new)) and r_new @ r_new <= (r @ r) * (1 + 1e-10):
                    accepted = True
                    break
                size /= 2
            lin = recorder.history[n_solves:]
            its = [e["linear_iterations"] for e in lin if e["linear_iterations"] is not None]
            if not accepted:
                ok = converged(theta, delta, r, np.zeros_like(r))  # the step test alone
                message = (
                    "converged: the Gauss-Newton step is below rtol/atol (no part of it lowers "
                    "the residual further)"
                    if ok
                    else "stopped: no step along the Gauss-Newton direction lowers the residual "
                    f"(halved {_MAX_HALVINGS} times)"
                )
                steps -= 1
                break
            history.append(
                {
                    "step": steps,
                    "residual": float(np.linalg.norm(r_new)),
                    "step_norm": float(np.linalg.norm(trial - theta)),
                    "step_size": size,
                    "accepted": True,
                    "linear_iterations": [e["linear_iterations"] for e in lin],
                    "linear_success": all(e["linear_success"] for e in lin),
                }
            )
            say(
                f"  VariableProjection step {steps:>3d}: residual {np.linalg.norm(r_new):.3e}, "
                f"parameter step {np.linalg.norm(trial - theta):.2e}"
                + ("" if size == 1 else f" (step halved to {size:g})")
                + (f", {len(lin)} linear solves, {sum(its)} iterations" if its else "")
            )
            done = converged(trial, trial - theta, r_new, r_new - r)
            theta, c, r = trial, c_new, r_new
            if done:
                ok, message = True, "converged: parameter and residual changes below rtol/atol"
                break
    except _LinearSolveFailed as e:
        raise RuntimeError(
            f"VariableProjection: a linear solve failed: {e}. Try linear_solver=pd.SparseNormal() "
            "or pd.DenseLeastSquares() (direct), or loosen the iterative solver's rtol."
        ) from None
    t2 = time.perf_counter()
    info = _nonlinear_info(
        rm,
        (c, jnp.asarray(theta)),
        problem.unknown_parameters,
        history,
        steps,
        ok,
        message,
        solver,
        "a linear solve for each theta",
    )
    info.update(assemble_s=t1 - t0, solve_s=t2 - t1, linear_solves=len(recorder.history))
    info["linear_solvers"] = sorted({e["linear_solver"] for e in recorder.history})
    info["standard_errors"] = _standard_errors(
        problem, rm, (c, jnp.asarray(theta)), solver.linear_solver, model
    )
    return c, info


_MAX_HALVINGS = 10  # VariableProjection: halvings of a step that raises the residual


class _LinearSolveFailed(RuntimeError):
    pass


@eqx.filter_jit
def _parameter_columns(rm: ResidualModel, c, theta):
    """dr/dtheta (N, p), row-weighted."""
    cols = [b.form.linearise(b.points, rm.fields(b, c), theta)[2] for b in rm.blocks]
    return jnp.concatenate(cols) * rm.weights[:, None]


__all__ = [
    "AbstractNonlinearSolver",
    "GaussNewton",
    "LevenbergMarquardt",
    "VariableProjection",
    "ResidualModel",
    "residual_model",
    "solve_nonlinear",
]
