"""`pd.train`: gradient-descent training (optax, Adam by default) of a trainable ansatz.

The baselines of the FBPINN papers: a PINN (`pd.PINN`) or an FBPINN (`pd.FBPINN`
with a `pd.MLP` basis) trained by Adam on the same problem object, the same
collocation points and the same lowered equation and condition rows as
`pd.solve`. The loss is

    L(theta, a) = sum_groups mean_{rows i of the group} (s_i * (M_i(theta) a - b_i))^2

with theta the hidden weights and a the output layer (the ansatz's coefficients),
one group per equation and condition, and s_i the row scaling of `pd.solve`
(1 / ||M_i||) taken at the initial weights and then kept fixed, so that the loss
is one fixed function of the parameters.
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import optimistix as optx

from ..ansatz import FBPINN, evaluate
from ..ansatz.corners import corner_features, reentrant_corners
from ..ansatz.model import default_edge_degree
from ..assemble.assemble import _jump_rows, _off_cut
from ..lower import CompiledNonlinearForm, LinearForm, apply_form
from ..lower.nonlinear import from_linear
from ..problem import Problem
from ..solution import Solution
from . import progress as progress_lines
from .marching import MarchingPlan, TimeMarching, padded
from .nonlinear import _compile
from .progress import enabled as progress_enabled
from .solve import CornerWarning, SolveError, check_problem_and_model, collocation, warn_condition_counts


class _Block(eqx.Module):
    """One group of rows as the jitted loss sees it (padded to a fixed size)."""

    points: jnp.ndarray  # (R, d)
    rhs: jnp.ndarray  # (R,) right-hand side (evaluated once: data conditions ignore points)
    weights: jnp.ndarray  # (R,) row scale * group weight; 0 on padding rows
    count: jnp.ndarray  # () number of real rows (>= 1)


class _Consistency(eqx.Module):
    """Consistency pairs for time marching: (point, cover position p, cover position q)."""

    points: jnp.ndarray  # (R, d)
    p: jnp.ndarray  # (R,)
    q: jnp.ndarray  # (R,)
    weights: jnp.ndarray  # (R,)
    count: jnp.ndarray


def _with_params(model: FBPINN, params) -> FBPINN:
    return eqx.tree_at(lambda m: m.params, model, params)


def _fields(model: FBPINN, a, form, points):
    """`U_a = D^a u` (N, A) at `points` for the multi-indices of a nonlinear form, and the
    evaluated basis `(index, derivs)`."""
    index, derivs = evaluate(model, points, form.multi_indices, chunked=False)
    u = jnp.stack([jnp.einsum("npk,npk->n", derivs[m], a[index]) for m in form.multi_indices], axis=1)
    return u, index, derivs


def _linear_rows(model: FBPINN, form, points):
    """(index, rows, rhs) of a linear form's rows at `points`; an interface's rows (a
    jump, or the equation from one side of a cut) as `pd.solve` assembles them."""
    if form.jump is not None:
        sides = [evaluate(model, points, form.multi_indices, (*form.jump, s), chunked=False) for s in (1, -1)]
        index, rows = _jump_rows(form, sides, points)
        return index, rows, form.rhs(points)
    index, derivs = evaluate(model, points, form.multi_indices, form.side, chunked=False)
    at = points if form.side is None else _off_cut(points, *form.side)
    return index, apply_form(form, derivs, at), form.rhs(at)


def _residuals(model: FBPINN, a, form, points, rhs):
    if isinstance(form, CompiledNonlinearForm):  # R(x, U) - data
        u, _, _ = _fields(model, a, form, points)
        return form.residual(points, u, _NO_THETA) - rhs
    index, rows, _ = _linear_rows(model, form, points)
    return jnp.einsum("npk,npk->n", rows, a[index]) - rhs


_NO_THETA = np.zeros(0)


@eqx.filter_jit
def _diagnose(model: FBPINN, a, form, points, data):
    """Residuals `M_i a - b_i`, right-hand sides `b_i` and row norms `||M_i||` of one block.

    For a nonlinear form: residuals `R(x_i, U(x_i)) - data_i`, `data_i`, and the norms of
    the rows of the Jacobian `dR_i/da` (the linearised rows)."""
    if isinstance(form, CompiledNonlinearForm):
        u, index, derivs = _fields(model, a, form, points)
        r, du, _ = form.linearise(points, u, jnp.asarray(_NO_THETA))
        rows = sum(du[:, i, None, None] * derivs[m] for i, m in enumerate(form.multi_indices))
        return r - data, data, jnp.sqrt(jnp.sum(rows**2, axis=(1, 2)))
    (ma, norms), rhs = _rows_times(model, a, form, points), _linear_rows(model, form, points)[2]
    return ma - rhs, rhs, norms


@eqx.filter_jit
def _rows_times(model: FBPINN, a, form, points):
    """`M_i a` and the row norms `||M_i||` of a linear form's rows at `points`."""
    index, rows, _ = _linear_rows(model, form, points)
    return jnp.einsum("npk,npk->n", rows, a[index]), jnp.sqrt(jnp.sum(rows**2, axis=(1, 2)))


def _consistency_residuals(model: FBPINN, a, c: _Consistency):
    dec = model.decomposition

    def one(x, p, q):
        idx, _ = dec.cover(x)
        i, j = idx[p], idx[q]
        return model.features(x, i) @ a[i] - model.features(x, j) @ a[j]

    return jax.vmap(one)(c.points, c.p, c.q)


def _loss_terms(theta, model: FBPINN, forms, blocks, consistency):
    params, a = theta
    m = _with_params(model, params)
    terms = [
        jnp.sum((blk.weights * _residuals(m, a, form, blk.points, blk.rhs)) ** 2) / blk.count
        for form, blk in zip(forms, blocks)
    ]
    if consistency is not None:
        r = consistency.weights * _consistency_residuals(m, a, consistency)
        terms.append(jnp.sum(r**2) / consistency.count)
    return jnp.stack(terms)


@eqx.filter_jit
def _run_chunk(model, theta, opt_state, blocks, consistency, trainable, n_valid, forms, optimizer, chunk):
    """`chunk` training steps in one jitted `lax.scan`; steps >= `n_valid` are skipped.

    Module-level and with the model as an argument, so that the compiled loop is
    reused by every `pd.train` call with the same shapes, forms and optimizer.
    """

    def loss_fn(theta):
        return jnp.sum(_loss_terms(theta, model, forms, blocks, consistency))

    grad_fn = jax.value_and_grad(loss_fn)

    def step(carry, i):
        def do(args):
            theta, opt_state = args
            loss, g = grad_fn(theta)
            updates, opt_state = optimizer.update(g, opt_state, theta)
            new = optax.apply_updates(theta, updates)
            # frozen subdomains (time marching) keep their weights exactly
            new = jax.tree_util.tree_map(
                lambda n, o: jnp.where(trainable.reshape((-1,) + (1,) * (n.ndim - 1)), n, o), new, theta
            )
            return (new, opt_state), loss

        def skip(args):
            return args, jnp.array(jnp.nan, dtype=args[0][1].dtype)

        return jax.lax.cond(i < n_valid, do, skip, carry)

    (theta, opt_state), losses = jax.lax.scan(step, (theta, opt_state), jnp.arange(chunk))
    return theta, opt_state, losses


class LBFGS(eqx.Module):
    """L-BFGS over all weights (hidden layers and output layer together), for small
    networks: `pd.train(problem, model, optimizer=pd.LBFGS(), steps=2000)`.

    optimistix's `LBFGS` (Armijo backtracking line search) on the same loss as Adam.
    `steps` counts function evaluations (line-search trials included); training
    stops early when a step changes the weights and the loss by less than
    `atol + rtol * |value|` (optimistix's Cauchy test, max norm). Each stage runs in
    one jitted loop, so progress is printed once per stage.

    Args:
        history: number of (step, gradient change) pairs kept (default 10).
        rtol, atol: the termination tolerances.
    """

    history: int = eqx.field(default=10, static=True)
    rtol: float = eqx.field(default=1e-10, static=True)
    atol: float = eqx.field(default=1e-14, static=True)

    def __check_init__(self):
        if not (isinstance(self.history, int) and not isinstance(self.history, bool) and self.history >= 1):
            raise ValueError(f"LBFGS history must be an int >= 1, got {self.history!r}.")
        for name in ("rtol", "atol"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0):
                raise ValueError(f"LBFGS {name} must be a number >= 0, got {v!r}.")

    def solver(self) -> optx.LBFGS:
        return optx.LBFGS(rtol=self.rtol, atol=self.atol, history_length=self.history)


@eqx.filter_jit
def _run_lbfgs(model, theta, blocks, consistency, trainable, forms, lbfgs: LBFGS, steps: int):
    """Up to `steps` L-BFGS steps in one jitted `lax.scan`. Returns the weights, the loss at
    the current iterate after every step (NaN once stopped) and whether it stopped.

    Frozen subdomains (time marching) enter the loss with their weights at the start, so
    their gradient is zero and they are written back unchanged."""
    solver = lbfgs.solver()

    def keep_frozen(new):
        return jax.tree_util.tree_map(
            lambda n, o: jnp.where(trainable.reshape((-1,) + (1,) * (n.ndim - 1)), n, o), new, theta
        )

    def fn(th, args):
        return jnp.sum(_loss_terms(keep_frozen(th), model, forms, blocks, consistency)), None

    f_struct = jax.ShapeDtypeStruct((), theta[1].dtype)
    state = solver.init(fn, theta, None, {}, f_struct, None, frozenset())
    # the state holds the inverse-Hessian operator's jaxpr, which stays the same across
    # steps (as in optimistix's own loop): only the arrays are carried
    dynamic, static = eqx.partition(state, eqx.is_array)

    def step(carry, i):
        def do(c):
            th, dyn, _ = c
            th, st, _ = solver.step(fn, th, None, {}, eqx.combine(dyn, static), frozenset())
            stop = st.terminate | (st.result != optx.RESULTS.successful)
            return (th, eqx.filter(st, eqx.is_array), stop), st.f_info.f

        def skip(c):
            return c, jnp.array(jnp.nan, dtype=theta[1].dtype)

        return jax.lax.cond(carry[2], skip, do, carry)

    (th, _, stopped), losses = jax.lax.scan(step, (theta, dynamic, jnp.array(False)), jnp.arange(steps))
    return keep_frozen(th), losses, stopped


@functools.lru_cache(maxsize=16)
def _adam(learning_rate: float) -> optax.GradientTransformation:
    # one object per learning rate, so that the compiled training loop is reused
    return optax.adam(learning_rate)


def _block(points, rhs, scales, rows, size) -> _Block:
    pos, valid = padded(rows, size)
    return _Block(
        points=jnp.asarray(points[pos]),
        rhs=jnp.asarray(rhs[pos] * valid),
        weights=jnp.asarray(scales[pos] * valid),
        count=jnp.asarray(float(max(len(rows), 1))),
    )


class _Pairs:
    """All consistency pairs at the equation points, with their slab; restricted per stage."""

    def __init__(self, model: FBPINN, plan: MarchingPlan, points, weight: float):
        dec = model.decomposition
        pairs = [(p, q) for p in range(dec.max_cover) for q in range(p + 1, dec.max_cover)]
        self.size = 1
        if not pairs or weight == 0:
            self.points = None
            return
        # (point, p, q) for each pair of cover positions whose windows are both non-zero there
        cover_idx, inside = _cover_inside(model, jnp.asarray(points))
        cover_idx, inside = np.asarray(cover_idx), np.asarray(inside)
        pts, ps, qs = [], [], []
        for p, q in pairs:
            both = np.flatnonzero(inside[:, p] & inside[:, q])
            pts.append(both)
            ps.append(np.full(len(both), p))
            qs.append(np.full(len(both), q))
        which = np.concatenate(pts)
        self.points = np.asarray(points)[which]
        self.p = np.concatenate(ps)
        self.q = np.concatenate(qs)
        i = cover_idx[which, self.p]
        j = cover_idx[which, self.q]
        self.slab = np.maximum(plan.slab[i], plan.slab[j])
        # scale each row phi_i a_i - phi_j a_j to norm `weight` at the initial weights
        fi, fj = _pair_features(model, jnp.asarray(self.points), jnp.asarray(self.p), jnp.asarray(self.q))
        norms = np.sqrt(np.sum(np.asarray(fi) ** 2, axis=1) + np.sum(np.asarray(fj) ** 2, axis=1))
        self.weights = weight / np.where(norms > 0, norms, 1.0)
        self.size = max(1, max(int(np.sum((self.slab >= st.lo) & (self.slab < st.hi))) for st in plan.stages))

    def restrict(self, stage) -> _Consistency | None:
        if self.points is None:
            return None
        rows = np.flatnonzero((self.slab >= stage.lo) & (self.slab < stage.hi))
        pos, valid = padded(rows, self.size)
        return _Consistency(
            points=jnp.asarray(self.points[pos]),
            p=jnp.asarray(self.p[pos]),
            q=jnp.asarray(self.q[pos]),
            weights=jnp.asarray(self.weights[pos] * valid),
            count=jnp.asarray(float(max(len(rows), 1))),
        )


@eqx.filter_jit
def _cover_inside(model: FBPINN, points):
    dec = model.decomposition

    def one(x):
        idx, mask = dec.cover(x)
        s = dec.local_coordinates(x, idx)
        return idx, (jax.vmap(model.window)(s) * mask) > 0

    return jax.vmap(one)(points)


@eqx.filter_jit
def _pair_features(model: FBPINN, points, p, q):
    dec = model.decomposition

    def one(x, p, q):
        idx, _ = dec.cover(x)
        out = []
        for j in (idx[p], idx[q]):
            params = jax.tree_util.tree_map(lambda v, j=j: v[j], model.params)
            out.append(model.basis.features(params, dec.local_coordinates(x, j[None])[0]))
        return tuple(out)

    return jax.vmap(one)(points, p, q)


class _ErrorProbe:
    """Relative L2 error of the current weights against `exact` on a fixed grid."""

    def __init__(self, problem: Problem, exact, n: int = 2000):
        from ..solution import _exact_fn

        self.points = jnp.asarray(problem.domain.sample(n, "grid"))
        self.ref = jnp.asarray(_exact_fn(exact, problem)(self.points))

    def __call__(self, model: FBPINN, theta) -> float:
        return float(_rel_error(model, theta, self.points, self.ref))


@eqx.filter_jit
def _rel_error(model, theta, points, ref):
    params, a = theta
    idx, vals = evaluate(_with_params(model, params), points, ((0,) * points.shape[1],))
    u = jnp.einsum("npk,npk->n", vals[(0,) * points.shape[1]], a[idx])
    return jnp.linalg.norm(u - ref) / jnp.linalg.norm(ref)


def _progress(enabled: bool, name: str = "Adam"):
    if not enabled:
        return lambda *args, **kw: None

    def say(step=None, total=None, loss=None, err=None, elapsed=None, stage=None, plan=None, end=False):
        if end:
            progress_lines.end_status()
            return
        where = "" if stage is None else f"stage {stage.index + 1}/{len(plan.stages)} "
        msg = f"pdedsl: {name} {where}step {step}/{total}  loss {loss:.3e}"
        if err is not None:
            msg += f"  rel_l2 {err:.2e}"
        progress_lines.status(msg + f"  [{elapsed:.1f} s]")

    return say


def _stage_relative_residual(stage, model, theta, forms, data, linear):
    """`||r|| / ||b||` of the stage's rows of a linear problem, each row scaled by its
    norm as in `pd.solve` (the padding rows left out); None without a stage, or for a
    nonlinear problem, whose residual has no right-hand side to be relative to."""
    if stage is None or not linear:
        return None
    params, a = theta
    trained = _with_params(model, params)
    num = den = 0.0
    for form, block in zip(forms, data):
        ma, n = (np.asarray(v) for v in _rows_times(trained, a, form, block.points))
        b = np.asarray(block.rhs)  # the stage's entries of b (data conditions: their data)
        keep = (np.asarray(block.weights) != 0) & (n > 0)
        num += float(np.sum(((ma - b)[keep] / n[keep]) ** 2))
        den += float(np.sum((b[keep] / n[keep]) ** 2))
    return math.sqrt(num / den) if den > 0 else None


def _record_stage(
    stage_info, stage, plan, theta, rows, opt_name, failed, stage_losses, elapsed, relative_residual=None
):
    if stage is None:
        return
    stage_info.append(
        {
            "stage": stage.index,
            "slabs": (stage.lo, stage.hi - 1),
            "unknowns": int(sum(np.size(np.asarray(x)[stage.ids]) for x in jax.tree_util.tree_leaves(theta))),
            "rows": int(sum(len(r) for r in rows)),
            "frozen": int(plan.frozen(stage).sum()),
            "solver": opt_name,
            "success": failed is None,
            "message": f"{len(stage_losses)} steps",
            "relative_residual": relative_residual,
            "rank": None,
            "iterations": int(len(stage_losses)),
            "final_loss": float(stage_losses[-1]),
            "solve_s": elapsed,
        }
    )


def _warn_unenriched_corners(problem: Problem, model: FBPINN) -> None:
    """pd.train does not add corner functions itself (pd.solve does): say so where
    the domain has re-entrant corners or edges."""
    if not reentrant_corners(problem.domain):
        return
    features, skipped = corner_features(
        problem, model.decomposition, edge_degree=default_edge_degree(model.basis)
    )
    if features is not None:
        how = (
            "pd.train does not add them itself (pd.solve does): train model.with_corners(problem), "
            "which adds them to the features of the subdomains that contain the corners"
        )
    else:
        how = "they do not qualify for singular functions: " + "; ".join(skipped)
    warnings.warn(
        "The domain has re-entrant corners or edges, where the solution may be singular; without "
        "their singular functions the least-squares fit converges to a different function near "
        f"them. {how}.",
        CornerWarning,
        stacklevel=3,
    )


def train(
    problem: Problem,
    model: FBPINN,
    *,
    steps: int = 10_000,
    learning_rate=None,
    optimizer: optax.GradientTransformation | LBFGS | None = None,
    points=None,
    sampler: str = "grid",
    condition_points=None,
    weights: Mapping[str, float] | None = None,
    seed: int = 0,
    exact=None,
    schedule: TimeMarching | None = None,
    chunk: int | None = None,
    throw: bool = True,
    progress: bool | None = None,
) -> Solution:
    """Train a network ansatz by gradient descent (Adam) on the physics-informed loss.

    Args:
        problem: a `pd.Problem` (the same object `pd.solve` takes).
        model: an ansatz whose basis is trainable: `pd.PINN(domain)` or
            `pd.FBPINN(decomposition, pd.MLP(hidden=(32,)))`. On a domain with
            re-entrant corners, `model.with_corners(problem)` adds their singular
            functions to the trained features; unlike `pd.solve`, `pd.train` does not
            add them itself (a `pd.CornerWarning` says so).
        steps: optimiser steps (per stage when time marching).
        learning_rate: Adam's learning rate, a float or an optax schedule
            (default 1e-3). Not together with `optimizer`.
        optimizer: any optax `GradientTransformation` instead of Adam, or
            `pd.LBFGS()` (L-BFGS over all weights, for small networks; `steps` then
            bounds its function evaluations and it may stop earlier).
        points, sampler, condition_points: collocation points, as in `pd.solve`
            (default: `2 * J * K` equation points).
        weights: extra factor per group of rows, e.g. `{"condition 0": 10.0}`
            (group names as in `sol.report()`: "equation", "condition 0", ...).
        seed: seeds the output layer's initial values and random samplers; the
            hidden weights come from the model's own `seed`.
        exact: optional exact solution (sympy expression of the coordinates or a
            callable); the relative L2 error is then recorded after every chunk.
        schedule: `pd.TimeMarching(t, active=3)`: train slab by slab, only the
            active subdomains' networks, the earlier ones frozen.
        chunk: steps per jitted chunk (progress and error are reported between
            chunks); default 1/20 of `steps`, at most 1,000.
        throw: raise `pd.SolveError` if the loss becomes non-finite.
        progress: print the loss to stderr. Default: only when stderr is a terminal
            (or as the environment variable PDEDSL_PROGRESS=1/0 says).

    Returns:
        A `Solution` holding the trained model and output layer. `sol.info` has
        `loss_history` (the loss before every step), `error_history` ((step,
        rel_l2) rows, when `exact` is given), `compile_s` and `solve_s` (training
        time after compilation).
    """
    check_problem_and_model(problem, model, "train")
    warn_condition_counts(problem, stacklevel=2, fit="trained solution (its loss sums the misfits)")
    if model.corners is None:
        _warn_unenriched_corners(problem, model)
    if problem.interfaces and (not problem.linear or schedule is not None):
        raise NotImplementedError(
            "pd.train supports interface conditions for linear problems without time marching; "
            "use pd.solve (Gauss-Newton) for nonlinear ones."
        )
    if problem.unknown_parameters:
        raise NotImplementedError(
            "pd.train does not estimate unknown parameters ("
            + ", ".join(map(str, problem.unknown_parameters))
            + ") yet. Use pd.solve(problem, model), which solves inverse problems by Gauss-Newton "
            "or pd.VariableProjection()."
        )
    if not getattr(model.basis, "trainable", False):
        raise TypeError(
            f"pd.train needs a trainable basis such as pd.MLP(hidden=(32,)) (or pd.PINN(domain)); "
            f"{type(model.basis).__name__} has no trainable parameters: its output layer is a "
            "linear least-squares problem, which pd.solve(problem, model) solves exactly."
        )
    if not (isinstance(steps, (int, np.integer)) and not isinstance(steps, bool) and steps >= 1):
        raise ValueError(f"steps must be a positive int, got {steps!r}.")
    if optimizer is not None and learning_rate is not None:
        raise ValueError("Give either learning_rate (for Adam) or optimizer, not both.")
    lbfgs = isinstance(optimizer, LBFGS)
    if lbfgs:
        opt_name = "L-BFGS"
    elif optimizer is None:
        lr = 1e-3 if learning_rate is None else learning_rate
        if not callable(lr) and not (isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0):
            raise ValueError(f"learning_rate must be a positive number or an optax schedule, got {lr!r}.")
        optimizer = optax.adam(lr) if callable(lr) else _adam(float(lr))
        opt_name = "Adam"
    elif isinstance(optimizer, optax.GradientTransformation):
        opt_name = "optax optimizer"
    else:
        raise TypeError(
            f"optimizer must be an optax GradientTransformation or pd.LBFGS(), got {type(optimizer).__name__}."
        )
    if schedule is not None and not isinstance(schedule, TimeMarching):
        raise TypeError(f"schedule must be pd.TimeMarching(...) or None, got {type(schedule).__name__}.")
    if chunk is None:
        chunk = min(1000, max(1, math.ceil(steps / 20)))
    if not (isinstance(chunk, (int, np.integer)) and not isinstance(chunk, bool) and chunk >= 1):
        raise ValueError(f"chunk must be a positive int, got {chunk!r}.")
    chunk = int(min(chunk, steps))
    say = _progress(progress_enabled(progress), opt_name)

    t_start = time.perf_counter()
    blocks = collocation(problem, model, points, sampler, condition_points, seed)
    names = [name for name, _, _ in blocks]
    weights = dict(weights or {})
    unknown = sorted(set(weights) - set(names))
    if unknown:
        raise ValueError(f"weights names {unknown} are not row groups of this problem: {names}.")
    points_np = [np.asarray(pts) for _, _, pts in blocks]
    if problem.linear:
        forms = tuple(form for _, form, _ in blocks)
        observed = [np.zeros(len(p)) for p in points_np]  # the forms carry their right-hand sides
    else:
        # the residual R(x, U) of every block, lowered as for pd.solve's Gauss-Newton
        raw = [problem.equation_form] + [c.form for c in problem.lowered_conditions]
        forms = tuple(_compile(from_linear(f) if isinstance(f, LinearForm) else f, ()) for f in raw)
        observed = [np.zeros(len(p)) for p in points_np]
        for i, c in enumerate(problem.lowered_conditions):
            if c.data is not None:
                observed[i + 1] = np.asarray(c.data, dtype=float).reshape(-1)
    scales, rhs_np = [], []
    bound = 1.0 / math.sqrt(model.num_features)
    a0 = jax.random.uniform(
        jax.random.PRNGKey(seed), (model.num_subdomains, model.num_features), minval=-bound, maxval=bound
    )
    for name, form, pts, d in zip(names, forms, points_np, observed):
        _, rhs, norms = (np.asarray(v) for v in _diagnose(model, a0, form, jnp.asarray(pts), jnp.asarray(d)))
        rhs_np.append(rhs)
        scale = np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 1.0)
        scales.append(scale * float(weights.get(name, 1.0)))

    theta = (model.params, a0)
    num_params = sum(int(np.size(x)) for x in jax.tree_util.tree_leaves(theta))

    # stages: (stage or None, rows of each block, trainable subdomains)
    if schedule is None:
        plan, pairs = None, None
        stages = [(None, [np.arange(len(p)) for p in points_np], np.ones(model.num_subdomains, bool))]
    else:
        plan = schedule.plan(problem, model)
        row_slabs = [plan.row_slab(model, p) for p in points_np]
        stages = [
            (st, [st.rows(rs) for rs in row_slabs], np.isin(np.arange(model.num_subdomains), st.ids))
            for st in plan.stages
        ]
        pairs = _Pairs(model, plan, schedule.consistency_grid(problem, points_np[0]), schedule.consistency)
    sizes = [max(1, max(len(rows[b]) for _, rows, _ in stages)) for b in range(len(blocks))]

    probe = None if exact is None else _ErrorProbe(problem, exact)
    losses, error_history, stage_info = [], [], []
    compiled, compile_s, train_s, done, failed = None, 0.0, 0.0, 0, None
    total = steps * len(stages)
    for stage, rows, trainable in stages:
        data = tuple(_block(p, b, sc, r, n) for p, b, sc, r, n in zip(points_np, rhs_np, scales, rows, sizes))
        cons = None if pairs is None else pairs.restrict(stage)
        mask = jnp.asarray(trainable)
        if lbfgs:
            if compiled is None:
                t0 = time.perf_counter()
                _run_lbfgs.lower(model, theta, data, cons, mask, forms, optimizer, steps).compile()
                compiled = True
                compile_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            theta, stage_losses, _ = _run_lbfgs(model, theta, data, cons, mask, forms, optimizer, steps)
            stage_losses = np.asarray(stage_losses)
            elapsed = time.perf_counter() - t0
            ran = int(np.sum(~np.isnan(stage_losses)))
            stage_losses = stage_losses[:ran]
            done += ran
            if not np.all(np.isfinite(stage_losses)):
                failed = f"the loss became non-finite by step {done}"
            err = None
            if probe is not None:
                err = probe(model, theta)
                error_history.append((done, err))
            say(done, total, float(stage_losses[-1]), err, time.perf_counter() - t_start, stage, plan)
            train_s += elapsed
            losses.append(stage_losses)
            rel = _stage_relative_residual(stage, model, theta, forms, data, problem.linear)
            _record_stage(stage_info, stage, plan, theta, rows, opt_name, failed, stage_losses, elapsed, rel)
            if failed is not None:
                break
            continue
        opt_state = optimizer.init(theta)
        if compiled is None:
            t0 = time.perf_counter()
            # compile ahead of time to time it apart from training; the call below
            # then finds the executable in JAX's compilation cache
            _run_chunk.lower(
                model, theta, opt_state, data, cons, mask, jnp.asarray(chunk), forms, optimizer, chunk
            ).compile()
            compiled = True
            compile_s = time.perf_counter() - t0
        t0, probe_s = time.perf_counter(), 0.0
        stage_losses = []
        for start in range(0, steps, chunk):
            n = min(chunk, steps - start)
            theta, opt_state, chunk_losses = _run_chunk(
                model, theta, opt_state, data, cons, mask, jnp.asarray(n), forms, optimizer, chunk
            )
            chunk_losses = np.asarray(chunk_losses)[:n]
            stage_losses.append(chunk_losses)
            done += n
            if not np.all(np.isfinite(chunk_losses)):
                failed = f"the loss became non-finite by step {done}"
                break
            err = None
            if probe is not None:
                t1 = time.perf_counter()
                err = probe(model, theta)
                error_history.append((done, err))
                probe_s += time.perf_counter() - t1
            say(done, total, float(chunk_losses[-1]), err, time.perf_counter() - t_start, stage, plan)
        elapsed = time.perf_counter() - t0 - probe_s  # training only, not the error probes
        train_s += elapsed
        stage_losses = np.concatenate(stage_losses)
        losses.append(stage_losses)
        rel = _stage_relative_residual(stage, model, theta, forms, data, problem.linear)
        _record_stage(stage_info, stage, plan, theta, rows, opt_name, failed, stage_losses, elapsed, rel)
        if failed is not None:
            break
    say(end=True)

    params, a = theta
    trained = _with_params(model, params)
    loss_history = np.concatenate(losses)
    # the same diagnostics as pd.solve: residuals of the row-scaled system
    # (computed per block like the loss, rather than by `assemble`: no new compilation)
    resid, rhs, norms = zip(
        *(
            _diagnose(trained, a, form, jnp.asarray(p), jnp.asarray(d))
            for form, p, d in zip(forms, points_np, observed)
        )
    )
    group_rms = {name: float(jnp.sqrt(jnp.mean(r**2))) for name, r in zip(names, resid)}
    scaled = jnp.concatenate([r / jnp.where(n > 0, n, 1.0) for r, n in zip(resid, norms)])
    scaled_rhs = jnp.concatenate([b / jnp.where(n > 0, n, 1.0) for b, n in zip(rhs, norms)])
    finite = all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree_util.tree_leaves(theta))
    success = failed is None and finite
    message = (
        f"{done} steps"
        + ("" if plan is None else f" in {len(stages)} stages")
        + f", final loss {loss_history[-1]:.3e}"
        + ("" if failed is None else f"; {failed}")
    )
    info = {
        "solver": opt_name + ("" if plan is None else f" with {schedule}"),
        "solver_message": message,
        "success": success,
        "subdomains": model.num_subdomains,
        "features": model.num_features,
        "basis": type(model.basis).__name__,
        "window": type(model.window).__name__,
        "unknowns": model.num_unknowns,
        "trainable_parameters": num_params,
        "points": int(scaled.shape[0]),
        "equation_points": int(points_np[0].shape[0]),
        "residual_norm": float(jnp.linalg.norm(scaled)),
        # a nonlinear residual has no right-hand side to be relative to
        "relative_residual": float(jnp.linalg.norm(scaled) / jnp.linalg.norm(scaled_rhs))
        if problem.linear
        else None,
        "group_rms": group_rms,
        "iterations": int(done),
        "rank": None,
        "condition_number": None,
        "filtered": None,
        "setup_s": None,
        "history": None,
        "loss_history": loss_history,
        "error_history": np.asarray(error_history) if error_history else None,
        "compile_s": compile_s,
        "assemble_s": 0.0,
        "solve_s": train_s,
    }
    if plan is not None:
        info["stages"] = stage_info
    if throw and not success:
        raise SolveError(
            f"Training failed: {message}. To fix: lower the learning rate, or check the problem's "
            "scaling. (throw=False returns it anyway.)"
        )
    return Solution(problem, trained, a, info)
