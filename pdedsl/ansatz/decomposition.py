"""Decompositions of a box into overlapping subdomains."""

from __future__ import annotations

import abc
import math

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import sympy as sp
from jaxtyping import Array, Float, Int

from ..geometry import Box, Difference


class AbstractDecomposition(eqx.Module):
    """Overlapping subdomains, each an axis-aligned box `centre +- half_width`."""

    centres: eqx.AbstractVar[Float[Array, "J dim"]]
    half_widths: eqx.AbstractVar[Float[Array, "J dim"]]

    @property
    def num_subdomains(self) -> int:
        return self.centres.shape[0]

    @property
    def dim(self) -> int:
        return self.centres.shape[1]

    @property
    def levels(self) -> Int[Array, " J"]:
        """Level of each subdomain (all 0 for a single-level decomposition)."""
        return jnp.zeros((self.num_subdomains,), dtype=jnp.int32)

    @property
    def level_slices(self) -> tuple[tuple[int, int], ...]:
        """Ranges of the `cover` positions that belong to each level."""
        return ((0, self.max_cover),)

    @property
    def periods(self) -> tuple[float, ...]:
        """Per axis, the period of a periodic axis (its length) or 0.0."""
        return (0.0,) * self.dim

    @property
    def periodic_axes(self) -> tuple[int, ...]:
        """The axes along which the subdomains wrap around (see `pd.Grid(periodic=...)`)."""
        return tuple(i for i, p in enumerate(self.periods) if p > 0)

    def local_coordinates(self, x: Float[Array, " dim"], idx: Int[Array, " P"]) -> Float[Array, "P dim"]:
        """`x` in the normalised coordinates of the subdomains `idx`: `(x - centre) /
        half_width`, the displacement taken the short way round along periodic axes
        (so every window and basis function is periodic there, with all derivatives)."""
        d = x[None, :] - self.centres[idx]
        if self.periodic_axes:
            period = jnp.asarray(self.periods, d.dtype)
            safe = jnp.where(period > 0, period, 1.0)
            d = jnp.where(period > 0, d - safe * jnp.round(d / safe), d)
        return d / self.half_widths[idx]

    def normalise(self, raw: Float[Array, " P"]) -> Float[Array, " P"]:
        """Raw windows at the covering subdomains -> partition-of-unity weights."""
        total = jnp.sum(raw)
        return raw / jnp.where(total > 0, total, 1.0)

    @property
    @abc.abstractmethod
    def max_cover(self) -> int:
        """Upper bound on how many subdomains contain any one point."""

    @abc.abstractmethod
    def cover(self, x: Float[Array, " dim"]) -> tuple[Int[Array, " P"], Float[Array, " P"]]:
        """Indices of the (at most `max_cover`) subdomains containing `x`, and a 0/1 mask."""


class Grid(AbstractDecomposition):
    """A grid of subdomains over a box: uniform, or graded along chosen axes.

    Along each axis, `subdomains` gives either a count n (centres evenly spaced
    from the lower to the upper bound, spacing h; each subdomain has width
    `overlap * h`) or a sorted array of centres from the lower to the upper bound
    (a graded axis: each subdomain's width is `overlap` times the larger of its two
    gaps, so neighbours overlap however the spacing changes). With `overlap > 1` a
    point lies in about `overlap**d` subdomains. With one subdomain along an axis
    it spans that axis with a margin.

        pd.Grid(domain, 20, overlap=2.9)
        pd.Grid(domain, (np.concatenate([...]), 10))    # graded in x, uniform in t

    On a box with holes (`pd.Box(...) - pd.Box(...)`) the grid covers the bounding
    box and the subdomains that do not meet the domain are dropped (they would only
    add unknowns that no equation constrains); `num_subdomains` counts the rest.
    With `trim=True` (the default) so are the slivers: subdomains with less than 40%
    of their box (within the bounding box) in the domain, which meet it only in a
    strip along a hole, unless the others leave some point of the domain uncovered
    without them. A sliver's basis functions see too few collocation points, and
    the fit swings between them (docs/geometry.md, "Holes and slivers").
    `trim=False` keeps every subdomain that meets the domain.

    `periodic=[x]` wraps the grid around along `x` (coordinates or their names): n
    centres `lower + i * h` with `h = length / n`, and each subdomain's window and
    basis functions see the displacement from its centre taken the short way round,
    so the ansatz and all its derivatives are periodic along `x` with period
    `length`. A problem with the periodic condition `u.at(x=a) == u.at(x=b)` needs
    such a grid. Along a periodic axis the count must exceed `overlap` (a window
    wider than the period would overlap itself).
    """

    domain: Box | Difference = eqx.field(static=True)
    shape: tuple[int, ...] = eqx.field(static=True)
    overlap: float = eqx.field(static=True)
    graded: tuple = eqx.field(static=True)  # per axis: None, or (centres, half-widths, lo, P)
    centres: Float[Array, "J dim"]
    half_widths: Float[Array, "J dim"]
    # grid position -> subdomain index, -1 where dropped (None: all kept)
    slots: Int[Array, " grid"] | None
    periodic: tuple[int, ...] = eqx.field(static=True, default=())  # wrapping axes
    # per periodic axis, where the first centre sits, in spacings after the lower bound
    shift: tuple[float, ...] = eqx.field(static=True, default=())
    # drop the subdomains that meet the domain only in a sliver along a hole (see _trim)
    trim: bool = eqx.field(static=True, default=True)

    def __init__(
        self,
        domain: Box | Difference,
        subdomains,
        overlap: float = 2.0,
        periodic=(),
        *,
        shift=None,
        trim: bool = True,
    ):
        if not isinstance(domain, (Box, Difference)):
            raise TypeError(
                f"Grid needs a pd.Box/pd.Interval domain (or a box minus boxes), got {type(domain).__name__}."
            )
        if isinstance(overlap, (bool, str)) or not np.isscalar(overlap) or not overlap > 1.0:
            raise ValueError(f"overlap must be a number > 1 so that subdomains overlap, got {overlap!r}.")
        if np.isscalar(subdomains):
            entries = [subdomains] * domain.dim
        elif domain.dim == 1 and np.ndim(subdomains) == 1 and len(subdomains) > 1:
            entries = [subdomains]  # a 1D domain with graded centres
        else:
            entries = list(subdomains)
        if len(entries) != domain.dim:
            raise ValueError(
                f"subdomains={subdomains} has {len(entries)} entries for a {domain.dim}D domain."
            )
        self.domain = domain
        self.overlap = float(overlap)
        if not isinstance(trim, (bool, np.bool_)):
            raise TypeError(f"trim must be True or False, got {trim!r}.")
        self.trim = bool(trim)
        self.periodic = _periodic_axes(domain, periodic)
        if self.periodic and isinstance(domain, Difference):
            raise NotImplementedError(
                "A periodic grid on a box with holes is not supported; use a pd.Box domain."
            )
        self.shift = (0.0,) * len(self.periodic) if shift is None else tuple(float(v) for v in shift)
        if len(self.shift) != len(self.periodic):
            raise ValueError(f"shift needs one value per periodic axis, got {shift!r}.")
        shape, axes, hws, graded = [], [], [], []
        for i, (e, a, b) in enumerate(zip(entries, domain.lower, domain.upper)):
            if i in self.periodic:
                if np.ndim(e) != 0:
                    raise NotImplementedError(
                        f"Graded centres along the periodic axis {domain.coords[i]} are not supported; "
                        "give a count."
                    )
                if int(e) != e or e < 1:
                    raise ValueError(f"subdomains must be positive integers or arrays of centres, got {e!r}.")
                n = int(e)
                if not n > self.overlap:
                    raise ValueError(
                        f"Along the periodic axis {domain.coords[i]} the grid needs more subdomains than "
                        f"the overlap ({self.overlap:g}), got {n}: each window spans overlap / n of the "
                        f"period and must not reach around to itself. Use at least "
                        f"{math.floor(self.overlap) + 1} subdomains there, or a smaller overlap."
                    )
                h = (b - a) / n
                axes.append(a + (np.arange(n) + self.shift[self.periodic.index(i)]) * h)
                hws.append(np.full(n, 0.5 * self.overlap * h))
                shape.append(n)
                graded.append(None)
                continue
            if np.ndim(e) == 0:
                if int(e) != e or e < 1:
                    raise ValueError(f"subdomains must be positive integers or arrays of centres, got {e!r}.")
                n = int(e)
                if n == 1:
                    axes.append(np.array([(a + b) / 2]))
                    hws.append(np.array([0.5 * (b - a) * max(self.overlap, 1.5)]))
                else:
                    axes.append(np.linspace(a, b, n))
                    hws.append(np.full(n, 0.5 * self.overlap * (b - a) / (n - 1)))
                shape.append(n)
                graded.append(None)
                continue
            c, hw, lo, per = _graded_axis(np.asarray(e, dtype=float), a, b, self.overlap, domain.coords[i])
            axes.append(c)
            hws.append(hw)
            shape.append(c.size)
            graded.append((tuple(map(float, c)), tuple(map(float, hw)), tuple(map(int, lo)), int(per)))
        self.shape = tuple(shape)
        self.graded = tuple(graded)
        mesh = np.meshgrid(*axes, indexing="ij")
        centres = np.stack([m.ravel() for m in mesh], axis=-1)
        hmesh = np.meshgrid(*hws, indexing="ij")
        half_widths = np.stack([m.ravel() for m in hmesh], axis=-1)
        self.slots = None
        if isinstance(domain, Difference):
            keep = domain.meets(centres - half_widths, centres + half_widths)
            if self.trim:
                keep = _trim(domain, axes, hws, centres, half_widths, keep)
            if not keep.all():
                self.slots = jnp.asarray(np.where(keep, np.cumsum(keep) - 1, -1))
                centres, half_widths = centres[keep], half_widths[keep]
        self.centres = jnp.asarray(centres)
        self.half_widths = jnp.asarray(half_widths)

    @property
    def periods(self) -> tuple[float, ...]:
        lengths = self.domain.bounding_box.lengths
        return tuple(float(lengths[i]) if i in self.periodic else 0.0 for i in range(self.dim))

    def _per_axis(self) -> list[int]:
        # Uniform axis: the subdomains containing x are the integers in an open
        # interval of length `overlap`: at most ceil(overlap) of them. (Rounding can
        # only drop one whose window is ~0 at x: x sits on its edge.)
        out = []
        for n, g in zip(self.shape, self.graded):
            if g is not None:
                out.append(g[3])
            else:
                out.append(1 if n == 1 else min(n, math.ceil(self.overlap)))
        return out

    @property
    def max_cover(self) -> int:
        return int(np.prod(self._per_axis()))

    def cover(self, x):
        per_axis = self._per_axis()
        idx_axes, ok_axes = [], []
        for i, (n, m, g) in enumerate(zip(self.shape, per_axis, self.graded)):
            if g is not None:
                c, hw, lo = (jnp.asarray(v) for v in g[:3])
                cell = jnp.clip(jnp.searchsorted(c, x[i], side="right") - 1, 0, n - 2)
                j = lo[cell] + jnp.arange(m)
                idx_axes.append(j)
                ok_axes.append(jnp.abs(x[i] - c[j]) < hw[j])
                continue
            if i in self.periodic:
                a, b = self.domain.lower[i], self.domain.upper[i]
                h = (b - a) / n
                hw = 0.5 * self.overlap * h
                c0 = a + self.shift[self.periodic.index(i)] * h
                # the first centre (unwrapped) above x - hw, then the next m-1; wrapped
                first = jnp.floor((x[i] - c0 - hw) / h).astype(int) + 1
                j = first + jnp.arange(m)
                d = x[i] - (c0 + j * h)
                d = d - (b - a) * jnp.round(d / (b - a))
                idx_axes.append(jnp.mod(j, n))
                ok_axes.append(jnp.abs(d) < hw)
                continue
            if n == 1:
                idx_axes.append(jnp.zeros((1,), int))
                ok_axes.append(jnp.ones((1,), bool))
                continue
            a, b = self.domain.lower[i], self.domain.upper[i]
            h = (b - a) / (n - 1)
            hw = 0.5 * self.overlap * h
            first = jnp.floor((x[i] - a - hw) / h).astype(int) + 1
            first = jnp.clip(first, 0, n - m)
            j = first + jnp.arange(m)
            ok = jnp.abs(x[i] - (a + j * h)) < hw
            idx_axes.append(j)
            ok_axes.append(ok)
        strides = np.cumprod((self.shape[1:] + (1,))[::-1])[::-1]
        # every combination of the per-axis candidates, the last axis fastest, by
        # broadcasting: one op per axis. (A Python loop over the combinations, 64 per
        # point for cubic B-spline windows in 3D, made the assembly of a 3D Laplacian
        # compile in 9.2 s instead of 2.0 s; 22 s instead of 3.3 s on two levels.)
        flat, ok = 0, True
        for i, (j, o) in enumerate(zip(idx_axes, ok_axes)):
            shape = [1] * len(idx_axes)
            shape[i] = -1
            flat = flat + int(strides[i]) * j.reshape(shape)
            ok = ok & o.reshape(shape)
        flat, mask = flat.reshape(-1), ok.reshape(-1).astype(x.dtype)
        if self.slots is not None:  # dropped subdomains: padding (index 0, mask 0)
            j = self.slots[flat]
            flat, mask = jnp.where(j >= 0, j, 0), mask * (j >= 0)
        return flat, mask


def _periodic_axes(domain, periodic) -> tuple[int, ...]:
    """`periodic=[x, "y"]` (symbols, names or axis indices) -> sorted axis indices."""
    if periodic is None:
        return ()
    if isinstance(periodic, (str, sp.Symbol)):
        periodic = (periodic,)
    axes = []
    for c in periodic:
        if isinstance(c, (int, np.integer)) and not isinstance(c, bool) and 0 <= c < domain.dim:
            axes.append(int(c))  # an axis index
            continue
        if not isinstance(c, (str, sp.Symbol)):
            raise TypeError(f"periodic= takes coordinates (symbols or names), got {c!r}.")
        axes.append(domain.axis(c))
    if len(set(axes)) != len(axes):
        raise ValueError(f"periodic={periodic!r} names a coordinate twice.")
    return tuple(sorted(axes))


def _trim(domain: Difference, axes, hws, centres, half_widths, keep) -> np.ndarray:
    """`keep` (the subdomains that meet the domain, flat over the grid) without those
    that meet it only in a sliver along a hole: less than `_SLIVER` of the part of
    their box inside the bounding box lies in the domain. A sliver holds too few
    collocation points for the subdomain's basis functions; their near-null
    combinations then let the least-squares fit swing between the points (16 x 16
    subdomains of degree 5 on an L-shape, default points: rel_l2 9.4e-6 with the
    slivers, 7.0e-10 without; docs/geometry.md, "Holes and slivers").

    A sliver subdomain stays where it is needed: every point of the closed domain
    must lie strictly inside a kept subdomain's box. The test is exact: within a
    domain cell, coverage only changes at the boxes' ends along each axis, so
    testing the ends and the midpoints between them tests every point."""
    lo_s, hi_s = centres - half_widths, centres + half_widths
    drop = keep & (_fraction_inside(domain, lo_s, hi_s) < _SLIVER)
    if not drop.any():
        return keep
    shape = tuple(len(c) for c in axes)
    kept = (keep & ~drop).reshape(shape).astype(float)
    needed = np.zeros(shape)
    for lo, hi in zip(*domain.cells):
        cover = []  # per axis: (samples, subdomains along the axis): strictly inside?
        for c, hw, a, b in zip(axes, hws, lo, hi):
            ends = np.concatenate([c - hw, c + hw])
            v = np.unique(np.concatenate([[a, b], ends[(ends > a) & (ends < b)]]))
            v = np.sort(np.concatenate([v, 0.5 * (v[1:] + v[:-1])]))
            cover.append((np.abs(v[:, None] - c[None, :]) < hw[None, :] * (1 - 1e-12)).astype(float))
        count = kept
        for i, m in enumerate(cover):  # how many kept boxes hold each sample point
            count = np.moveaxis(np.tensordot(m, count, axes=([1], [i])), 0, i)
        bare = (count == 0).astype(float)
        if not bare.any():
            continue
        for i, m in enumerate(cover):  # the subdomains that hold a bare sample point
            bare = np.moveaxis(np.tensordot(m.T, bare, axes=([1], [i])), 0, i)
        needed += bare
    return keep & (~drop | (needed.reshape(-1) > 0))


# A subdomain with less of its box in the domain than this is a sliver (see _trim).
# Chosen on an L-shape (on and off the grid lines) and a square with a hole, with
# cosine windows x degree 5, cubic B-spline windows x quadratics and tanh features,
# against 0 (keep all), 0.2, 0.3, 0.5 and "every subdomain centred in a hole": the
# best or within a factor 3 of it in eight of the nine cases (docs/geometry.md).
_SLIVER = 0.4


def _fraction_inside(domain: Difference, lo_s, hi_s) -> np.ndarray:
    """Per box `lo_s < x < hi_s` (arrays (J, d)): its volume in the domain over its
    volume in the bounding box (so boxes that stick out of the outer boundary are
    not slivers for that)."""
    lo_c, hi_c = domain.cells
    ext = np.minimum(hi_s[:, None], hi_c[None]) - np.maximum(lo_s[:, None], lo_c[None])
    inside = np.clip(ext, 0, None).prod(-1).sum(-1)
    lower, upper = np.asarray(domain.lower, float), np.asarray(domain.upper, float)
    box = np.clip(np.minimum(hi_s, upper) - np.maximum(lo_s, lower), 0, None).prod(-1)
    return inside / np.where(box > 0, box, 1.0)


def _graded_axis(c, a, b, overlap, coord):
    """Centres, half-widths, first candidate per cell and candidates per point."""
    if c.ndim != 1 or c.size < 2:
        raise ValueError(f"Graded centres along {coord} must be a 1-D array of at least 2 values.")
    if not np.all(np.isfinite(c)) or np.any(np.diff(c) <= 0):
        raise ValueError(
            f"Graded centres along {coord} must be finite and strictly increasing, got {c.tolist()} "
            "(a sequence of subdomains along an axis gives its centres; a count is one int)."
        )
    tol = 1e-12 * max(1.0, b - a)
    if abs(c[0] - a) > tol or abs(c[-1] - b) > tol:
        raise ValueError(
            f"Graded centres along {coord} must run from the lower bound {a:g} to the upper "
            f"bound {b:g} (got {c[0]:g} ... {c[-1]:g})."
        )
    gaps = np.diff(c)
    hw = 0.5 * overlap * np.maximum(np.concatenate([gaps[:1], gaps]), np.concatenate([gaps, gaps[-1:]]))
    n = c.size
    lo, hi = np.empty(n - 1, int), np.empty(n - 1, int)
    for i in range(n - 1):  # subdomains that meet the cell [c_i, c_{i+1}]
        hit = np.nonzero((c - hw < c[i + 1]) & (c + hw > c[i]))[0]
        lo[i], hi[i] = hit.min(), hit.max()
    per = int(np.max(hi - lo + 1))
    lo = np.minimum(lo, n - per)  # candidates lo .. lo + per - 1 stay distinct and in range
    return c, hw, lo, per


class Multilevel(AbstractDecomposition):
    """Several grid levels over the same box, summed (multilevel FBPINNs).

    Each level's windows form a partition of unity, scaled by 1 / (number of levels)
    so that all windows together sum to one. By default level l has 2^l subdomains
    per axis (1, 2^d, 4^d, ... subdomains); pass `subdomains=[...]` for other counts
    (each entry an int or a per-axis tuple).

    With `bspline=p` the levels are built for `pd.BSpline(p)` windows so that they
    are exactly nested: level l has 2^l cells per axis (or `subdomains[l]`), and its
    windows are the uniform B-splines of degree p on those cells whose support meets
    the box, `2^l + p` per axis, centred from `(p - 1) / 2` spacings before the box
    to as far past it (overlap `p + 1`). They sum to one on the box, and each
    coarse B-spline is a combination of finer ones, so a coarse window x polynomial
    lies in the next level's span. The least-squares problem then has an exact null
    space instead of nearly dependent levels, and CG reaches the accuracy of the
    exact solution in few iterations (docs/solving.md, `laplace-multilevel`):

        pd.FBPINN(pd.Multilevel(domain, levels=7, bspline=3), pd.Polynomial(2), pd.BSpline(3))

    `periodic=[x]` makes every level periodic along `x` (see `pd.Grid`); each level
    then needs more subdomains along `x` than the overlap (with `bspline=p`, more
    than `p + 1` cells), so give `subdomains=[...]` instead of the default 1, 2, 4, ...
    """

    grids: tuple[Grid, ...]
    centres: Float[Array, "J dim"]
    half_widths: Float[Array, "J dim"]
    bspline: int | None = eqx.field(static=True)

    def __init__(
        self,
        domain: Box,
        levels: int | None = None,
        subdomains=None,
        overlap: float | None = None,
        bspline: int | None = None,
        periodic=(),
    ):
        if subdomains is None:
            if levels is None or int(levels) != levels or levels < 1:
                raise ValueError(
                    f"Multilevel needs levels >= 1 (an int) or subdomains=[...], got {levels!r}."
                )
            subdomains = [2**level for level in range(int(levels))]
            if periodic:
                # the default 1, 2, 4, ... cannot be periodic: a window would reach around to
                # itself; say what to pass instead of the first level's Grid error
                width = bspline + 1 if bspline is not None else 2.0 if overlap is None else overlap
                start = 2 ** math.floor(math.log2(width) + 1)
                example = [start * 2**level for level in range(int(levels))]
                raise ValueError(
                    f"A periodic Multilevel needs more subdomains per level along its periodic axes "
                    f"than the overlap ({width:g}), which the default 1, 2, 4, ... per axis does not "
                    f"give; pass the counts, e.g. subdomains={example}."
                )
        elif levels is not None and len(subdomains) != levels:
            raise ValueError(f"levels={levels} but {len(subdomains)} subdomain counts were given.")
        if len(subdomains) < 1:
            raise ValueError("Multilevel needs at least one level.")
        self.bspline = bspline
        if bspline is None:
            self.grids = tuple(
                Grid(domain, n, 2.0 if overlap is None else overlap, periodic) for n in subdomains
            )
        else:
            if not (isinstance(bspline, int) and 1 <= bspline <= 9):
                raise ValueError(f"bspline must be a B-spline degree from 1 to 9, got {bspline!r}.")
            if overlap is not None and overlap != bspline + 1:
                raise ValueError(
                    f"With bspline={bspline} the overlap is {bspline + 1} (the B-spline's support in "
                    f"cells); got overlap={overlap}. Leave overlap out."
                )
            if not isinstance(domain, Box):
                raise TypeError(
                    f"Multilevel(bspline=...) needs a pd.Box domain, got {type(domain).__name__}."
                )
            axes = _periodic_axes(domain, periodic)
            self.grids = tuple(_bspline_grid(domain, n, bspline, axes) for n in subdomains)
        self.centres = jnp.concatenate([g.centres for g in self.grids])
        self.half_widths = jnp.concatenate([g.half_widths for g in self.grids])

    @property
    def domain(self) -> Box:
        """The box of the first level's grid (with `bspline`, extended past the problem's box)."""
        return self.grids[0].domain

    @property
    def num_levels(self) -> int:
        return len(self.grids)

    @property
    def periods(self) -> tuple[float, ...]:
        return self.grids[0].periods

    @property
    def levels(self):
        return jnp.concatenate(
            [jnp.full((g.num_subdomains,), i, dtype=jnp.int32) for i, g in enumerate(self.grids)]
        )

    @property
    def max_cover(self) -> int:
        return sum(g.max_cover for g in self.grids)

    @property
    def level_slices(self):
        out, start = [], 0
        for g in self.grids:
            out.append((start, start + g.max_cover))
            start += g.max_cover
        return tuple(out)

    def normalise(self, raw):
        parts = [g.normalise(raw[a:b]) for g, (a, b) in zip(self.grids, self.level_slices)]
        return jnp.concatenate(parts) / self.num_levels

    def cover(self, x):
        idx, mask, offset = [], [], 0
        for g in self.grids:
            i, m = g.cover(x)
            idx.append(i + offset)
            mask.append(m)
            offset += g.num_subdomains
        return jnp.concatenate(idx), jnp.concatenate(mask)


def _bspline_grid(domain: Box, cells, degree: int, periodic: tuple[int, ...] = ()) -> Grid:
    """The grid of the degree-`degree` B-splines on `cells` equal cells per axis of
    `domain` whose supports meet it: `cells + degree` centres per axis with the
    cells' spacing, from `(degree - 1) / 2` spacings before the box to as far past it.
    Along a periodic axis: `cells` B-splines wrapping around, centred on the knots
    (odd degree) or between them (even degree)."""
    per_axis = [cells] * domain.dim if np.isscalar(cells) else list(cells)
    if len(per_axis) != domain.dim or any(int(n) != n or n < 1 for n in per_axis):
        raise ValueError(f"Multilevel(bspline=...) needs positive cell counts per level, got {cells!r}.")
    ext = [
        0.0 if i in periodic else (degree - 1) / 2 * (b - a) / int(n)
        for i, (n, a, b) in enumerate(zip(per_axis, domain.lower, domain.upper))
    ]
    box = Box(
        domain.coords, [a - e for a, e in zip(domain.lower, ext)], [b + e for b, e in zip(domain.upper, ext)]
    )
    counts = [int(n) if i in periodic else int(n) + degree for i, n in enumerate(per_axis)]
    shift = [(degree + 1) / 2 % 1.0] * len(periodic)
    return Grid(box, counts, overlap=float(degree + 1), periodic=periodic, shift=shift)


class Cut(AbstractDecomposition):
    """A decomposition cut along planes `x = c`, so that the ansatz can jump there.

    Every subdomain whose support crosses a cut is replaced by one copy per side
    (per piece it meets), and each copy is active only on its own side: on each
    piece the windows of the copies that meet it form a partition of unity, so the
    ansatz is smooth on each closed piece (and extends smoothly a little past it)
    but its value and derivatives may jump across the cut. Interface conditions
    then say how they jump:

        cut = pd.Cut(pd.Grid(domain, 20, overlap=2.9), x=0.5)
        conditions = [..., u.jump(x=0.5) == 0, (k*D(u, x)).jump(x=0.5) == 0]

    A point exactly on a cut belongs to the upper side; an interface condition's
    rows evaluate the ansatz on both sides. Several cuts per axis
    (`x=[0.3, 0.7]`) and cuts along several axes are allowed (not along periodic
    axes). The base decomposition may be a `pd.Grid` or a `pd.Multilevel`.

    Attributes:
        base: the decomposition that was cut.
        cuts: per cut axis `(axis, (c1, c2, ...))`, sorted.
        source: (J,) the base subdomain each copy comes from.
    """

    base: AbstractDecomposition
    cuts: tuple[tuple[int, tuple[float, ...]], ...] = eqx.field(static=True)
    centres: Float[Array, "J dim"]
    half_widths: Float[Array, "J dim"]
    source: Int[Array, " J"]
    # (J_base, pieces) -> copy index, -1 where the base subdomain does not meet the piece
    copies: Int[Array, "Jb S"]

    def __init__(self, decomposition: AbstractDecomposition, cuts=None, **by_name):
        if not isinstance(decomposition, AbstractDecomposition):
            raise TypeError(
                f"Cut takes a decomposition such as pd.Grid(...) first, got {type(decomposition).__name__}."
            )
        if isinstance(decomposition, Cut):
            raise ValueError("This decomposition is already cut; give all the cuts to one pd.Cut.")
        domain = getattr(decomposition, "domain", None)
        if domain is None:
            raise TypeError("Cut needs a decomposition with a domain (pd.Grid, pd.Multilevel).")
        spec = dict(cuts or {})
        spec.update(by_name)
        if not spec:
            raise ValueError("Cut needs at least one cut, e.g. pd.Cut(grid, x=0.5).")
        parsed: dict[int, tuple[float, ...]] = {}
        box = domain.bounding_box
        for c, values in spec.items():
            axis = box.axis(c) if isinstance(c, (str, sp.Symbol)) else None
            if axis is None:
                raise TypeError(f"Cut: cuts are given per coordinate (x=0.5 or {{x: [...]}}), got {c!r}.")
            if axis in parsed:
                raise ValueError(f"Cut: the coordinate {box.coords[axis]} is given twice.")
            if axis in decomposition.periodic_axes:
                raise NotImplementedError(
                    f"Cut: cuts along the periodic axis {box.coords[axis]} are not supported."
                )
            vals = np.atleast_1d(np.asarray(values, dtype=float))
            if vals.ndim != 1 or vals.size == 0 or not np.all(np.isfinite(vals)):
                raise ValueError(f"Cut: {box.coords[axis]}={values!r} must be a number or a list of numbers.")
            vals = np.sort(vals)
            lo, hi = float(box.lower[axis]), float(box.upper[axis])
            if np.any(vals <= lo) or np.any(vals >= hi) or np.any(np.diff(vals) <= 0):
                raise ValueError(
                    f"Cut: the cuts {box.coords[axis]} = {vals.tolist()} must be distinct and strictly "
                    f"inside the domain ({lo:g} < {box.coords[axis]} < {hi:g})."
                )
            parsed[axis] = tuple(map(float, vals))
        self.base = decomposition
        self.cuts = tuple(sorted(parsed.items()))
        c = np.asarray(decomposition.centres)
        hw = np.asarray(decomposition.half_widths)
        levels = np.asarray(decomposition.levels)
        # per cut axis, (J_base, pieces along it): does the copy exist?
        keep_axes, counts = [], []
        for axis, vals in self.cuts:
            keep_axes.append(
                _copies_along(c[:, axis], hw[:, axis], levels, vals, box.lower[axis], box.upper[axis])
            )
            counts.append(len(vals) + 1)
        num_pieces = int(np.prod(counts))
        table = -np.ones((c.shape[0], num_pieces), dtype=np.int64)
        source = []
        for j in range(c.shape[0]):
            for flat in range(num_pieces):
                piece = np.unravel_index(flat, counts)
                if all(k[j, p] for k, p in zip(keep_axes, piece)):
                    table[j, flat] = len(source)
                    source.append(j)
        source = np.asarray(source, dtype=np.int64)
        self.source = jnp.asarray(source)
        self.copies = jnp.asarray(table)
        self.centres = jnp.asarray(c[source])
        self.half_widths = jnp.asarray(hw[source])

    @property
    def domain(self):
        return self.base.domain

    @property
    def bspline(self):
        return getattr(self.base, "bspline", None)

    @property
    def levels(self):
        return self.base.levels[self.source]

    @property
    def level_slices(self):
        return self.base.level_slices

    @property
    def periods(self) -> tuple[float, ...]:
        return self.base.periods

    @property
    def max_cover(self) -> int:
        return self.base.max_cover

    def normalise(self, raw):
        return self.base.normalise(raw)

    def has_cut(self, axis: int, value: float) -> bool:
        """Is there a cut at `coordinate[axis] == value` (to 1e-12 of the axis length)?"""
        box = self.domain.bounding_box
        tol = 1e-12 * max(1.0, float(box.upper[axis] - box.lower[axis]))
        return any(a == axis and any(abs(v - value) <= tol for v in vals) for a, vals in self.cuts)

    def piece(self, x, side=None):
        """Flat piece index of the point `x`; `side=(axis, value, +1 or -1)` puts a
        point on the cut `coordinate[axis] == value` on its upper (+1) or lower side."""
        flat = 0
        for axis, vals in self.cuts:
            edges = jnp.asarray(vals)
            p = jnp.searchsorted(edges, x[axis], side="right")
            if side is not None and side[0] == axis:
                m = int(np.argmin(np.abs(np.asarray(vals) - side[1])))  # the cut's own index
                p = m + 1 if side[2] > 0 else m
            flat = flat * (len(vals) + 1) + p
        return flat

    def cover(self, x, side=None):
        idx, mask = self.base.cover(x)
        copy = self.copies[idx, self.piece(x, side)]
        ok = copy >= 0
        return jnp.where(ok, copy, 0), mask * ok


def _copies_along(c, hw, levels, cuts, lower, upper) -> np.ndarray:
    """(J, pieces) along one cut axis: which subdomains get a copy on which piece.

    A subdomain gets a copy on the pieces that contain its centre (both, for a
    centre on the cut). Copies that would only reach past the cut from the other
    side are left out: such a copy has few collocation points next to the cut but a
    full set of features, and the least-squares fit leans on it between the points
    (a 2D layered medium with 30 random features per subdomain: rel_l2 0.11 and a
    PDE residual of 2e2 next to the cut with every copy kept, against 1.7e-5 and
    1e-3; 12 x 12 subdomains of degree 6: 1.6e-5 with the copies reaching at least
    half a half-width past the cut, 1.0e-5 without). Where the copies centred in a
    piece do not cover it on some level (overlap below 2), that level adds the
    copies reaching farthest into the piece until they do."""
    edges = np.concatenate([[lower], np.asarray(cuts, dtype=float), [upper]])
    lo, hi = c - hw, c + hw
    keep = np.zeros((c.size, edges.size - 1), bool)
    for p in range(edges.size - 1):
        a, b = edges[p], edges[p + 1]
        meets = (lo < b) & (hi > a)
        inside = np.minimum(hi, b) - np.maximum(lo, a)
        good = meets & (a <= c) & (c <= b)
        for level in np.unique(levels):
            on = levels == level
            extra = [int(j) for j in np.argsort(-inside) if on[j] and meets[j] and not good[j]]
            while extra and not _covers(lo[on & good], hi[on & good], a, b):
                good[extra.pop(0)] = True
        keep[:, p] = good
    return keep


def _covers(lo, hi, a, b) -> bool:
    """Do the open intervals (lo, hi) cover [a, b] (up to a relative 1e-12)?"""
    tol = 1e-12 * max(1.0, b - a)
    reach = a
    for s, e in sorted(zip(lo, hi)):
        if s > reach + tol:
            return False  # a gap in [a, b]
        reach = max(reach, e)
        if reach >= b - tol:
            return True
    return reach >= b - tol
