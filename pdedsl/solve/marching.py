"""Time marching: solve the decomposition slab by slab along one coordinate.

The subdomains of a `pd.Grid` are grouped into slabs by their index along the
marching coordinate. Stage s solves the `active` slabs `[lo, lo + active)` only:

- the unknowns are the active subdomains' coefficients (`active x (subdomains per
  slab) x K` of them);
- the rows are the collocation and condition points whose covering subdomains
  are all solved or active, with at least one active (a point covered by a later,
  "future" subdomain waits for a later stage);
- the subdomains of slabs `< lo` are frozen: their coefficients no longer change
  and their contribution to each row is moved to the right-hand side.

Then `lo` advances by `step` slabs. Every stage has the same size, so the
restricted systems are compiled once.

Consistency rows. In the overlap of two subdomains only the windowed sum of
their local functions is determined by the equation; how it is split between
them is not. A global solve does not care, but a frozen subdomain cannot be
corrected later: if its local function carries a component that its (then
active) neighbours cancelled, the next stage must keep cancelling it where the
neighbours' windows vanish, which it cannot, and the error grows from stage to
stage (measured on the oscillator: rel_l2 ~ 1e3 after 18 stages). So every stage
also fits, with weight `consistency`, the rows `phi_i(x) a_i - phi_j(x) a_j = 0`
at the equation points x in the overlap of subdomains i and j (unwindowed local
functions; each row scaled to norm `consistency`): overlapping local functions
agree, which selects the natural split where each one approximates the solution.
These rows are used only by time marching.

The driver `march` knows nothing about how a stage is solved: it takes a
`solve_stage(stage, coefficients) -> (active coefficients, info)` callable. The
linear path (`linear_stage_solver`) restricts the assembled least-squares system
and calls any pdedsl solver; the Adam path (`pd.train`) trains the active
subdomains' networks on the stage's rows; the Gauss-Newton path
(`pdedsl.solve.marching_nonlinear`) iterates on the active coefficients with the
frozen subdomains' part of each derivative of u as a known offset inside the
nonlinear residual.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from ..ansatz import FBPINN, Grid
from ..assemble import LinearSystem
from ..assemble.system import product_chunk_rows
from .auto import Auto
from .base import AbstractSolver


class TimeMarching(eqx.Module):
    """Solve slab by slab along `coordinate`, `active` slabs at a time.

    Args:
        coordinate: the marching coordinate (a Symbol of the problem, or its name).
        active: how many slabs of subdomains are solved together (>= 1).
        step: how many slabs are frozen after each stage (1 <= step <= active);
            the default 1 is a sliding window: every slab is solved `active` times,
            the last time with the slabs after it as a buffer.
        consistency: weight of the rows asking overlapping subdomains' local
            functions to agree (see the module docstring); 0 turns them off, which
            makes marching unstable for the bases we have measured.
        consistency_points: where those rows are taken: a grid of this many points
            (or this per-axis shape) over the domain. Default: as many as there are
            equation points in 1D, half as many per further dimension (N / 2^(d-1));
            fewer keep the stage systems small (in 2D the consistency rows would
            otherwise outnumber the equation rows several times).

    Use it as `pd.solve(problem, model, schedule=pd.TimeMarching(t, active=3))` or
    `pd.train(problem, model, schedule=...)`. The model's decomposition must be a
    `pd.Grid`. `sol.info["stages"]` lists each stage's slabs, rows and unknowns.
    """

    coordinate: sp.Symbol | str = eqx.field(static=True)
    active: int = eqx.field(default=3, static=True)
    step: int = eqx.field(default=1, static=True)
    consistency: float = eqx.field(default=1e-2, static=True)
    consistency_points: int | tuple[int, ...] | None = eqx.field(default=None, static=True)

    def __check_init__(self):
        if not isinstance(self.coordinate, (sp.Symbol, str)):
            raise TypeError(
                f"TimeMarching coordinate must be a coordinate Symbol (e.g. t) or its name, got "
                f"{self.coordinate!r}."
            )
        for name in ("active", "step"):
            v = getattr(self, name)
            if not (isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1):
                raise ValueError(f"TimeMarching {name} must be an int >= 1, got {v!r}.")
        if not (isinstance(self.consistency, (int, float)) and self.consistency >= 0):
            raise ValueError(f"TimeMarching consistency must be a number >= 0, got {self.consistency!r}.")
        cp = self.consistency_points
        if cp is not None and not (
            (isinstance(cp, int) and cp >= 2)
            or (isinstance(cp, tuple) and all(isinstance(n, int) and n >= 2 for n in cp))
        ):
            raise ValueError(f"consistency_points must be an int or a tuple of ints >= 2, got {cp!r}.")
        if self.step > self.active:
            raise ValueError(
                f"TimeMarching step={self.step} > active={self.active} would skip slabs; use step <= active."
            )

    def plan(self, problem, model: FBPINN) -> MarchingPlan:
        """The stages for this problem and model (checks that marching applies)."""
        coords = tuple(problem.coords)
        names = [str(c) for c in coords]
        if str(self.coordinate) not in names:
            raise ValueError(
                f"TimeMarching: {self.coordinate} is not a coordinate of the problem "
                f"(its coordinates are {tuple(names)})."
            )
        axis = names.index(str(self.coordinate))
        dec = model.decomposition
        grid = getattr(dec, "base", dec)  # a pd.Cut: its grid's slabs, one per copy
        if not isinstance(grid, Grid):
            raise TypeError(
                f"TimeMarching needs a pd.Grid decomposition (slabs of subdomains along "
                f"{self.coordinate}), got {type(dec).__name__}."
            )
        if any(a == axis for a, _ in getattr(dec, "cuts", ())):
            raise NotImplementedError(
                f"TimeMarching along {self.coordinate}: the model is cut across {self.coordinate}; "
                "march along a coordinate without interfaces."
            )
        if axis in dec.periodic_axes:
            raise ValueError(
                f"TimeMarching along {self.coordinate}: the model is periodic along {self.coordinate}, "
                "so its last slab wraps around to the first; march along a coordinate that is not periodic."
            )
        _refuse_conditions_ahead(problem, axis, self.coordinate)
        num_slabs = grid.shape[axis]
        slab = np.unravel_index(np.arange(grid.num_subdomains), grid.shape)[axis]
        if grid is not dec:
            slab = slab[np.asarray(dec.source)]
        active = min(self.active, num_slabs)
        step = min(self.step, active)
        starts = list(range(0, max(num_slabs - active, 0) + 1, step))
        if starts[-1] != num_slabs - active:
            starts.append(num_slabs - active)
        stages = tuple(
            Stage(i, lo, lo + active, np.flatnonzero((slab >= lo) & (slab < lo + active)))
            for i, lo in enumerate(starts)
        )
        # A subdomain may only be frozen once every point of its support has been
        # fitted: the rows of a stage stop where the first future slab's supports
        # begin, so the slabs frozen after a stage must end there.
        c = np.asarray(dec.centres)[:, axis]
        hw = np.asarray(dec.half_widths)[:, axis]
        tol = 1e-12 * max(1.0, float(np.ptp(c)))
        for st, nxt in zip(stages, stages[1:]):
            frozen_next = (slab >= st.lo) & (slab < nxt.lo)
            front = np.min((c - hw)[slab == st.hi])
            if np.max((c + hw)[frozen_next]) > front + tol:
                raise ValueError(
                    f"{self} would freeze subdomains before every point of their support has "
                    f"been fitted: with overlap {grid.overlap:g} a subdomain reaches into the next "
                    f"{math.ceil(grid.overlap - 1e-12) - 1} slab(s) (more where the grid is graded); "
                    "use more active slabs or a smaller step."
                )
        return MarchingPlan(self, axis, num_slabs, slab, stages)

    def consistency_grid(self, problem, equation_points) -> np.ndarray:
        """The points where the consistency rows are taken."""
        n = self.consistency_points
        if n is None:
            n = max(2 * problem.dim, len(equation_points) // 2 ** (problem.dim - 1))
        return problem.domain.sample(n, "grid")

    def __str__(self):
        return (
            f"TimeMarching({self.coordinate}, active={self.active}, step={self.step}, "
            f"consistency={self.consistency:g})"
        )


def _refuse_conditions_ahead(problem, axis: int, coordinate) -> None:
    """A condition on a boundary the marching direction leaves through (outward normal
    along +axis: the end face, a 1D end point, the upper side of a hole) is fitted only
    in the stage that reaches it, after the slabs before it are frozen: it cannot act on
    them, so unless it is redundant the marched solution misses it (Poisson marched
    along x with u = 0 on every face: rel_l2 0.20; globally 5e-4). Such a problem is
    a boundary-value problem along that coordinate: it cannot be marched."""
    for c in problem.lowered_conditions:
        if c.data is not None:  # observations
            continue
        normal = getattr(c.region, "normal", None)
        ahead = normal is not None and normal[axis] > 0
        point = getattr(c.region, "point", None)
        if point is not None:  # a corner point on the end face has no single normal
            lo, hi = problem.domain.lower[axis], problem.domain.upper[axis]
            ahead = ahead or point[axis] >= hi - 1e-12 * max(1.0, hi - lo)
        if ahead:
            raise ValueError(
                f"TimeMarching along {coordinate}: the condition `{c.condition}` is imposed at "
                f"{c.region}, a boundary the marching direction ends at; slabs before it are "
                "frozen before any stage sees it, so the marched solution would miss it. The "
                f"problem is a boundary-value problem along {coordinate}: solve it on the whole "
                "domain (no schedule), or march along a coordinate whose conditions are all at "
                "its start (time in an initial-value problem)."
            )


@dataclass(frozen=True)
class Stage:
    """Stage `index` solves slabs `lo <= slab < hi`: the subdomains `ids`; slabs `< lo` are frozen."""

    index: int
    lo: int
    hi: int
    ids: np.ndarray

    def rows(self, row_slab: np.ndarray) -> np.ndarray:
        """Positions of the rows this stage fits: last covering slab in [lo, hi)."""
        return np.flatnonzero((row_slab >= self.lo) & (row_slab < self.hi))


@dataclass(frozen=True)
class MarchingPlan:
    schedule: TimeMarching
    axis: int
    num_slabs: int
    slab: np.ndarray  # (J,) slab of each subdomain
    stages: tuple[Stage, ...]

    def frozen(self, stage: Stage) -> np.ndarray:
        """(J,) True for the subdomains frozen during `stage`."""
        return self.slab < stage.lo

    def row_slab(self, model: FBPINN, points) -> np.ndarray:
        """(N,) the last slab whose subdomains cover each point (-1 if none)."""
        return np.asarray(_row_slab(model, jnp.asarray(self.slab), jnp.asarray(points)))

    def max_rows(self, row_slab: np.ndarray) -> int:
        return max(1, max(len(s.rows(row_slab)) for s in self.stages))


@eqx.filter_jit
def _row_slab(model: FBPINN, slab, points):
    dec = model.decomposition

    def one(x):
        idx, mask = dec.cover(x)
        s = dec.local_coordinates(x, idx)
        inside = (jax.vmap(model.window)(s) * mask) > 0
        return jnp.max(jnp.where(inside, slab[idx], -1))

    return jax.vmap(one)(points)


def consistency_rows(model: FBPINN, points, weight: float):
    """Rows `phi_i(x) a_i - phi_j(x) a_j` (each scaled to norm `weight`) for every pair
    of subdomains i < j whose supports contain x, at each point x of `points`.

    Returns `(index (R, P), values (R, P, K))` in the layout of `LinearSystem`.
    """
    idx, vals = _consistency(model, jnp.asarray(points))
    p, k = vals.shape[-2:]
    idx, vals = np.asarray(idx).reshape(-1, p), np.asarray(vals).reshape(-1, p, k)
    norms = np.sqrt(np.sum(vals**2, axis=(1, 2)))
    keep = norms > 0
    return idx[keep], vals[keep] * (weight / norms[keep])[:, None, None]


@eqx.filter_jit
def _consistency(model: FBPINN, points):
    dec = model.decomposition
    pairs = [(p, q) for p in range(dec.max_cover) for q in range(p + 1, dec.max_cover)]

    def one(x):
        idx, mask = dec.cover(x)
        s = dec.local_coordinates(x, idx)
        inside = (jax.vmap(model.window)(s) * mask) > 0
        params = jax.tree_util.tree_map(lambda a: a[idx], model.params)
        f = jax.vmap(model.basis.features)(params, s)
        if model.corners is not None:  # the singular functions at re-entrant edges
            f = jnp.concatenate([f, model.corners(x, idx, s)], axis=1)
        rows = []
        for p, q in pairs:
            both = (inside[p] & inside[q]).astype(f.dtype)
            rows.append(jnp.zeros_like(f).at[p].set(both * f[p]).at[q].set(-both * f[q]))
        return jnp.broadcast_to(idx, (len(pairs), idx.shape[0])), jnp.stack(rows)

    if not pairs:  # one subdomain covers every point: nothing to agree on
        n, k = points.shape[0], model.num_features
        return jnp.zeros((n, 0, 1), int), jnp.zeros((n, 0, 1, k))
    return jax.vmap(one)(points)


def march(
    plan: MarchingPlan,
    coefficients: jnp.ndarray,
    solve_stage: Callable,
) -> Iterator[tuple[Stage, jnp.ndarray, dict]]:
    """Run the stages in order; yields `(stage, coefficients after it, stage info)`.

    `solve_stage(stage, coefficients)` returns the new coefficients of `stage.ids`
    (shape (len(ids), K)) and a dict of diagnostics; only those rows change.
    """
    for stage in plan.stages:
        active, info = solve_stage(stage, coefficients)
        coefficients = coefficients.at[jnp.asarray(stage.ids)].set(active)
        yield stage, coefficients, info


def restrict(system: LinearSystem, rows, valid, ids, frozen, coefficients) -> LinearSystem:
    """The least-squares system of one stage.

    Args:
        system: the full (row-scaled) system.
        rows: (R,) row positions (padded; padding rows are zeroed by `valid`).
        valid: (R,) 1.0 for real rows, 0.0 for padding.
        ids: (A,) the active subdomains; their coefficients are the unknowns.
        frozen: (J,) True for frozen subdomains.
        coefficients: (J, K) current coefficients (the frozen ones are used).

    Returns a `LinearSystem` with `num_subdomains = A`: the active columns, and the
    right-hand side minus the frozen subdomains' contribution.
    """
    return _restrict(
        system, jnp.asarray(rows), jnp.asarray(valid), jnp.asarray(ids), jnp.asarray(frozen), coefficients
    )


@eqx.filter_jit
def _restrict(system, rows, valid, ids, frozen, coefficients):
    j = system.num_subdomains
    pos = jnp.full((j,), -1, dtype=ids.dtype).at[ids].set(jnp.arange(ids.shape[0], dtype=ids.dtype))
    values = system.values[rows] * valid[:, None, None]
    index = system.index[rows]
    local = pos[index]
    is_active = local >= 0
    is_frozen = frozen[index]
    frozen_part = jnp.einsum("rpk,rpk->r", values * is_frozen[..., None], coefficients[index])
    return LinearSystem(
        values=values * is_active[..., None],
        index=jnp.where(is_active, local, 0),
        rhs=system.rhs[rows] * valid - frozen_part,
        row_scale=jnp.where(valid > 0, system.row_scale[rows], 1.0),
        num_subdomains=int(ids.shape[0]),
        groups=(("stage", 0, int(rows.shape[0])),),
        levels=jnp.zeros(ids.shape, dtype=jnp.int32),
        # (BoxSchwarz groups the active subdomains into boxes by their centres)
        centres=None if system.centres is None else system.centres[ids],
        chunk_rows=product_chunk_rows(values.shape[1], values.shape[2], values.dtype.itemsize),
    )


def padded(positions: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Row positions padded to `size` (with row 0, marked invalid)."""
    out = np.zeros(size, dtype=np.int64)
    out[: len(positions)] = positions
    valid = np.zeros(size)
    valid[: len(positions)] = 1.0
    return out, valid


def linear_stage_solver(
    plan: MarchingPlan, system: LinearSystem, row_slab: np.ndarray, solver: AbstractSolver
) -> Callable:
    """`solve_stage` for the linear path: restrict the assembled system, call `solver`."""
    size = plan.max_rows(row_slab)

    def solve_stage(stage: Stage, coefficients):
        rows, valid = padded(stage.rows(row_slab), size)
        t0 = time.perf_counter()
        sub = restrict(system, rows, valid, stage.ids, plan.frozen(stage), coefficients)
        chosen = solver.choose(sub) if isinstance(solver, Auto) else solver
        result = chosen(sub)
        active = result.coefficients.block_until_ready()
        elapsed = time.perf_counter() - t0
        resid = jnp.linalg.norm(sub.mv(active) - sub.rhs)
        rhs = jnp.linalg.norm(sub.rhs)
        info = {
            "stage": stage.index,
            "slabs": (stage.lo, stage.hi - 1),
            "unknowns": int(len(stage.ids)) * system.num_features,
            "rows": int(valid.sum()),
            "frozen": int(plan.frozen(stage).sum()),
            "solver": chosen.name,
            "success": bool(result.success) and bool(jnp.all(jnp.isfinite(active))),
            "message": result.message,
            "relative_residual": float(resid / jnp.where(rhs > 0, rhs, 1.0)),
            "rank": None if result.rank is None else int(result.rank),
            "iterations": None if result.iterations is None else int(result.iterations),
            "solve_s": elapsed,
        }
        return active, info

    return solve_stage


def solve_linear(
    schedule: TimeMarching,
    problem,
    model: FBPINN,
    blocks,
    system: LinearSystem,
    solver: AbstractSolver,
    say: Callable = lambda msg: None,
):
    """March a linear problem: returns (`SolverResult` for the whole system, stage infos)."""
    from .base import SolverResult

    plan = schedule.plan(problem, model)
    row_slab = np.concatenate([plan.row_slab(model, pts) for _, _, pts in blocks])
    if schedule.consistency > 0:
        ci, cv = consistency_rows(
            model, schedule.consistency_grid(problem, blocks[0][2]), schedule.consistency
        )
        touched = np.any(cv != 0, axis=2)
        row_slab = np.concatenate([row_slab, np.max(np.where(touched, plan.slab[ci], -1), axis=1)])
        extra = system.values.shape[1] - cv.shape[1]  # interface rows are wider (both sides)
        if extra > 0:
            cv = np.pad(cv, [(0, 0), (0, extra), (0, 0)])
            ci = np.pad(ci, [(0, 0), (0, extra)])
        full = LinearSystem(
            values=jnp.concatenate([system.values, jnp.asarray(cv)]),
            index=jnp.concatenate([system.index, jnp.asarray(ci, dtype=system.index.dtype)]),
            rhs=jnp.concatenate([system.rhs, jnp.zeros(len(ci), system.rhs.dtype)]),
            row_scale=jnp.concatenate([system.row_scale, jnp.ones(len(ci), system.rhs.dtype)]),
            num_subdomains=system.num_subdomains,
            groups=system.groups + (("consistency", system.rhs.shape[0], system.rhs.shape[0] + len(ci)),),
            levels=system.levels,
            centres=system.centres,
            chunk_rows=system.chunk_rows,
        )
    else:
        full = system
    solve_stage = linear_stage_solver(plan, full, row_slab, solver)
    coeffs = jnp.zeros((system.num_subdomains, system.num_features), system.values.dtype)
    stages = []
    for stage, after, info in march(plan, coeffs, solve_stage):
        coeffs = after
        stages.append(info)
        say(
            f"pdedsl: stage {stage.index + 1}/{len(plan.stages)}: slabs {stage.lo}-{stage.hi - 1}, "
            f"{info['unknowns']} unknowns, {info['rows']} rows, {info['solve_s']:.3f} s"
        )
    ok = all(s["success"] for s in stages)
    bad = [s["stage"] for s in stages if not s["success"]]
    names = sorted({s["solver"] for s in stages})
    message = f"{len(stages)} stages of {stages[0]['unknowns']} unknowns, {'/'.join(names)}" + (
        "" if ok else f"; stages {bad} failed"
    )
    result = SolverResult(
        coefficients=coeffs,
        residual_norm=jnp.linalg.norm(system.mv(coeffs) - system.rhs),
        success=ok,
        message=message,
    )
    return result, stages
