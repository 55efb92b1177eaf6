"""`pd.solve`: sample points, assemble, pick a solver, return a `Solution`."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import time
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from ..ansatz import FBPINN, Grid, Multilevel
from ..ansatz.corners import corner_features, reentrant_corners
from ..ansatz.model import default_edge_degree
from ..assemble.assemble import assemble_checked, non_finite_rows
from ..assemble.sharding import resolve_devices
from ..geometry import SAMPLERS, Boundary, Difference, Observations, PointRegion, format_point
from ..geometry.sampling import grid_shape
from ..lower import CompiledLinearForm, LinearForm, NonlinearError, ObservedData
from ..problem import Interface, Problem
from ..solution import Solution
from ..symbolic import WholeBoundary, pretty
from . import progress as _progress
from .auto import Auto
from .base import AbstractSolver
from .frame import SplineFrame
from .iterative import GMRES, LSMR, CGNormal, as_solver
from .marching import TimeMarching, solve_linear
from .marching_nonlinear import solve_nonlinear_marching
from .nonlinear import (
    AbstractNonlinearSolver,
    GaussNewton,
    VariableProjection,
    sharded_linear_solver,
    solve_nonlinear,
)
from .preconditioners import BoxSchwarz, MultiplicativeSchwarz, TwoLevel


class SolveError(RuntimeError):
    """The solver failed (non-finite values, or it reported failure)."""


class UnderdeterminedWarning(UserWarning):
    """A linear system has fewer rows than unknowns, or a subdomain is touched by fewer
    collocation rows than it has features (the system is rank deficient and the
    coefficients there are not fixed by the problem), or a differential equation has
    no conditions, or a linear problem whose equation and conditions involve only
    derivatives of the unknown (it is fixed only up to a constant), or a line along a
    coordinate meets fewer conditions than the equation's order in it (a heat equation
    without its initial condition)."""


class OverdeterminedWarning(UserWarning):
    """More conditions hold on planes across a coordinate than the equation's order in
    it (a heat equation given u at t = 0 and at t = 1, often through `u.on(pd.boundary)`
    on a space-time box): unless the data happen to agree with the equation, the
    least-squares solution splits the difference between them and solves no problem."""


class CancellationWarning(UserWarning):
    """A linear solve's subdomain contributions cancel heavily at the collocation
    points (`info["cancellation"]` above `CANCELLATION_CHECK`) and its equation
    residual at other points is more than twice that at the collocation points and
    more than `NEGLIGIBLE_RESIDUAL` of the equation's size there: the solution leans
    on nearly dependent columns between the points."""


class ResidualWarning(UserWarning):
    """A nonlinear solve stopped at a stationary point of its loss (it "converged")
    where the residual is still more than `STATIONARY_RESIDUAL` of the zero field's:
    a local minimum, equations without a solution, or an ansatz far too coarse."""


# Above this `info["relative_residual"]` (the residual over the zero field's) a converged
# nonlinear solve warns (ResidualWarning). Bratu's u'' + 4 e^u = 0, u(0) = u(1) = 0, has
# no solution: Levenberg-Marquardt stops at a stationary point with 0.21 (Gauss-Newton
# reports divergence). None of the nonlinear tests (test_nonlinear, test_nonlinear_marching,
# test_corners) nor the quick burgers benchmark warns.
STATIONARY_RESIDUAL = 0.1


class CornerWarning(UserWarning):
    """The domain has re-entrant corners (edges) that `pd.solve` could not enrich with
    their singular functions (the message says why): where the true solution is
    singular there, the least-squares fit converges to a different function."""


# Above this `info["cancellation"]`, pd.solve also evaluates the residuals at other
# points. Measured (docs/solving.md, "The solution"): 1 to 100 on well-posed benchmark
# ansatzes, 460 to 350,000 on least-squares solutions of multilevel cosine or tanh levels
CANCELLATION_CHECK = 1e3

# ...and warns (CancellationWarning) only when the equation's residual there is also above
# this fraction of the size of the equation's parts there (`sol._equation_terms_rms()`,
# the RMS of sum_a |c_a D^a u| + |f|). Three levels of tanh features on the oscillator
# (benchmarks/oscillator_weak.py, w0 = 20, 80, 320) fit their points 100, 3 and 5 times
# better than the points between them, where the residual is 5e-8, 1e-8 and 5e-8 of the
# equation's size, and reach rel_l2 7e-9, 4e-9 and 5e-8: nothing to warn about. The
# 1D multilevel quadratics of test_solve, warned about (rel_l2 0.38), are at 6.6e-2.
NEGLIGIBLE_RESIDUAL = 1e-6


@functools.lru_cache(maxsize=64)
def _compiled(form):
    return form.compile() if isinstance(form, LinearForm) else form


@dataclasses.dataclass(frozen=True)
class _Interface:
    """A nonlinear form on an interface: `jump` or `side` as on `CompiledLinearForm`
    (the nonlinear path reads them and lowers the form itself)."""

    form: object
    jump: tuple | None = None
    side: tuple | None = None


def _jump_form(compiled, axis: int, value: float):
    """The interface condition's rows (a pytree whose numbers are leaves, or an
    `_Interface` that compares equal by value, so that a repeated solve reuses the
    compiled assembly)."""
    if not isinstance(compiled, CompiledLinearForm):
        return _Interface(compiled, jump=(axis, value))
    return dataclasses.replace(compiled, jump=(axis, value))


def _side_form(compiled, axis: int, value: float, side: int):
    """The equation on an interface, from one side (see `_jump_form`)."""
    if not isinstance(compiled, CompiledLinearForm):
        return _Interface(compiled, side=(axis, value, side))
    return dataclasses.replace(compiled, side=(axis, value, side))


def _with_data(compiled, data):
    """A compiled linear form whose right-hand side is the observed data (an array
    leaf: new data reuse the compiled assembly)."""
    return dataclasses.replace(compiled, rhs=ObservedData(jnp.asarray(data)))


def default_points(model: FBPINN) -> int:
    """Default number of equation points: twice the number of unknowns, at least 64
    (raised where an axis would get too few, see `default_layout`)."""
    return max(64, 2 * model.num_unknowns)


def _inside(domain) -> float:
    """The fraction of the domain's bounding box that lies in it (a box with holes: < 1)."""
    bounding = float(np.prod(domain.lengths))
    return getattr(domain, "volume", bounding) / bounding


def default_layout(problem: Problem, model: FBPINN, n: int, floor: bool = True) -> tuple[int, ...]:
    """Per-axis counts of a grid of about `n` equation points, shaped like the model's
    subdomain grid (its finest level): the same number of points per subdomain
    spacing along every axis. Shaped like the domain instead, a model with a
    different aspect from its domain's is starved along its finer axis: 6 x 6
    subdomains of degree 4 on a 2 x 1 box with 2 points per unknown reach rel_l2
    8.5e-3 on a 46 x 23 grid, 1.4e-6 on 33 x 33 (docs/solving.md). A model with a
    single subdomain along every axis (a PINN) keeps the domain's shape. With `floor`,
    no axis gets fewer than twice the basis functions' count along it per subdomain
    width (below)."""
    dec = getattr(model.decomposition, "base", model.decomposition)  # a pd.Cut: its grid
    grid = dec.grids[-1] if isinstance(dec, Multilevel) else dec
    domain = problem.domain
    if not isinstance(grid, Grid) or len(grid.shape) != domain.dim:
        return domain.grid_shape(n)
    cells = [k if i in grid.periodic else max(k - 1, 1) for i, k in enumerate(grid.shape)]
    if all(c == 1 for c in cells):
        return domain.grid_shape(n)
    shape = grid_shape(max(1, int(round(n / _inside(domain)))), cells)
    if not floor:
        return shape
    # Along an axis with few subdomains the same points per spacing leave each
    # subdomain too few points for its basis functions along it (8 x 8 x 2 subdomains
    # of degree 5 in space-time: 46 x 46 x 7 points, rel_l2 5.1e-5; 46 x 46 x 13, 2.7e-7;
    # benchmarks/default_points.py). So every axis gets at least twice the basis
    # functions' count along it (degree + 1, or K^(1/d)) per subdomain width.
    degree = getattr(model.basis, "degree", None)
    if isinstance(degree, (int, np.integer)) and not isinstance(degree, bool):
        per_axis = int(degree) + 1
    else:
        per_axis = math.ceil(model.basis.num_features(domain.dim) ** (1.0 / domain.dim) - 1e-9)
    widths = 2 * np.median(np.asarray(grid.half_widths), axis=0)
    lengths = np.asarray(domain.lengths, dtype=float)
    least = np.ceil(2 * per_axis * lengths / np.minimum(widths, lengths)).astype(int) + 1
    # And every axis gets 1.25 points per basis function along it per subdomain
    # spacing. In 3D a total-degree basis has far fewer functions per subdomain than
    # (degree + 1)^3, so two points per unknown leave about 0.7 (degree + 1) points
    # per spacing along each axis; near one per function the fit aliases between the
    # points: 4^3 subdomains of degree 6 (overlap 2.9) on 20, 21, 22, 23, 25 and 28
    # points per axis reach rel_l2 2.0e-3, 5.7e-6, 9.4e-4, 2.8e-6, 1.6e-6 and 1.6e-6
    # (22 was the default); 4^3 of degree 5 on 19 (the default), 20, 22 and 24:
    # 1.1e-3, 3.8e-3, 1.7e-5, 1.5e-5 (docs/solving.md, "Collocation points").
    spacing = np.ceil(1.25 * per_axis * np.asarray(cells)).astype(int) + 1
    return tuple(int(max(k, m, q)) for k, m, q in zip(shape, least, spacing))


def collocation(problem: Problem, model: FBPINN, points=None, sampler="grid", condition_points=None, seed=0):
    """The `(name, form, points)` blocks: equation points, then each condition's points.

    Linear forms are compiled (a data condition's right-hand side is its data);
    nonlinear forms are passed as they are."""
    if sampler not in SAMPLERS:
        raise ValueError(f"Unknown sampler {sampler!r}; choose one of {SAMPLERS}.")
    default = points is None
    if default:
        points = default_points(model)
    elif isinstance(points, (bool, np.bool_)) or (isinstance(points, (int, np.integer)) and points < 1):
        # (a count below 1 used to become the smallest grid, and a zero solution)
        raise ValueError(
            f"points must be a number of equation points >= 1, a grid shape or an array, got {points!r}."
        )
    if condition_points is not None and (
        isinstance(condition_points, bool)
        or not isinstance(condition_points, (int, np.integer))
        or condition_points < 1
    ):
        raise ValueError(
            f"condition_points must be None or an int >= 1 (points per face), got {condition_points!r}."
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int, got {seed!r}.")
    if isinstance(points, (int, np.integer, tuple, list)) and np.ndim(points) <= 1:
        if isinstance(points, (int, np.integer)):
            # the per-axis floor only raises the default count: a count given is kept
            shape = default_layout(problem, model, int(points), floor=default)
            count = int(points)
            if default:
                count = max(count, int(round(np.prod(shape) * _inside(problem.domain))))
            xs = problem.domain.sample(shape if sampler == "grid" else count, sampler, seed)
        else:
            xs = problem.domain.sample(tuple(points), sampler, seed)
            shape = problem.domain.grid_shape(points)
    else:
        if isinstance(points, str):
            raise TypeError(
                f"points must be a count, a grid shape or an (N, {problem.dim}) array, got {points!r}; "
                f"to choose how they are placed, pass sampler= (one of {SAMPLERS})."
            )
        try:
            xs = np.asarray(points, dtype=float)
        except (TypeError, ValueError):
            raise TypeError(
                f"points must be a count, a grid shape or an (N, {problem.dim}) array of numbers, "
                f"got {type(points).__name__}."
            ) from None
        if xs.ndim == 1 and problem.dim == 1:
            xs = xs[:, None]
        if xs.ndim != 2 or xs.shape[1] != problem.dim:
            raise ValueError(
                f"points must be a count, a grid shape, or an (N, {problem.dim}) array; "
                f"got an array of shape {xs.shape}."
            )
        inside = problem.domain.contains(xs)
        if not np.all(inside):
            bad = xs[~np.asarray(inside)]
            first = format_point(problem.coords, bad[0])
            raise ValueError(
                f"{len(bad)} of {len(xs)} collocation point(s) lie outside the domain {problem.domain}, "
                f"e.g. ({first}); give points inside it (on its boundary is fine)."
            )
        shape = problem.domain.grid_shape(max(xs.shape[0], 2))
    if problem.interfaces:  # points on an interface: one-sided rows below, not here
        xs = np.asarray(xs)
        on = np.zeros(xs.shape[0], bool)
        for axis, value in problem.interfaces:
            on |= np.abs(xs[:, axis] - value) <= 1e-12 * max(1.0, abs(value))
        xs = xs[~on]
    blocks = [("equation", _compiled(problem.equation_form), xs)]
    interface_points = {}
    for k, cond in enumerate(problem.lowered_conditions):
        region = cond.region
        if isinstance(region, (PointRegion, Observations)):
            pts = region.sample()
        else:
            if condition_points is not None:
                n = condition_points
            else:
                n = region.grid_counts(shape, problem.domain.lengths)
            pts = region.sample(n, sampler, seed + 1 + k)
        form = _compiled(cond.form)
        if cond.data is not None and isinstance(cond.form, LinearForm):
            form = _with_data(form, cond.data)
        if isinstance(region, Interface):
            form = _jump_form(form, region.axis, region.value)
            interface_points.setdefault((region.axis, region.value, str(region.region)), pts)
        blocks.append((cond.name, form, pts))
    # The equation also holds on each interface, from each side (with that side's
    # ansatz, coefficients and data). Without these rows the strip between the
    # interface and the nearest equation points is free: a 2D layered medium cut
    # through a row of subdomain centres had rel_l2 3.8e-7 instead of 4.1e-9.
    for (axis, value, where), pts in interface_points.items():
        for s in (-1, 1):
            form = _side_form(_compiled(problem.equation_form), axis, value, s)
            name = f"equation ({problem.coords[axis]} = {value:g}, {'upper' if s > 0 else 'lower'} side)"
            blocks.append((name if len(interface_points) == 1 else f"{name} {where}", form, pts))
    return blocks


def _with_corners(problem, model, corners, solver):
    """`model`, enriched at the problem's re-entrant corners as `corners` asks (see `solve`)."""
    if corners not in (None, True, False):
        raise TypeError(f"corners must be None (automatic), True or False, got {corners!r}.")
    if corners is False or model.corners is not None:
        return model
    if corners is True:
        return model.with_corners(problem)
    spline_levels = isinstance(solver, SplineFrame) or isinstance(
        getattr(solver, "preconditioner", None), SplineFrame
    )
    dec = model.decomposition
    if isinstance(dec, Multilevel) and dec.bspline is not None:
        spline_levels = True  # nested B-spline levels go to the SplineFrame preconditioner
    key = (id(problem), id(model))
    hit = _CORNER_MODELS.pop(key, None)
    if hit is None or hit[0] is not problem or hit[1] is not model:
        if spline_levels:
            found = reentrant_corners(problem.domain)
            features, skipped = None, []
            if found:
                where = ", ".join(str(c.point) for c in found)
                skipped.append(
                    f"the re-entrant corner(s) at {where}: not enriched on nested B-spline levels "
                    "(the SplineFrame preconditioner ignores extra features)"
                )
        else:
            features, skipped = corner_features(problem, dec, edge_degree=default_edge_degree(model.basis))
        if skipped:
            warnings.warn(
                "The solution may be singular at corners of the domain that were not given their "
                "singular functions: " + "; ".join(skipped) + ". If it is, the least-squares fit "
                "converges to a different function there (check sol.residuals(), or compare "
                "with pd.finite_elements); pass corners=False to silence this.",
                CornerWarning,
                stacklevel=3,
            )
        enriched = (
            model
            if features is None
            else FBPINN(model.decomposition, model.basis, model.window, model.seed, corners=features)
        )
        hit = (problem, model, enriched)
    # the same enriched model object on repeated solves: caches keyed on the model
    # (the compiled assembly, the sparse factorisation's ordering) then hit
    _CORNER_MODELS[key] = hit
    while len(_CORNER_MODELS) > 8:
        _CORNER_MODELS.pop(next(iter(_CORNER_MODELS)))
    return hit[2]


_CORNER_MODELS: dict = {}


def check_problem_and_model(problem, model, what: str) -> None:
    """The checks shared by `pd.solve` and `pd.train` (definition-time mistakes)."""
    if not isinstance(problem, Problem):
        raise TypeError(f"{what}() takes a pd.Problem first, got {type(problem).__name__}.")
    if not isinstance(model, FBPINN):
        raise TypeError(f"{what}() takes a model such as pd.FBPINN(...) second, got {type(model).__name__}.")
    dec = model.decomposition
    if model.dim != problem.dim:
        raise ValueError(f"The model is {model.dim}D but the problem is {problem.dim}D.")
    dom = getattr(dec, "domain", None)
    if dom is not None and tuple(dom.coords) != tuple(problem.coords):
        raise ValueError(
            f"The decomposition's coordinates {tuple(map(str, dom.coords))} differ from the "
            f"problem's {tuple(map(str, problem.coords))}; build it on problem.domain."
        )
    if dom is not None and (
        np.any(np.asarray(dom.lower) > np.asarray(problem.domain.lower) + 1e-12)
        or np.any(np.asarray(dom.upper) < np.asarray(problem.domain.upper) - 1e-12)
    ):
        raise ValueError(
            f"The decomposition covers {dom}, which does not contain the problem's domain "
            f"{problem.domain}; build it on problem.domain."
        )
    want, have = tuple(problem.periodic), tuple(model.periodic_axes)
    if want != have:
        names = lambda axes: ", ".join(str(problem.coords[i]) for i in axes)  # noqa: E731
        if set(want) - set(have):
            missing = tuple(sorted(set(want) - set(have)))
            raise ValueError(
                f"The problem is periodic along {names(missing)} but the model is not: build its grid "
                f"with pd.Grid(problem.domain, n, overlap, periodic=[{names(want)}]) (or "
                f"pd.Multilevel(..., periodic=[...])), which makes the ansatz and all its derivatives "
                "periodic there; for a PINN, pd.PINN(problem.domain, periodic=[...])."
            )
        extra = tuple(sorted(set(have) - set(want)))
        raise ValueError(
            f"The model is periodic along {names(extra)} but the problem has no periodic condition "
            f"there: a periodic ansatz cannot meet other conditions on those faces. Add "
            f"u.at({names(extra[:1])}=...) == u.at({names(extra[:1])}=...) at the two ends, or build "
            "the grid without periodic=."
        )
    _check_cuts(problem, model)
    if model.corners is not None:
        if what not in ("solve", "train"):
            raise NotImplementedError(
                f"{what}() does not support corner singular functions (model.with_corners); pass the "
                "model without them."
            )
        have = {
            (tuple(int(a) for a in ax), tuple(float(v) for v in p))
            for ax, p in zip(np.asarray(model.corners.axes), np.asarray(model.corners.points))
        }
        want = {(c.axes, c.point) for c in reentrant_corners(problem.domain)}
        if not have <= want:
            raise ValueError(
                f"The model's corner functions sit at {sorted(p for _, p in have)}, which are not all re-entrant "
                f"corners of the problem's domain {problem.domain}; build them with "
                "model.with_corners(problem) for this problem."
            )
    if model.window.smoothness < problem.max_order:
        raise ValueError(
            f"The window {model.window} is only C^{model.window.smoothness:g} but the problem "
            f"has derivatives of order {problem.max_order}; use pd.Bump() or "
            f"pd.Cosine(power={problem.max_order // 2 + 1})."
        )


def _check_cuts(problem, model) -> None:
    """The model must be cut (`pd.Cut`) exactly at the problem's interfaces."""
    dec = model.decomposition
    cuts = tuple((a, v) for a, vals in getattr(dec, "cuts", ()) for v in vals)
    name = lambda a: problem.coords[a]  # noqa: E731
    for axis, value in problem.interfaces:
        if not (hasattr(dec, "has_cut") and dec.has_cut(axis, value)):
            where = ", ".join(f"{name(a)}={v:g}" for a, v in problem.interfaces)
            raise ValueError(
                f"The problem has an interface at {name(axis)} = {value:g} but the model is not cut "
                f"there, so its ansatz cannot jump: build it on pd.Cut(decomposition, {where}), e.g. "
                f"pd.FBPINN(pd.Cut(pd.Grid(problem.domain, n, overlap), {where}), basis)."
            )
    for axis, value in cuts:
        tol = 1e-12 * max(1.0, abs(value))
        if not any(a == axis and abs(v - value) <= tol for a, v in problem.interfaces):
            raise ValueError(
                f"The model is cut at {name(axis)} = {value:g} but the problem has no interface "
                f"condition there, so nothing connects the two sides: add the conditions that hold "
                f"across it (e.g. {pretty(problem.unknown)}.jump({name(axis)}={value:g}) == 0 and the "
                "jump of the flux), or remove the cut."
            )


def _why_nonlinear(problem: Problem) -> str:
    """Why a problem is not a linear least-squares problem, for error messages."""
    return problem.nonlinear_terms or (
        f"The problem has unknown parameters ({', '.join(map(str, problem.unknown_parameters))})."
    )


def linear_system(
    problem: Problem,
    model: FBPINN,
    *,
    points=None,
    sampler: str = "grid",
    condition_points=None,
    row_scaling: bool = True,
    seed: int = 0,
    corners: bool | None = None,
):
    """The least-squares system `pd.solve` would assemble for a linear problem, without solving it.

    The same points, row scaling and corner functions as `pd.solve` with the same
    arguments (see there), on one device. For looking before a long solve: which
    solver `pd.Auto().choose(system, model)` picks, what `pd.SparseQR().estimate(system)`
    will need in memory and arithmetic, `system.shape`, or a solver called on it
    directly (`pd.SparseQR()(system)` gives the coefficients, `(J, K)`).
    """
    check_problem_and_model(problem, model, "linear_system")
    if not problem.linear:
        raise NonlinearError(
            f"pd.linear_system assembles linear problems only. {_why_nonlinear(problem)} pd.solve "
            "linearises it at each Gauss-Newton step."
        )
    model = _with_corners(problem, model, corners, None)
    blocks = collocation(problem, model, points, sampler, condition_points, seed)
    system, non_finite = assemble_checked(model, blocks, row_scaling=row_scaling)
    _check_finite(problem, system, blocks, non_finite)
    return system


def solve(
    problem: Problem,
    model: FBPINN,
    *,
    points=None,
    sampler: str = "grid",
    condition_points=None,
    solver: AbstractSolver | None = None,
    row_scaling: bool = True,
    seed: int = 0,
    throw: bool = True,
    progress: bool | None = None,
    schedule: TimeMarching | None = None,
    devices=None,
    corners: bool | None = None,
) -> Solution:
    """Solve a problem with an ansatz: linear least squares, or Gauss-Newton when it is nonlinear.

    Args:
        problem: a `pd.Problem`.
        model: the ansatz, e.g. `pd.FBPINN(pd.Grid(domain, 20, 2.9), pd.RandomFeatures(12))`.
        points: equation collocation points: a count (a grid shaped like the
            model's subdomain grid), a per-axis grid shape, or an (N, d) array.
            Default: `2 * unknowns` points.
        sampler: "grid" (default, includes the boundary), "uniform", "sobol", "halton".
        condition_points: points per face for face conditions (default: the
            equation grid's resolution along the face).
        solver: a pdedsl solver or a lineax solver; default `pd.Auto()`: dense
            truncated SVD up to 3,000 unknowns (1,000 for polynomial bases on a
            grid), sparse direct normal equations above.
        row_scaling: divide every row by its norm (see `pdedsl.assemble.assemble`).
        seed: seeds random samplers.
        throw: raise `SolveError` if the solver fails or produces non-finite values;
            otherwise the failure is recorded in `sol.info`.
        progress: print the phases (assembly, solve, Gauss-Newton steps, marching
            stages, and the iterations and residual of `pd.LSMR`, `pd.CGNormal` and
            `pd.GMRES`) to stderr. Default: only when stderr is a terminal.
        schedule: `pd.TimeMarching(t, active=3)` solves slab by slab along `t`, only
            the active subdomains' coefficients at a time, earlier ones frozen; each
            stage's system goes to `solver`. Default: one global solve.
        devices: shard the rows (collocation points) of the system across devices,
            with `jax.sharding`: None (default) uses every device when there are
            several; an int uses the first n; a list names them; 1 keeps one device.
            Iterative solvers (`pd.LSMR`, `pd.CGNormal`) then run sharded, and so
            do Gauss-Newton / Levenberg-Marquardt with such a linear solver (the
            default `pd.Auto()` becomes `pd.LSMR()` when devices are given); see
            docs/solving.md. Variable projection and time marching use one device.
        corners: add the singular functions of the domain's re-entrant corners (in 3D
            and space-time: of its re-entrant edges through the whole domain, times
            Legendre polynomials along them) to the features of the subdomains that
            contain them (`model.with_corners(problem)`, docs/geometry.md). None
            (default): when the equation is second order with a Laplacian-like principal
            part at the corner (linear or not), one kind of condition holds on each face
            there, and the model has none yet (a fit without them converges to a wrong
            solution when the true one is singular there: 1e-2 to 1e-1 off on an
            L-shape, 1.2e-2 on a space-time L-shape). True: insist (an error if no
            corner qualifies); False: never. Domains with corners that cannot be
            enriched get a `pd.CornerWarning` naming the reason. `sol.info["corners"]`
            lists the functions added.

    Returns:
        A `Solution`.
    """
    check_problem_and_model(problem, model, "solve")
    if isinstance(solver, TimeMarching):
        raise TypeError(
            f"{solver!r} is a schedule, not a solver: pd.solve(problem, model, schedule={solver!r}) "
            "(solver= then picks the solver of each stage)."
        )
    model = _with_corners(problem, model, corners, solver)
    if schedule is not None and not isinstance(schedule, TimeMarching):
        raise TypeError(f"schedule must be pd.TimeMarching(...) or None, got {type(schedule).__name__}.")
    pre = getattr(getattr(solver, "linear_solver", solver), "preconditioner", None)  # (Gauss-Newton's too)
    if schedule is not None and isinstance(pre, (TwoLevel, SplineFrame)):
        # (unbound, it failed inside the first stage with "use it through pd.solve", which it
        # was; bound, with "bound to a different model")
        raise NotImplementedError(
            f"Time-marching stages do not support {type(pre).__name__} yet (its coarse space is "
            "built for the whole model); use pd.BoxSchwarz() or pd.BlockFilter(), or leave out schedule=."
        )
    if schedule is not None and problem.interfaces and not problem.linear:
        raise NotImplementedError(
            "Time marching supports interface conditions for linear problems only; leave out "
            "schedule= (one Gauss-Newton solve over the whole domain)."
        )
    nonlinear = not problem.linear
    if solver is None:
        solver = GaussNewton() if nonlinear else Auto()
    elif not isinstance(solver, AbstractNonlinearSolver):
        solver = as_solver(solver)
        if nonlinear:
            what = _why_nonlinear(problem)
            raise NonlinearError(
                f"{solver.name} solves linear least-squares problems only. {what} Use "
                f"solver=pd.GaussNewton(linear_solver={_as_code(solver)}) (or pd.LevenbergMarquardt"
                + (
                    ", pd.VariableProjection"
                    if problem.unknown_parameters and problem.nonlinear_terms is None
                    else ""
                )
                + ")."
            )
    if isinstance(solver, VariableProjection) and problem.nonlinear_terms is not None:
        raise ValueError(
            f"pd.VariableProjection needs an equation linear in the unknown; {problem.nonlinear_terms} "
            "Use pd.GaussNewton()."
        )
    if schedule is not None and isinstance(solver, VariableProjection):
        raise NotImplementedError(
            "pd.VariableProjection cannot be marched: its unknown parameters are shared by every "
            "slab. Solve globally (schedule=None)."
        )

    if not problem.conditions and problem.max_order >= 1:
        warnings.warn(
            f"pdedsl: the problem has no conditions and its equation has derivatives (order "
            f"{problem.max_order}): its solutions differ by solutions of the homogeneous equation, and "
            "the least-squares solution is one of them, the solver's choice. Add boundary or initial "
            "conditions, e.g. conditions=[u.on(pd.boundary) == 0].",
            UnderdeterminedWarning,
            stacklevel=2,
        )
    elif problem.conditions and _constants_solve_homogeneous(problem):
        warnings.warn(
            f"pdedsl: {pretty(problem.unknown.func)} + c solves this problem for every constant c: neither the equation nor any "
            f"condition involves {pretty(problem.unknown)} itself, only its derivatives"
            + (" and periodic links" if problem.periodic else "")
            + ". The least-squares solution is one of them, the solver's choice (and the equation "
            "has a solution at all only if its data are compatible, e.g. the source balances the "
            "boundary flux). Fix the constant with a condition on the unknown itself, e.g. "
            f"{pretty(problem.unknown.func)}.at({_a_point(problem)}) == value.",
            UnderdeterminedWarning,
            stacklevel=2,
        )

    warn_condition_counts(problem, stacklevel=2)

    progress = _progress.enabled(progress)
    say = _progress.say if progress else (lambda msg: None)
    if progress:
        solver = _with_progress(solver)
    devs = resolve_devices(devices)
    if problem.interfaces and devs:
        if devices is not None:
            raise NotImplementedError(
                "Interface conditions are assembled on one device for now; pass devices=1 (or leave it out)."
            )
        devs = None  # several devices by default: stay on one
    if schedule is not None and devs:
        if devices is not None:
            raise NotImplementedError("Time marching runs on one device for now; pass devices=1.")
        devs = None
    if isinstance(solver, AbstractNonlinearSolver):
        if devs and devices is None and not _shards_by_default(solver):
            devs = None  # several devices, but a host linear solver: stay on one
        if devs:
            sharded_linear_solver(solver)  # checks, before any work
        return _solve_nonlinear(
            problem,
            model,
            solver,
            points,
            sampler,
            condition_points,
            seed,
            throw,
            progress,
            say,
            devs,
            schedule,
        )
    blocks = collocation(problem, model, points, sampler, condition_points, seed)
    say(f"pdedsl: assembling {sum(b[2].shape[0] for b in blocks)} rows x {model.num_unknowns} unknowns")
    t0 = time.perf_counter()
    system, non_finite = assemble_checked(model, blocks, row_scaling=row_scaling, devices=devs)
    system = eqx.tree_at(lambda s: s.values, system, system.values.block_until_ready())
    t1 = time.perf_counter()
    _check_finite(problem, system, blocks, non_finite)
    fallback = None
    if schedule is None:
        auto = solver if isinstance(solver, Auto) else None
        if auto is not None:
            solver = auto.choose(system, model)
        say(f"pdedsl: assembled in {t1 - t0:.2f} s; solving with {solver.name}")
        if hasattr(solver, "bind"):
            solver = solver.bind(model)
        if auto is None:
            result = solver(system)
        else:
            solver, result, fallback = auto.run(solver, system, say, model)
        stages = None
    else:
        # Auto chooses per stage: the stages' systems are much smaller than the whole
        say(f"pdedsl: assembled in {t1 - t0:.2f} s; marching with {schedule}")
        result, stages = solve_linear(schedule, problem, model, blocks, system, solver, say)
    coeffs = result.coefficients.block_until_ready()
    t2 = time.perf_counter()

    say(f"pdedsl: solved in {t2 - t1:.2f} s")
    diag = jax.device_get(_diagnostics(system, coeffs, _subdomains_in_domain(problem, model)))
    # how much the subdomains' contributions cancel at the collocation points: ~1 for a
    # stable representation; thousands where the solution leans on nearly dependent
    # columns, which cancel at the points but not between them (docs/solving.md)
    fitted_norm = float(diag["fitted_norm"])
    cancellation = float(diag["parts_norm"]) / fitted_norm if fitted_norm > 0 else None
    group_rms = {name: float(v) for (name, _, _), v in zip(system.groups, diag["group_rms"])}
    finite = bool(diag["finite"])
    success = bool(result.success) and finite
    message = result.message if finite else result.message + "; non-finite coefficients"
    breakdown = bool(result.breakdown)
    if breakdown:
        message += "; breakdown: the preconditioned residual r^T P r turned negative"
    info = {
        "solver": solver.name if schedule is None else f"{schedule} with {stages[0]['solver']}",
        "solver_message": message,
        "success": success,
        "subdomains": model.num_subdomains,
        "features": model.num_features,
        "basis": type(model.basis).__name__,
        "window": type(model.window).__name__,
        "unknowns": model.num_unknowns,
        "corners": None if model.corners is None else model.corners.summary(),
        "points": int(sum(b[2].shape[0] for b in blocks)),
        "equation_points": int(blocks[0][2].shape[0]),
        "residual_norm": float(result.residual_norm),
        "relative_residual": _relative(float(diag["residual_norm"]), float(diag["rhs_norm"])),
        "group_rms": group_rms,
        "iterations": None if result.iterations is None else int(result.iterations),
        "stop_measure": None if result.stop_measure is None else float(result.stop_measure),
        "stop_rule": result.stop_rule or None,
        "cancellation": cancellation,
        "rank": None if result.rank is None else int(result.rank),
        "condition_number": None if result.condition_number is None else float(result.condition_number),
        "condition_rule": result.condition_rule,
        "filtered": None if result.filtered is None else int(result.filtered),
        "setup_s": result.setup_s,
        "history": None
        if result.history is None
        else np.asarray(result.history)[: int(result.iterations) + 1],
        "assemble_s": t1 - t0,
        "solve_s": t2 - t1,
    }
    if stages is not None:
        info["stages"] = stages
    info["fallback_from"] = fallback
    _check_determined(model, diag, info["points"])
    if throw and not success:
        if breakdown:
            how = (
                f"broke down after {info['iterations']} iterations: its preconditioner is not positive "
                "definite in floating point"
            )
            fix = (
                "filter the preconditioner's blocks more strongly (its rtol, e.g. pd.BoxSchwarz(rtol=1e-7)), "
                "or use a direct solver (pd.SparseNormal(), pd.DenseLeastSquares())"
            )
        elif info["iterations"] is not None:
            how = f"stopped after {info['iterations']} iterations without meeting its tolerance"
            rtol = getattr(solver, "rtol", None)
            if info["stop_measure"] is not None and rtol is not None:
                how += (
                    f": its stopping measure ({info['stop_rule']}) reached {info['stop_measure']:.2e}, "
                    f"against rtol={rtol:g}"
                )
            how += f" (relative residual {info['relative_residual']:.2e})"
            pre = getattr(solver, "preconditioner", None)
            current = getattr(pre, "name", None)
            if isinstance(solver, CGNormal) and isinstance(pre, TwoLevel):
                stronger = []
                if pre.deflates(system.levels):  # (rounding can stall it where balancing converges)
                    stronger.append('pd.TwoLevel(form="balancing")')
                if not isinstance(pre.local, (BoxSchwarz, MultiplicativeSchwarz)):
                    stronger.append("pd.TwoLevel(local=pd.BoxSchwarz())")
                if not stronger and pre.degree < 3:
                    stronger.append(f"pd.TwoLevel(degree={pre.degree + 1}) (a larger coarse space)")
            elif isinstance(solver, CGNormal):
                stronger = ["pd.BlockFilter()", "pd.BoxSchwarz()", "pd.TwoLevel(local=pd.BoxSchwarz())"]
                stronger = [x for x in stronger if not x.startswith(f"pd.{current}(")]
            else:  # right preconditioners only; the Schwarz ones need CG
                stronger = [] if current == "BlockFilter" else ["pd.BlockFilter()"]
                stronger.append("pd.CGNormal(pd.TwoLevel(local=pd.BoxSchwarz()))")
            fix = (
                "increase max_steps, loosen rtol, "
                + (f"use a stronger preconditioner ({', '.join(stronger)}), " if stronger else "")
                + "or a direct solver (pd.SparseNormal(), pd.DenseLeastSquares())"
            )
            levels = system.levels
            multilevel = schedule is None and levels is not None and int(jnp.max(levels)) > 0
            if multilevel and current != "SplineFrame":
                fix += (
                    ". A multilevel ansatz whose levels are nearly dependent (cosine windows, tanh "
                    "features) may not converge under any preconditioner, while its early iterates are "
                    "accurate: pass max_steps and throw=False, or use pd.Multilevel(..., bspline=3) "
                    "with polynomials and pd.SplineFrame() (docs/solving.md, 'Multilevel decompositions "
                    "and iterative solvers')"
                )
        else:
            how = "did not produce a usable solution"
            fix = "try pd.DenseLeastSquares(method='svd'), more collocation points or fewer features"
        raise SolveError(f"{solver.name} {how} [{message}]. To fix: {fix}. (throw=False returns it anyway.)")
    sol = Solution(problem, model, coeffs, info)
    if success and cancellation is not None and cancellation > CANCELLATION_CHECK:
        _check_elsewhere(sol, cancellation)
    return sol


@eqx.filter_jit
def _diagnostics(system, coeffs, relevant):
    """What `pd.solve` reports about a linear solution, in one compiled pass over the
    system (as separate eager operations they compiled one by one: ~0.8 s of a cold
    small solve). Every output is a scalar, readable on every process of a
    multi-process run. `relevant` (J,): the subdomains whose supports meet the domain."""
    fitted = system.mv(coeffs)
    resid = fitted - system.rhs
    # rows whose window is non-zero on each subdomain: fewer than its features and its
    # columns are dependent, so the system is rank deficient
    rows = jax.ops.segment_sum(
        jnp.any(system.values != 0, axis=-1).astype(jnp.int32).reshape(-1),
        system.index.reshape(-1),
        num_segments=system.num_subdomains,
    )
    short = (rows < system.num_features) & relevant
    worst = jnp.argmin(jnp.where(relevant, rows, jnp.iinfo(jnp.int32).max))
    return {
        "fitted_norm": jnp.linalg.norm(fitted),
        "parts_norm": system.parts_norm(coeffs),
        "group_rms": system.group_rms_scalars(resid),
        "finite": jnp.all(jnp.isfinite(coeffs)),
        "residual_norm": jnp.linalg.norm(resid),
        "rhs_norm": jnp.linalg.norm(system.rhs),
        "short_subdomains": jnp.sum(short),
        "fewest_rows_subdomain": worst,
        "fewest_rows": rows[worst],
    }


def _subdomains_in_domain(problem, model) -> np.ndarray:
    """(J,) bool: does each subdomain's support meet the domain? (On a box, all do; a
    grid laid over the bounding box of a box with holes keeps some that lie in a hole:
    no collocation row can touch those, and they change nothing on the domain.)"""
    dec = model.decomposition
    meets = getattr(problem.domain, "meets", None)
    if meets is None:
        return np.ones(model.num_subdomains, bool)
    c, hw = np.asarray(dec.centres), np.asarray(dec.half_widths)
    return np.asarray(meets(c - hw, c + hw), bool)


@eqx.filter_jit
def _finite_rows(system):
    """`non_finite_rows` of a system's groups (a sharded system's: the assembly on one
    device computes them itself)."""
    return non_finite_rows(system.values, system.rhs, [(a, b) for _, a, b in system.groups])


def _as_code(solver) -> str:
    """A constructor call for `solver` that a message can suggest (its preconditioner's
    class, without arguments): `pd.CGNormal(pd.ColumnScaling())`."""
    pre = getattr(solver, "preconditioner", None)
    inner = f"pd.{type(pre).__name__}()" if pre is not None else ""
    return f"pd.{type(solver).__name__}({inner})"


def _derivative_name(unknown, coords, multi_index) -> str:
    """`D(u, t)`, `D(u, x, 2, y)` or `u`, printed as the DSL prints derivatives."""
    pairs = [(c, int(n)) for c, n in zip(coords, multi_index) if n]
    return pretty(sp.Derivative(unknown, *pairs) if pairs else unknown)


def _check_finite(problem, system, blocks, non_finite=None) -> None:
    """Refuse a system with non-finite entries before solving it, naming the row
    group, a point and the term that is not finite there (a solver would only report
    non-finite coefficients, or iterate to its cap on NaN)."""
    counts, first = jax.device_get(_finite_rows(system) if non_finite is None else non_finite)
    if not any(counts):
        return
    first = int(first)
    g = next(i for i, (_, lo, hi) in enumerate(system.groups) if lo <= first < hi)
    (name, lo, hi), (_, form, points) = system.groups[g], blocks[g]
    point = np.asarray(points)[first - lo]
    where = format_point(problem.coords, point)
    terms = []
    for a, c in zip(form.multi_indices, form.coefficients):
        v = float(np.asarray(c(jnp.asarray(point[None])))[0])
        if not np.isfinite(v):
            terms.append(f"the coefficient of {_derivative_name(problem.unknown, problem.coords, a)} is {v}")
    v = float(np.asarray(form.rhs(jnp.asarray(point[None])))[0])
    if not np.isfinite(v):
        terms.append(f"the right-hand side is {v}")
    what = " and ".join(terms) if terms else "the basis functions' derivatives are not finite"
    raise ValueError(
        f"The {name} is not finite at {int(counts[g])} of {hi - lo} of its points, e.g. at "
        f"({where}): {what} there. Keep the collocation points away from where a coefficient or the "
        "data is singular (points=..., condition_points=...), rewrite the equation (multiply it "
        "through, e.g. t*D(u, t) instead of D(u, t)/t), or check the parameters' values."
    )


def _relative(residual: float, rhs: float) -> float:
    """||r|| / ||b||; for b = 0 (a homogeneous problem with zero data) 0 if r = 0, else inf."""
    if rhs > 0:
        return residual / rhs
    return 0.0 if residual == 0 else float("inf")


def _constants_solve_homogeneous(problem) -> bool:
    """True when a linear problem's equation and conditions all annihilate constants:
    no form has a term in the unknown itself (multi-index zero) with a nonzero
    coefficient (periodic links u(a) = u(b) annihilate them too). Coefficients that
    sympy cannot show to be zero count as nonzero (no warning)."""
    if not problem.linear:
        return False
    return _annihilate_constants([problem.equation_form] + [c.form for c in problem.lowered_conditions])


def _annihilate_constants(forms) -> bool:
    """No linear form has a term in u itself with a coefficient sympy cannot show zero."""
    for form in forms:
        zero = (0,) * len(form.coords)
        for a, c in zip(form.multi_indices, form.coefficients):
            if a == zero and not sp.sympify(c).is_zero:
                return False
    return True


def _condition_counts(problem) -> tuple[list[str], list[str]]:
    """Where conditions on planes across a coordinate outnumber the equation's order in
    it (first list), or fall short of it (second).

    For each coordinate x that is not periodic, the conditions on planes `x = const`
    (points in 1D; observations and interface conditions aside) that a line along x
    meets are counted, one per distinct operator and plane, against the equation's order
    in x, on each piece of the line inside the domain (an L-shape's line meets x = -1 and
    x = 1 below the notch, x = -1 and x = 0 above it; a line through a hole crosses two
    pieces). The lines are probed at the midpoints between every end of the conditions'
    pieces of plane and of the holes. Where a single condition is on u itself and the
    equation and every other condition involve only derivatives, that one is not counted:
    it fixes the free constant, as the UnderdeterminedWarning advises. Too few are not
    looked for where data (observations) or interfaces take part, or where there are no
    conditions at all (warned about on its own)."""
    domain = problem.domain
    dim = problem.dim
    zero = (0,) * dim

    def value_only(c):  # a condition on u itself, nothing else
        return c.form.multi_indices == (zero,)

    conds = [c for c in problem.lowered_conditions if c.data is None and not isinstance(c.region, Interface)]
    free_constant = (  # one condition on u itself, fixing what would be a free constant
        problem.linear
        and sum(map(value_only, conds)) == 1
        and _annihilate_constants([problem.equation_form] + [c.form for c in conds if not value_only(c)])
    )
    check_fewer = bool(conds) and not problem.data_conditions and not problem.interfaces
    over, under = [], []
    for axis in range(dim):
        if axis in problem.periodic:
            continue
        order = max(a[axis] for a in problem.equation_form.multi_indices)
        if not _one_signed_principal(problem, axis, order):
            continue
        others = [i for i in range(dim) if i != axis]
        pieces = []  # (key, condition, lower and upper ends of the piece across the other axes)
        for c in conds:
            region = c.region
            if dim == 1 and isinstance(region, PointRegion):
                where, lo, hi = region.point[0], np.zeros(0), np.zeros(0)
            elif getattr(region, "axis", None) == axis and hasattr(region, "side"):
                where = region.value
                lo = np.asarray(region.box.lower, float)[others]
                hi = np.asarray(region.box.upper, float)[others]
            else:
                continue
            # (a nonlinear form has no coefficients: its condition's left-hand side tells it)
            operator = getattr(c.form, "coefficients", None) or (c.condition.lhs,)
            key = (round(float(where), 12), c.form.multi_indices, tuple(map(str, operator)))
            pieces.append((key, c, lo, hi))
        most: dict = {}
        fewest = None  # (count, line, piece of the line)
        for line in _probe_lines(domain, others, pieces):
            for a, b in _segments(domain, axis, others, line):
                tol = 1e-9 * max(1.0, b - a)
                met: dict = {}
                for key, c, lo2, hi2 in pieces:  # (in 1D, every point is on the one line)
                    inside = a - tol <= key[0] <= b + tol and np.all((lo2 < line) & (line < hi2))
                    if inside and key not in met:
                        met[key] = c
                if len(met) > len(most):
                    most = met
                if fewest is None or len(met) < fewest[0]:
                    fewest = (len(met), line, (a, b))
        met_conditions = list(most.values())
        allowed = order + (1 if free_constant and any(value_only(c) for c in met_conditions) else 0)
        if len(met_conditions) > allowed:
            over.append(_too_many(problem, axis, order, met_conditions))
        if check_fewer and fewest is not None and fewest[0] < order:
            under.append(_too_few(problem, axis, order, others, *fewest))
    return over, under


def _too_many(problem, axis, order, met_conditions) -> str:
    domain, sym = problem.domain, problem.coords[axis]
    listed = "; ".join(
        f"`{c.condition}`" + (f" on {c.region}" if len(_regions_of(problem, c.condition)) > 1 else "")
        for c in met_conditions
    )
    on_boundary = [isinstance(c.condition.where, (WholeBoundary, Boundary)) for c in met_conditions]
    n = len(met_conditions)
    return (
        (
            f"the equation is of order {order} in {sym}"
            if order
            else f"the equation has no derivative in {sym}"
        )
        + f", but {n} condition{'s hold' if n > 1 else ' holds'} on planes {sym} = const "
        f"along one line ({listed})"
        + (
            f"; u.on(pd.boundary) includes both faces {sym} = {domain.lower[axis]:g} and "
            f"{sym} = {domain.upper[axis]:g}: list the faces that take a condition instead"
            if any(on_boundary) and order < 2  # (two faces are the rule from order 2)
            else ""
        )
        + (
            f"; on {domain}, u.at({sym}=c) holds on all of the plane {sym} = c inside the domain, "
            "interior pieces included: for a wall alone write u.on(face) with the face from "
            "domain.faces"
            if isinstance(domain, Difference)
            and any(problem.dim > 1 and c.region.normal is None for c in met_conditions)
            else ""
        )
    )


def _too_few(problem, axis, order, others, count, line, piece) -> str:
    sym = problem.coords[axis]
    u = pretty(problem.unknown.func)
    a, b = piece
    where = ", ".join(f"{problem.coords[i]} = {v:.4g}" for i, v in zip(others, line))
    stretch = f" (the line{' at ' + where if where else ''}, {sym} from {a:g} to {b:g})"
    if isinstance(problem.domain, Difference):
        hint = f"give {order} on each piece, e.g. {u}.on(pd.boundary) == ... (holes have faces too)"
    elif order == 1:
        hint = (
            f"a first-order equation in {sym} takes one, e.g. an initial condition {u}.at({sym}={a:g}) == ..."
        )
    elif order == 2:
        hint = f"give two, e.g. {u}.at({sym}={a:g}) == ... and {u}.at({sym}={b:g}) == ..."
    else:
        hint = f"give {order}, e.g. {u} and its derivatives at the two ends"
    return (
        f"the equation is of order {order} in {sym}, but a line along {sym} meets "
        f"{'no' if count == 0 else 'only ' + str(count)} condition{'s' if count != 1 else ''} on planes "
        f"{sym} = const{stretch}: {hint}"
    )


def _probe_lines(domain, others: list[int], pieces) -> list[np.ndarray]:
    """Lines along the axis, by their other coordinates: the midpoints between every end,
    across each other axis, of the domain, its holes and the conditions' pieces of plane."""
    if not others:
        return [np.zeros(0)]
    lower, upper = np.asarray(domain.lower, float), np.asarray(domain.upper, float)
    holes = getattr(domain, "holes", ())
    mids = []
    for j, i in enumerate(others):
        ends = {lower[i], upper[i]}
        ends.update(float(p[2][j]) for p in pieces)
        ends.update(float(p[3][j]) for p in pieces)
        for h in holes:
            ends.update((float(h.lower[i]), float(h.upper[i])))
        ends = sorted(e for e in ends if lower[i] <= e <= upper[i])
        mids.append([(e0 + e1) / 2 for e0, e1 in zip(ends, ends[1:]) if e1 > e0])
    lines = [np.asarray(m) for m in itertools.product(*mids)]
    step = max(1, len(lines) // 4096)  # (never more than a few thousand)
    return lines[::step]


def warn_condition_counts(problem, stacklevel: int = 2, fit: str = "least-squares solution") -> None:
    """An `OverdeterminedWarning` for each coordinate along which conditions outnumber the
    equation's order, an `UnderdeterminedWarning` for each where they fall short (pd.solve
    and pd.train)."""
    over, under = _condition_counts(problem)
    for what in over:
        warnings.warn(
            f"pdedsl: the problem is over-determined: {what}. Unless the data agree with the "
            f"equation, the {fit} splits the difference between them and solves neither problem.",
            OverdeterminedWarning,
            stacklevel=stacklevel + 1,
        )
    for what in under:
        warnings.warn(
            f"pdedsl: the problem is under-determined: {what}. Its solutions then differ by "
            f"solutions of the homogeneous problem, and the {fit} is one of them.",
            UnderdeterminedWarning,
            stacklevel=stacklevel + 1,
        )


def _one_signed_principal(problem, axis: int, order: int) -> bool:
    """Whether the count of conditions along `axis` applies: the coefficients of the
    equation's highest derivatives in that coordinate keep one sign over the domain and
    do not depend on u. An advection speed that changes sign (`D(u, t) + (1/2 - x)*D(u,
    x)`: inflow at both ends) or vanishes, or a principal part in u (the eikonal
    `D(u, x)**2 + ...`, `u*D(u, x)`: the direction depends on the solution) can need
    conditions at both ends of a first-order equation."""
    if order == 0:
        return True
    form = problem.equation_form
    top = [i for i, a in enumerate(form.multi_indices) if a[axis] == order]
    if isinstance(form, LinearForm):
        coefficients = [form.coefficients[i] for i in top]
    else:
        coefficients = [sp.diff(form.residual, form.placeholders[i]) for i in top]
        if any(c.has(*form.placeholders) for c in coefficients):
            return False
    points = problem.domain.sample(256, "grid")
    for c in coefficients:
        try:
            values = np.broadcast_to(
                np.asarray(sp.lambdify(problem.coords, c, "numpy")(*points.T), float), len(points)
            )
        except Exception:  # unknown parameters, or what NumPy cannot evaluate: no verdict
            return False
        if not (np.all(np.isfinite(values)) and (values.min() > 0 or values.max() < 0)):
            return False
    return True


def _segments(domain, axis: int, others: list[int], line) -> list[tuple[float, float]]:
    """The intervals in which the line along `axis` through `line` (its other
    coordinates) crosses the domain: the box's side less the holes the line passes
    through (a square with a hole in it: two, each with its own two faces)."""
    segments = [(float(domain.lower[axis]), float(domain.upper[axis]))]
    for hole in getattr(domain, "holes", ()):
        hl, hu = np.asarray(hole.lower, float), np.asarray(hole.upper, float)
        if not np.all((hl[others] < line) & (line < hu[others])):
            continue
        cut = []
        for a, b in segments:
            if hl[axis] > a:
                cut.append((a, min(b, float(hl[axis]))))
            if hu[axis] < b:
                cut.append((max(a, float(hu[axis])), b))
        segments = [(a, b) for a, b in cut if b > a]
    return segments


def _regions_of(problem, condition) -> list:
    return [c.region for c in problem.lowered_conditions if c.condition is condition]


def _a_point(problem) -> str:
    """`x=a, y=c`: the domain's lower corner, for an example condition."""
    return ", ".join(f"{c}={float(v):g}" for c, v in zip(problem.coords, problem.domain.lower))


def _check_determined(model, diag, num_rows: int) -> None:
    """Warn (UnderdeterminedWarning) when the system cannot have full column rank."""
    k, unknowns = model.num_features, model.num_unknowns
    short = int(diag["short_subdomains"])
    if not short and num_rows >= unknowns:
        return
    if short:
        j = int(diag["fewest_rows_subdomain"])
        centre = ", ".join(f"{c:.4g}" for c in np.asarray(model.decomposition.centres[j]))
        what = (
            f"{short} of {model.num_subdomains} subdomain(s) are touched by fewer collocation rows "
            f"than their {k} features (subdomain {j}, centred at ({centre}), by {int(diag['fewest_rows'])}). "
            "A combination of such a subdomain's functions vanishes at all its points, so the "
            "problem does not fix the solution between them: the solver's choice does"
        )
    else:
        what = (
            f"it has {num_rows} rows for {unknowns} unknowns, so the problem does not fix all the "
            "coefficients; unless the ansatz is redundant (nested levels spanning their coarse levels' "
            "functions), it does not fix the solution between the points either"
        )
    warnings.warn(
        f"pdedsl: the least-squares system is underdetermined: {what}. Use more collocation points "
        "(the default is two per unknown), points inside every subdomain, or fewer features or "
        "subdomains.",
        UnderdeterminedWarning,
        stacklevel=3,
    )


def _check_elsewhere(sol: Solution, cancellation: float) -> None:
    """A solution whose subdomain contributions cancel heavily: its residuals at other
    points (`info["residuals_elsewhere"]`), and a warning if the equation's is more than
    twice that at the collocation points."""
    try:
        elsewhere = sol.residuals()
    except NotImplementedError:
        return
    sol.info["residuals_elsewhere"] = elsewhere
    here, there = sol.info["group_rms"].get("equation"), elsewhere.get("equation")
    if here is None or there is None or not there > 2 * here:
        return
    scale = sol._equation_terms_rms()
    sol.info["equation_terms_rms"] = scale
    if not there > NEGLIGIBLE_RESIDUAL * scale:
        return
    warnings.warn(
        f"pdedsl: this solution fits its collocation points much better than the points between them "
        f"(equation residual RMS {there:.3g} at other points against {here:.3g} at them), and its "
        f"subdomains' contributions cancel at the points (their norms add up to {cancellation:.3g} times "
        "that of their sum): it leans on nearly dependent columns, and may be less accurate than its "
        "residual suggests. A damped solve (pd.SparseNormal(regularisation=1e-4, refine=0)), CG stopped "
        "early (max_steps, throw=False), more collocation points or a better-conditioned ansatz (nested "
        "B-spline levels) may do better (docs/solving.md, 'The solution').",
        CancellationWarning,
        stacklevel=3,
    )


def _with_progress(solver):
    """The solver (or a nonlinear solver's linear solver) with its progress flag set."""
    if isinstance(solver, (LSMR, CGNormal, GMRES)):
        return dataclasses.replace(solver, progress=True)
    inner = getattr(solver, "linear_solver", None)
    if isinstance(solver, AbstractNonlinearSolver) and isinstance(inner, (LSMR, CGNormal, GMRES)):
        return dataclasses.replace(solver, linear_solver=dataclasses.replace(inner, progress=True))
    return solver


def _shards_by_default(solver) -> bool:
    """With several devices and no `devices=` argument, a nonlinear solve is sharded
    when its linear solver can run inside the jitted step (LSMR, CGNormal)."""
    lin = getattr(solver, "linear_solver", None)
    return (
        not isinstance(solver, VariableProjection)
        and isinstance(lin, AbstractSolver)
        and not isinstance(lin, Auto)
        and lin.traceable
    )


def _solve_nonlinear(
    problem,
    model,
    solver,
    points,
    sampler,
    condition_points,
    seed,
    throw,
    progress,
    say,
    devices=None,
    schedule=None,
):
    blocks = collocation(problem, model, points, sampler, condition_points, seed)
    conds = problem.lowered_conditions
    raw = [problem.equation_form] + [c.lhs_form if c.lhs_form is not None else c.form for c in conds]
    data = [None] + [c.data for c in conds]
    jump_rhs = [None] + [c.jump_rhs for c in conds]
    nblocks = []
    for k, (name, compiled, pts) in enumerate(blocks):
        jump, side = getattr(compiled, "jump", None), getattr(compiled, "side", None)
        if k >= len(raw):  # the equation on an interface, from one side (see `collocation`)
            nblocks.append((name, problem.equation_form, pts, None, (None, side)))
        elif jump is not None:  # the jump of the left-hand side, minus the right-hand side
            g = np.broadcast_to(
                np.asarray(sp.lambdify(problem.coords, jump_rhs[k], "numpy")(*np.asarray(pts).T), float),
                pts.shape[:1],
            )
            nblocks.append((name, raw[k], pts, g, (jump, None)))
        else:
            nblocks.append((name, raw[k], pts, data[k]))
    if schedule is None:
        coeffs, info = solve_nonlinear(
            problem, model, nblocks, solver, say=say, progress=progress, devices=devices
        )
    else:
        coeffs, info = solve_nonlinear_marching(schedule, problem, model, nblocks, solver, say=say)
    finite = bool(jnp.all(jnp.isfinite(coeffs))) and all(np.isfinite(v) for v in info["parameters"].values())
    success = info["converged"] and finite
    message = info["solver_message"] if finite else info["solver_message"] + "; non-finite values"
    rows = sum(b[2].shape[0] for b in blocks)
    info.update(
        {
            "solver": f"{solver.name}({info['linear_solver']})",
            "devices": len(devices) if devices else 1,
            "solver_message": message,
            "success": success,
            "subdomains": model.num_subdomains,
            "features": model.num_features,
            "basis": type(model.basis).__name__,
            "window": type(model.window).__name__,
            "unknowns": model.num_unknowns,
            "points": rows,
            "equation_points": int(blocks[0][2].shape[0]),
            "iterations": info["nonlinear_steps"],
            "corners": None if model.corners is None else model.corners.summary(),
        }
    )
    if schedule is not None:
        info["solver"] = f"{schedule} with {info['solver']}"
    rel = info.get("relative_residual")
    has_data = any(c.data is not None for c in conds)
    # where a start is given (pd.solve has no initial=; the message said "initial=...")
    start = (
        f"pd.{type(solver).__name__}(initial=sol), sol a Solution of an easier problem"
        if hasattr(solver, "initial")
        else "other initial guesses in unknown_parameters="
    )
    if success and rel is not None and rel > STATIONARY_RESIDUAL and not has_data:
        warnings.warn(
            f"{solver.name} stopped at a stationary point of the least-squares loss ({message}) where "
            f"the residual is still {rel:.2g} of the zero field's: a local minimum, equations with no "
            "solution (check the problem and its parameters), or an ansatz far too coarse for the "
            f"solution. Try another start ({start}), pd.GaussNewton(), "
            "or more subdomains; sol.info['relative_residual'] and sol.residuals() show it.",
            ResidualWarning,
            stacklevel=3,
        )
    say(
        f"pdedsl: {solver.name} {'converged' if success else 'stopped'} after {info['nonlinear_steps']} steps "
        f"in {info['solve_s']:.2f} s"
    )
    if throw and not success:
        if "non-finite" in message:
            raise SolveError(
                f"{solver.name} diverged: the residual or the coefficients became NaN or infinite after "
                f"{info['nonlinear_steps']} step(s) [{message}]. A term of the equation is undefined at "
                "the values reached (sqrt or log of a negative number, a division by zero, exp "
                f"overflowing), or the steps grew without bound. To fix: start closer ({start}), use "
                "pd.LevenbergMarquardt() (a trust region), or write the equation so that it is defined "
                "for every value. (throw=False returns it anyway.)"
            )
        raise SolveError(
            f"{solver.name} did not converge in {info['nonlinear_steps']} steps (max_steps="
            f"{solver.max_steps}) [{message}]; last residual {info['residual_norm']:.3e}. To fix: "
            f"increase max_steps, start closer ({start}), use pd.LevenbergMarquardt() (a trust "
            "region) instead of Gauss-Newton, or more collocation points. (throw=False returns it anyway.)"
        )
    return Solution(problem, model, coeffs, info)
