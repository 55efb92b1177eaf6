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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import sympy as sp
from jaxtyping import Array, Float, Int


@dataclass(frozen=True)
class Corner:
    """A re-entrant corner of a 2D domain.

    Attributes:
        point: (x, y) of the corner.
        missing: (sx, sy), each +1 or -1: the quadrant around `point` outside the domain.
        edges: the two boundary edges leaving the corner, as unit vectors along the
            axes: `edges[0]` is at angle theta = 0, `edges[1]` at theta = 3 pi / 2
            (theta measured through the domain).
    """

    point: tuple[float, float]
    missing: tuple[int, int]

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


def reentrant_corners(domain) -> tuple[Corner, ...]:
    """The re-entrant corners of a 2D domain (a box minus boxes): points with three of
    their four quadrants inside the domain. A box has none; so does any domain not in 2D."""
    cells = getattr(domain, "cells", None)
    if cells is None or domain.dim != 2:
        return ()
    lo, hi = cells
    xs = np.unique(np.concatenate([lo[:, 0], hi[:, 0]]))
    ys = np.unique(np.concatenate([lo[:, 1], hi[:, 1]]))
    eps = 1e-7 * float(np.max(domain.lengths))
    found = []
    for x in xs:
        for y in ys:
            signs = [(sx, sy) for sx in (1, -1) for sy in (1, -1)]
            probes = np.array([[x + sx * eps, y + sy * eps] for sx, sy in signs])
            inside = domain.contains(probes, tol=0.0)
            if int(np.sum(inside)) == 3:
                missing = signs[int(np.argmin(inside))]
                found.append(Corner((float(x), float(y)), missing))
    return tuple(found)


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


class CornerFeatures(eqx.Module):
    """The extra features of each subdomain: singular functions of the corners its
    support contains (`pd.FBPINN(..., corners=...)`; built by `corner_features`).

    Attributes:
        points: (C, 2) corner positions.
        e1, e2: (C, 2) the corner's frame (see `_frame`).
        stretch: (C, 2) coordinates are divided by these before the angle is taken
            (sqrt of the diagonal principal coefficients a_xx, a_yy at the corner).
        lam, sine: (T,) exponent and sin (1.0) / cos (0.0) of each term, `corner` (T,)
            the corner it belongs to.
        table: (J, E) term index of each subdomain's extra feature, -1 for none.
        description: per term, (corner point, lambda, "sin"/"cos", the edges' condition kinds).
    """

    points: Float[Array, "C 2"]
    e1: Float[Array, "C 2"]
    e2: Float[Array, "C 2"]
    stretch: Float[Array, "C 2"]
    lam: Float[Array, " T"]
    sine: Float[Array, " T"]
    corner: Int[Array, " T"]
    table: Int[Array, "J E"]
    description: tuple = eqx.field(static=True)

    def summary(self) -> list[dict]:
        """One dict per term: the corner `point`, the `exponent` lambda, the angular
        `function` ("sin" or "cos" of lambda theta) and the edges' `conditions`."""
        return [
            {"point": p, "exponent": lam, "function": g, "conditions": "/".join(kinds)}
            for p, lam, g, kinds in self.description
        ]

    @property
    def num_features(self) -> int:
        return self.table.shape[1]

    def terms(self, x: Float[Array, " 2"]) -> Float[Array, " T"]:
        """Every term's singular function at `x` (zero at the corner itself, where the
        derivatives are taken as zero)."""
        d = (x[None, :] - self.points[self.corner]) / self.stretch[self.corner]
        a = jnp.sum(d * self.e1[self.corner], axis=1)
        b = jnp.sum(d * self.e2[self.corner], axis=1)
        r2 = a**2 + b**2
        at_corner = r2 == 0
        safe_a = jnp.where(at_corner, 1.0, a)
        safe_b = jnp.where(at_corner, 0.0, b)
        theta = jnp.arctan2(safe_b, safe_a) + 0.75 * jnp.pi
        r = jnp.sqrt(jnp.where(at_corner, 1.0, r2))
        angle = self.lam * theta
        g = self.sine * jnp.sin(angle) + (1.0 - self.sine) * jnp.cos(angle)
        return jnp.where(at_corner, 0.0, r**self.lam * g)

    def __call__(self, x: Float[Array, " 2"], idx: Int[Array, " P"]) -> Float[Array, "P E"]:
        """The extra features of the subdomains `idx` at `x`: shape (P, E)."""
        if self.table.shape[1] == 0:
            return jnp.zeros((idx.shape[0], 0), x.dtype)
        values = self.terms(x)
        t = self.table[idx]
        return jnp.where(t >= 0, values[jnp.maximum(t, 0)], 0.0)


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
        others = [i for i in range(2) if i != region.axis]
        if not all(box.lower[i] - scale <= point[i] <= box.upper[i] + scale for i in others):
            continue
        form = cond.form
        orders = [sum(m) for m in getattr(form, "multi_indices", ())]
        if not orders:
            return None
        kinds.add("dirichlet" if max(orders) == 0 else "neumann")
    return kinds.pop() if len(kinds) == 1 else None


def _principal(problem, point: np.ndarray):
    """The coefficients (a_xx, a_xy, a_yy) of the equation's second derivatives at `point`,
    or None if the equation is not second order."""
    form = problem.equation_form
    mis = tuple(tuple(int(i) for i in m) for m in getattr(form, "multi_indices", ()))
    if not mis or max(sum(m) for m in mis) != 2:
        return None
    values = {}
    at = dict(zip(problem.coords, (float(v) for v in point)))
    for m, c in zip(mis, form.coefficients):
        if sum(m) == 2:
            values[m] = float(sp.N(sp.sympify(c).subs(at)))
    return values.get((2, 0), 0.0), values.get((1, 1), 0.0), values.get((0, 2), 0.0)


def corner_features(problem, decomposition, terms: int = 2):
    """The `CornerFeatures` of `problem`'s re-entrant corners for a model on
    `decomposition`, and a list of the corners skipped with the reason.

    A corner is enriched when the problem is linear and in 2D, its equation is second
    order with a principal part a_xx u_xx + a_yy u_yy (no mixed derivative, a_xx and
    a_yy of one sign at the corner: the Laplacian, possibly scaled per axis), and one
    kind of condition (values: Dirichlet; derivatives: Neumann or Robin) holds on each
    of the two edges at the corner. Returns `(None, skipped)` when no corner qualifies.
    """
    if decomposition.dim != 2 or not problem.linear or problem.interfaces:
        return None, []
    corners = reentrant_corners(problem.domain)
    if not corners:
        return None, []
    scale = float(np.max(problem.domain.lengths))
    rows, skipped = [], []
    for c in corners:
        p = np.asarray(c.point)
        where = f"the re-entrant corner at ({p[0]:g}, {p[1]:g})"
        kinds = tuple(_condition_kind(problem, p + 1e-6 * scale * e) for e in c.edges)
        if None in kinds:
            skipped.append(f"{where}: no single kind of boundary condition on both of its edges")
            continue
        inside = p - 1e-6 * scale * np.asarray(c.missing, dtype=float)
        principal = _principal(problem, inside)
        if principal is None:
            skipped.append(f"{where}: the equation is not second order")
            continue
        axx, axy, ayy = principal
        if abs(axy) > 1e-12 * max(abs(axx), abs(ayy)) or axx * ayy <= 0:
            skipped.append(f"{where}: the principal part is not a_xx u_xx + a_yy u_yy with one sign")
            continue
        rows.append((c, kinds, (math.sqrt(abs(axx)), math.sqrt(abs(ayy)))))
    if not rows:
        return None, skipped
    centres = np.asarray(decomposition.centres)
    half = np.asarray(decomposition.half_widths)
    lam, sine, owner, desc = [], [], [], []
    per_subdomain = [[] for _ in range(centres.shape[0])]
    for ci, (c, kinds, _) in enumerate(rows):
        p = np.asarray(c.point)
        tol = 1e-12 * scale
        holds = np.all(np.abs(centres - p) <= half + tol, axis=1)
        for lam_t, g in singular_terms(kinds, terms):
            t = len(lam)
            lam.append(lam_t)
            sine.append(1.0 if g == "sin" else 0.0)
            owner.append(ci)
            desc.append(((float(p[0]), float(p[1])), float(lam_t), g, kinds))
            for j in np.flatnonzero(holds):
                per_subdomain[j].append(t)
    width = max(len(v) for v in per_subdomain)
    table = np.full((centres.shape[0], width), -1, dtype=np.int32)
    for j, v in enumerate(per_subdomain):
        table[j, : len(v)] = v
    frames = [_frame(c.missing) for c, _, _ in rows]
    return (
        CornerFeatures(
            points=jnp.asarray([c.point for c, _, _ in rows], dtype=float),
            e1=jnp.asarray([f[0] for f in frames]),
            e2=jnp.asarray([f[1] for f in frames]),
            stretch=jnp.asarray([s for _, _, s in rows], dtype=float),
            lam=jnp.asarray(lam, dtype=float),
            sine=jnp.asarray(sine, dtype=float),
            corner=jnp.asarray(owner, dtype=jnp.int32),
            table=jnp.asarray(table),
            description=tuple(desc),
        ),
        skipped,
    )
