"""The finite-basis ansatz u(x) = sum_j w_j(x) sum_k a_jk phi_jk(norm_j(x))."""

from __future__ import annotations

import itertools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PyTree

from ..lower.derivatives import derivative
from .basis import AbstractBasis
from .corners import CornerFeatures, corner_features
from .decomposition import AbstractDecomposition, Grid
from .windows import AbstractWindow, BSpline, Constant, Cosine

# Points per vectorised chunk of `evaluate`: about _CHUNK_ENTRIES (point, subdomain,
# feature) entries, so that a chunk's intermediate derivatives stay in cache (2D
# Laplacian rows, Legendre degree 8 with 9 subdomains per point: 0.42 -> 0.33 s
# against a fixed 2,048 points; benchmarks/assembly.py), and within
# [_CHUNK_MIN, _CHUNK_POINTS] points.
_CHUNK_ENTRIES = 2**16
_CHUNK_MIN = 16
_CHUNK_POINTS = 2048


class FBPINN(eqx.Module):
    """Windows x basis functions over overlapping subdomains.

    Args:
        decomposition: e.g. `pd.Grid(domain, subdomains=20, overlap=2.9)`.
        basis: a basis family, e.g. `pd.RandomFeatures(12)`, `pd.Polynomial(8)`, or a
            trainable network `pd.MLP(hidden=(32,))` (then `pd.train` trains it).
        window: raw window family (`pd.Cosine()` default, `pd.Bump()`, `pd.BSpline()`);
            windows are normalised by their sum, so they form a partition of unity.
            A `pd.Multilevel(..., bspline=p)` decomposition takes `pd.BSpline(p)`
            (its default there).
        seed: seeds the basis's random parameters.

    The coefficients `a` (shape (J, K)) are not part of the model: a solver finds them.
    """

    decomposition: AbstractDecomposition
    basis: AbstractBasis
    window: AbstractWindow
    params: PyTree
    seed: int = eqx.field(static=True)
    corners: CornerFeatures | None = None

    def __init__(self, decomposition, basis, window=None, seed: int = 0, corners=None):
        if not isinstance(decomposition, AbstractDecomposition):
            raise TypeError(
                f"decomposition must be a pdedsl decomposition such as pd.Grid(...), got "
                f"{type(decomposition).__name__}."
            )
        if not isinstance(basis, AbstractBasis):
            raise TypeError(
                f"basis must be a basis family such as pd.RandomFeatures(12) or "
                f"pd.Polynomial(6), got {type(basis).__name__}."
            )
        nested = getattr(decomposition, "bspline", None)
        if window is None:
            window = Cosine() if nested is None else BSpline(nested)
        elif nested is not None and not (isinstance(window, BSpline) and window.degree == nested):
            raise ValueError(
                f"The decomposition's levels are nested for pd.BSpline({nested}) windows, got "
                f"window={window!r}; pass pd.BSpline({nested}) or leave the window out."
            )
        if not isinstance(window, AbstractWindow):
            raise TypeError(
                f"window must be pd.Cosine(), pd.Bump() or another AbstractWindow, got {window!r}."
            )
        if isinstance(window, Constant) and decomposition.num_subdomains > 1:
            raise ValueError(
                f"The Constant window (no window) only makes sense with one subdomain, but the "
                f"decomposition has {decomposition.num_subdomains}; use pd.Cosine() or pd.Bump()."
            )
        own = tuple(getattr(basis, "periodic_axes", ()))
        if own and not (
            isinstance(decomposition, Grid)
            and all(decomposition.shape[i] == 1 and i not in decomposition.periodic for i in own)
        ):
            raise ValueError(
                "A basis with periodic inputs (pd.PeriodicInput) needs one subdomain along its periodic "
                "axes; for a grid of subdomains use pd.Grid(..., periodic=[...]) instead."
            )
        self.decomposition = decomposition
        self.basis = basis
        self.window = window
        self.seed = int(seed)
        if corners is not None and not isinstance(corners, CornerFeatures):
            raise TypeError(
                f"corners must come from model.with_corners(problem), got {type(corners).__name__}."
            )
        if corners is not None and corners.table.shape[0] != decomposition.num_subdomains:
            raise ValueError("corners were built for a decomposition with a different number of subdomains.")
        self.corners = corners
        self.params = basis.init(
            jax.random.PRNGKey(self.seed), decomposition.num_subdomains, decomposition.dim
        )

    @property
    def dim(self) -> int:
        return self.decomposition.dim

    @property
    def num_features(self) -> int:
        extra = 0 if self.corners is None else self.corners.num_features
        return self.basis.num_features(self.dim) + extra

    def with_corners(self, problem, terms: int = 2, edge_degree: int | None = None) -> FBPINN:
        """This model with the singular functions of `problem`'s re-entrant corners
        added to the features of the subdomains that contain them (see
        `pdedsl.ansatz.corners`); `terms` per corner (2: r^(2/3) and r^(4/3) for
        Dirichlet or Neumann conditions on both edges). In more than two dimensions, a
        re-entrant edge through the domain (an L-shape extruded along z or along time)
        gets them times Legendre polynomials along it, up to `edge_degree` (default: the
        basis's degree for polynomials, else 3). Raises ValueError if the problem has no
        corner that can be enriched, naming the reasons."""
        if isinstance(terms, bool) or not isinstance(terms, int) or terms < 1:
            raise ValueError(f"terms must be a positive int, got {terms!r}.")
        if edge_degree is None:
            edge_degree = default_edge_degree(self.basis)
        features, skipped = corner_features(problem, self.decomposition, terms, edge_degree)
        if features is None:
            why = (
                "; ".join(skipped)
                if skipped
                else "it has no re-entrant corner or edge (or is not a linear problem)"
            )
            raise ValueError(f"No corner of the problem can be enriched: {why}.")
        return FBPINN(self.decomposition, self.basis, self.window, self.seed, corners=features)

    @property
    def num_subdomains(self) -> int:
        return self.decomposition.num_subdomains

    @property
    def periodic_axes(self) -> tuple[int, ...]:
        """The axes along which the ansatz is periodic: those of a wrapping grid, or
        those a `PeriodicInput` basis makes periodic (`pd.PINN(..., periodic=...)`)."""
        own = tuple(getattr(self.basis, "periodic_axes", ()))
        return tuple(sorted(set(self.decomposition.periodic_axes) | set(own)))

    @property
    def num_unknowns(self) -> int:
        return self.num_subdomains * self.num_features

    def features(self, x: Float[Array, " dim"], j: Int[Array, ""]) -> Float[Array, " K"]:
        """Subdomain `j`'s features at `x`, without its window: the basis functions,
        then its corner functions (if any)."""
        s = self.decomposition.local_coordinates(x, j[None])
        params = jax.tree_util.tree_map(lambda p: p[j], self.params)
        feats = self.basis.features(params, s[0])
        if self.corners is not None:
            feats = jnp.concatenate([feats, self.corners(x, j[None], s)[0]])
        return feats

    def local(self, x: Float[Array, " dim"], idx: Int[Array, " P"], mask: Float[Array, " P"]):
        """`w_j(x) phi_jk(norm_j(x))` for the covering subdomains `idx`: shape (P, K)."""
        dec = self.decomposition
        s = dec.local_coordinates(x, idx)
        raw = jax.vmap(self.window)(s) * mask
        w = dec.normalise(raw)
        params = jax.tree_util.tree_map(lambda p: p[idx], self.params)
        feats = jax.vmap(self.basis.features)(params, s)
        if self.corners is not None:
            feats = jnp.concatenate([feats, self.corners(x, idx, s)], axis=1)
        return w[:, None] * feats


def default_edge_degree(basis) -> int:
    """Legendre degree of the corner functions along a re-entrant edge: the basis's
    own degree for polynomials (so the edge's coefficient is as smooth as the rest),
    else 3."""
    degree = getattr(basis, "degree", None)
    return degree if isinstance(degree, int) and not isinstance(degree, bool) else 3


def evaluate(
    model: FBPINN, points: Float[Array, "N dim"], multi_indices, side=None, *, chunked=True, _nested=False
):
    """Derivatives of every windowed basis function at the (point, subdomain) pairs
    where the window is non-zero.

    `side=(axis, value, +1 or -1)`: for a model cut there (`pd.Cut`), the ansatz of
    the upper (+1) or lower side of the cut, at points on it (an interface condition).

    Returns `(index, values)`: `index` (N, P) subdomain indices and `values`, a dict
    multi-index -> (N, P, K). Padding pairs have zero values.

    `chunked=False`: all points in one vectorised evaluation, for code that is
    differentiated (`pd.train`): reverse mode keeps every chunk's intermediates anyway,
    so chunks save no memory there, and its scan made Adam 2.3x slower (2D Poisson,
    3 x 3 MLP(16) subdomains, 1,600 points in 2 or 3 chunks against one: 11.9-14.5 s
    against 5.2-5.7 s for 1,200 steps).

    (`_nested=True`: nested JVPs through the windowed features, the definition, for
    tests and benchmarks/assembly.py's comparison.)
    """
    multi_indices = tuple(tuple(int(i) for i in a) for a in multi_indices)
    for a in multi_indices:
        if len(a) != model.dim or min(a, default=0) < 0:
            raise ValueError(f"A multi-index needs {model.dim} non-negative orders (one per axis), got {a}.")

    dec = model.decomposition
    if side is not None and not (hasattr(dec, "has_cut") and dec.has_cut(side[0], side[1])):
        raise ValueError(f"The model is not cut at axis {side[0]} = {side[1]:g} (see pd.Cut).")

    def per_point(x):
        idx, mask = dec.cover(x) if side is None else dec.cover(x, side)
        if _nested:
            f = lambda y: model.local(y, idx, mask)  # noqa: E731
            return idx, tuple(derivative(f, a)(x) for a in multi_indices)
        return idx, _leibniz(model, x, idx, mask, multi_indices)

    # Chunked: vectorised within chunks, sequential across them, so that memory for
    # the intermediate derivatives stays bounded however many points there are. The
    # chunks are of equal size (the points padded by fewer than one per chunk), so
    # that the derivatives are compiled once: `lax.map` with a batch size that does not
    # divide the points compiles a second copy for the remainder (a cold 2D Poisson
    # assembly compiled in 1.5 s, 1.0 s with one copy).
    entries = max(1, dec.max_cover * model.num_features)
    chunk = min(_CHUNK_POINTS, max(_CHUNK_MIN, _CHUNK_ENTRIES // entries))
    n = points.shape[0]
    steps = max(1, -(-n // chunk)) if chunked else 1
    if steps == 1:
        idx, vals = jax.vmap(per_point)(points)
    else:
        size = -(-n // steps)
        padded = jnp.concatenate([points, jnp.repeat(points[-1:], steps * size - n, axis=0)])
        idx, vals = jax.lax.map(per_point, padded, batch_size=size)
        idx, vals = jax.tree.map(lambda a: a[:n], (idx, vals))
    return idx, dict(zip(multi_indices, vals))


def _below(multi_indices):
    """Every multi-index b <= a (componentwise) for some a of `multi_indices`."""
    out = set()
    for a in multi_indices:
        out.update(itertools.product(*(range(i + 1) for i in a)))
    return sorted(out, key=lambda b: (sum(b), b))


def _leibniz(model: FBPINN, x, idx, mask, multi_indices):
    """`d^a (w_j phi_jk)` at `x` for the covering subdomains `idx`, by the Leibniz
    rule: the windows' derivatives (a (P,) function: nested JVPs are cheap there)
    times the basis's own derivatives in local coordinates (`basis.derivatives`,
    closed form for polynomials and random features), scaled by the local
    coordinates' affine map `s = (x - centre) / half_width`.

    Corner functions (`model.with_corners`) are functions of `x` itself: their
    derivatives are nested JVPs of those few functions alone, appended to the
    features' derivatives in `x` before the rule is applied. (Nested JVPs through the
    whole windowed feature vector, as before 2026-12-07, took 0.42-0.46 s against
    0.30-0.37 s for a space-time L-shape's rows: 4 x 4 x 2 degree-5 subdomains, 5,184
    points; the compilation takes as long either way.)"""
    dec = model.decomposition
    subs = _below(multi_indices)

    def windows(y):
        raw = jax.vmap(model.window)(dec.local_coordinates(y, idx)) * mask
        return dec.normalise(raw)

    w = _chained_derivatives(windows, subs, x)  # each (P,)
    s = dec.local_coordinates(x, idx)
    params = jax.tree_util.tree_map(lambda p: p[idx], model.params)
    feats = dict(zip(subs, jax.vmap(lambda p, z: model.basis.derivatives(p, z, subs))(params, s)))
    inv_h = 1.0 / dec.half_widths[idx]  # (P, d): ds/dx along each axis
    out = []
    if model.corners is not None:  # features' derivatives in x, the corner functions' appended
        corner = _chained_derivatives(lambda y: model.corners(y, idx, dec.local_coordinates(y, idx)), subs, x)
        scale = {b: jnp.prod(inv_h ** jnp.asarray(b, dtype=inv_h.dtype)[None, :], axis=-1) for b in subs}
        feats = {b: jnp.concatenate([scale[b][:, None] * feats[b], corner[b]], axis=1) for b in subs}
        for a in multi_indices:
            total = 0.0
            for b in itertools.product(*(range(i + 1) for i in a)):
                rest = tuple(i - j for i, j in zip(a, b))
                c = math.prod(math.comb(i, j) for i, j in zip(a, b))
                total = total + (c * w[b])[:, None] * feats[rest]
            out.append(total)
        return tuple(out)
    for a in multi_indices:
        total = 0.0
        for b in itertools.product(*(range(i + 1) for i in a)):
            rest = tuple(i - j for i, j in zip(a, b))
            c = math.prod(math.comb(i, j) for i, j in zip(a, b))
            # the chain rule's factor (1 / half width)^rest goes with the (P,) window
            # derivative, so each term is one (P, K) multiply-add
            factor = c * w[b] * jnp.prod(inv_h ** jnp.asarray(rest, dtype=inv_h.dtype)[None, :], axis=-1)
            total = total + factor[:, None] * feats[rest]
        out.append(total)
    return tuple(out)


def _chained_derivatives(f, subs, x):
    """`{b: d^b f(x)}` for every multi-index of `subs` (closed under b -> b - e_i), by
    nested JVPs along paths: one pass along the axes of a multi-index returns every
    derivative on the way (`f`, `f_x`, `f_xx` from one nested pair), where
    differentiating each multi-index on its own recomputes the lower ones."""
    out = {}
    for b in sorted(subs, key=lambda b: (-sum(b), b)):
        if b in out:
            continue
        axes = [axis for axis, order in enumerate(b) for _ in range(order)]
        h = lambda y: (f(y),)  # noqa: E731
        for axis in axes:

            def h(y, h=h, axis=axis):
                e = jnp.zeros_like(y).at[axis].set(1.0)
                primal, tangent = jax.jvp(h, (y,), (e,))
                return (*primal, tangent[-1])

        values = h(x)
        prefix = [0] * len(b)
        out.setdefault(tuple(prefix), values[0])
        for axis, value in zip(axes, values[1:]):
            prefix[axis] += 1
            out.setdefault(tuple(prefix), value)
    return out
