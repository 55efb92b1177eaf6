"""`SplineFrame`: the B-splines of nested B-spline levels as a multilevel frame.

With `pd.Multilevel(domain, levels, bspline=p)`, `pd.BSpline(p)` windows and a
`pd.Polynomial(q)` basis, one level's windows x polynomials span a spline space:
in 1D the C^(p-1) splines of degree p + q on the level's cells; in d dimensions
the sum over the multi-indices A with |A| = q of the tensor products of the 1D
C^(p-1) spline spaces of degrees p + A_i (in 2D with cubic windows and quadratics:
S3xS5 + S4xS4 + S5xS3). Each of those tensor spaces has a local, stable basis, its
B-splines, and the union of them over all levels is a generating system in the
sense of Griebel. CG on the normal equations in these functions, Jacobi-scaled,
is an additive multilevel (BPX-type) method: its iteration count barely grows
with the number of levels (docs/solving.md, "Multilevel decompositions and iterative solvers").

The frame never replaces the unknowns: each level's B-splines are written once
in the level's windows x polynomials (a small least-squares fit per axis and
degree, exact to rounding), so the preconditioner is `B = T D^2 T^T`, with `T`
mapping frame coefficients to the model's (J, K) coefficients (tensor products of
the 1D fits, applied axis by axis) and `D^2` the inverse squared norms of the
frame functions' columns `M T e_m`. Those norms are measured by probing: the
B-splines of one level and tensor space whose supports are disjoint go into one
product with M, and each row's value is credited to the one B-spline covering its
point.
"""

from __future__ import annotations

import dataclasses
import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sps
from jaxtyping import Array

from ..assemble import LinearSystem, chunks
from .preconditioners import AbstractPreconditioner, BuiltPreconditioner, _ContentKey


def _knots(lo: float, hi: float, cells: int, degree: int, multiplicity: int) -> np.ndarray:
    """Clamped knots on `cells` equal cells of [lo, hi], interior knots repeated
    `multiplicity` times (C^(degree - multiplicity) splines)."""
    inner = np.repeat(lo + (hi - lo) * np.arange(1, cells) / cells, multiplicity)
    return np.concatenate([np.full(degree + 1, lo), inner, np.full(degree + 1, hi)])


def _axis_fits(grid, axis: int, window, basis, p: int, q: int):
    """One level, one axis: for a = 0..q, the (W, q + 1, nB_a) coefficients that write
    each clamped C^(p-1) B-spline of degree p + a on the level's cells as 1D windows x
    polynomials of degree <= a (zero for the higher degrees). Also the cell count."""
    count = grid.shape[axis]
    cells = count - p
    a_ext, b_ext = float(grid.domain.lower[axis]), float(grid.domain.upper[axis])
    h = (b_ext - a_ext) / (count - 1)
    lo, hi = a_ext + (p - 1) / 2 * h, b_ext - (p - 1) / 2 * h
    centres = a_ext + h * np.arange(count)
    nodes, _ = np.polynomial.legendre.leggauss(p + q + 2)  # exact for pieces of degree p + q
    x = (lo + h * (np.arange(cells)[:, None] + (nodes[None, :] + 1) / 2)).ravel()
    s = (x[:, None] - centres[None, :]) / ((p + 1) / 2 * h)
    win, family = _profiles(window, basis.kind, q, s)  # (S, W), (q + 1, S, W)
    fits = []
    for a in range(q + 1):
        phi = (win[None] * family[: a + 1]).transpose(1, 2, 0).reshape(x.size, -1)  # columns (w, c)
        from scipy.interpolate import BSpline  # ~0.2 s to import; only SplineFrame needs it

        target = BSpline.design_matrix(x, _knots(lo, hi, cells, p + a, a + 1), p + a).toarray()
        coef, *_ = np.linalg.lstsq(phi, target, rcond=1e-12)
        err = float(np.max(np.abs(phi @ coef - target)))
        if not err < 1e-8:
            raise ValueError(
                f"SplineFrame: the level's windows x polynomials do not reproduce its degree-{p + a} "
                f"B-splines (max error {err:.1e}); is this a pd.Multilevel(..., bspline={p}) model?"
            )
        g = np.zeros((count, q + 1, target.shape[1]))
        g[:, : a + 1, :] = coef.reshape(count, a + 1, -1)
        fits.append(g)
    return fits, cells


def _profiles(window, kind: str, q: int, s: np.ndarray):
    """The window's profile and the 1D polynomials of degrees 0..q at `s` (both
    elementwise), as NumPy arrays: one compiled evaluation per power-of-two size,
    where eager JAX operations compiled each of their steps for every level's shape
    (7 levels: 5.9 s of a 13 s cold build)."""
    flat = s.ravel()
    size = 1 << max(10, int(flat.size - 1).bit_length())
    padded = np.zeros(size)
    padded[: flat.size] = flat
    win, family = _profiles_jit(window, kind, q, padded)
    win, family = np.asarray(win)[: flat.size], np.asarray(family)[:, : flat.size]
    return win.reshape(s.shape), family.reshape((q + 1,) + s.shape)


@eqx.filter_jit
def _profiles_jit(window, kind, q, s):
    from ..ansatz.basis.polynomial import _one_d

    return window.profile(s), _one_d(kind, s, q)


def _tensor_blocks(dim: int, q: int) -> tuple[tuple[int, ...], ...]:
    """The multi-indices A with |A| = q: one tensor spline space each."""
    return tuple(a for a in itertools.product(range(q + 1), repeat=dim) if sum(a) == q)


# The strip's B-splines are redundant (the tensor spline spaces of one level
# intersect), so their Gram matrix is singular; it is factorised with this relative
# shift. Q is only ever applied to vectors in the range of M^T, whose components
# along the null space vanish up to rounding: the shift bounds how much that
# rounding is amplified (1e-12 let CG break down at rtol 1e-8 on 5 levels).
_SHIFT = 1e-8
# With one tensor space (1D) the strip's B-splines are independent and the Gram matrix
# nonsingular, and the deflated form needs Q exact: with the 1e-8 shift, 1D Poisson on
# 3 levels (cubic windows x cubics) stalled in the deflated form (2,000 iterations at
# rtol 1e-6, rel_l2 6.6e-7) where the balancing form took 7 (2.4e-8); factorised as it
# is (TwoLevel's coarse factorisation, shifted only if a pivot says singular), 5
# iterations and 2.4e-8.


class _FrameBound(_ContentKey):
    """SplineFrame's model-dependent data: the 1D fits and the levels' layout."""

    def __init__(self, fits, cells, shapes, offsets, slices, exponents, blocks, p, num_levels):
        self.fits = fits  # fits[l][axis][a]: (W, q + 1, nB) NumPy arrays
        self.cells = cells  # cells[l][axis]
        self.shapes = shapes  # window grid shape per level
        self.offsets = offsets  # first subdomain of each level
        self.slices = slices  # each level's (start, stop) in the cover (P) axis
        self.exponents = exponents  # (K, d) polynomial exponents, the model's feature order
        self.blocks = blocks
        self.p = p
        self.num_levels = num_levels
        self._set_digest(
            (cells, shapes, offsets, slices, exponents, blocks, p, num_levels),
            [g for level in fits for axis in level for g in axis],
        )


def _mode(y, mats):
    """Multiply axis i of y by mats[i] (contracting mats[i]'s second axis)."""
    for i, g in enumerate(mats):
        y = jnp.moveaxis(jnp.tensordot(g, y, axes=([1], [i])), 0, i)
    return y


def _synthesise(bound, fits, level: int, ys):
    """T on one level: frame coefficients (one array per tensor block) -> (J_l, K)."""
    cols = []
    for e in bound.exponents:
        acc = 0.0
        for a, y in zip(bound.blocks, ys):
            if all(ei <= ai for ei, ai in zip(e, a)):
                acc = acc + _mode(y, [fits[level][i][ai][:, e[i], :] for i, ai in enumerate(a)])
        cols.append(jnp.reshape(acc, (-1,)))
    return bound.num_levels * jnp.stack(cols, axis=-1)


def _analyse(bound, fits, level: int, r):
    """T^T on one level: (J_l, K) -> one array per tensor block."""
    grid = jnp.reshape(r, tuple(bound.shapes[level]) + (r.shape[-1],))
    ys = []
    for a in bound.blocks:
        acc = 0.0
        for k, e in enumerate(bound.exponents):
            if all(ei <= ai for ei, ai in zip(e, a)):
                acc = acc + _mode(grid[..., k], [fits[level][i][ai][:, e[i], :].T for i, ai in enumerate(a)])
        ys.append(bound.num_levels * acc)
    return ys


class _Frame(BuiltPreconditioner):
    fits: tuple  # fits[l][axis][a] as JAX arrays
    scales: tuple  # scales[l][block]: inverse squared column norms of the frame functions
    strip: tuple | None  # per block, the finest level's B-splines solved exactly (flat indices)
    key: Array | None  # which host factorisation of the strip's Gram matrix to use
    # M Z, the strip functions' columns of M, on the rows where they are nonzero:
    # those rows, and each entry's position among them, strip function and value
    strip_rows: Array | None
    strip_local: Array | None
    strip_columns: Array | None
    strip_values: Array | None
    system: LinearSystem | None  # for the products with M^T M of the balancing form
    bound: _FrameBound = eqx.field(static=True)
    strip_count: int = eqx.field(static=True, default=0)
    deflated: bool = eqx.field(static=True, default=False)  # CG in adapted-deflation form

    @property
    def has_right(self) -> bool:
        return False

    def _additive(self, r):
        out = []
        for level, (start, stop) in enumerate(_level_ranges(self.bound)):
            ys = _analyse(self.bound, self.fits, level, r[start:stop])
            ys = [y * s for y, s in zip(ys, self.scales[level])]
            out.append(_synthesise(self.bound, self.fits, level, ys))
        return jnp.concatenate(out, axis=0)

    def _exact(self, r):
        """Q r = Z (Z^T A Z)^-1 Z^T r over the strip's B-splines Z."""
        level = len(self.bound.shapes) - 1
        start, stop = _level_ranges(self.bound)[level]
        ys = _analyse(self.bound, self.fits, level, r[start:stop])
        return self._strip_solve(
            jnp.concatenate([jnp.reshape(y, (-1,))[s] for y, s in zip(ys, self.strip)]), r
        )

    def _exact_normal(self, t):
        """Q A t, A = M^T M, as Z (Z^T A Z)^-1 (M Z)^T (M t): M t is needed only on the
        rows where a strip function is nonzero (near the boundary), and M Z is kept
        from the build, where `_exact(A t)` took a whole product with M and one with
        M^T per CG iteration (7 levels: 0.14 s -> 0.04 s of each iteration's 0.18 s -> 0.08 s
        besides CG's own product with M^T M)."""
        s, rows = self.system, self.strip_rows

        def part(lo, c):
            rr = chunks.rows(rows, lo, c)
            return (jnp.einsum("npk,npk->n", s.values[rr], t[s.index[rr]]),)

        n = rows.shape[0]
        mt = jnp.zeros(n, jnp.result_type(s.values, t))
        mt = chunks.fill_rows((mt,), part, n, s.chunk_rows if s.chunk_rows > 0 else n)[0]
        z = jax.ops.segment_sum(
            self.strip_values * mt[self.strip_local], self.strip_columns, self.strip_count
        )
        return self._strip_solve(z, t)

    def _strip_solve(self, z, like):
        """Z (Z^T A Z)^-1 z, as (J, K) coefficients shaped like `like`."""
        from .preconditioners import _host_coarse_solve

        level = len(self.bound.shapes) - 1
        start, stop = _level_ranges(self.bound)[level]
        out = jax.ShapeDtypeStruct(z.shape, z.dtype)
        z = jax.pure_callback(_host_coarse_solve, out, self.key, z, vmap_method="sequential")
        parts, lo = [], 0
        for scale, s in zip(self.scales[level], self.strip):
            parts.append(jnp.zeros(scale.size, z.dtype).at[s].set(z[lo : lo + s.size]).reshape(scale.shape))
            lo += s.size
        fine = _synthesise(self.bound, self.fits, level, parts)
        return jnp.zeros_like(like).at[start:stop].set(fine)

    def normal(self, r):
        if self.strip is None:
            return self._additive(r)
        # balancing: B = Q + (I - Q A) B1 (I - A Q), A = M^T M, B1 the additive frame
        y = self._exact(r)
        t = self._additive(r - self.system.rmv(self.system.mv(y)))
        return y + t - self._exact_normal(t)

    # adapted deflation, as in TwoLevel: from a0 = Q b, P = Q + (I - Q A) B1 takes the
    # balancing form's steps with one product with M and one with M^T fewer
    def cg_start(self, b):
        if not (self.deflated and self.strip is not None):
            return super().cg_start(b)
        a0 = self._exact(b)
        return a0, jnp.sum(b * a0)

    def cg_apply(self, r):
        if not (self.deflated and self.strip is not None):
            return self.normal(r)
        t = self._additive(r)
        return self._exact(r) + t - self._exact_normal(t)


def _level_ranges(bound):
    sizes = [int(np.prod(s)) for s in bound.shapes]
    return [(o, o + n) for o, n in zip(bound.offsets, sizes)]


class SplineFrame(AbstractPreconditioner):
    """Multilevel B-spline frame (additive multilevel, BPX-type) for CG on the normal equations.

    For the exactly nested levels `pd.Multilevel(domain, levels, bspline=p)` with
    `pd.BSpline(p)` windows and a `pd.Polynomial(q)` basis: each level's windows x
    polynomials span a sum of tensor spline spaces (2D, cubic windows, quadratics:
    `S3xS5 + S4xS4 + S5xS3`, C2 splines on the level's cells), and the B-splines of
    those spaces on all levels are used as a Jacobi-scaled generating system. Unlike
    the block preconditioners, whose iteration counts grow with every level, its
    count stays nearly flat.

    The boundary conditions' rows weigh boundary values like the finest level's
    scale on every level, which the Jacobi scaling cannot balance; so by default the
    finest level's B-splines whose support meets the outer `boundary` layers of cells
    are solved together exactly (a sparse factorisation on the host) and combined
    with the frame as a coarse level. On `laplace-multilevel` with 7 nested levels
    CG then converges to rtol 1e-6 in 46 iterations (150 to 152 with `boundary=0`, the
    plain additive frame), where every other preconditioner stops at its cap
    (docs/solving.md).

    `form` is how they are combined. `"balancing"`: `Q + (I - Q A) B1 (I - A Q)`,
    `Q` the exact solve, `B1` the frame, `A = M^T M`. `"deflation"` (the default):
    CG starts from `Q b` and applies `Q + (I - Q A) B1`, as `TwoLevel` does on
    grids, the same steps in exact arithmetic with one product with M and one with
    M^T fewer per iteration (7 levels: 46 iterations and 12.5-13 s for a warm
    `pd.solve`, against 45 and 16 s balanced; 22.8 and 28.4 s before `Q A t` was
    taken from the kept columns `M Z`). The deflated form needs the exact
    solve to be accurate; here it is, a solve on one level's B-splines.

    Built on the host: a small 1D fit per level, axis and degree, then (the level's
    part of) M applied to one probe per colour class of B-splines with disjoint
    supports (about 75 per level in 2D with quadratics, all in one pass over the
    rows) to measure the frame functions' norms and the boundary B-splines' columns
    `M Z`, which are kept: the deflation's `Q A t` takes `(M Z)^T (M t)`, with `M t`
    only on the rows where the strip's functions are nonzero. CG only (it is not a
    square right preconditioner). `pd.solve` binds it to the model; a system
    assembled by hand needs `SplineFrame().bind(model)`.
    """

    boundary: int = 1
    form: str = "deflation"
    bound: _FrameBound | None = eqx.field(default=None, static=True)
    host = True
    right_form = False

    def __check_init__(self):
        if not (isinstance(self.boundary, int) and self.boundary >= 0):
            raise ValueError(
                f"SplineFrame boundary must be a number of cell layers >= 0, got {self.boundary!r}."
            )
        if self.form not in ("deflation", "balancing"):
            raise ValueError(f"SplineFrame: form must be 'balancing' or 'deflation', got {self.form!r}.")

    def bind(self, model) -> "SplineFrame":
        """This preconditioner with the frame fitted to `model`'s levels."""
        from ..ansatz.basis.polynomial import Polynomial
        from ..ansatz.decomposition import Multilevel
        from ..ansatz.windows import BSpline

        dec = model.decomposition
        if not (isinstance(dec, Multilevel) and dec.bspline is not None):
            raise ValueError(
                "SplineFrame needs nested B-spline levels, pd.Multilevel(domain, levels, bspline=p), "
                f"got {type(dec).__name__}{'' if not isinstance(dec, Multilevel) else ' without bspline'}."
            )
        p = dec.bspline
        if dec.periodic_axes:
            raise NotImplementedError(
                "SplineFrame does not handle periodic levels (pd.Multilevel(..., periodic=...)); "
                "use pd.CGNormal(pd.TwoLevel(local=pd.BoxSchwarz())) or pd.SparseNormal()."
            )
        if not (isinstance(model.window, BSpline) and model.window.degree == p):
            raise ValueError(
                f"SplineFrame needs pd.BSpline({p}) windows to match Multilevel(bspline={p}), got "
                f"{model.window!r}."
            )
        if not isinstance(model.basis, Polynomial):
            raise ValueError(
                f"SplineFrame needs a pd.Polynomial basis (windows x polynomials span splines), got "
                f"{type(model.basis).__name__}."
            )
        q, dim = model.basis.degree, model.dim
        fits, cells = [], []
        for grid in dec.grids:
            per_axis = [_axis_fits(grid, i, model.window, model.basis, p, q) for i in range(dim)]
            fits.append(tuple(tuple(f) for f, _ in per_axis))
            cells.append(tuple(c for _, c in per_axis))
        sizes = [g.num_subdomains for g in dec.grids]
        bound = _FrameBound(
            fits=tuple(fits),
            cells=tuple(cells),
            shapes=tuple(tuple(int(n) for n in g.shape) for g in dec.grids),
            offsets=tuple(int(o) for o in np.concatenate([[0], np.cumsum(sizes)[:-1]])),
            slices=tuple(tuple(int(v) for v in s) for s in dec.level_slices),
            exponents=tuple(tuple(int(v) for v in e) for e in model.basis.exponents(dim)),
            blocks=_tensor_blocks(dim, q),
            p=int(p),
            num_levels=dec.num_levels,
        )
        return dataclasses.replace(self, bound=bound)

    def build(self, system, levels=None):
        b = self.bound
        if b is None:
            raise ValueError(
                "SplineFrame needs the model to build its frame: use it through pd.solve, or pass "
                "SplineFrame().bind(model)."
            )
        j = sum(int(np.prod(s)) for s in b.shapes)
        if (system.num_subdomains, system.num_features) != (j, len(b.exponents)):
            raise ValueError(
                f"SplineFrame was bound to a different model than this system's: {j} subdomains x "
                f"{len(b.exponents)} features, the system {system.num_subdomains} x {system.num_features}. "
                "(Time-marching stages solve restricted systems; SplineFrame does not support them.)"
            )
        fits = jax.tree_util.tree_map(jnp.asarray, b.fits)
        index = np.asarray(system.index)
        rows = np.arange(index.shape[0])
        finest = len(b.shapes) - 1
        scales, dropped = [], 0
        widest = max(int(np.prod(shape)) for shape in b.shapes)
        strip_cols, strip_places, strip_count = [], (), 0
        for level, (start, stop) in enumerate(_level_ranges(b)):
            cells = np.asarray(b.cells[level])
            # each row's cell on this level: the first window covering it (cell c is
            # covered by windows c .. c + p on each axis)
            first = np.clip(index[:, b.slices[level][0]] - b.offsets[level], 0, stop - start - 1)
            cell = np.minimum(np.stack(np.unravel_index(first, b.shapes[level]), axis=1), cells - 1)
            # M T y for y on this level only involves the level's part of each row
            lo, hi = b.slices[level]
            level_values = system.values[:, lo:hi]
            level_index = jnp.asarray(np.clip(index[:, lo:hi] - start, 0, stop - start - 1))
            level_scales, level_strip = [], []
            # B-splines m and m + degree + 1 never overlap: one probe per colour, the
            # probes of all tensor blocks in one product with the level's rows, their
            # coefficients padded to the largest level's windows (one compilation)
            probes, layouts, first_probe = [], [], [0]
            for a in b.blocks:
                mult = np.asarray(a) + 1  # knot multiplicity on each axis
                degree = b.p + np.asarray(a)
                count = tuple(int(v) for v in degree + 1 + (cells - 1) * mult)
                stride = degree + 1
                colours = list(itertools.product(*[range(int(v)) for v in stride]))
                ys = np.zeros((len(colours),) + count, system.values.dtype)
                for c, colour in enumerate(colours):
                    ys[(c,) + tuple(slice(int(o), None, int(v)) for o, v in zip(colour, stride))] = 1.0
                probes.append(ys)
                layouts.append((mult, degree, count, stride, colours))
                first_probe.append(first_probe[-1] + len(colours))
            xs = _probe_coefficients(b, fits, level, tuple(probes), widest)
            all_values = np.asarray(_probe(level_values, level_index, xs))
            for bi, (mult, degree, count, stride, colours) in enumerate(layouts):
                values = all_values[first_probe[bi] : first_probe[bi + 1]]
                norms = np.zeros(int(np.prod(count)))
                strip = np.full(norms.size, -1)
                if level == finest and self.boundary > 0:
                    # the B-splines whose support meets the outer `boundary` layers of cells
                    m = np.stack(np.unravel_index(np.arange(norms.size), count), axis=1)
                    near = np.zeros(norms.size, bool)
                    for i in range(len(count)):
                        t = _knots(0.0, float(cells[i]), int(cells[i]), int(degree[i]), int(mult[i]))
                        lo, hi = t[m[:, i]], t[m[:, i] + degree[i] + 1]
                        near |= (lo < self.boundary) | (hi > cells[i] - self.boundary)
                    strip[near] = strip_count + np.arange(int(near.sum()))
                    strip_count += int(near.sum())
                    level_strip.append(jnp.asarray(np.nonzero(near)[0]))
                # on a row in cell c the block's B-splines are c * mult .. c * mult + degree:
                # the row's value belongs to the one of them in the probe's colour. Each
                # axis's part of its flat index depends on that axis's colour only, so it
                # is computed once per axis and colour (8 levels, all levels: 6.8 s -> 1.7 s)
                base = cell * mult
                places = np.cumprod((1,) + count[:0:-1])[::-1]  # row-major strides
                parts = [
                    [(base[:, i] + np.mod(o - base[:, i], stride[i])) * places[i] for o in range(stride[i])]
                    for i in range(len(count))
                ]
                with_strip = level == finest and self.boundary > 0
                for c, colour in enumerate(colours):
                    flat = sum(parts[i][o] for i, o in enumerate(colour))
                    norms += np.bincount(flat, weights=values[c] ** 2, minlength=norms.size)
                    if with_strip:
                        hit = (strip[flat] >= 0) & (values[c] != 0)
                        if hit.any():
                            strip_cols.append((rows[hit], strip[flat[hit]], values[c][hit]))
                keep = norms > 0
                dropped += int(np.sum(~keep))
                inverse = np.where(keep, 1.0 / np.where(keep, norms, 1.0), 0.0)
                level_scales.append(jnp.asarray(inverse.reshape(count)))
            scales.append(tuple(level_scales))
            if level_strip:
                strip_places = tuple(level_strip)
        key = None
        if strip_count:
            from .preconditioners import _coarse_factor, _register, _shifted_factor

            r, c, v = (np.concatenate(parts) for parts in zip(*strip_cols))
            mz = sps.csc_matrix((v, (r, c)), shape=(index.shape[0], strip_count))
            gram = (mz.T @ mz).tocsc()
            if len(b.blocks) > 1:  # redundant spaces: singular by construction
                factor = (_shifted_factor(gram, _SHIFT), None)
            else:
                factor = _coarse_factor(gram)
            key = jnp.asarray(_register(factor))
            touched, local = np.unique(r, return_inverse=True)
            strip_mz = (
                jnp.asarray(touched),
                jnp.asarray(local),
                jnp.asarray(c),
                jnp.asarray(v, system.values.dtype),
            )
        return _Frame(
            fits=fits,
            scales=tuple(scales),
            strip=strip_places if strip_count else None,
            key=key,
            strip_rows=strip_mz[0] if strip_count else None,
            strip_local=strip_mz[1] if strip_count else None,
            strip_columns=strip_mz[2] if strip_count else None,
            strip_values=strip_mz[3] if strip_count else None,
            strip_count=strip_count,
            system=system if strip_count else None,
            bound=b,
            filtered=dropped,
            deflated=self.form == "deflation",
        )


def _synthesise_one(bound, fits, level: int, block: int, y):
    """T on one level for the frame functions of one tensor block only."""
    a = bound.blocks[block]
    cols = []
    for e in bound.exponents:
        if all(ei <= ai for ei, ai in zip(e, a)):
            cols.append(
                jnp.reshape(_mode(y, [fits[level][i][ai][:, e[i], :] for i, ai in enumerate(a)]), (-1,))
            )
        else:
            cols.append(jnp.zeros(int(np.prod(bound.shapes[level])), y.dtype))
    return bound.num_levels * jnp.stack(cols, axis=-1)


@eqx.filter_jit
def _probe_coefficients(bound, fits, level, ys, widest):
    """The (J_l, K) coefficients of each probe of one level (`ys`: one stack of probes
    per tensor block), all blocks' probes stacked, padded to `widest` windows."""
    xs = jnp.concatenate(
        [
            jax.vmap(lambda y, b=block: _synthesise_one(bound, fits, level, b, y))(y)
            for block, y in enumerate(ys)
        ]
    )
    return jnp.pad(xs, ((0, 0), (0, widest - xs.shape[1]), (0, 0)))


# entries gathered per chunk of `_probe` ((rows, P_l, K, probes), 8 MB): chunks that
# stay in cache were fastest (2D, 16 windows x 6 features x 24 probes: 0.28 s for
# 400,000 rows in chunks of 512, 0.61 s in chunks of 2,048)
_PROBE_ENTRIES = 2**20


@jax.jit
def _probe(values, index, xs):
    """M x for each probe x of one level: `values` (N, P_l, K) and `index` (N, P_l) are
    the level's part of the rows, `xs` (probes, J_l, K); returns (probes, N).

    All probes at once, over chunks of rows: each row gathers its windows'
    coefficients of every probe in one contiguous read (probes last), where one
    product per probe would gather them once per probe (all probes of 7 nested levels,
    warm: 4.3 s -> 2.0 s; 8 levels 19.9 s -> 9.3 s)."""
    n, p, k = values.shape
    x = jnp.moveaxis(xs, 0, -1)  # (J_l, K, probes)
    rows = max(1, _PROBE_ENTRIES // (p * k * xs.shape[0]))

    def part(lo, c):
        v, i = chunks.rows(values, lo, c), chunks.rows(index, lo, c)
        return (jnp.einsum("npk,npkc->nc", v, x[i]),)

    out = (jnp.zeros((n, xs.shape[0]), jnp.result_type(values, xs)),)
    return chunks.fill_rows(out, part, n, rows)[0].T
