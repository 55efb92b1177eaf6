"""The result of a solve: a callable solution, its derivatives, errors and a report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import sympy as sp

from .ansatz import FBPINN, evaluate
from .geometry import as_points, error_measures, format_point, values_at
from .lower import compile_scalar, substitute_parameters
from .symbolic.expression import D

_CHUNK = 1 << 15


@eqx.filter_jit
def _evaluate(model: FBPINN, coefficients, points, multi_index):
    idx, vals = evaluate(model, points, (multi_index,))
    return jnp.einsum("npk,npk->n", vals[multi_index], coefficients[idx])


def _check_inside(problem, p: np.ndarray) -> None:
    """The ansatz is fitted on the domain only (outside a box its windows are zero, in a
    hole they extrapolate): refuse points elsewhere rather than return those values."""
    inside = problem.domain.contains(p)
    if not np.all(inside):
        bad = p[~inside]
        first = format_point(problem.coords, bad[0])
        raise ValueError(
            f"{len(bad)} of {len(p)} point(s) lie outside the domain {problem.domain}, e.g. ({first}); "
            "the solution is defined on its domain only."
        )


def _padded(field, p: np.ndarray) -> np.ndarray:
    """`_evaluate` at the host points `p`, padded (with the last point) to a power of
    two of at least 16 points, so that calls with other numbers of points reuse a few
    compiled versions instead of compiling one per number (~0.2 s each)."""
    n = p.shape[0]
    size = max(16, 1 << (n - 1).bit_length())
    if size > n:
        p = np.concatenate([p, np.broadcast_to(p[-1:], (size - n, p.shape[1]))])
    return np.asarray(_evaluate(field.model, field.coefficients, jnp.asarray(p), field.multi_index))[:n]


class _Field:
    """A scalar field of the coordinates given by an ansatz and its coefficients."""

    def __init__(self, problem, model, coefficients, multi_index):
        self.problem = problem
        self.model = model
        self.coefficients = coefficients
        self.multi_index = tuple(multi_index)

    def _points(self, points) -> jnp.ndarray:
        p = as_points(points, self.problem.dim, self.problem.coords)
        return jnp.asarray(p, dtype=self.coefficients.dtype)

    def __call__(self, points=None, *more, **coords) -> jnp.ndarray:
        """Values at `points` of shape (N, d) (or (N,) in 1D); returns (N,).

        Or one array per coordinate, by position in the problem's coordinate order or by
        name: `sol(X, Y)` or `sol(x=X, y=Y)` with arrays that broadcast together (a
        meshgrid), `sol(t=0.5)`; returns an array of their broadcast shape."""
        return jnp.asarray(values_at(self.problem.coords, self._at_points, points, more, coords, "sol"))

    def _at_points(self, points) -> np.ndarray:
        p = np.asarray(as_points(points, self.problem.dim, self.problem.coords), self.coefficients.dtype)
        _check_inside(self.problem, p)
        out = [_padded(self, p[i : i + _CHUNK]) for i in range(0, p.shape[0], _CHUNK)]
        return np.concatenate(out) if out else np.zeros((0,), p.dtype)

    def __pdedsl_derivative__(self, *variables) -> DerivativeField:
        order = list(self.multi_index)
        coords = tuple(self.problem.coords)
        for v in variables:
            sym = v[0] if isinstance(v, tuple) else v
            if isinstance(sym, sp.Symbol) and sym not in coords:
                raise ValueError(
                    f"D(solution, {sym}): {sym} is not a coordinate of the solution, whose "
                    f"coordinates are {tuple(str(c) for c in coords)}."
                )
        # the unknown's own name, so that any other message names it as the user wrote it
        expr = D(self.problem.unknown.func(*coords), *variables)
        d = expr.expr
        for v, n in getattr(d, "variable_count", ()):  # D(sol, x, 0) is sol itself, no Derivative
            order[self.problem.coords.index(v)] += int(n)
        return DerivativeField(self.problem, self.model, self.coefficients, tuple(order))

    def derivative(self, *variables) -> DerivativeField:
        """`sol.derivative(t)`, `sol.derivative(x, 2, y)`; same as `D(sol, ...)`."""
        return self.__pdedsl_derivative__(*variables)

    def errors(self, exact, points=None, n: int = 2000) -> dict[str, float]:
        """Errors against `exact` (a sympy expression of the coordinates, or a callable
        on (N, d) arrays) on `points` (default: a grid of about `n` points).

        Returns rel_l2 = ||u - u*|| / ||u*||, max_abs, rel_max = max|u - u*| / max|u*|,
        and norm_l1 = mean|u - u*| / std(u*) (the FBPINN papers' measure).
        """
        if isinstance(points, (int, np.integer)) and not isinstance(points, bool):
            # (points=50 was one point at x = 50, outside the domain, or 0 a single point there)
            raise TypeError(
                f"errors(points=...) takes the points themselves, an (N, {self.problem.dim}) array; "
                f"for a number of grid points use n={points}."
            )
        p = self.problem.domain.sample(n, "grid") if points is None else np.asarray(points)
        p = self._points(p)
        ref = _exact_fn(exact, self.problem)(p)
        return error_measures(self(p), ref)

    def compare(self, reference, points=None, max_points: int = 1 << 17) -> dict[str, float]:
        """Errors against a classical reference, e.g. `pd.finite_differences(problem, shape)`.

        Same keys as `errors`, with `reference` (anything callable on (N, d) points) in
        place of the exact solution. Default points: the reference's grid nodes
        (`reference.nodes()`, every k-th node per axis if there are more than
        `max_points`), where its values are its own and not interpolated.
        """
        if not callable(reference):
            raise TypeError(
                f"compare() takes a reference solution callable on points, e.g. "
                f"pd.finite_differences(problem, shape); got {type(reference).__name__}."
            )
        other = getattr(reference, "problem", None)
        if other is not None:
            mine, theirs = self.problem.domain, other.domain
            if tuple(map(str, mine.coords)) != tuple(map(str, theirs.coords)) or not np.allclose(
                mine.lower + mine.upper, theirs.lower + theirs.upper
            ):
                raise ValueError(
                    f"The reference solves on the domain {theirs}, this solution on {mine}; "
                    "compare solutions of the same problem."
                )
        if isinstance(points, (int, np.integer)) and not isinstance(points, bool):
            raise TypeError(
                f"compare(points=...) takes the points themselves, an (N, {self.problem.dim}) array; "
                "by default the reference's grid nodes (at most max_points of them)."
            )
        if points is None and hasattr(reference, "nodes"):
            points = reference.nodes(max_points=max_points)
        return self.errors(lambda p: np.asarray(reference(np.asarray(p))), points=points)


class DerivativeField(_Field):
    """A derivative of a solution, callable like the solution itself."""


def _exact_fn(exact, problem) -> Callable:
    if callable(exact) and not isinstance(exact, sp.Basic):
        return exact
    expr = sp.sympify(getattr(exact, "expr", exact))
    expr = substitute_parameters(expr, problem.parameters)
    return compile_scalar(expr, problem.coords)


class Solution(_Field):
    """A solved problem: `sol(points)`, `D(sol, t)`, `sol.errors(exact)`, `sol.report()`.

    Attributes:
        coefficients: (J, K) coefficients of the ansatz.
        info: dict of diagnostics (unknowns, points, residuals, timings, solver).
    """

    def __init__(self, problem, model, coefficients, info: dict[str, Any]):
        super().__init__(problem, model, coefficients, (0,) * problem.dim)
        self.info = info

    @property
    def parameters(self) -> dict[str, float]:
        """Estimates of the unknown parameters (empty if there were none)."""
        return dict(self.info.get("parameters") or {})

    @property
    def standard_errors(self) -> dict[str, float]:
        """Linearised standard errors of the parameter estimates (from the data misfit)."""
        return dict(self.info.get("standard_errors") or {})

    def residuals(self, points=None, sampler: str = "uniform", seed: int = 1) -> dict[str, float]:
        """The RMS residual of the equation and of each condition (not row-scaled, as
        `info["group_rms"]` at the collocation points) at other points: `points` a
        count, a grid shape or an (N, d) array, as for `pd.solve` (default: as many
        equation points as the solve had), drawn by `sampler` (default "uniform", with
        `seed`). Condition points are drawn the same way; data and point conditions
        keep their own points.

        A solution that fits the collocation points but not the points between them
        (a least-squares solution that leans on nearly dependent columns: large
        `info["cancellation"]`) shows residuals here far above those at the points.
        Linear problems with known parameters only.
        """
        from .assemble import assemble
        from .lower import LinearForm
        from .solve.solve import collocation

        if self.problem.unknown_parameters or not isinstance(self.problem.equation_form, LinearForm):
            raise NotImplementedError(
                "Solution.residuals() evaluates linear problems with known parameters only; for others, "
                "compare with a reference (sol.compare) or solve again on other points."
            )
        if points is None:
            points = int(self.info.get("equation_points") or 0) or None
        blocks = collocation(self.problem, self.model, points, sampler=sampler, seed=seed)
        system = assemble(self.model, blocks, row_scaling=False)
        return system.group_rms(system.mv(self.coefficients) - system.rhs)

    def _equation_terms_rms(self, points=None, sampler: str = "uniform", seed: int = 1) -> float:
        """The size of the equation's parts at the points `residuals()` uses (same
        arguments): the RMS over them of `sum_a |c_a D^a u| + |f|` for the linear
        equation `sum_a c_a D^a u = f`. The scale against which an equation residual
        there is small or not (terms that cancel each other, as u'' and w^2 u do,
        still count with their own size)."""
        from .solve.solve import collocation

        if points is None:
            points = int(self.info.get("equation_points") or 0) or None
        name, form, xs = collocation(self.problem, self.model, points, sampler=sampler, seed=seed)[0]
        assert name == "equation"
        xs = jnp.asarray(xs)
        total = jnp.abs(form.rhs(xs))
        for alpha, coefficient in zip(form.multi_indices, form.coefficients):
            field = DerivativeField(self.problem, self.model, self.coefficients, tuple(alpha))
            total = total + jnp.abs(coefficient(xs) * field(xs))
        return float(jnp.sqrt(jnp.mean(total**2)))

    def save(self, path) -> None:
        """Save to one file; `pd.load(path)` gives bit-identical predictions, no re-solve."""
        from .io import save

        save(self, path)

    def plot(self, exact=None, path=None, n: int | None = None):
        """Figure of the solution (and error against `exact`); see `pdedsl.plot.plot_solution`."""
        from .plot import plot_solution

        return plot_solution(self, exact=exact, path=path, n=n)

    def report(self) -> str:
        i = self.info
        lines = [
            "pdedsl solution",
            f"  problem      {self.problem.equation}",
            f"  model        {i['subdomains']} subdomains x {i['features']} features "
            f"({i['basis']}, {i['window']} window) = {i['unknowns']} "
            + (
                "unknowns"
                if i.get("trainable_parameters") is None
                else f"output weights; {i['trainable_parameters']} trainable parameters in all"
            ),
        ]
        if i.get("corners"):
            c = i["corners"]
            at = {tuple(d["point"]) for d in c}
            lines.append(
                f"  corners      {len(c)} singular functions at {len(at)} re-entrant corner(s) "
                "added to the features (sol.info['corners'])"
            )
        lines += [
            f"  points       {i['points']} rows ({i['equation_points']} equation, "
            f"{i['points'] - i['equation_points']} condition)",
            f"  solver       {i['solver']}  [{i['solver_message']}]",
        ]
        if "success" in i and not i["success"]:  # kept by throw=False: say so before any number below
            lines.append("  status       NOT CONVERGED: the solver stopped without meeting its tolerance")
        if i.get("rank") is not None:
            lines.append(f"  rank         {i['rank']} of {i['unknowns']}")
        if i.get("condition_number") is not None:
            if i.get("condition_rule"):
                lines.append(f"  condition    {i['condition_number']:.2e} ({i['condition_rule']})")
            elif i.get("rank") is not None:
                lines.append(
                    f"  cond(M)      {i['condition_number']:.2e} (exact, columns scaled to unit norm)"
                )
            else:
                lines.append(
                    f"  cond(M R)    {i['condition_number']:.2e} (LSMR's estimate, after preconditioning)"
                )
        if i.get("loss_history") is not None:
            hist = i["loss_history"]
            lines.append(f"  steps        {i['iterations']} (loss {hist[0]:.3e} -> {hist[-1]:.3e})")
            if i.get("error_history") is not None:
                lines.append(f"  error        rel_l2 {i['error_history'][-1][1]:.3e} after the last step")
        elif i.get("iterations") is not None:
            stop = ""
            if i.get("stop_measure") is not None:
                stop = f" (stopping measure {i['stop_measure']:.2e}: {i['stop_rule']})"
            lines.append(f"  iterations   {i['iterations']}{stop}")
        for st in i.get("stages") or ():
            if st.get("nonlinear_steps") is not None:
                extra = (
                    f"{st['nonlinear_steps']} {i['nonlinear_solver']} steps, residual "
                    f"{st['initial_residual']:.1e} -> {st['residual']:.1e}"
                )
            elif st.get("relative_residual") is not None:
                extra = f"rel. residual {st['relative_residual']:.1e}"
                if st.get("final_loss") is not None:  # a trained stage: its loss too
                    extra = f"final loss {st['final_loss']:.2e}, {extra}"
            else:
                extra = f"final loss {st['final_loss']:.2e}"
            lines.append(
                f"    stage {st['stage']:>3d}: slabs {st['slabs'][0]}-{st['slabs'][1]}, "
                f"{st['unknowns']} unknowns, {st['rows']} rows, {st['frozen']} frozen subdomains, "
                f"{extra}, {st['solve_s']:.3f} s"
            )
        if i.get("filtered"):
            lines.append(
                f"  filtered     {i['filtered']} near-dependent features dropped by the preconditioner"
            )
        if i.get("nonlinear_steps") is not None:
            lines.append(
                f"  nonlinear    {i['nonlinear_steps']} {i['nonlinear_solver']} steps from "
                f"{i['initial_guess']}; linear solves by {i['linear_solver']}"
            )
            for h in i["history"][1:]:
                mark = "" if h["accepted"] else "  (rejected)"
                lines.append(
                    f"    step {h['step']:>3d}  residual {h['residual']:.3e}  step {h['step_norm']:.2e}{mark}"
                )
        if i.get("parameters"):
            se = i.get("standard_errors") or {}
            for name, value in i["parameters"].items():
                err = f" +- {se[name]:.2e} (standard error)" if name in se else ""
                lines.append(f"  parameter    {name} = {value:.10g}{err}")
        rel = i.get("relative_residual")
        rel = f", relative {rel:.3e}" if rel is not None else ""
        lines.append(f"  residual     {i['residual_norm']:.3e} (row-scaled{rel})")
        for name, rms in i["group_rms"].items():
            lines.append(f"    {name:<40s} rms {rms:.3e}")
        if i.get("cancellation") is not None:
            lines.append(
                f"  cancellation {i['cancellation']:.3g} (norm of the subdomains' contributions over that of "
                "their sum, at the points)"
            )
        setup = (
            f" (of which preconditioner setup {i['setup_s']:.3f} s)" if i.get("setup_s") is not None else ""
        )
        if i.get("loss_history") is not None:
            lines.append(
                f"  time         training {i['solve_s']:.3f} s (after {i['compile_s']:.3f} s of JIT compilation)"
            )
        else:
            lines.append(
                f"  time         assemble {i['assemble_s']:.3f} s, solve {i['solve_s']:.3f} s{setup} "
                "(includes JIT compilation on the first call with these shapes)"
            )
        return "\n".join(lines)

    def __repr__(self):
        return f"Solution({self.problem.equation}, unknowns={self.info['unknowns']})"
