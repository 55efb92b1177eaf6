"""Time marching of a nonlinear problem: one Gauss-Newton (or Levenberg-Marquardt)
solve per stage, on the active subdomains' coefficients only.

A stage of `pdedsl.solve.marching` fits the rows whose covering subdomains are all
frozen or active. For a linear equation the frozen subdomains' contribution moves to
the right-hand side; for a nonlinear one it cannot: at each row the derivatives of
the unknown are `U_a = F_a + sum_active D^a(w_j phi_jk) c_jk`, where `F_a` (the frozen
subdomains' part of `D^a u`, known) sits inside the nonlinearity `R(x, U)`. So each
stage builds a `ResidualModel` whose blocks carry `F` as an offset, whose columns are
the active coefficients only, and runs the same Gauss-Newton iteration as a global
solve on it (optimistix, with the block-sparse Jacobian solved by a pdedsl linear
solver), plus the consistency rows of the linear march (they are linear: the frozen
side of a pair is part of their offset).

Rows are weighted as in the global solve: each row divided by the norm of its
Jacobian row at the stage's initial guess, taken over all its columns (frozen ones
included, as the linear march scales rows of the assembled system before
restricting them); observation rows times `data_weight`; consistency rows keep
their norm `consistency`.

Initial guess of a stage (`initial` of the solver): "previous" (the default when
marching) keeps the values the active subdomains got in the previous stage (zero for
the slab new to this stage; the first stage starts from its linear part); "linear"
solves each stage's linear part (the equation with its nonlinear terms dropped,
frozen offset included), as the global solve does; "zero"; or the restriction of a
given `Solution` / (J, K) array. "previous" is the default because it was as good or
better wherever we measured (damped pendulum: rel_l2 4.6e-7 vs 8.7e-6 in 79 vs 96
steps; u' = -u^2 and Burgers: the same errors and step counts).
"""

from __future__ import annotations

import dataclasses
import functools
import time

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ..ansatz import FBPINN
from ..lower import CompiledNonlinearForm, LinearForm
from ..lower.nonlinear import from_linear
from .marching import TimeMarching, consistency_rows, march, padded
from .nonlinear import (
    ResidualModel,
    _Block,
    _compile,
    _host_solver,
    _iterate,
    _jacobian,
    _nonlinear_info,
    _Recorder,
    _residual,
    _run,
    _weights,
    residual_model,
)

CONSISTENCY = "consistency"


def _identity(points, u, theta, constants):
    return u[:, 0]


@functools.lru_cache(maxsize=8)
def _identity_form(dim: int) -> CompiledNonlinearForm:
    """`R = U_0`: the consistency rows are linear in the coefficients (one object per
    dimension, so that the compiled Gauss-Newton step is reused)."""
    return CompiledNonlinearForm(((0,) * dim,), (), _identity)


def _with_consistency(rm: ResidualModel, model: FBPINN, schedule: TimeMarching, problem, points):
    """`rm` with a last block of consistency rows (see `pdedsl.solve.marching`)."""
    ci, cv = consistency_rows(model, schedule.consistency_grid(problem, points), schedule.consistency)
    if len(ci) == 0:
        return rm
    n = len(ci)
    block = _Block(
        points=jnp.zeros((n, model.dim)),
        index=jnp.asarray(ci, dtype=rm.blocks[0].index.dtype),
        derivs=(jnp.asarray(cv),),
        data=jnp.zeros(n),
        form=_identity_form(model.dim),
    )
    start = rm.groups[-1][2]
    return dataclasses.replace(
        rm,
        blocks=rm.blocks + (block,),
        weights=jnp.concatenate([rm.weights, jnp.ones(n)]),
        groups=rm.groups + ((CONSISTENCY, start, start + n),),
    )


def _linear_parts(rm: ResidualModel, forms) -> ResidualModel | None:
    """The same evaluated blocks with the linear part of each of `forms` (the symbolic
    forms of the blocks; the consistency block is linear already), or None if one has
    no linear part."""
    out = []
    for i, b in enumerate(rm.blocks):
        if i >= len(forms):
            out.append(b)
            continue
        form = forms[i]
        lp = (from_linear(form) if isinstance(form, LinearForm) else form).linear_part()
        if lp is None:
            return None
        out.append(dataclasses.replace(b, form=_compile(lp, ())))
    return dataclasses.replace(rm, blocks=tuple(out))


@eqx.filter_jit
def _stage_model(rm: ResidualModel, rows, ids, c_full, theta):
    """The stage's `ResidualModel` (columns: the active subdomains `ids`) on the rows
    `rows` (one position array per block), and each row's Jacobian norm over all its
    columns at `c_full`."""
    j = rm.num_subdomains
    pos = jnp.full((j,), -1, dtype=ids.dtype).at[ids].set(jnp.arange(ids.shape[0], dtype=ids.dtype))
    blocks, norms = [], []
    for b, r in zip(rm.blocks, rows):
        index = b.index[r]
        derivs = tuple(d[r] for d in b.derivs)
        pts = b.points[r]
        local = pos[index]
        active = (local >= 0)[..., None]
        coeffs = c_full[index]
        known = jnp.stack([jnp.einsum("npk,npk->n", d * ~active, coeffs) for d in derivs], axis=1)
        full = jnp.stack([jnp.einsum("npk,npk->n", d, coeffs) for d in derivs], axis=1)
        _, du, _ = b.form.linearise(pts, full, theta)
        row = sum(du[:, a, None, None] * d for a, d in enumerate(derivs))
        norms.append(jnp.sqrt(jnp.sum(row**2, axis=(1, 2))))
        blocks.append(
            _Block(
                points=pts,
                index=jnp.where(active[..., 0], local, 0),
                derivs=tuple(d * active for d in derivs),
                data=b.data[r],
                form=b.form,
                offset=known,
            )
        )
    return blocks, norms


def _restrict(rm: ResidualModel, rows, valid, ids, c_full, theta, problem, solver) -> ResidualModel:
    blocks, norms = _stage_model(rm, tuple(jnp.asarray(r) for r in rows), jnp.asarray(ids), c_full, theta)
    data_names = {c.name for c in problem.data_conditions}
    weights, groups, start = [], [], 0
    for (name, _, _), v, nrm in zip(rm.groups, valid, norms):
        nrm = np.asarray(nrm)
        if name == CONSISTENCY:  # already scaled to norm `consistency`
            w = v.copy()
        else:
            w = v * np.where(nrm > 0, 1.0 / np.where(nrm > 0, nrm, 1.0), 1.0)
            if name in data_names:
                w = w * solver.data_weight
        weights.append(w)
        groups.append((name, start, start + len(v)))
        start += len(v)
    levels = rm.levels
    return ResidualModel(
        blocks=tuple(blocks),
        weights=jnp.asarray(np.concatenate(weights)),
        num_subdomains=len(ids),
        num_features=rm.num_features,
        num_parameters=0,
        groups=tuple(groups),
        levels=None if levels is None else jnp.asarray(levels)[jnp.asarray(ids)],
    )


class _Setup:
    """What every stage shares: the full residual model (with consistency rows), each
    row's last covering slab, the padded row counts and the initial-guess rule."""

    def __init__(self, schedule: TimeMarching, problem, model: FBPINN, blocks, solver):
        if problem.unknown_parameters:
            raise NotImplementedError(
                "Time marching with unknown parameters is not supported: the parameters are shared "
                "by every slab, so they cannot be fixed stage by stage. Solve globally (schedule=None)."
            )
        self.problem, self.model, self.solver = problem, model, solver
        self.plan = plan = schedule.plan(problem, model)
        self.base = residual_model(problem, model, blocks)
        rm = self.base
        if schedule.consistency > 0:
            rm = _with_consistency(self.base, model, schedule, problem, blocks[0][2])
        self.rm = rm
        self.row_slabs = []
        for b in rm.blocks:
            if b.form.fn is _identity:
                touched = np.any(np.asarray(b.derivs[0]) != 0, axis=2)
                self.row_slabs.append(np.max(np.where(touched, plan.slab[np.asarray(b.index)], -1), axis=1))
            else:
                self.row_slabs.append(plan.row_slab(model, b.points))
        self.sizes = [max(1, max(len(st.rows(rs)) for st in plan.stages)) for rs in self.row_slabs]
        if solver.initial is None:
            initial = "previous"
        else:
            initial = solver.initial if isinstance(solver.initial, str) else None
        self.initial = initial
        forms = [f for _, f, _, _ in blocks]
        self.linear = _linear_parts(rm, forms) if initial in ("linear", "previous") else None
        self.how = {
            "linear": "the linear part of each stage",
            "previous": "the previous stage's values (the first stage: its linear part)",
            "zero": "zero",
        }.get(initial or "", "the given coefficients")
        if initial in ("linear", "previous") and self.linear is None:
            self.how = "the previous stage's values (the equation has no linear part in the unknown)"
        self.given = None
        if initial is None:
            given = jnp.asarray(getattr(solver.initial, "coefficients", solver.initial), dtype=float)
            if given.shape != (model.num_subdomains, model.num_features):
                raise ValueError(
                    f"initial has shape {given.shape} but the model has {model.num_subdomains} "
                    f"subdomains x {model.num_features} features; give a Solution of the same model "
                    "or a (J, K) array."
                )
            self.given = given

    def rows(self, stage):
        """Per block: the stage's row positions padded to a fixed size, and 1/0 validity."""
        rows, valid = zip(*(padded(stage.rows(rs), n) for rs, n in zip(self.row_slabs, self.sizes)))
        return rows, valid

    def restrict(self, rm, stage, c_full) -> ResidualModel:
        rows, valid = self.rows(stage)
        return _restrict(rm, rows, valid, stage.ids, c_full, jnp.zeros(0), self.problem, self.solver)


def nonlinear_stage_solver(setup: _Setup, say=lambda msg: None):
    """`solve_stage(stage, coefficients)` for `march`: one Gauss-Newton solve on the
    stage's active coefficients, the frozen ones entering as offsets."""
    model, solver, plan = setup.model, setup.solver, setup.plan
    theta = jnp.zeros(0)

    def solve_stage(stage, c_full):
        ts = time.perf_counter()
        ids = jnp.asarray(stage.ids)
        centres = np.asarray(model.decomposition.centres)[np.asarray(stage.ids)]
        recorder = _Recorder()
        zero = jnp.zeros((len(stage.ids), model.num_features))
        if setup.given is not None:
            c0 = setup.given[ids]
        elif setup.linear is not None and (setup.initial == "linear" or stage.index == 0):
            lin = setup.restrict(setup.linear, stage, c_full)
            template = _jacobian(lin, (zero, theta), _residual(lin, (zero, theta)))
            delta, _ = _run(_host_solver(solver.linear_solver, template, recorder, centres=centres), template)
            c0 = -jnp.asarray(delta)
        elif setup.initial == "zero":
            c0 = zero
        else:  # "previous" (or "linear" without a linear part)
            c0 = c_full[ids]
        srm = setup.restrict(setup.rm, stage, c_full.at[ids].set(c0))
        y0 = (c0, theta)
        template = _jacobian(srm, y0, srm.weights * 0)
        run = _host_solver(solver.linear_solver, template, recorder, damping=solver.damped, centres=centres)
        opt = solver.optimistix_solver(solver.descent(srm, run))
        (c, _), steps, ok, message, history = _iterate(opt, srm, y0, solver, recorder, say)
        c = c.block_until_ready()
        finite = bool(jnp.all(jnp.isfinite(c)))
        info = {
            "stage": stage.index,
            "slabs": (stage.lo, stage.hi - 1),
            "unknowns": int(len(stage.ids)) * model.num_features,
            "rows": int(sum(int(np.sum(v)) for v in setup.rows(stage)[1])),
            "frozen": int(plan.frozen(stage).sum()),
            "solver": f"{solver.name}({solver.linear_solver.name})",
            "success": ok and finite,
            "message": message if finite else message + "; non-finite coefficients",
            "relative_residual": None,
            "rank": None,
            "iterations": steps,
            "nonlinear_steps": steps,
            "initial_residual": history[0]["residual"],
            "residual": history[-1]["residual"],
            "linear_solves": len(recorder.history),
            "history": history,
            "solve_s": time.perf_counter() - ts,
        }
        return c, info

    return solve_stage


def solve_nonlinear_marching(
    schedule: TimeMarching, problem, model: FBPINN, blocks, solver, *, say
) -> tuple[jnp.ndarray, dict]:
    """March a nonlinear problem; `blocks` as for `solve_nonlinear`.

    Returns `(coefficients, info)` with `info["stages"]` listing each stage's size,
    Gauss-Newton steps and residuals.
    """
    t0 = time.perf_counter()
    setup = _Setup(schedule, problem, model, blocks, solver)
    plan = setup.plan
    theta = jnp.zeros(0)
    t1 = time.perf_counter()
    say(
        f"pdedsl: marching {solver.name} with {schedule}: {len(plan.stages)} stages, initial guess "
        f"from {setup.how}"
    )
    coeffs = jnp.zeros((model.num_subdomains, model.num_features))
    stages = []
    for stage, after, info in march(plan, coeffs, nonlinear_stage_solver(setup, say)):
        coeffs = after
        stages.append(info)
        say(
            f"pdedsl: stage {stage.index + 1}/{len(plan.stages)}: slabs {stage.lo}-{stage.hi - 1}, "
            f"{info['unknowns']} unknowns, {info['rows']} rows, {info['nonlinear_steps']} "
            f"{solver.name} steps, residual {info['initial_residual']:.2e} -> {info['residual']:.2e}"
        )
    t2 = time.perf_counter()
    ok = all(s["success"] for s in stages)
    bad = [s["stage"] for s in stages if not s["success"]]
    steps = sum(s["nonlinear_steps"] for s in stages)
    message = f"{len(stages)} stages of {stages[0]['unknowns']} unknowns, {steps} {solver.name} steps" + (
        "" if ok else f"; stages {bad} did not converge: {stages[bad[0]]['message']}"
    )
    # diagnostics of the whole problem (without consistency rows), weighted as a global solve
    base = setup.base
    final = eqx.tree_at(lambda r: r.weights, base, _weights(base, (coeffs, theta), problem, solver))
    r = float(jnp.linalg.norm(_residual(final, (coeffs, theta))))
    history = [{"step": 0, "residual": r, "step_norm": None, "accepted": True}]
    info = _nonlinear_info(final, (coeffs, theta), (), history, steps, ok, message, solver, setup.how)
    info.update(stages=stages, assemble_s=t1 - t0, solve_s=t2 - t1)
    return coeffs, info
