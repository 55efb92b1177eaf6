"""Axis-aligned boxes (any dimension), their faces, boundary and points."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from .sampling import grid_shape, unit_points


@dataclass(frozen=True)
class Box:
    """The box `lower <= x <= upper` in the coordinates `coords` (sympy Symbols)."""

    coords: tuple[sp.Symbol, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]

    def __post_init__(self):
        coords = tuple(self.coords)
        lower = tuple(float(v) for v in np.atleast_1d(self.lower))
        upper = tuple(float(v) for v in np.atleast_1d(self.upper))
        if not coords or not all(isinstance(c, sp.Symbol) for c in coords):
            raise TypeError(f"Box coordinates must be sympy Symbols, got {coords}.")
        if len(set(coords)) != len(coords):
            raise ValueError(f"Repeated coordinate in {coords}.")
        if not (len(coords) == len(lower) == len(upper)):
            raise ValueError(
                f"Box has {len(coords)} coordinates but bounds of length {len(lower)} and {len(upper)}."
            )
        for c, a, b in zip(coords, lower, upper):
            if not (np.isfinite(a) and np.isfinite(b) and a < b):
                raise ValueError(f"Box side for {c} must satisfy lower < upper, got [{a}, {b}].")
        object.__setattr__(self, "coords", coords)
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)

    @property
    def dim(self) -> int:
        return len(self.coords)

    @property
    def lengths(self) -> np.ndarray:
        return np.asarray(self.upper) - np.asarray(self.lower)

    def axis(self, coord) -> int:
        """Index of a coordinate, given as a Symbol or its name."""
        for i, c in enumerate(self.coords):
            if c == coord or str(c) == str(coord):
                return i
        raise ValueError(f"{coord} is not a coordinate of this domain {self.coords}.")

    def contains(self, points, tol: float = 1e-12) -> np.ndarray:
        p = np.asarray(points, dtype=float)
        if p.ndim == 1 and self.dim == 1 and p.shape[0] != 1:
            p = p[:, None]  # (N,) in 1D is N points
        p = np.atleast_2d(p)
        if p.shape[-1] != self.dim:
            raise ValueError(f"Points have {p.shape[-1]} coordinates but the domain is {self.dim}D.")
        scale = tol * np.maximum(1.0, np.abs(self.lengths))
        return np.all((p >= np.asarray(self.lower) - scale) & (p <= np.asarray(self.upper) + scale), axis=-1)

    def sample(self, n, method: str = "grid", seed: int = 0) -> np.ndarray:
        """`n` points in the closed box (`grid` includes the boundary)."""
        u = unit_points(n, self.dim, method, seed, lengths=self.lengths)
        return np.asarray(self.lower) + u * self.lengths

    def grid_shape(self, n) -> tuple[int, ...]:
        return grid_shape(n, self.lengths)

    def face(self, **fixed) -> Face:
        """The face (or an interior plane) where one coordinate is fixed: `box.face(x=0)`."""
        if len(fixed) != 1:
            raise ValueError(f"face() fixes exactly one coordinate, got {tuple(fixed)}.")
        ((name, value),) = fixed.items()
        return Face(self, self.axis(name), float(value))

    @property
    def faces(self) -> tuple[Face, ...]:
        return tuple(Face(self, i, v) for i in range(self.dim) for v in (self.lower[i], self.upper[i]))

    @property
    def boundary(self) -> Boundary:
        return Boundary(self)

    @property
    def bounding_box(self) -> Box:
        return self

    def __sub__(self, other):
        """`box - hole`: the box with another box cut out (e.g. the L-shaped domain)."""
        from .difference import Difference

        if isinstance(other, Box):
            return Difference(self, (other,))
        return NotImplemented

    def __or__(self, other):
        """`box | other`: the union (a T-, plus- or L-shape, or two boxes apart), written as
        its bounding box minus the boxes it leaves uncovered (a `Box` if there are none)."""
        from .difference import union

        return union(self, other)

    def __str__(self):
        sides = " x ".join(f"{c} in [{a:g}, {b:g}]" for c, a, b in zip(self.coords, self.lower, self.upper))
        return f"Box({sides})"


def Interval(coord, lower: float, upper: float) -> Box:
    """The interval `lower <= coord <= upper`."""
    return Box((coord,), (lower,), (upper,))


@dataclass(frozen=True)
class Face:
    """The set `x_axis = value` inside a box: a face if `value` is a bound, else a plane."""

    box: Box
    axis: int
    value: float

    def __post_init__(self):
        a, b = self.box.lower[self.axis], self.box.upper[self.axis]
        tol = 1e-12 * max(1.0, b - a)
        if not (a - tol <= self.value <= b + tol):
            c = self.box.coords[self.axis]
            raise ValueError(f"{c} = {self.value:g} lies outside the domain ({c} in [{a:g}, {b:g}]).")

    @property
    def side(self) -> int:
        """-1 on the lower face, +1 on the upper face, 0 for an interior plane."""
        a, b = self.box.lower[self.axis], self.box.upper[self.axis]
        tol = 1e-12 * max(1.0, b - a)
        return -1 if abs(self.value - a) <= tol else (1 if abs(self.value - b) <= tol else 0)

    @property
    def normal(self) -> np.ndarray | None:
        """Outward unit normal (None for an interior plane, which has no outward side)."""
        if self.side == 0:
            return None
        n = np.zeros(self.box.dim)
        n[self.axis] = self.side
        return n

    def grid_counts(self, shape, lengths) -> tuple[int, ...]:
        """Per-axis counts on this face for a domain grid `shape` over sides `lengths`:
        the same spacing as the domain grid along the face."""
        return tuple(
            max(min(int(s), 2), int(round(s * self.box.lengths[i] / lengths[i])))
            for i, s in enumerate(shape)
            if i != self.axis
        )

    def sample(self, n, method: str = "grid", seed: int = 0) -> np.ndarray:
        d = self.box.dim
        others = [i for i in range(d) if i != self.axis]
        lengths = self.box.lengths[others]
        u = unit_points(n, d - 1, method, seed, lengths=lengths)
        pts = np.empty((u.shape[0], d))
        pts[:, others] = np.asarray(self.box.lower)[others] + u * lengths
        pts[:, self.axis] = self.value
        return pts

    def __str__(self):
        return f"{self.box.coords[self.axis]} = {self.value:g}"


@dataclass(frozen=True)
class Boundary:
    """The whole boundary of a box: the union of its 2d faces."""

    box: Box

    @property
    def faces(self) -> tuple[Face, ...]:
        return self.box.faces

    def __str__(self):
        return "boundary"

    def latex(self):
        return r"\partial\Omega"


@dataclass(frozen=True)
class PointRegion:
    """A single point of a box."""

    box: Box
    point: tuple[float, ...]

    def __post_init__(self):
        if len(self.point) != self.box.dim:
            raise ValueError(
                f"A point of the {self.box.dim}D domain needs {self.box.dim} coordinates, got {self.point}."
            )
        if not self.box.contains(np.asarray(self.point)[None, :])[0]:
            desc = ", ".join(f"{c} = {v:g}" for c, v in zip(self.box.coords, self.point))
            raise ValueError(f"The point ({desc}) lies outside the domain {self.box}.")

    @property
    def normal(self) -> np.ndarray | None:
        """Outward normal where the point is on exactly one face (1D end points, face interiors)."""
        if hasattr(self.box, "normal_at"):  # a box with holes knows its own faces
            return self.box.normal_at(self.point)
        n = np.zeros(self.box.dim)
        hits = 0
        for i, v in enumerate(self.point):
            a, b = self.box.lower[i], self.box.upper[i]
            tol = 1e-12 * max(1.0, b - a)
            if abs(v - a) <= tol:
                n[i], hits = -1.0, hits + 1
            elif abs(v - b) <= tol:
                n[i], hits = 1.0, hits + 1
        return n if hits == 1 else None

    def sample(self, n=1, method: str = "grid", seed: int = 0) -> np.ndarray:
        return np.asarray(self.point, dtype=float)[None, :]

    def __str__(self):
        return ", ".join(f"{c} = {v:g}" for c, v in zip(self.box.coords, self.point))


@dataclass(frozen=True, eq=False)
class Observations:
    """A set of observation points of a box (where data are given)."""

    box: Box
    points: np.ndarray

    def __post_init__(self):
        pts = np.asarray(self.points, dtype=float)
        if pts.ndim != 2 or pts.shape[1] != self.box.dim or pts.shape[0] == 0:
            raise ValueError(f"Observation points must have shape (n, {self.box.dim}), got {pts.shape}.")
        inside = self.box.contains(pts)
        if not np.all(inside):
            bad = pts[~inside][0]
            desc = ", ".join(f"{c} = {v:g}" for c, v in zip(self.box.coords, bad))
            raise ValueError(
                f"{int(np.sum(~inside))} observation point(s) lie outside the domain {self.box}, "
                f"e.g. ({desc})."
            )

    @property
    def normal(self):
        return None

    def sample(self, n=None, method: str = "grid", seed: int = 0) -> np.ndarray:
        return np.asarray(self.points, dtype=float)

    def __str__(self):
        return f"{self.points.shape[0]} observation points"
