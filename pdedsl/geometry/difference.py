"""A box minus boxes (the L-shaped domain, a cube with a corner cut out, ...).

`pd.Box([x, y], [0, 0], [1, 1]) - pd.Box([x, y], [0.5, 0.5], [1, 1])` is the
L-shape. The domain is the closure of `base \\ holes`: the faces of a hole that
lie inside the base belong to the domain (and to its boundary).

Internally the base is cut, along every coordinate, at the holes' bounds into a
grid of cells; a cell belongs to the domain when it is not inside a hole. The
boundary is the set of cell faces with no domain cell on the other side, merged
into as few rectangles (`Facet`s) as possible, each with its outward normal.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np

from .box import Boundary, Box, Face
from .sampling import grid_shape


@dataclass(frozen=True)
class Facet(Face):
    """A rectangular piece of a plane `x_axis = value` inside a `Difference`.

    `box` is a thin box of the domain that has the piece as its face, so the
    inherited `normal` is the outward normal on the boundary (None for a piece of
    an interior plane) and `sample` covers exactly the piece. `domain` is the
    domain it belongs to.
    """

    domain: Difference | None = None

    def __str__(self):
        others = [i for i in range(self.box.dim) if i != self.axis]
        extent = ", ".join(
            f"{self.box.lower[i]:g} <= {self.box.coords[i]} <= {self.box.upper[i]:g}" for i in others
        )
        return f"{self.box.coords[self.axis]} = {self.value:g}" + (f" ({extent})" if extent else "")


@dataclass(frozen=True)
class Difference:
    """The domain `base` minus the boxes `holes` (write it `base - hole - hole2`)."""

    base: Box
    holes: tuple[Box, ...]

    def __post_init__(self):
        holes = tuple(self.holes)
        if not isinstance(self.base, Box):
            raise TypeError(f"Difference needs a pd.Box to cut from, got {type(self.base).__name__}.")
        if not holes:
            raise ValueError("Difference needs at least one box to remove.")
        for h in holes:
            if not isinstance(h, Box):
                raise TypeError(f"Only a pd.Box can be removed from a box, got {type(h).__name__}.")
            if h.coords != self.base.coords:
                raise ValueError(
                    f"The removed box has coordinates {tuple(map(str, h.coords))} but the domain has "
                    f"{tuple(map(str, self.base.coords))}: they must be the same, in the same order."
                )
            tol = 1e-12 * np.maximum(1.0, self.base.lengths)
            lo = np.maximum(h.lower, self.base.lower)
            hi = np.minimum(h.upper, self.base.upper)
            if np.any(hi - lo <= tol):
                raise ValueError(
                    f"{h} does not overlap the inside of {self.base}: removing it changes nothing."
                )
        object.__setattr__(self, "holes", holes)
        cuts, present = _cells(self.base, holes)
        if not present.any():
            raise ValueError(f"Removing {', '.join(map(str, holes))} from {self.base} leaves nothing.")

    # -- the shape of a Box: coordinates and bounding box -----------------------------
    @property
    def coords(self):
        return self.base.coords

    @property
    def dim(self) -> int:
        return self.base.dim

    @property
    def lower(self) -> tuple[float, ...]:
        """Lower corner of the bounding box."""
        return self.base.lower

    @property
    def upper(self) -> tuple[float, ...]:
        """Upper corner of the bounding box."""
        return self.base.upper

    @property
    def lengths(self) -> np.ndarray:
        """Side lengths of the bounding box."""
        return self.base.lengths

    @property
    def bounding_box(self) -> Box:
        return self.base

    def axis(self, coord) -> int:
        return self.base.axis(coord)

    def __sub__(self, other):
        if isinstance(other, Box):
            return Difference(self.base, self.holes + (other,))
        return NotImplemented

    def __or__(self, other):
        """`a | b`: the union, as its bounding box minus the boxes it does not cover."""
        return union(self, other)

    # -- the cells --------------------------------------------------------------------
    @property
    def cells(self) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) corners, each (C, d), of the boxes whose union is the domain."""
        cuts, present = _cells(self.base, self.holes)
        idx = np.argwhere(present)
        lo = np.stack([cuts[i][idx[:, i]] for i in range(self.dim)], axis=-1)
        hi = np.stack([cuts[i][idx[:, i] + 1] for i in range(self.dim)], axis=-1)
        return lo, hi

    @property
    def volume(self) -> float:
        lo, hi = self.cells
        return float(np.sum(np.prod(hi - lo, axis=1)))

    def meets(self, lower, upper) -> np.ndarray:
        """For open boxes `lower < x < upper` (arrays (J, d)): does each meet the domain's interior?"""
        lo, hi = self.cells
        lower = np.asarray(lower, dtype=float)[:, None, :]
        upper = np.asarray(upper, dtype=float)[:, None, :]
        tol = 1e-12 * np.maximum(1.0, self.lengths)
        overlap = np.minimum(upper, hi[None]) - np.maximum(lower, lo[None]) > tol
        return np.any(np.all(overlap, axis=-1), axis=-1)

    # -- membership and sampling ------------------------------------------------------
    def contains(self, points, tol: float = 1e-12) -> np.ndarray:
        p = np.asarray(points, dtype=float)
        if p.ndim == 1 and self.dim == 1 and p.shape[0] != 1:
            p = p[:, None]
        p = np.atleast_2d(p)
        inside = self.base.contains(p, tol)
        scale = tol * np.maximum(1.0, self.lengths)
        blo, bhi = np.asarray(self.base.lower), np.asarray(self.base.upper)
        for h in self.holes:
            hlo, hhi = np.asarray(h.lower), np.asarray(h.upper)
            # strictly inside the hole, except along sides where the hole reaches the
            # base's own boundary (there the base's face is cut away too)
            above = np.where(hlo <= blo + scale, True, p > hlo + scale)
            below = np.where(hhi >= bhi - scale, True, p < hhi - scale)
            inside &= ~np.all(above & below, axis=-1)
        return inside

    def grid_shape(self, n) -> tuple[int, ...]:
        """Per-axis counts of a grid over the bounding box with about `n` points in the domain
        (a given per-axis shape is used as it is)."""
        if isinstance(n, (tuple, list)):
            return grid_shape(n, self.lengths)
        if not n >= 1:
            raise ValueError(f"Need at least one point, got {n}.")
        fraction = self.volume / float(np.prod(self.lengths))
        return grid_shape(max(1, int(round(n / fraction))), self.lengths)

    def sample(self, n, method: str = "grid", seed: int = 0) -> np.ndarray:
        """Points in the domain: a grid over the bounding box restricted to the domain
        (`n` points, or about `n` for "grid"; a per-axis shape gives that grid)."""
        if method == "grid":
            pts = self.base.sample(self.grid_shape(n), "grid", seed)
            return pts[self.contains(pts)]
        n = int(np.prod(n)) if isinstance(n, (tuple, list)) else int(n)
        if n < 1:
            raise ValueError(f"Need at least one point, got {n}.")
        fraction = self.volume / float(np.prod(self.lengths))
        m = math.ceil(1.25 * n / fraction) + 16
        while True:  # rejection sampling from the bounding box
            pts = self.base.sample(m, method, seed)
            pts = pts[self.contains(pts)]
            if len(pts) >= n:
                return pts[:n]
            m *= 2

    # -- boundary ---------------------------------------------------------------------
    @property
    def faces(self) -> tuple[Facet, ...]:
        """The boundary as rectangles, each with its outward normal (six for the L-shape)."""
        cuts, present = _cells(self.base, self.holes)
        pieces = []
        for idx in zip(*np.nonzero(present)):
            for a in range(self.dim):
                for side in (-1, 1):
                    j = idx[a] + side
                    nb = idx[:a] + (j,) + idx[a + 1 :]
                    if 0 <= j < present.shape[a] and present[nb]:
                        continue
                    lo = [cuts[i][idx[i]] for i in range(self.dim)]
                    hi = [cuts[i][idx[i] + 1] for i in range(self.dim)]
                    value = hi[a] if side > 0 else lo[a]
                    depth = hi[a] - lo[a]
                    # the domain lies on the side opposite the outward normal
                    inside_minus = side > 0
                    pieces.append(
                        (a, value, inside_minus, not inside_minus, lo, hi)
                        + ((depth, 0.0) if inside_minus else (0.0, depth))
                    )
        return self._facets(pieces)

    @property
    def boundary(self) -> Boundary:
        return Boundary(self)

    def slice(self, axis: int, value: float) -> tuple[Facet, ...]:
        """The plane `x_axis = value` within the domain, as rectangles: boundary pieces
        carry their outward normal, interior pieces none."""
        a, v = int(axis), float(value)
        lo_a, hi_a = self.lower[a], self.upper[a]
        tol = 1e-12 * max(1.0, hi_a - lo_a)
        c = self.coords[a]
        if not lo_a - tol <= v <= hi_a + tol:
            raise ValueError(f"{c} = {v:g} lies outside the domain ({c} in [{lo_a:g}, {hi_a:g}]).")
        cuts, present = _cells(self.base, self.holes)
        ca = cuts[a]
        on_cut = np.flatnonzero(np.abs(ca - v) <= tol)
        pieces = []
        others = [range(present.shape[i]) for i in range(self.dim) if i != a]
        for rest in itertools.product(*others):
            cell = lambda k, rest=rest: tuple(rest[:a]) + (k,) + tuple(rest[a:])  # noqa: E731
            if on_cut.size:
                m = int(on_cut[0])
                v = float(ca[m])
                minus = m > 0 and bool(present[cell(m - 1)])
                plus = m < len(ca) - 1 and bool(present[cell(m)])
                d_minus = ca[m] - ca[m - 1] if minus else 0.0
                d_plus = ca[m + 1] - ca[m] if plus else 0.0
            else:
                k = int(np.searchsorted(ca, v) - 1)
                minus = plus = bool(present[cell(k)])
                d_minus, d_plus = v - ca[k], ca[k + 1] - v
            if not (minus or plus):
                continue
            full = cell(0)
            lo = [cuts[i][full[i]] for i in range(self.dim)]
            hi = [cuts[i][full[i] + 1] for i in range(self.dim)]
            pieces.append((a, v, minus, plus, lo, hi, d_minus, d_plus))
        if not pieces:
            raise ValueError(f"The plane {c} = {v:g} does not meet the domain {self} (it lies in a hole).")
        return self._facets(pieces)

    def face(self, **fixed) -> Facet:
        """The part of the plane `x = value` in the domain, if it is one rectangle."""
        if len(fixed) != 1:
            raise ValueError(f"face() fixes exactly one coordinate, got {tuple(fixed)}.")
        ((name, value),) = fixed.items()
        pieces = self.slice(self.axis(name), value)
        if len(pieces) > 1:
            raise ValueError(
                f"The plane {name} = {value:g} meets {self} in {len(pieces)} pieces "
                f"({'; '.join(map(str, pieces))}); write the condition as u.at({name}={value:g}) == ..., "
                "which holds on all of them."
            )
        return pieces[0]

    def normal_at(self, point) -> np.ndarray | None:
        """Outward unit normal at a boundary point that lies on faces of one direction only."""
        p = np.asarray(point, dtype=float)
        normals = set()
        for f in self.faces:
            tol = 1e-12 * np.maximum(1.0, self.lengths)
            if abs(p[f.axis] - f.value) > tol[f.axis]:
                continue
            if np.all(p >= np.asarray(f.box.lower) - tol) and np.all(p <= np.asarray(f.box.upper) + tol):
                normals.add(tuple(f.normal))
        return np.asarray(normals.pop()) if len(normals) == 1 else None

    def _facets(self, pieces) -> tuple[Facet, ...]:
        """Merge coplanar, adjacent pieces with the same sides into rectangles; make Facets.

        A piece is (axis, value, minus, plus, lo, hi, depth_minus, depth_plus): `minus`
        / `plus` say whether the domain lies on that side of the plane, `lo`/`hi` the
        rectangle (entries along `axis` ignored), `depth_*` how far it extends there.
        """
        groups: dict = {}
        for a, v, minus, plus, lo, hi, dm, dp in pieces:
            groups.setdefault((a, v, minus, plus), []).append([list(lo), list(hi), dm, dp])
        out = []
        for (a, v, _minus, _plus), rects in sorted(groups.items(), key=lambda kv: kv[0][:2] + (kv[0][3],)):
            merged = True
            while merged:
                merged = False
                for p, q in itertools.combinations(range(len(rects)), 2):
                    r = _merge(rects[p], rects[q], a)
                    if r is not None:
                        rects[p] = r
                        del rects[q]
                        merged = True
                        break
            for lo, hi, dm, dp in sorted(rects, key=lambda r: r[0]):
                lo, hi = list(lo), list(hi)
                lo[a], hi[a] = v - dm, v + dp
                box = Box(self.coords, lo, hi)
                out.append(Facet(box, a, v, self))
        return tuple(out)

    def __str__(self):
        return f"{self.base} minus " + " minus ".join(str(h) for h in self.holes)


def _merge(p, q, axis):
    """Union of two rectangles (ignoring `axis`) if it is a rectangle, else None."""
    (plo, phi, pdm, pdp), (qlo, qhi, qdm, qdp) = p, q
    differ = [i for i in range(len(plo)) if i != axis and (plo[i] != qlo[i] or phi[i] != qhi[i])]
    if len(differ) != 1:
        return None
    (i,) = differ
    if phi[i] != qlo[i] and qhi[i] != plo[i]:
        return None
    lo, hi = list(plo), list(phi)
    lo[i], hi[i] = min(plo[i], qlo[i]), max(phi[i], qhi[i])
    return [lo, hi, min(pdm, qdm), min(pdp, qdp)]


@functools.lru_cache(maxsize=64)
def _cells(base: Box, holes) -> tuple[list[np.ndarray], np.ndarray]:
    """Cut `base` at the holes' bounds: per-axis cut points and a boolean array saying
    which cells of the resulting grid lie in the domain."""
    cuts = []
    for i in range(base.dim):
        a, b = base.lower[i], base.upper[i]
        tol = 1e-12 * max(1.0, b - a)
        vals = [a, b] + [v for h in holes for v in (h.lower[i], h.upper[i]) if a + tol < v < b - tol]
        vals = np.unique(np.asarray(vals))
        keep = np.concatenate([[True], np.diff(vals) > tol])
        cuts.append(vals[keep])
    mids = [(c[:-1] + c[1:]) / 2 for c in cuts]
    mesh = np.meshgrid(*mids, indexing="ij")
    centres = np.stack([m.ravel() for m in mesh], axis=-1)
    present = np.ones(len(centres), bool)
    for h in holes:
        present &= ~np.all((centres > np.asarray(h.lower)) & (centres < np.asarray(h.upper)), axis=-1)
    return cuts, present.reshape(tuple(len(m) for m in mids))


def _pieces(domain) -> list[Box]:
    """Boxes whose union is `domain`."""
    if not isinstance(domain, Difference):
        return [domain]
    lo, hi = domain.cells
    return [Box(domain.coords, a, b) for a, b in zip(lo, hi)]


def _cover(free: np.ndarray) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Cover the True cells of a boolean d-array by disjoint boxes of cells, greedily:
    from the first free cell, grow along each axis in turn while the whole slab is free.
    Returns (first, past-the-end) index corners."""
    free = free.copy()
    boxes = []
    while free.any():
        start = tuple(int(i) for i in np.argwhere(free)[0])
        stop = [i + 1 for i in start]
        for axis in range(free.ndim):
            while stop[axis] < free.shape[axis]:
                grown = list(stop)
                grown[axis] += 1
                slab = tuple(
                    slice(a if k != axis else stop[axis], b) for k, (a, b) in enumerate(zip(start, grown))
                )
                if not free[slab].all():
                    break
                stop = grown
        free[tuple(slice(a, b) for a, b in zip(start, stop))] = False
        boxes.append((start, tuple(stop)))
    return boxes


def union(a, b):
    """The union of two domains (boxes or boxes minus boxes, in the same coordinates),
    written as its bounding box minus the boxes it leaves uncovered: a `Box` when it
    covers its bounding box, else a `Difference`. The pieces may overlap, touch or be
    apart (a domain in two pieces)."""
    for d in (a, b):
        if not isinstance(d, (Box, Difference)):
            return NotImplemented
    if a.coords != b.coords:
        raise ValueError(
            f"A union needs domains in the same coordinates, in the same order; got "
            f"{tuple(map(str, a.coords))} and {tuple(map(str, b.coords))}."
        )
    pieces = _pieces(a) + _pieces(b)
    lo = np.min([p.lower for p in pieces], axis=0)
    hi = np.max([p.upper for p in pieces], axis=0)
    base = Box(a.coords, lo, hi)
    # the cells of the bounding box cut at every piece's bounds that no piece covers
    cuts, free = _cells(base, tuple(pieces))
    holes = tuple(
        Box(a.coords, [cuts[i][s] for i, s in enumerate(start)], [cuts[i][e] for i, e in enumerate(stop)])
        for start, stop in _cover(free)
    )
    return Difference(base, holes) if holes else base


__all__ = ["Difference", "Facet", "union"]
