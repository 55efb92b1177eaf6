"""Corner singularities: the partition-of-unity enrichment of a 2D ansatz at re-entrant corners.

At a re-entrant corner (interior angle 3 pi / 2, where a box-minus-boxes domain has
three of the four quadrants around a point) the solution of a second-order elliptic
problem is, near the corner, `c r^lambda g(lambda theta) + (smoother terms)` with
lambda = 2/3 (Dirichlet or Neumann on both edges) or 1/3 (one of each): it is not
in H^2. A least-squares collocation fit minimises the strong residual over smooth
functions, whose Laplacians do not fill L^2 on such a domain (the range misses one
direction per corner), so it converges to a different function: -Laplacian(u) = 1,
u = 0 on the unit square minus a centred square was off by 13% (8^2 subdomains) and
18% (16^2), getting worse with refinement.

The fix is the classical singular-function enrichment, written in the window x basis
form: every subdomain whose support contains the corner gets the extra features
`r^lambda g(lambda theta)` (one per term), multiplied by its window like its other
features. The windows of those subdomains sum to one near the corner, so the ansatz
contains the singular function times a smooth cut-off; far from corners nothing
changes (the extra features are zero columns there).

In more dimensions the same happens along a re-entrant edge that runs through the
whole domain (a prism: an L-shaped cross-section extruded along z, or along time in a
space-time domain): near the edge the solution is `c(s) r^lambda g(lambda theta)`
with `s` the coordinates along the edge. There the extra features are the singular
functions times Legendre polynomials of the subdomain's local coordinates along the
edge (`edge_degree`), so the windows x features carry a smooth c(s). Edges that end
inside the domain (Fichera's corner) are not handled.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import sympy as sp
from jaxtyping import Array, Float, Int


@dataclass(frozen=True)
class Corner:
    """A re-entrant corner of a 2D domain, or a re-entrant edge through a prism.

    Attributes:
        point: (x, y) of the corner, in the plane of the coordinates `axes`.
        missing: (sx, sy), each +1 or -1: the quadrant around `point` outside the domain.
        edges: the two boundary edges leaving the corner, as unit vectors along the
            axes: `edges[0]` is at angle theta = 0, `edges[1]` at theta = 3 pi / 2
            (theta measured through the domain).
        axes: the two coordinates (axis indices) of the corner's plane; in more than
            two dimensions the corner is an edge along the other axes, through the
            whole domain.
    """

    point: tuple[float, float]
    missing: tuple[int, int]
    axes: tuple[int, int] = (0, 1)

    @property
    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        e1, e2 = _frame(self.missing)
        a = 3 * math.pi / 4
        first = math.cos(-a) * e1 + math.sin(-a) * e2
        second = math.cos(a) * e1 + math.sin(a) * e2
        return np.round(first), np.round(second)


def _frame(missing) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal (e1, e2) with the missing quadrant's middle at angle pi (the branch
    cut of atan2), so that the domain is the sector -3 pi/4 <= psi <= 3 pi/4."""
    m = np.asarray(missing, dtype=float) / math.sqrt(2.0)
    e1 = -m
    e2 = np.array([-e1[1], e1[0]])
    return e1, e2


def _scan(domain):
    """(corners, partial): the re-entrant corners (2D) or edges through the whole domain
    (more dimensions) of a box-minus-boxes domain, and `(axes, point)` of the re-entrant
    edges that do not run through it (they end at a vertex inside, as in Fichera's
    corner)."""
    cells = getattr(domain, "cells", None)
    d = getattr(domain, "dim", 0)
    if cells is None or d < 2:
        return (), ()
    lo, hi = cells
    bounds = [np.unique(np.concatenate([lo[:, k], hi[:, k]])) for k in range(d)]
    eps = 1e-7 * float(np.max(domain.lengths))
    signs = np.array([(1, 1), (1, -1), (-1, 1), (-1, -1)], dtype=float)
    full, partial = [], []
    for i, j in itertools.combinations(range(d), 2):
        others = [k for k in range(d) if k not in (i, j)]
        mids = [0.5 * (bounds[k][1:] + bounds[k][:-1]) for k in others]
        combos = list(itertools.product(*mids))
        combos = np.array(combos, dtype=float).reshape(len(combos), len(others))
        xs, ys = bounds[i], bounds[j]
        # probes (x, y, combo, quadrant, coordinate)
        probes = np.zeros((len(xs), len(ys), len(combos), 4, d))
        probes[..., i] = xs[:, None, None, None] + eps * signs[:, 0]
        probes[..., j] = ys[None, :, None, None] + eps * signs[:, 1]
        for n, k in enumerate(others):
            probes[..., k] = combos[None, None, :, None, n]
        inside = domain.contains(probes.reshape(-1, d), tol=0.0).reshape(probes.shape[:4])
        three = inside.sum(axis=3) == 3
        which = np.argmin(inside, axis=3)
        for a, x in enumerate(xs):
            for b, y in enumerate(ys):
                if not three[a, b].any():
                    continue
                point = (float(x), float(y))
                quadrants = set(which[a, b][three[a, b]].tolist())
                if three[a, b].all() and len(quadrants) == 1:
                    q = signs[quadrants.pop()]
                    full.append(Corner(point, (int(q[0]), int(q[1])), (i, j)))
                else:
                    partial.append(((i, j), point))
    return tuple(full), tuple(partial)


def reentrant_corners(domain) -> tuple[Corner, ...]:
    """The re-entrant corners of a box-minus-boxes domain: in 2D the points with three
    of their four quadrants inside the domain; in more dimensions the edges with that
    cross-section that run through the whole domain (a prism). A box has none."""
    return _scan(domain)[0]


def singular_terms(kinds: tuple[str, str], terms: int = 2) -> list[tuple[float, str]]:
    """(lambda, "sin" or "cos") of the first `terms` non-integer singular exponents at a
    3 pi / 2 corner whose edges (theta = 0, theta = 3 pi / 2) carry conditions of the
    given kinds ("dirichlet" or "neumann"; Robin conditions count as "neumann")."""
    omega = 1.5 * math.pi
    if kinds[0] == kinds[1]:
        step, first = math.pi / omega, 1  # k pi / omega, k = 1, 2, ...
        lams = [step * k for k in range(first, 4 * terms + 1)]
    else:
        lams = [math.pi / (2 * omega) * (2 * k + 1) for k in range(0, 4 * terms)]
    lams = [v for v in lams if abs(v - round(v)) > 1e-9][:terms]  # integer exponents are polynomials
    # sin(lambda theta) vanishes at theta = 0 (Dirichlet there), cos has zero slope (Neumann)
    g = "sin" if kinds[0] == "dirichlet" else "cos"
    return [(lam, g) for lam in lams]


def _legendre(s: Float[Array, "P d"], degree: int) -> Float[Array, "P d n"]:
    """Legendre polynomials P_0 .. P_degree of every coordinate of `s`."""
    table = [jnp.ones_like(s), s]
    for n in range(1, degree):
        table.append(((2 * n + 1) * s * table[n] - n * table[n - 1]) / (n + 1))
    return jnp.stack(table[: degree + 1], axis=-1)


class CornerFeatures(eqx.Module):
    """The extra features of each subdomain: singular functions of the corners its
    support contains (`pd.FBPINN(..., corners=...)`; built by `corner_features`).

    Attributes:
        points: (C, 2) corner positions in their planes.
        axes: (C, 2) the coordinates of each corner's plane.
        e1, e2: (C, 2) the corner's frame (see `_frame`).
        stretch: (C, 2) coordinates are divided by these before the angle is taken
            (sqrt of the diagonal principal coefficients a_xx, a_yy at the corner).
        lam, sine: (T,) exponent and sin (1.0) / cos (0.0) of each term, `corner` (T,)
            the corner it belongs to.
        column_term, column_power: (N,) and (N, dim): column n is term `column_term[n]`
            times the product of the Legendre polynomials P_{column_power[n, k]} of the
            subdomain's local coordinate k (all zero in 2D: along an edge, a polynomial
            in the coordinates along it).
        table: (J, E) column index of each subdomain's extra feature, -1 for none.
        degree: the largest Legendre degree along an edge (0 in 2D).
        description: per term, (corner point, lambda, "sin"/"cos", the edges' condition
            kinds, the plane's axes).
    """

    points: Float[Array, "C 2"]
    axes: Int[Array, "C 2"]
    e1: Float[Array, "C 2"]
    e2: Float[Array, "C 2"]
    stretch: Float[Array, "C 2"]
    lam: Float[Array, " T"]
    sine: Float[Array, " T"]
    corner: Int[Array, " T"]
    column_term: Int[Array, " N"]
    column_power: Int[Array, "N dim"]
    table: Int[Array, "J E"]
    degree: int = eqx.field(static=True)
    description: tuple = eqx.field(static=True)

    def summary(self) -> list[dict]:
        """One dict per term: the corner `point` (in the plane of the coordinates
        `axes`), the `exponent` lambda, the angular `function` ("sin" or "cos" of lambda
        theta), the edges' `conditions` and, for an edge in more than two dimensions,
        the Legendre `edge_degree` along it (None in 2D)."""
        return [
            {
                "point": p,
                "axes": ax,
                "exponent": lam,
                "function": g,
                "conditions": "/".join(kinds),
                "edge_degree": self.degree if self.column_power.shape[1] > 2 else None,
            }
            for p, lam, g, kinds, ax in self.description
        ]

    @property
    def num_features(self) -> int:
        return self.table.shape[1]

    def terms(self, x: Float[Array, " dim"]) -> Float[Array, " T"]:
        """Every term's singular function at `x` (zero at the corner itself, where the
        derivatives are taken as zero)."""
        c = self.corner
        d = (x[self.axes[c]] - self.points[c]) / self.stretch[c]
        a = jnp.sum(d * self.e1[c], axis=1)
        b = jnp.sum(d * self.e2[c], axis=1)
        r2 = a**2 + b**2
        at_corner = r2 == 0
        safe_a = jnp.where(at_corner, 1.0, a)
        safe_b = jnp.where(at_corner, 0.0, b)
        theta = jnp.arctan2(safe_b, safe_a) + 0.75 * jnp.pi
        r = jnp.sqrt(jnp.where(at_corner, 1.0, r2))
        angle = self.lam * theta
        g = self.sine * jnp.sin(angle) + (1.0 - self.sine) * jnp.cos(angle)
        return jnp.where(at_corner, 0.0, r**self.lam * g)

    def __call__(
        self, x: Float[Array, " dim"], idx: Int[Array, " P"], s: Float[Array, "P dim"] | None = None
    ) -> Float[Array, "P E"]:
        """The extra features of the subdomains `idx` at `x` (`s`: `x` in their local
        coordinates, needed along edges): shape (P, E)."""
        if self.table.shape[1] == 0:
            return jnp.zeros((idx.shape[0], 0), x.dtype)
        col = self.table[idx]
        safe = jnp.maximum(col, 0)
        values = self.terms(x)[self.column_term[safe]]
        if self.degree > 0:
            if s is None:
                raise ValueError("corner functions along an edge need the local coordinates s.")
            legendre = _legendre(s, self.degree)  # (P, dim, degree + 1)
            power = self.column_power[safe]  # (P, E, dim)
            factor = jnp.take_along_axis(legendre[:, None], power[..., None], axis=-1)[..., 0]
            values = values * jnp.prod(factor, axis=-1)
        return jnp.where(col >= 0, values, 0.0)


def _condition_kind(problem, point: np.ndarray) -> str | None:
    """ "dirichlet" / "neumann" for the boundary conditions holding at `point` (a point
    of a boundary edge), None if none holds there or they are of mixed kinds."""
    kinds = set()
    for cond in problem.lowered_conditions:
        region = cond.region
        if getattr(region, "normal", None) is None or not hasattr(region, "axis"):
            continue
        box = region.box
        scale = 1e-9 * max(1.0, float(np.max(box.lengths)))
        if abs(point[region.axis] - region.value) > scale:
            continue
        others = [i for i in range(len(point)) if i != region.axis]
        if not all(box.lower[i] - scale <= point[i] <= box.upper[i] + scale for i in others):
            continue
        form = cond.form
        orders = [sum(m) for m in getattr(form, "multi_indices", ())]
        if not orders:
            return None
        kinds.add("dirichlet" if max(orders) == 0 else "neumann")
    return kinds.pop() if len(kinds) == 1 else None


def _principal(problem, point: np.ndarray):
    """The (dim, dim) symmetric matrix A of the equation's second-order part
    sum_{k <= l} a_kl D_k D_l u at `point` (A[k, l] = A[l, k] = a_kl / 2 off the
    diagonal), up to a common factor: for a nonlinear equation the a_kl are the
    derivatives of the residual by the second derivatives of u, which may share a
    factor depending on u (k(u) Laplacian(u)). None if the equation is not second
    order; "varies" if the ratios of the a_kl depend on u or on unknown parameters."""
    form = problem.equation_form
    mis = tuple(tuple(int(i) for i in m) for m in getattr(form, "multi_indices", ()))
    if not mis or max(sum(m) for m in mis) != 2:
        return None
    d = len(point)
    at = dict(zip(problem.coords, (float(v) for v in point)))
    if hasattr(form, "placeholders"):  # NonlinearForm: d residual / d (D^a u)
        raw = {m: sp.diff(form.residual, ph) for m, ph in zip(mis, form.placeholders) if sum(m) == 2}
    else:
        raw = {m: sp.sympify(c) for m, c in zip(mis, form.coefficients) if sum(m) == 2}
    coefficients = {m: c.subs(at) for m, c in raw.items()}
    diagonal = [c for m, c in coefficients.items() if max(m) == 2 and c != 0]
    nonzero = [c for c in coefficients.values() if c != 0]
    if not nonzero:
        return None
    ref = (diagonal or nonzero)[0]
    A = np.zeros((d, d))
    for m, c in coefficients.items():
        ratio = sp.simplify(c / ref)
        if ratio.free_symbols:
            return "varies"
        value = float(sp.N(ratio))
        k = [i for i in range(d) for _ in range(m[i])]
        if k[0] == k[1]:
            A[k[0], k[0]] += value
        else:
            A[k[0], k[1]] += value / 2
            A[k[1], k[0]] += value / 2
    return A


def corner_features(problem, decomposition, terms: int = 2, edge_degree: int = 3):
    """The `CornerFeatures` of `problem`'s re-entrant corners (edges, in more than two
    dimensions) for a model on `decomposition`, and a list of the corners skipped with
    the reason.

    A corner is enriched when the equation is second order with a principal part
    a_xx u_xx + a_yy u_yy in the corner's plane (no mixed derivative,
    a_xx and a_yy of one sign at the corner: the Laplacian, possibly scaled per axis;
    along an edge, no mixed derivative between the plane and the edge, and second
    derivatives along the edge either absent, as for time in u_t = Laplacian(u), or of
    the same sign, not hyperbolic; for a nonlinear equation the a_kl are the derivatives
    of the residual by the second derivatives of u, whose ratios must not depend on u,
    as in -div(k(u) grad u) + u^3), and one kind of condition (values: Dirichlet;
    derivatives: Neumann or Robin) holds on each of the two faces at the corner. Along
    an edge the singular functions are multiplied by the Legendre polynomials of total
    degree <= `edge_degree` in the local coordinates along it. Returns
    `(None, skipped)` when no corner qualifies.
    """
    if isinstance(edge_degree, bool) or not isinstance(edge_degree, int) or edge_degree < 0:
        raise ValueError(f"edge_degree must be a non-negative int, got {edge_degree!r}.")
    corners, partial = _scan(problem.domain)
    names = [str(c) for c in problem.coords]
    skipped = [
        f"the re-entrant edge at {names[i]} = {p[0]:g}, {names[j]} = {p[1]:g}: it ends inside the "
        "domain (a vertex, as in Fichera's corner), which is not handled"
        for (i, j), p in partial
    ]
    if not corners:
        return None, skipped
    if problem.interfaces:
        return None, skipped + [
            f"the re-entrant corner at {c.point}: a problem with interfaces is not enriched" for c in corners
        ]
    d = problem.domain.dim
    scale = float(np.max(problem.domain.lengths))
    middle = 0.5 * (np.asarray(problem.domain.lower, float) + np.asarray(problem.domain.upper, float))
    rows = []
    for c in corners:
        i, j = c.axes
        others = [k for k in range(d) if k not in c.axes]
        p = middle.copy()
        p[[i, j]] = c.point
        where = (
            f"the re-entrant corner at ({c.point[0]:g}, {c.point[1]:g})"
            if d == 2
            else f"the re-entrant edge at {names[i]} = {c.point[0]:g}, {names[j]} = {c.point[1]:g}"
        )

        def lift(v, i=i, j=j):
            out = np.zeros(d)
            out[[i, j]] = v
            return out

        kinds = tuple(_condition_kind(problem, p + 1e-6 * scale * lift(e)) for e in c.edges)
        if None in kinds:
            skipped.append(f"{where}: no single kind of boundary condition on both of its edges")
            continue
        A = _principal(problem, p - 1e-6 * scale * lift(np.asarray(c.missing, dtype=float)))
        if A is None:
            skipped.append(f"{where}: the equation is not second order")
            continue
        if isinstance(A, str):
            skipped.append(f"{where}: the ratios of the second-derivative coefficients depend on u")
            continue
        axx, axy, ayy = A[i, i], A[i, j], A[j, j]
        big = max(abs(axx), abs(ayy))
        if abs(axy) > 1e-12 * big or axx * ayy <= 0:
            skipped.append(f"{where}: the principal part is not a_xx u_xx + a_yy u_yy with one sign")
            continue
        if others and np.max(np.abs(A[np.ix_([i, j], others)])) > 1e-12 * big:
            skipped.append(f"{where}: the equation mixes derivatives across and along the edge")
            continue
        if others and np.min(np.diag(A)[others] * np.sign(axx)) < -1e-12 * big:
            skipped.append(f"{where}: the equation is hyperbolic along the edge")
            continue
        rows.append((c, kinds, (math.sqrt(abs(axx)), math.sqrt(abs(ayy))), others))
    if not rows:
        return None, skipped
    centres = np.asarray(decomposition.centres)
    half = np.asarray(decomposition.half_widths)
    lam, sine, owner, desc = [], [], [], []
    column_term, column_power = [], []
    per_subdomain = [[] for _ in range(centres.shape[0])]
    degree = 0
    for ci, (c, kinds, _, others) in enumerate(rows):
        p = np.asarray(c.point)
        axes = list(c.axes)
        tol = 1e-12 * scale
        holds = np.all(np.abs(centres[:, axes] - p) <= half[:, axes] + tol, axis=1)
        powers = [
            a for a in itertools.product(range(edge_degree + 1), repeat=len(others)) if sum(a) <= edge_degree
        ]
        if others:
            degree = max(degree, edge_degree)
        for lam_t, g in singular_terms(kinds, terms):
            t = len(lam)
            lam.append(lam_t)
            sine.append(1.0 if g == "sin" else 0.0)
            owner.append(ci)
            desc.append(((float(p[0]), float(p[1])), float(lam_t), g, kinds, tuple(c.axes)))
            for a in powers:
                n = len(column_term)
                column_term.append(t)
                full = np.zeros(d, dtype=np.int32)
                full[others] = a
                column_power.append(full)
                for jj in np.flatnonzero(holds):
                    per_subdomain[jj].append(n)
    width = max(len(v) for v in per_subdomain)
    table = np.full((centres.shape[0], width), -1, dtype=np.int32)
    for jj, v in enumerate(per_subdomain):
        table[jj, : len(v)] = v
    frames = [_frame(c.missing) for c, _, _, _ in rows]
    return (
        CornerFeatures(
            points=jnp.asarray([c.point for c, _, _, _ in rows], dtype=float),
            axes=jnp.asarray([c.axes for c, _, _, _ in rows], dtype=jnp.int32),
            e1=jnp.asarray(np.array([f[0] for f in frames])),
            e2=jnp.asarray(np.array([f[1] for f in frames])),
            stretch=jnp.asarray([s for _, _, s, _ in rows], dtype=float),
            lam=jnp.asarray(lam, dtype=float),
            sine=jnp.asarray(sine, dtype=float),
            corner=jnp.asarray(owner, dtype=jnp.int32),
            column_term=jnp.asarray(column_term, dtype=jnp.int32),
            column_power=jnp.asarray(np.array(column_power, dtype=np.int32).reshape(-1, d)),
            table=jnp.asarray(table),
            degree=degree,
            description=tuple(desc),
        ),
        skipped,
    )
