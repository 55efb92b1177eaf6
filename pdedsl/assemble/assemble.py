"""Assembly of the least-squares system from lowered equation and condition rows."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp

from ..ansatz import FBPINN, evaluate
from ..lower import CompiledLinearForm, ObservedData, apply_form
from . import chunks
from .sharding import shard_system, sharded_rows
from .system import LinearSystem, product_chunk_rows

_CHUNK_ROWS = 1024


def _rows_impl(model: FBPINN, form: CompiledLinearForm, points):
    """(index (N, P), values (N, P, K), rhs (N,)) of the rows at `points`.

    Chunked over the points: each chunk's basis derivatives (one (n, P, K) array per
    multi-index of the form) are contracted to rows before the next chunk is
    evaluated, so peak memory is the rows themselves plus one chunk, not one full
    array per derivative (a 3D Laplacian has four)."""
    n = points.shape[0]
    chunk = min(n, _CHUNK_ROWS)
    if n <= chunk:
        index, derivs = evaluate(model, points, form.multi_indices)
        return index, apply_form(form, derivs, points), form.rhs(points)
    extra = -n % chunk
    padded = jnp.concatenate([points, jnp.repeat(points[-1:], extra, axis=0)]) if extra else points

    def one(pts):
        index, derivs = evaluate(model, pts, form.multi_indices)
        return index, apply_form(form, derivs, pts)

    index, values = jax.lax.map(one, padded.reshape(-1, chunk, points.shape[1]))
    index = index.reshape(-1, index.shape[-1])[:n]
    values = values.reshape(-1, *values.shape[-2:])[:n]
    return index, values, form.rhs(points)


def _sharded_rows(model, form, points, devices):
    data = form.rhs if isinstance(form.rhs, ObservedData) else None
    if data is not None:  # rows of the observed values, not of the points each device holds
        form = dataclasses.replace(form, rhs=lambda pts: jnp.zeros(pts.shape[0], pts.dtype))
    (idx, val, b), extra = sharded_rows(lambda pts: _rows_impl(model, form, pts), points, devices)
    if data is not None:
        b = jnp.concatenate([jnp.asarray(data.values, b.dtype), jnp.zeros(extra, b.dtype)])
    if extra:  # padding rows: zero, so they change nothing
        n = idx.shape[0] - extra
        keep = (jnp.arange(idx.shape[0]) < n).astype(val.dtype)
        val = val * keep[:, None, None]
        b = b * keep
    return idx, val, b, extra


def _scale(values, rhs, row_scaling: bool):
    """Divide each row (and its rhs entry) by its norm; rows of zeros keep scale 1."""
    if not row_scaling:
        return values, rhs, jnp.ones_like(rhs)
    norms = jnp.sqrt(jnp.sum(values**2, axis=(1, 2)))
    scale = jnp.where(norms > 0, 1.0 / jnp.where(norms > 0, norms, 1.0), 1.0)
    return values * scale[:, None, None], rhs * scale, scale


def _width(model: FBPINN, form: CompiledLinearForm) -> int:
    """Blocks per row: the subdomains covering a point, on both sides for a jump."""
    return model.decomposition.max_cover * (1 if form.jump is None else 2)


def _pad(a, width: int):
    """Pad the block axis (axis 1) with zeros (index 0, value 0: no contribution)."""
    extra = width - a.shape[1]
    return a if extra == 0 else jnp.pad(a, [(0, 0), (0, extra)] + [(0, 0)] * (a.ndim - 2))


def _jump_rows(form: CompiledLinearForm, sides, x):
    """(index, values) of an interface condition's rows: the form applied to the upper
    side's ansatz minus the form applied to the lower side's, side by side in the
    block axis. The coefficients are evaluated a relative 1e-12 off the cut on each
    side (their one-sided limits: a coefficient may jump there)."""
    axis, value = form.jump
    (i_up, d_up), (i_low, d_low) = sides
    up = apply_form(form, d_up, _off_cut(x, axis, value, 1))
    low = apply_form(form, d_low, _off_cut(x, axis, value, -1))
    return jnp.concatenate([i_up, i_low], axis=1), jnp.concatenate([up, -low], axis=1)


def _off_cut(x, axis: int, value: float, side: int):
    """Points on the cut `x[axis] == value` moved a relative 1e-12 to one side: where
    coefficients and data that jump there take their one-sided limits."""
    return x.at[:, axis].set(value + side * 1e-12 * max(1.0, abs(value)))


class _LayoutMissed(Exception):
    """The assembled rows are not of the buffers' shapes and types."""


def _expected_layout(model: FBPINN, width: int) -> tuple:
    """(shape of a row, dtype) of the assembly's index, values, rhs and scale: the
    default integer and float types (float64 and int64 under x64)."""
    real, integer = jnp.result_type(float), jnp.result_type(int)
    return (((width,), integer), ((width, model.num_features), real), ((), real), ((), real))


@eqx.filter_jit
def _assemble_local(model: FBPINN, forms, points, row_scaling: bool):
    """(index, values, rhs, scale) of all blocks, written chunk by chunk into one
    preallocated buffer (`chunks.fill_rows`), so that peak memory is the system
    itself plus one chunk: stacking the chunks, dropping the padding and then
    concatenating the blocks would each hold a second copy of the values.

    Consecutive blocks with the same derivatives (the faces of `u.on(pd.boundary)`)
    are filled by one loop that evaluates the basis once per chunk and applies each
    block's form to its own rows: XLA then compiles one copy of the basis
    derivatives for them instead of one per face (a cold 2D solve compiled four)."""

    width = max(_width(model, form) for form in forms)

    def rows(group, starts, lo, x):
        jump, side = group[0].jump, group[0].side
        if jump is not None:
            sides = [evaluate(model, x, group[0].multi_indices, (*jump, s)) for s in (1, -1)]
        else:
            index, derivs = evaluate(model, x, group[0].multi_indices, side)
        out = None
        for form, first in zip(group, starts):
            if jump is not None:
                index, values = _jump_rows(form, sides, x)
                rhs = form.rhs(x)
            else:  # on one side of a cut: coefficients and data take their limits there
                at = x if side is None else _off_cut(x, *side)
                values = apply_form(form, derivs, at)
                rhs = (
                    form.rhs.rows(lo - first, x.shape[0])
                    if isinstance(form.rhs, ObservedData)
                    else form.rhs(at)
                )
            part = (_pad(index, width), *_scale(_pad(values, width), rhs, row_scaling))
            if out is None:
                out = part
                continue
            mine = lo + jnp.arange(x.shape[0]) >= first  # rows of this block or a later one
            out = tuple(jnp.where(mine.reshape(-1, *(1,) * (a.ndim - 1)), a, b) for a, b in zip(part, out))
        return out

    total = sum(p.shape[0] for p in points)
    groups = []  # (forms, points) of consecutive blocks with the same multi-indices
    for form, pts in zip(forms, points):
        last = groups[-1][0][-1] if groups else None
        key = (form.multi_indices, form.jump, form.side)
        if last is not None and (last.multi_indices, last.jump, last.side) == key:
            groups[-1][0].append(form)
            groups[-1][1].append(pts)
        else:
            groups.append(([form], [pts]))

    def fill(layout):
        buf = tuple(jnp.zeros((total, *shape), dtype) for shape, dtype in layout)
        start = 0
        for group, pts_list in groups:
            sizes = [p.shape[0] for p in pts_list]
            starts = tuple(sum(sizes[:i]) for i in range(len(sizes)))
            pts = pts_list[0] if len(pts_list) == 1 else jnp.concatenate(pts_list)

            def fn(lo, chunk, group=tuple(group), starts=starts, pts=pts):
                out = rows(group, starts, lo, chunks.rows(pts, lo, chunk))
                if [(a.shape[1:], a.dtype) for a in out] != list(layout):
                    raise _LayoutMissed
                return out

            buf = chunks.fill_rows(buf, fn, pts.shape[0], _CHUNK_ROWS, start)
            start += pts.shape[0]
        return buf

    # Tracing one row of the first block to learn the buffers' layout (jax.eval_shape)
    # took a third of the assembly's tracing: it is only done if the rows turn out not
    # to be as `_expected_layout` expects.
    try:
        buf = fill(_expected_layout(model, width))
    except _LayoutMissed:
        shapes = jax.eval_shape(lambda x: rows(forms[:1], (0,), 0, x), points[0][:1])
        buf = fill(tuple((a.shape[1:], a.dtype) for a in shapes))
    ends = [sum(p.shape[0] for p in points[: i + 1]) for i in range(len(points))]
    return buf, non_finite_rows(buf[1], buf[2], list(zip([0, *ends[:-1]], ends)))


def non_finite_rows(values, rhs, ranges):
    """(the number of rows that are not finite in each `(start, stop)` range of rows;
    the first such row, or 0): scalars only, for `pd.solve`'s check before solving."""
    ok = jnp.all(jnp.isfinite(values), axis=(1, 2)) & jnp.isfinite(rhs)
    return tuple(jnp.sum(~ok[a:b]) for a, b in ranges), jnp.argmin(ok)


def assemble(
    model: FBPINN,
    blocks: Sequence[tuple[str, CompiledLinearForm, jnp.ndarray]],
    *,
    row_scaling: bool = True,
    devices=None,
) -> LinearSystem:
    """Stack the rows of each `(name, form, points)` block into one `LinearSystem`.

    Row scaling (default): every row, with its right-hand side, is divided by its
    Euclidean norm. A least-squares fit then weighs each collocation point and each
    condition point by its relative residual, so that an equation with large
    coefficients (k = 6400 u) does not drown a boundary condition of size 1, and
    no hand-tuned weights are needed. It also equilibrates M, which helps every solver.

    `devices` (a list of jax devices, see `pdedsl.assemble.sharding`): evaluate the
    rows with the points split across the devices and return a row-sharded system
    (each block padded with zero rows to a multiple of the device count).
    """
    return assemble_checked(model, blocks, row_scaling=row_scaling, devices=devices)[0]


def assemble_checked(model: FBPINN, blocks, *, row_scaling: bool = True, devices=None):
    """`(assemble(...), non_finite)`: `non_finite` is `non_finite_rows` of the system's
    blocks, computed within the assembly's compiled code (a separate compiled check
    took 0.1-0.26 s of a cold solve), or None for a sharded system."""
    if devices and any(
        getattr(form, "jump", None) is not None or getattr(form, "side", None) is not None
        for _, form, _ in blocks
    ):
        raise NotImplementedError(
            "Interface conditions (jumps across a pd.Cut) are assembled on one device for now; "
            "pass devices=1."
        )
    if not devices:
        forms = tuple(form for _, form, _ in blocks)
        points = tuple(jnp.asarray(pts) for _, _, pts in blocks)
        (index, values, rhs, scale), non_finite = _assemble_local(model, forms, points, row_scaling)
        groups, start = [], 0
        for (name, _, _), pts in zip(blocks, points):
            groups.append((name, start, start + pts.shape[0]))
            start += pts.shape[0]
        system = LinearSystem(
            values=values,
            index=index,
            rhs=rhs,
            row_scale=scale,
            num_subdomains=model.num_subdomains,
            groups=tuple(groups),
            levels=model.decomposition.levels,
            centres=model.decomposition.centres,
            chunk_rows=product_chunk_rows(values.shape[1], values.shape[2], values.dtype.itemsize),
        )
        return system, non_finite
    indices, values, rhs, groups = [], [], [], []
    start = 0
    for name, form, points in blocks:
        idx, val, b, extra = _sharded_rows(model, form, jnp.asarray(points), devices)
        indices.append(idx)
        values.append(val)
        rhs.append(b)
        groups.append((name, start, start + b.shape[0] - extra))
        start += b.shape[0]
    system = _finish(
        tuple(indices),
        tuple(values),
        tuple(rhs),
        model.num_subdomains,
        tuple(groups),
        row_scaling,
        model.decomposition.levels,
        model.decomposition.centres,
    )
    return shard_system(system, devices), None


@eqx.filter_jit
def _finish(indices, values, rhs, num_subdomains, groups, row_scaling, levels, centres):
    vals, b, scale = _scale(jnp.concatenate(values), jnp.concatenate(rhs), row_scaling)
    return LinearSystem(
        values=vals,
        index=jnp.concatenate(indices),
        rhs=b,
        row_scale=scale,
        num_subdomains=num_subdomains,
        groups=groups,
        levels=levels,
        centres=centres,
    )
