"""The ansatz: decompositions, windows, basis families, and their evaluation."""

import itertools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp
from numpy.polynomial import chebyshev as npcheb, legendre as npleg

import pdedsl as pd
from pdedsl import D
from pdedsl.ansatz import AbstractBasis, evaluate
from pdedsl.ansatz.model import FBPINN

x, y, z = pd.Symbol("x"), pd.Symbol("y"), pd.Symbol("z")

evaluate_jit = eqx.filter_jit(evaluate)


class Constant(AbstractBasis):
    """One feature, identically 1: the ansatz is then the normalised windows."""

    def num_features(self, dim):
        return 1

    def features(self, params, z):
        return jnp.ones((1,), z.dtype)


class Tagged(AbstractBasis):
    """One constant feature per subdomain whose value is the subdomain's own parameter:
    checks that each subdomain gets its own slice of the parameters."""

    def num_features(self, dim):
        return 1

    def init(self, key, num_subdomains, dim):
        return {"tag": 10.0 + jnp.arange(num_subdomains, dtype=float)}

    def features(self, params, z):
        return params["tag"] * jnp.ones((1,), z.dtype)


class Fourier(AbstractBasis):
    """A 1D Fourier family with a random phase per subdomain (same span for any phase)."""

    modes: int = 6

    def num_features(self, dim):
        return 2 * self.modes + 1

    def init(self, key, num_subdomains, dim):
        return jax.random.uniform(key, (num_subdomains,), minval=-np.pi, maxval=np.pi)

    def features(self, phase, z):
        k = jnp.arange(1, self.modes + 1)
        theta = jnp.pi * k * z[0] / 2 + phase
        return jnp.concatenate([jnp.ones((1,)), jnp.cos(theta), jnp.sin(theta)])


def random_points(box, n, seed=0):
    rng = np.random.default_rng(seed)
    lo, hi = np.asarray(box.lower), np.asarray(box.upper)
    return lo + rng.random((n, box.dim)) * (hi - lo)


def to_dense(index, values, num_subdomains):
    """(N, P) indices and (N, P, K) values -> (N, J, K), adding repeated indices."""
    index, values = np.asarray(index), np.asarray(values)
    n, p, k = values.shape
    out = np.zeros((n, num_subdomains, k))
    np.add.at(out, (np.repeat(np.arange(n), p), index.ravel()), values.reshape(n * p, k))
    return out


# -- Grid decomposition ------------------------------------------------------------------


def test_grid_centres_and_half_widths_1d():
    g = pd.Grid(pd.Interval(x, 0, 2), 5, 2.0)
    assert g.num_subdomains == 5 and g.dim == 1 and g.shape == (5,)
    np.testing.assert_allclose(g.centres[:, 0], [0, 0.5, 1, 1.5, 2])
    np.testing.assert_allclose(g.half_widths, 0.5)  # overlap * h / 2 = 2 * 0.5 / 2


def test_grid_centres_and_half_widths_2d():
    box = pd.Box([x, y], [0, -1], [1, 3])
    g = pd.Grid(box, (3, 2), 2.9)
    assert g.num_subdomains == 6 and g.dim == 2
    cx, cy = np.meshgrid([0, 0.5, 1], [-1, 3], indexing="ij")
    np.testing.assert_allclose(g.centres, np.stack([cx.ravel(), cy.ravel()], -1))
    np.testing.assert_allclose(g.half_widths, np.broadcast_to([0.5 * 2.9 * 0.5, 0.5 * 2.9 * 4], (6, 2)))


def test_grid_single_subdomain_spans_axis():
    box = pd.Box([x, y], [0, 0], [2, 1])
    g = pd.Grid(box, (1, 4), 2.0)
    np.testing.assert_allclose(g.centres[:, 0], 1.0)
    # The lone subdomain covers its whole axis with a margin.
    assert np.all(np.asarray(g.half_widths[:, 0]) > 1.0)
    np.testing.assert_allclose(g.centres[:, 1], np.linspace(0, 1, 4))


def test_grid_subdomains_cover_domain():
    box = pd.Box([x, y], [0, 0], [2, 1])
    for shape, ov in [((4, 3), 1.5), ((1, 5), 2.0), ((6, 2), 3.5)]:
        g = pd.Grid(box, shape, ov)
        lo = np.asarray(g.centres - g.half_widths).min(0)
        hi = np.asarray(g.centres + g.half_widths).max(0)
        assert np.all(lo < np.asarray(box.lower)) and np.all(hi > np.asarray(box.upper))


@pytest.mark.parametrize("overlap", [1.0, 0.5, 0.0, -2.0, float("nan"), "2", None, (2.0, 2.0)])
def test_grid_rejects_overlap_at_most_one(overlap):
    # (a string or None used to fail on the comparison with a bare TypeError)
    with pytest.raises(ValueError, match="overlap must be a number > 1"):
        pd.Grid(pd.Interval(x, 0, 1), 4, overlap)


@pytest.mark.parametrize("subdomains", [(2, 3, 4), (2,), 0, -3, 2.5, (0, 2)])
def test_grid_rejects_bad_subdomains(subdomains):
    with pytest.raises(ValueError):
        pd.Grid(pd.Box([x, y], [0, 0], [1, 1]), subdomains, 2.0)


@pytest.mark.parametrize("domain", [None, (0, 1), "x in [0, 1]", x])
def test_grid_rejects_non_box_domain(domain):
    with pytest.raises(TypeError):
        pd.Grid(domain, 4, 2.0)


COVER_CASES = [
    (1, (1,)),
    (1, (2,)),
    (1, (7,)),
    (2, (4, 5)),
    (2, (1, 6)),
    (2, (7, 2)),
    (3, (3, 4, 2)),
    (3, (1, 5, 3)),
]


@pytest.mark.parametrize("dim, shape", COVER_CASES)
def test_grid_cover_matches_brute_force(dim, shape):
    rng = np.random.default_rng(dim * 100 + sum(shape))
    lo = rng.uniform(-2, 1, dim)
    box = pd.Box((x, y, z)[:dim], lo, lo + rng.uniform(0.3, 3, dim))
    for overlap in (1.5, 2.0, 2.9, 3.5):
        g = pd.Grid(box, shape, overlap)
        pts = random_points(box, 256, seed=int(overlap * 10))
        if overlap != 2.0:
            # Also the corners of the domain and the subdomain centres (with overlap 2 these
            # lie exactly on neighbours' edges, where rounding decides: see the next test).
            extra = np.concatenate([np.asarray(box.lower)[None], np.asarray(box.upper)[None], g.centres])
            pts[: len(extra)] = extra
        idx, mask = jax.vmap(g.cover)(jnp.asarray(pts))  # eager: cheaper than compiling
        idx, mask = np.asarray(idx), np.asarray(mask)
        assert idx.shape == mask.shape == (len(pts), g.max_cover)
        assert np.all((idx >= 0) & (idx < g.num_subdomains))
        assert set(np.unique(mask)) <= {0.0, 1.0}
        c, hw = np.asarray(g.centres), np.asarray(g.half_widths)
        truth = np.all(np.abs(pts[:, None, :] - c[None]) < hw[None], axis=-1)  # (N, J)
        for i in range(len(pts)):
            got = idx[i][mask[i] > 0]
            assert len(got) == len(set(got.tolist())), (overlap, pts[i], got)
            assert set(got.tolist()) == set(np.nonzero(truth[i])[0].tolist()), (overlap, pts[i], got)
            assert len(got) >= 1


def test_grid_cover_on_subdomain_edges_drops_only_zero_windows():
    """Points exactly on a subdomain's edge may go either way, but only where the
    window there is (numerically) zero."""
    box = pd.Interval(x, 0, 1)
    for n, ov in [(20, 2.0), (9, 3.0), (5, 1.5)]:
        g = pd.Grid(box, n, ov)
        c, hw = np.asarray(g.centres)[:, 0], np.asarray(g.half_widths)[:, 0]
        pts = np.clip(np.concatenate([c - hw, c + hw, c]), 0, 1)
        pts = np.concatenate([pts, np.linspace(0, 1, 64 - len(pts))])  # same shape every time
        idx, mask = jax.vmap(g.cover)(jnp.asarray(pts)[:, None])
        covered = np.zeros((len(pts), n), bool)
        np.put_along_axis(covered, np.asarray(idx), np.asarray(mask) > 0, axis=1)
        s = (pts[:, None] - c[None]) / hw[None]
        raw = np.where(np.abs(s) < 1, ((1 + np.cos(np.pi * s)) / 2) ** 2, 0.0)  # pd.Cosine()
        assert np.all(raw[~covered] < 1e-12), (n, ov)
        assert np.all(covered[raw > 1e-12])


def test_grid_cover_program_does_not_grow_with_the_covering_subdomains():
    """`cover` combines the per-axis candidates by broadcasting: its traced program has
    the same size for 8 or 125 covering subdomains per point in 3D. (Unrolled over the
    combinations, it made a 3D Laplacian with B-spline windows compile 4.6 times
    slower; see the comment in `Grid.cover`.)"""
    box = pd.Box([x, y, z], [0, 0, 0], [1, 1, 1])
    sizes = []
    for overlap in (2.0, 5.0):
        g = pd.Grid(box, 6, overlap)
        jaxpr = jax.make_jaxpr(g.cover)(jnp.array([0.3, 0.4, 0.5]))
        sizes.append(len(jaxpr.eqns))
        assert jaxpr.out_avals[0].shape == (g.max_cover,)
    assert g.max_cover >= 125
    assert sizes[0] == sizes[1], sizes


def test_grid_max_cover_bounds_cover():
    g = pd.Grid(pd.Box([x, y], [0, 0], [1, 1]), (8, 1), 2.9)
    idx, mask = g.cover(jnp.array([0.3, 0.4]))
    assert idx.shape == (g.max_cover,)
    assert g.max_cover >= 3  # overlap 2.9 -> up to 3 subdomains along x


# -- windows -----------------------------------------------------------------------------

WINDOWS = [pd.Cosine(), pd.Cosine(power=3), pd.Bump(), pd.BSpline(), pd.BSpline(5)]
WINDOW_IDS = ["cos2", "cos3", "bump", "bspline3", "bspline5"]


@pytest.mark.parametrize("window", WINDOWS, ids=WINDOW_IDS)
def test_window_support(window):
    s_in = jnp.linspace(-0.999, 0.999, 201)
    s_out = jnp.concatenate([jnp.array([-1.0, 1.0]), jnp.linspace(1.0, 5.0, 50), -jnp.linspace(1.0, 5.0, 50)])
    assert jnp.all(window.profile(s_in) > 0)
    assert jnp.all(window.profile(s_out) == 0)
    # the B-splines are not scaled to 1 at the centre: their integer shifts sum to one
    peak = {1: 1.0, 3: 2 / 3, 5: 11 / 20}[getattr(window, "degree", 1)]
    assert float(window.profile(jnp.array(0.0))) == pytest.approx(peak)
    # (atol: the B-splines are evaluated in shifted coordinates, which costs relative
    # accuracy where they are tiny, near the edges: 4e-19 absolute)
    np.testing.assert_allclose(window.profile(s_in), window.profile(-s_in), rtol=1e-14, atol=1e-16)
    # Tensor product in several dimensions: zero as soon as one coordinate is out.
    assert float(window(jnp.array([0.2, -0.5, 0.9]))) > 0
    assert float(window(jnp.array([0.2, 1.0, 0.1]))) == 0
    assert float(window(jnp.array([-1.5, 0.0]))) == 0
    s2 = jnp.array([0.3, -0.6])
    assert float(window(s2)) == pytest.approx(float(window.profile(s2[0]) * window.profile(s2[1])))


def test_window_formulas():
    s = np.linspace(-0.99, 0.99, 37)
    for p in (1, 2, 3, 5):
        np.testing.assert_allclose(
            pd.Cosine(power=p).profile(jnp.asarray(s)), ((1 + np.cos(np.pi * s)) / 2) ** p, rtol=1e-12
        )
    np.testing.assert_allclose(pd.Bump().profile(jnp.asarray(s)), np.exp(1 - 1 / (1 - s**2)), rtol=1e-12)


@pytest.mark.parametrize("degree", [1, 2, 3, 4, 5])
def test_bspline_window_is_the_cardinal_b_spline(degree):
    """Values and derivatives against SciPy's B-spline on the knots 0..degree+1 (the
    profile stretches it over (-1, 1)); the integer shifts sum to one."""
    from scipy.interpolate import BSpline as SciPyBSpline

    w = pd.BSpline(degree)
    half = (degree + 1) / 2
    ref = SciPyBSpline.basis_element(np.arange(degree + 2), extrapolate=False)
    s = np.linspace(-0.995, 0.995, 199)
    s = s[np.abs(s * half + half - np.round(s * half + half)) > 1e-6]  # not on a knot
    f = w.profile
    for m in range(degree):  # derivatives up to degree - 1 (continuous ones and beyond)
        expected = ref.derivative(m)(s * half + half) * half**m if m else ref(s * half + half)
        np.testing.assert_allclose(jax.vmap(f)(jnp.asarray(s)), expected, rtol=1e-10, atol=1e-12)
        f = jax.grad(f)
    t = np.linspace(-0.3, 0.3, 13)
    total = sum(w.profile(jnp.asarray((t - c) / half)) for c in range(-degree - 2, degree + 3))
    np.testing.assert_allclose(total, 1.0, rtol=0, atol=1e-14)


@pytest.mark.parametrize("degree", [0, 10, 2.0, "3"])
def test_bspline_rejects_bad_degree(degree):
    with pytest.raises(ValueError, match="degree"):
        pd.BSpline(degree)


def test_window_smoothness():
    assert pd.BSpline().smoothness == 2 and pd.BSpline(5).smoothness == 4
    assert pd.Cosine().smoothness == 3
    assert pd.Cosine(power=3).smoothness == 5
    assert pd.Cosine(power=1).smoothness == 1
    assert pd.Bump().smoothness == math.inf


@pytest.mark.parametrize("power", [1, 2])
def test_cosine_smoothness_is_exact(power):
    """Near the edge, the profile is (pi t / 2)^(2p) with t = 1 - |s|: its derivatives up to
    order 2p - 1 tend to 0 at the edge (C^(2p-1)), the one of order 2p does not."""
    f = pd.Cosine(power=power).profile
    t = np.array([1e-3, 1e-4])
    inside, outside = jnp.asarray(1.0 - t), jnp.asarray(1.0 + t)
    deriv = f
    for m in range(2 * power + 1):
        expected = (np.pi / 2) ** (2 * power) * math.factorial(2 * power) / math.factorial(2 * power - m)
        expected = expected * (-1) ** m * t ** (2 * power - m)
        np.testing.assert_allclose(jax.vmap(deriv)(inside), expected, rtol=1e-4, err_msg=str(m))
        np.testing.assert_array_equal(jax.vmap(deriv)(outside), 0.0)
        deriv = jax.grad(deriv)
    # Order 2p: a jump from (pi/2)^(2p) (2p)! inside to 0 outside.


@pytest.mark.parametrize("power", [0, -1, 1.5, 2.0, "2"])
def test_cosine_rejects_bad_power(power):
    with pytest.raises(ValueError):
        pd.Cosine(power=power)


def test_fbpinn_rejects_wrong_types():
    g = pd.Grid(pd.Interval(x, 0, 1), 3, 2.0)
    with pytest.raises(TypeError):
        pd.FBPINN("grid", pd.Polynomial(2))
    with pytest.raises(TypeError):
        pd.FBPINN(g, "poly")
    with pytest.raises(TypeError):
        pd.FBPINN(g, pd.Polynomial(2), window="cosine")


def test_fbpinn_sizes():
    g = pd.Grid(pd.Box([x, y], [0, 0], [1, 1]), (3, 4), 2.0)
    m = pd.FBPINN(g, pd.Polynomial(3))
    assert m.dim == 2 and m.num_subdomains == 12
    assert m.num_features == 10 and m.num_unknowns == 120
    assert isinstance(m.window, pd.Cosine)  # default window


POU_CASES = [
    (1, (7,), 2.9, pd.Cosine()),
    (1, (5,), 1.5, pd.Bump()),
    (1, (1,), 2.0, pd.Cosine()),
    (2, (4, 3), 2.0, pd.Cosine(power=3)),
    (2, (1, 5), 3.5, pd.Bump()),
    (1, (6,), 3.0, pd.BSpline(2)),
    (2, (5, 4), 4.0, pd.BSpline()),
]


@pytest.mark.parametrize("dim, shape, overlap, window", POU_CASES)
def test_partition_of_unity(dim, shape, overlap, window):
    box = pd.Box((x, y)[:dim], (-0.5, 1.0)[:dim], (1.5, 2.0)[:dim])
    model = FBPINN(pd.Grid(box, shape, overlap), Constant(), window)
    pts = jnp.asarray(np.concatenate([random_points(box, 200, seed=1), box.sample(9, "grid")]))
    if dim == 1:
        mis = ((0,), (1,), (2,))
    else:
        mis = ((0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2))
    idx, vals = evaluate_jit(model, pts, mis)
    total = {a: np.asarray(v[..., 0]).sum(axis=1) for a, v in vals.items()}
    zero = (0,) * dim
    np.testing.assert_allclose(total[zero], 1.0, rtol=0, atol=1e-12)
    for a in mis[1:]:
        # Derivatives of w_j are O(1/hw^|a|); their sum cancels to rounding error.
        np.testing.assert_allclose(total[a], 0.0, rtol=0, atol=1e-9, err_msg=str(a))
    # Each normalised window is the raw window divided by the sum of the raw windows.
    c, hw = np.asarray(model.decomposition.centres), np.asarray(model.decomposition.half_widths)
    s = (np.asarray(pts)[:, None, :] - c[None]) / hw[None]
    raw = np.asarray(jax.vmap(jax.vmap(window))(jnp.asarray(s)))  # (N, J)
    expected = raw / raw.sum(axis=1, keepdims=True)
    got = to_dense(idx, vals[zero], model.num_subdomains)[..., 0]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def test_partition_of_unity_via_local():
    box = pd.Box([x, y], [0, 0], [1, 2])
    model = FBPINN(pd.Grid(box, (3, 5), 2.9), Constant())

    @eqx.filter_jit
    def local_and_grad(model, p):
        idx, mask = model.decomposition.cover(p)
        loc = model.local(p, idx, mask)
        grad = jax.jacfwd(lambda q: jnp.sum(model.local(q, idx, mask)))(p)
        return loc, mask, grad

    loc, mask, grad = jax.vmap(local_and_grad, in_axes=(None, 0))(
        model, jnp.asarray(random_points(box, 40, seed=7))
    )
    assert loc.shape == (40, model.decomposition.max_cover, 1)
    np.testing.assert_allclose(jnp.sum(loc, axis=(1, 2)), 1.0, rtol=0, atol=1e-12)
    assert np.all(np.asarray(loc[..., 0])[np.asarray(mask) == 0] == 0)
    np.testing.assert_allclose(grad, 0.0, atol=1e-10)


def test_custom_basis_parameters_are_per_subdomain():
    box = pd.Box([x, y], [0, 0], [1, 1])
    model = pd.FBPINN(pd.Grid(box, (4, 3), 2.0), Tagged())
    np.testing.assert_array_equal(model.params["tag"], 10.0 + np.arange(12))
    pts = jnp.asarray(random_points(box, 50, seed=3))
    idx, vals = evaluate_jit(model, pts, ((0, 0),))
    v = np.asarray(vals[(0, 0)][..., 0])
    # sum_j w_j * tag_j, with the windows computed independently.
    pou = pd.FBPINN(pd.Grid(box, (4, 3), 2.0), Constant())
    idx2, w = evaluate_jit(pou, pts, ((0, 0),))
    np.testing.assert_array_equal(np.asarray(idx), np.asarray(idx2))
    w = np.asarray(w[(0, 0)][..., 0])
    np.testing.assert_allclose(v, w * (10.0 + np.asarray(idx)), rtol=1e-13)


# -- basis families ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["monomial", "legendre", "chebyshev"])
@pytest.mark.parametrize("degree", [0, 1, 2, 7])
def test_polynomial_1d_matches_numpy(kind, degree):
    basis = pd.Polynomial(degree, kind)
    assert basis.num_features(1) == degree + 1
    zs = np.linspace(-1, 1, 41)
    feats = np.asarray(jax.vmap(lambda zz: basis.features(None, zz))(jnp.asarray(zs)[:, None]))
    assert feats.shape == (41, degree + 1)
    for k in range(degree + 1):
        unit = np.zeros(k + 1)
        unit[k] = 1
        ref = {"monomial": zs**k, "legendre": npleg.legval(zs, unit), "chebyshev": npcheb.chebval(zs, unit)}[
            kind
        ]
        np.testing.assert_allclose(feats[:, k], ref, rtol=1e-12, atol=1e-13, err_msg=f"{kind} {k}")


def test_polynomial_default_kind_is_legendre():
    assert pd.Polynomial(3).kind == "legendre"


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("degree", [0, 1, 3, 5])
def test_polynomial_count_and_exponents(dim, degree):
    basis = pd.Polynomial(degree)
    e = basis.exponents(dim)
    assert basis.num_features(dim) == math.comb(degree + dim, dim) == len(e)
    assert e.shape == (len(e), dim)
    assert np.all(e.sum(axis=1) <= degree) and np.all(e >= 0)
    assert len({tuple(r) for r in e}) == len(e)  # all distinct: every monomial once
    assert tuple(e[0]) == (0,) * dim


@pytest.mark.parametrize("kind", ["monomial", "legendre", "chebyshev"])
def test_polynomial_tensor_products_2d_3d(kind):
    onedim = {
        "monomial": lambda zz, k: zz**k,
        "legendre": lambda zz, k: npleg.legval(zz, np.eye(k + 1)[k]),
        "chebyshev": lambda zz, k: npcheb.chebval(zz, np.eye(k + 1)[k]),
    }[kind]
    rng = np.random.default_rng(0)
    for dim in (2, 3):
        basis = pd.Polynomial(4, kind)
        e = basis.exponents(dim)
        zs = rng.uniform(-1, 1, (10, dim))
        feats = np.asarray(jax.vmap(lambda zz: basis.features(None, zz))(jnp.asarray(zs)))  # noqa: B023
        assert feats.shape == (10, len(e))
        ref = np.prod([[onedim(zs[:, i], a[i]) for i in range(dim)] for a in e], axis=1).T
        np.testing.assert_allclose(feats, ref, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("degree, kind", [(-1, "legendre"), (2.0, "legendre"), (3, "hermite"), (3, "")])
def test_polynomial_rejects_bad_args(degree, kind):
    with pytest.raises(ValueError):
        pd.Polynomial(degree, kind)


@pytest.mark.parametrize("activation, act", [("tanh", np.tanh), ("sin", np.sin), ("cos", np.cos)])
def test_random_features_formula(activation, act):
    box = pd.Box([x, y], [0, 0], [2, 1])
    basis = pd.RandomFeatures(8, activation, scale=2.0)
    model = pd.FBPINN(pd.Grid(box, (3, 2), 2.0), basis, seed=5)
    w, b = (np.asarray(p) for p in model.params)
    assert w.shape == (6, 8, 2) and b.shape == (6, 8)
    assert np.all(np.abs(w) <= 2.0) and np.all(np.abs(b) <= 2.0)
    assert np.abs(w).max() > 1.0  # drawn from [-scale, scale], not [-1, 1]
    zs = np.random.default_rng(1).uniform(-1, 1, (5, 2))
    # feats[j, i] = features of subdomain j at point i
    feats = jax.vmap(lambda pj: jax.vmap(lambda zz: basis.features(pj, zz))(jnp.asarray(zs)))(model.params)
    expected = act(np.einsum("jkd,id->jik", w, zs) + b[:, None, :])
    np.testing.assert_allclose(feats, expected, rtol=1e-13, atol=1e-15)
    # Matches init called directly with the model's key.
    direct = basis.init(jax.random.PRNGKey(5), 6, 2)
    for a, b2 in zip(model.params, direct):
        np.testing.assert_array_equal(a, b2)


def test_random_features_callable_activation():
    basis = pd.RandomFeatures(4, activation=lambda t: t**2)
    params = basis.init(jax.random.PRNGKey(0), 1, 1)
    pj = jax.tree_util.tree_map(lambda p: p[0], params)
    zz = jnp.array([0.3])
    w, b = pj
    np.testing.assert_allclose(basis.features(pj, zz), (w @ zz + b) ** 2)


def test_random_features_seeding():
    g = pd.Grid(pd.Interval(x, 0, 1), 5, 2.0)
    basis = pd.RandomFeatures(10, "tanh")
    a = pd.FBPINN(g, basis, seed=3).params
    b = pd.FBPINN(g, basis, seed=3).params
    c = pd.FBPINN(g, basis, seed=4).params
    for pa, pb, pc in zip(a, b, c):
        np.testing.assert_array_equal(pa, pb)
        assert not np.allclose(pa, pc)
    # Every subdomain draws its own weights.
    w, bias = (np.asarray(p) for p in a)
    for i in range(5):
        for j in range(i):
            assert not np.allclose(w[i], w[j]) and not np.allclose(bias[i], bias[j])


def test_host_draws_are_jax_randoms_numbers_bit_for_bit():
    """Random features are drawn with NumPy (`pdedsl.ansatz.basis.draws`): the numbers
    of jax.random's default generator, so a model's features are what they were when
    jax.random drew them (and what the recorded results used), without compiling the
    generator for each shape."""
    from pdedsl.ansatz.basis import draws

    for seed in (0, 3, 12345, 2**40 + 7):
        key = jax.random.PRNGKey(seed)
        for num in (1, 2, 3):
            np.testing.assert_array_equal(draws.split(key, num), np.asarray(jax.random.split(key, num)))
        np.testing.assert_array_equal(draws.split(jax.random.key(seed)), np.asarray(jax.random.split(key)))
        for shape in [(1,), (20, 12, 1), (7, 5, 3), (3, 1001)]:
            want = jax.random.uniform(key, shape, minval=-1.0, maxval=1.0)
            np.testing.assert_array_equal(draws.uniform(key, shape), np.asarray(want))
        # a model's parameters, against the same calls to jax.random
        kw, kb = jax.random.split(key)
        w, b = pd.RandomFeatures(6, scale=1.5).init(key, 4, 2)
        np.testing.assert_array_equal(
            w, 1.5 * np.asarray(jax.random.uniform(kw, (4, 6, 2), minval=-1, maxval=1))
        )
        np.testing.assert_array_equal(
            b, 1.5 * np.asarray(jax.random.uniform(kb, (4, 6), minval=-1, maxval=1))
        )
    with pytest.raises(ValueError, match="Threefry key"):
        draws.uniform(np.zeros(3, np.uint32), (2,))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size": 0},
        {"size": -3},
        {"size": 2.5},
        {"size": 4, "activation": "relu"},
        {"size": 4, "scale": 0.0},
        {"size": 4, "scale": -1.0},
    ],
)
def test_random_features_rejects_bad_args(kwargs):
    with pytest.raises(ValueError):
        pd.RandomFeatures(**kwargs)


# -- evaluation of derivatives ---------------------------------------------------------


# Fourth-order central stencils (offsets, weights) for first and second derivatives.
STENCILS = {
    1: ((-2, -1, 1, 2), np.array([1, -8, 8, -1]) / 12),
    2: ((-2, -1, 0, 1, 2), np.array([-1, 16, -30, 16, -1]) / 12),
}


def _fd_check(model, pts, mis, steps):
    """Compare `evaluate` derivatives with central differences of `evaluate` values
    (dense over all subdomains, so that a change of cover between stencil points is fine).
    Mixed derivatives use the tensor product of the 1D stencils."""
    J = model.num_subdomains
    zero = (0,) * model.dim
    idx, vals = evaluate_jit(model, pts, (zero, *mis))

    def value(p):
        i, v = evaluate_jit(model, p, (zero,))
        return to_dense(i, v[zero], J)

    for a in mis:
        axes = [(ax, k) for ax, k in enumerate(a) if k]
        fd = 0.0
        for combo in itertools.product(*[zip(*STENCILS[k]) for _, k in axes]):
            shift, weight = np.zeros(model.dim), 1.0
            for (ax, k), (offset, w) in zip(axes, combo):
                shift[ax] = offset * steps[ax]
                weight *= w / steps[ax] ** k
            fd = fd + weight * value(pts + shift)
        got = to_dense(idx, vals[a], J)
        err = np.linalg.norm(got - fd) / np.linalg.norm(got)
        assert err < 1e-6, (a, err)


def test_evaluate_derivatives_match_finite_differences_1d():
    box = pd.Interval(x, -1, 2)
    model = pd.FBPINN(pd.Grid(box, 6, 2.9), pd.RandomFeatures(8, "tanh", scale=2.0), seed=2)
    pts = jnp.asarray(random_points(box, 60, seed=4))
    hw = float(model.decomposition.half_widths[0, 0])
    _fd_check(model, pts, ((1,), (2,)), steps=[1e-3 * hw])


MIS_2D = ((0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2))


def _model_2d():
    """Shared by two tests, with the same point count: the second hits the JIT cache."""
    box = pd.Box([x, y], [0, -1], [1, 1])
    model = pd.FBPINN(pd.Grid(box, (3, 4), 2.0), pd.RandomFeatures(6, "sin"), window=pd.Bump(), seed=1)
    # Keep finite-difference stencils inside the domain (not needed mathematically, but tidy).
    pts = jnp.asarray(random_points(pd.Box([x, y], [0.01, -0.99], [0.99, 0.99]), 40, seed=5))
    return model, pts


def test_evaluate_derivatives_match_finite_differences_2d():
    model, pts = _model_2d()
    hw = np.asarray(model.decomposition.half_widths[0])
    _fd_check(model, pts, MIS_2D[1:], steps=1e-3 * hw)


def test_evaluate_shapes_and_padding():
    model, pts = _model_2d()
    idx, vals = evaluate_jit(model, pts, MIS_2D)
    P, K = model.decomposition.max_cover, model.num_features
    assert idx.shape == (40, P)
    assert set(vals) == set(MIS_2D)
    for v in vals.values():
        assert v.shape == (40, P, K)
    _, mask = jax.vmap(model.decomposition.cover)(pts)
    off = np.asarray(mask) == 0
    assert (~off).any()  # padding (off) may or may not occur, depending on the overlap
    for v in vals.values():
        assert np.all(np.asarray(v)[off] == 0)
        assert np.all(np.any(np.asarray(v)[~off] != 0, axis=-1))


def test_evaluate_traces_the_derivatives_once_whatever_the_chunks(monkeypatch):
    """Chunks of equal size: the per-point derivatives are traced (so compiled) once,
    for a number of points that no chunk size divides. (`lax.map` with a batch size
    traced a second copy for the remainder: a 2D Poisson assembly compiled 1.5 s
    instead of 1.0 s.) The values match one unchunked evaluation, and the chunks really
    were several."""
    import pdedsl.ansatz.model as model_module

    model, _ = _model_2d()
    pts = jnp.asarray(np.random.default_rng(0).uniform(0, 1, (37, 2)))
    monkeypatch.setattr(model_module, "_CHUNK_ENTRIES", 1)  # -> _CHUNK_MIN = 16 points per chunk
    traced = []
    cover = type(model.decomposition).cover
    monkeypatch.setattr(
        type(model.decomposition), "cover", lambda self, *a: traced.append(1) or cover(self, *a)
    )
    jaxpr = jax.make_jaxpr(lambda p: evaluate(model, p, MIS_2D))(pts)
    assert len(traced) == 1
    assert any(e.primitive.name == "scan" for e in jaxpr.eqns)  # three chunks of 13 points
    idx, vals = evaluate(model, pts, MIS_2D)
    idx1, vals1 = evaluate(model, pts, MIS_2D, chunked=False)
    np.testing.assert_array_equal(idx, idx1)
    for a in MIS_2D:
        np.testing.assert_allclose(vals[a], vals1[a], rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("kind", ["legendre", "chebyshev"])
def test_evaluate_exact_polynomial_derivatives_single_subdomain_1d(kind):
    a, b = -0.5, 2.5
    box = pd.Interval(x, a, b)
    model = pd.FBPINN(pd.Grid(box, 1, 2.0), pd.Polynomial(6, kind))
    c = float(model.decomposition.centres[0, 0])
    hw = float(model.decomposition.half_widths[0, 0])
    assert c == pytest.approx(1.0)
    pts = np.linspace(a, b, 23)
    idx, vals = evaluate_jit(model, jnp.asarray(pts)[:, None], ((0,), (1,), (2,), (3,)))
    assert np.all(np.asarray(idx) == 0)
    s = (pts - c) / hw
    val, der = (npleg.legval, npleg.legder) if kind == "legendre" else (npcheb.chebval, npcheb.chebder)
    for m in range(4):
        got = np.asarray(vals[(m,)])[:, 0, :]
        for k in range(7):
            coef = np.eye(7)[k]
            ref = val(s, der(coef, m) if m else coef) / hw**m
            np.testing.assert_allclose(got[:, k], ref, rtol=1e-10, atol=1e-10, err_msg=f"d^{m} P_{k}")


def test_evaluate_exact_polynomial_derivatives_single_subdomain_2d():
    box = pd.Box([x, y], [0, -1], [2, 3])
    basis = pd.Polynomial(4)
    model = pd.FBPINN(pd.Grid(box, (1, 1), 1.5), basis)
    c = np.asarray(model.decomposition.centres[0])
    hw = np.asarray(model.decomposition.half_widths[0])
    np.testing.assert_allclose(c, [1.0, 1.0])
    np.testing.assert_allclose(hw, [1.5, 3.0])
    pts = random_points(box, 25, seed=11)
    mis = ((0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2))
    _, vals = evaluate_jit(model, jnp.asarray(pts), mis)
    s = (pts - c) / hw
    e = basis.exponents(2)

    def leg(zz, k, m):
        coef = np.eye(k + 1)[k]
        return npleg.legval(zz, npleg.legder(coef, m) if m else coef)

    for mi in mis:
        got = np.asarray(vals[mi])[:, 0, :]
        ref = np.stack(
            [
                leg(s[:, 0], p, mi[0]) * leg(s[:, 1], q, mi[1]) / (hw[0] ** mi[0] * hw[1] ** mi[1])
                for p, q in e
            ],
            axis=1,
        )
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10, err_msg=str(mi))


# -- a custom basis end to end -------------------------------------------------------------


def test_custom_basis_solves_poisson_1d():
    domain = pd.Interval(x, 0, 1)
    u = pd.Function("u")(x)
    problem = pd.Problem(
        D(u, x, 2) == -(sp.pi**2) * sp.sin(sp.pi * x),
        domain=domain,
        conditions=[u.at(x=0) == 0, u.at(x=1) == 0],
    )
    model = pd.FBPINN(pd.Grid(domain, 4, 2.0), Fourier(6), seed=3)
    assert model.params.shape == (4,)
    sol = pd.solve(problem, model)
    assert sol.coefficients.shape == (4, 13)
    err = sol.errors(sp.sin(sp.pi * x))
    assert err["rel_l2"] <= 1e-6, err


# -- input validation (regressions of bugs found in review) ---------------------------


@pytest.mark.parametrize("multi_index", [(0, 1), (-1,)])
def test_evaluate_rejects_invalid_multi_index(multi_index):
    model = pd.FBPINN(pd.Grid(pd.Interval(x, 0, 1), 1, 2.0), pd.Polynomial(1))
    with pytest.raises(ValueError):
        evaluate(model, jnp.array([[0.3]]), [multi_index])


@pytest.mark.parametrize("overlap", [1.5, 2.0, 2.9])
def test_graded_grid_cover_matches_brute_force(overlap):
    """A graded axis (centres clustered at 0.3, uniform in the other axis): every
    point's covering subdomains, and only they, are found, each once."""
    box = pd.Box([x, y], [-1, 0], [1, 2])
    from pdedsl.demos import graded

    cx = graded(15, -1.0, 1.0, 0.3, 3.0)
    g = pd.Grid(box, (cx, 4), overlap)
    assert g.shape == (15, 4) and g.num_subdomains == 60
    pts = random_points(box, 400, seed=3)
    pts[:60] = np.asarray(g.centres)
    idx, mask = jax.vmap(g.cover)(jnp.asarray(pts))
    idx, mask = np.asarray(idx), np.asarray(mask)
    c, hw = np.asarray(g.centres), np.asarray(g.half_widths)
    truth = np.all(np.abs(pts[:, None, :] - c[None]) < hw[None], axis=-1)
    for i in range(len(pts)):
        got = idx[i][mask[i] > 0]
        assert len(got) == len(set(got.tolist()))
        assert set(got.tolist()) == set(np.nonzero(truth[i])[0].tolist())
        assert len(got) >= 1
    # neighbours overlap by at least (overlap - 1) times their gap
    gaps = np.diff(cx)
    hwx = np.asarray(g.half_widths)[::4, 0]
    assert np.all(hwx[1:] + hwx[:-1] >= overlap * gaps * (1 - 1e-12))


@pytest.mark.parametrize(
    "centres, match",
    [
        ([0.0, 0.5], "from the lower bound"),
        ([0.0, 0.6, 0.5, 1.0], "strictly increasing"),
        ([[0.0, 1.0]], "1-D array"),
        ([0.0, np.nan, 1.0], "finite"),
    ],
)
def test_graded_grid_rejects_bad_centres(centres, match):
    with pytest.raises(ValueError, match=match):
        pd.Grid(pd.Box([x, y], [0, 0], [1, 1]), (np.asarray(centres), 3), 2.0)


def test_graded_grid_resolves_a_boundary_layer():
    """eps u'' + u' = 0, u(0) = 0, u(1) = 1 (a layer of width eps = 1e-3 at x = 0):
    with the same subdomains, features and number of points, centres and points
    clustered in the layer reach 1e-7 where uniform ones fail completely."""
    eps = 1e-3
    v = pd.Function("u")(x)
    problem = pd.Problem(
        eps * D(v, x, 2) + D(v, x) == 0, pd.Interval(x, 0, 1), [v.at(x=0) == 0, v.at(x=1) == 1]
    )
    exact = (1 - sp.exp(-x / eps)) / (1 - sp.exp(-1 / eps))

    def clustered(m):
        return np.expm1(6.0 * np.linspace(0, 1, m)) / np.expm1(6.0)

    test = clustered(3000)[:, None]
    errs = {}
    for name, sub, pts in [
        ("uniform", 12, np.linspace(0, 1, 480)),
        ("graded", clustered(12), clustered(480)),
    ]:
        model = pd.FBPINN(pd.Grid(problem.domain, sub, 2.0), pd.Polynomial(8))
        errs[name] = pd.solve(problem, model, points=pts[:, None]).errors(exact, points=test)["rel_l2"]
    assert errs["graded"] <= 1e-7
    assert errs["uniform"] >= 0.1  # the layer is invisible to a uniform grid this coarse


# -- the closed-form derivative path against nested JVPs ----------------------------------


def _generic_evaluate(model, points, multi_indices):
    """The definition: nested JVPs through the whole windowed feature vector."""
    from pdedsl.lower.derivatives import derivative

    def per_point(p):
        idx, mask = model.decomposition.cover(p)
        f = lambda q: model.local(q, idx, mask)  # noqa: E731
        return idx, tuple(derivative(f, a)(p) for a in multi_indices)

    return jax.vmap(per_point)(points)


def _callable_tanh(t):
    return jnp.tanh(t)


@pytest.mark.parametrize(
    "case",
    [
        "legendre-1d",
        "monomial-2d",
        "chebyshev-3d",
        "tanh-2d",
        "sin-1d",
        "cos-2d-bump",
        "callable-2d",
        "periodic-grid-2d",
        "multilevel-2d",
        "bspline-multilevel-2d",
        "graded-2d",
        "mlp-2d",
        "periodic-input-1d",
        "corners-2d",
        "corners-along-an-edge-3d",
    ],
)
def test_evaluate_closed_form_matches_nested_jvps(case):
    """`evaluate` differentiates windows and features separately (Leibniz rule, the
    features in closed form for polynomials and random features); the nested JVPs
    through `model.local` are the definition. Every derivative up to order 4 in 1D, 3 in
    2D (mixed ones too) and 2 in 3D agrees to rounding, for every basis family and decomposition."""
    dim = 3 if "3d" in case else 2 if "2d" in case else 1
    syms = [x, y, pd.Symbol("z")][:dim]
    box = pd.Box(syms, [0.0, -1.0, 0.5][:dim], [1.0, 2.0, 1.0][:dim])
    window = pd.Bump() if "bump" in case else None
    if case.startswith(("legendre", "monomial", "chebyshev")):
        basis = pd.Polynomial(5, case.split("-")[0])
    elif case.startswith(("tanh", "sin", "cos")):
        basis = pd.RandomFeatures(7, case.split("-")[0], scale=1.5)
    elif case.startswith("callable"):
        basis = pd.RandomFeatures(7, _callable_tanh)
    elif case.startswith("mlp"):
        basis = pd.MLP(hidden=(5,))
    elif case.startswith("periodic-input"):
        from pdedsl.ansatz.basis.periodic import PeriodicInput

        basis = PeriodicInput(pd.Polynomial(4), axes=(0,), frequency=np.pi)
    else:
        basis = pd.Polynomial(4)
    if case.startswith("periodic-grid"):
        dec = pd.Grid(box, (4, 3), 2.5, periodic=[x])
    elif case.startswith("multilevel"):
        dec = pd.Multilevel(box, subdomains=[1, 2, 4], overlap=2.5)
    elif case.startswith("bspline-multilevel"):
        dec = pd.Multilevel(box, 3, bspline=3)
    elif case.startswith("graded"):
        dec = pd.Grid(box, (np.array([0.0, 0.1, 0.3, 1.0]), 3), 2.2)
    elif case.startswith("periodic-input"):
        dec = pd.Grid(box, 1, 2.0)
    else:
        dec = pd.Grid(box, (3,) * dim, 2.9)
    model = pd.FBPINN(dec, basis, window=window, seed=4)
    pts = jnp.asarray(random_points(box, 30, seed=7))
    if case.startswith("corners"):  # an L-shape (extruded along z in 3D): the corner's functions too
        notch = pd.Box(syms, [0.5, 0.5, 0.5][:dim], [1.0, 2.0, 1.0][:dim])
        domain = box - notch
        w = pd.Function("w")(*syms)
        problem = pd.Problem(sum(-D(w, s, 2) for s in syms) == 1, domain, [w.on(pd.boundary) == 0])
        model = pd.FBPINN(pd.Grid(domain, (3,) * dim, 2.2), pd.Polynomial(3)).with_corners(problem)
        assert model.corners is not None
        pts = pts[jnp.asarray(domain.contains(np.asarray(pts)))]
    top = {1: 4, 2: 3, 3: 2}[dim]
    mis = [a for a in itertools.product(range(top + 1), repeat=dim) if sum(a) <= top]
    idx, vals = jax.jit(lambda p: evaluate(model, p, mis))(pts)
    idx_ref, ref = jax.jit(lambda p: _generic_evaluate(model, p, mis))(pts)
    np.testing.assert_array_equal(np.asarray(idx), np.asarray(idx_ref))
    for a, r in zip(mis, ref):
        got, r = np.asarray(vals[a]), np.asarray(r)
        scale = np.max(np.abs(r))
        assert scale > 0, a
        np.testing.assert_allclose(got, r, rtol=0, atol=1e-11 * scale, err_msg=str(a))
