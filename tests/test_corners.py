"""Singular functions at re-entrant corners (`model.with_corners`, `pd.solve(corners=...)`).

Truth: manufactured solutions r^lambda g(lambda theta) + smooth, whose singular parts
are harmonic (in stretched coordinates for an anisotropic operator) and meet the
corner's conditions, so f comes from the smooth part alone; and P2 finite elements
for -Laplacian(u) = 1, whose solution has no closed form.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import pdedsl as pd
from pdedsl import D, Dn
from pdedsl.ansatz.corners import reentrant_corners, singular_terms

x, y = pd.Symbol("x"), pd.Symbol("y")
u = pd.Function("u")(x, y)
SQUARE = pd.Box([x, y], [0, 0], [1, 1])
L = SQUARE - pd.Box([x, y], [0.5, 0.5], [1, 1])


def _singular(lam, g, sx=1, sy=1):
    """r^lam g(lam theta) at the L's corner (0.5, 0.5), theta measured from the edge
    going up (x = 0.5, y > 0.5) through the domain, in coordinates divided by (sx, sy)."""
    X, Y = (x - sp.Rational(1, 2)) / sx, (y - sp.Rational(1, 2)) / sy
    phi = sp.atan2(-X, Y)
    theta = sp.Piecewise((phi, phi >= 0), (phi + 2 * sp.pi, True))
    return (X**2 + Y**2) ** (sp.Rational(lam) / 2) * g(sp.Rational(lam) * theta)


SMOOTH = sp.sin(2 * x) * sp.exp(y)
# the corner's two edges: theta = 0 (going up) and theta = 3 pi / 2 (going right)
UP = next(f for f in L.faces if str(f) == "x = 0.5 (0.5 <= y <= 1)")
RIGHT = next(f for f in L.faces if str(f) == "y = 0.5 (0.5 <= x <= 1)")


def test_reentrant_corners_of_domains():
    (c,) = reentrant_corners(L)
    assert c.point == (0.5, 0.5) and c.missing == (1, 1)
    assert [tuple(e) for e in c.edges] == [(0.0, 1.0), (1.0, 0.0)]
    hole = SQUARE - pd.Box([x, y], [0.375, 0.375], [0.625, 0.625])
    assert sorted(c.point for c in reentrant_corners(hole)) == [
        (0.375, 0.375),
        (0.375, 0.625),
        (0.625, 0.375),
        (0.625, 0.625),
    ]
    tee = pd.Box([x, y], [0, 0], [3, 1]) | pd.Box([x, y], [1, 0], [2, 3])
    assert sorted(c.point for c in reentrant_corners(tee)) == [(1.0, 1.0), (2.0, 1.0)]
    assert reentrant_corners(SQUARE) == ()
    z = pd.Symbol("z")
    fichera = pd.Box([x, y, z], [0, 0, 0], [1, 1, 1]) - pd.Box([x, y, z], [0.5, 0.5, 0.5], [1, 1, 1])
    assert reentrant_corners(fichera) == ()  # edges in 3D: not handled


@pytest.mark.parametrize(
    "kinds, want",
    [
        (("dirichlet", "dirichlet"), [(2 / 3, "sin"), (4 / 3, "sin")]),
        (("neumann", "neumann"), [(2 / 3, "cos"), (4 / 3, "cos")]),
        (("dirichlet", "neumann"), [(1 / 3, "sin"), (5 / 3, "sin")]),
        (("neumann", "dirichlet"), [(1 / 3, "cos"), (5 / 3, "cos")]),
    ],
)
def test_singular_functions_are_harmonic_and_meet_the_edge_conditions(kinds, want):
    got = singular_terms(kinds, 2)
    assert [g for _, g in got] == [g for _, g in want]
    np.testing.assert_allclose([lam for lam, _ in got], [lam for lam, _ in want], rtol=1e-14)
    problem = pd.Problem(
        -D(u, x, 2) - D(u, y, 2) == 1,
        L,
        [
            (u if kinds[0] == "dirichlet" else Dn(u)).on(UP) == 0,
            (u if kinds[1] == "dirichlet" else Dn(u)).on(RIGHT) == 0,
            *[u.on(f) == 0 for f in L.faces if f not in (UP, RIGHT)],
        ],
    )
    model = pd.FBPINN(pd.Grid(L, 2, 2.0), pd.Polynomial(2)).with_corners(problem)
    feats = model.corners
    assert [(d["exponent"], d["function"]) for d in feats.summary()] == [
        pytest.approx((lam, g)) for lam, g in want
    ]
    r = 0.05 + 0.2 * np.linspace(0, 1, 7)
    up = jnp.asarray(np.c_[0.5 + 0 * r, 0.5 + r])  # the edge x = 0.5, theta = 0
    right = jnp.asarray(np.c_[0.5 + r, 0.5 + 0 * r])  # the edge y = 0.5, theta = 3 pi / 2
    grad = jax.vmap(jax.jacfwd(feats.terms))
    for pts, normal, kind in ((up, 0, kinds[0]), (right, 1, kinds[1])):
        if kind == "dirichlet":
            np.testing.assert_allclose(jax.vmap(feats.terms)(pts), 0.0, atol=1e-15)
        else:
            np.testing.assert_allclose(grad(pts)[:, :, normal], 0.0, atol=1e-13)
    inside = jnp.asarray([[0.3, 0.2], [0.45, 0.7], [0.8, 0.3], [0.49, 0.51]])
    lap = jax.vmap(lambda p: jnp.trace(jax.hessian(feats.terms)(p), axis1=1, axis2=2))(inside)
    np.testing.assert_allclose(lap, 0.0, atol=1e-11)


def test_singular_solution_on_the_lshape():
    """u = r^(2/3) sin(2 theta / 3) + sin(2x) e^y: without the corner functions the fit
    converges to another function (the error grows as the grid is refined)."""
    exact = _singular(sp.Rational(2, 3), sp.sin) + SMOOTH
    f = -(sp.diff(SMOOTH, x, 2) + sp.diff(SMOOTH, y, 2))
    problem = pd.Problem(-D(u, x, 2) - D(u, y, 2) == f, L, [u.on(pd.boundary) == exact])
    errors = {}
    for n in (4, 8):
        model = pd.FBPINN(pd.Grid(L, n, 2.0), pd.Polynomial(5))
        for corners in (None, False):
            sol = pd.solve(problem, model, points=(10 * n, 10 * n), corners=corners)
            errors[n, corners] = sol.errors(exact)["rel_l2"]
            assert (sol.info["corners"] is None) == (corners is False)
    # measured: 1.2e-6 / 5.8e-7 with them, 6.0e-3 / 1.0e-2 without (with the slivers along
    # the hole kept, pd.Grid(..., trim=False): 1.8e-7 / 4.6e-7 and 3.8e-3 / 9.6e-3)
    assert errors[4, None] < 2e-6 and errors[8, None] < 2e-6
    assert errors[4, False] > 1e-3 and errors[8, False] > errors[4, False]


def test_mixed_conditions_and_anisotropic_operator():
    # Dirichlet on x = 0.5 (theta = 0), Neumann on y = 0.5: r^(1/3) sin(theta / 3)
    exact = _singular(sp.Rational(1, 3), sp.sin) + SMOOTH
    f = -(sp.diff(SMOOTH, x, 2) + sp.diff(SMOOTH, y, 2))
    # the outward normal on RIGHT is +y, and the singular part has zero slope there
    conditions = [Dn(u).on(RIGHT) == sp.diff(SMOOTH, y)]
    conditions += [u.on(face) == exact for face in L.faces if face != RIGHT]
    problem = pd.Problem(-D(u, x, 2) - D(u, y, 2) == f, L, conditions)
    sol = pd.solve(problem, pd.FBPINN(pd.Grid(L, 6, 2.0), pd.Polynomial(5)), points=(120, 120))
    assert [d["conditions"] for d in sol.info["corners"]] == ["dirichlet/neumann"] * 2
    # measured 1.8e-6 (6.6e-2 with corners=False at 60^2 points; FEM P2 h=1/128: 1.7e-3)
    assert sol.errors(exact)["rel_l2"] < 1e-5
    # 4 u_xx + u_yy: singular in the coordinates ((x - 1/2) / 2, y - 1/2)
    exact = _singular(sp.Rational(2, 3), sp.sin, sx=2) + SMOOTH
    f = 4 * sp.diff(SMOOTH, x, 2) + sp.diff(SMOOTH, y, 2)
    problem = pd.Problem(4 * D(u, x, 2) + D(u, y, 2) == f, L, [u.on(pd.boundary) == exact])
    sol = pd.solve(problem, pd.FBPINN(pd.Grid(L, 6, 2.0), pd.Polynomial(5)), points=(60, 60))
    assert sol.errors(exact)["rel_l2"] < 1e-5  # measured 2.8e-6 (9.8e-3 with corners=False)


def test_constant_source_on_a_square_with_a_hole_against_fem():
    """-Laplacian(u) = 1, u = 0 on a square with a square hole: four re-entrant corners."""
    hole = SQUARE - pd.Box([x, y], [0.375, 0.375], [0.625, 0.625])
    problem = pd.Problem(-D(u, x, 2) - D(u, y, 2) == 1, hole, [u.on(pd.boundary) == 0])
    fem = pd.finite_elements(problem, 1 / 128, degree=2)
    model = pd.FBPINN(pd.Grid(hole, 8, 2.0), pd.Polynomial(6))
    sol = pd.solve(problem, model)
    assert len({d["point"] for d in sol.info["corners"]}) == 4
    assert "4 re-entrant corner(s)" in sol.report()
    # measured: 3.3e-4 (1.1e-4 against P2 h=1/256, so mostly the reference's own error);
    # without the corner functions 9.7e-2
    assert sol.compare(fem)["rel_l2"] < 1e-3
    assert pd.solve(problem, model, corners=False).compare(fem)["rel_l2"] > 5e-2


def test_corners_refused_where_they_do_not_apply(tmp_path):
    mixed = pd.Problem(D(u, x, 2) + D(u, x, y) + D(u, y, 2) == 1, L, [u.on(pd.boundary) == 0])
    model = pd.FBPINN(pd.Grid(L, 4, 2.0), pd.Polynomial(4))
    with pytest.raises(ValueError, match="principal part"):
        model.with_corners(mixed)
    with pytest.raises(ValueError, match="principal part"):
        pd.solve(mixed, model, corners=True)
    with pytest.warns(pd.CornerWarning, match="principal part"):  # automatic: skipped, said
        assert pd.solve(mixed, model).info["corners"] is None
    square = pd.Problem(D(u, x, 2) + D(u, y, 2) == 1, SQUARE, [u.on(pd.boundary) == 0])
    with pytest.raises(ValueError, match="no re-entrant corner"):
        pd.FBPINN(pd.Grid(SQUARE, 2, 2.0), pd.Polynomial(3)).with_corners(square)
    with pytest.raises(TypeError, match="corners must be"):
        pd.solve(square, pd.FBPINN(pd.Grid(SQUARE, 2, 2.0), pd.Polynomial(3)), corners="yes")
    poisson = pd.Problem(-D(u, x, 2) - D(u, y, 2) == 1, L, [u.on(pd.boundary) == 0])
    enriched = model.with_corners(poisson)
    other = SQUARE - pd.Box([x, y], [0.25, 0.25], [1, 1])
    with pytest.raises(ValueError, match="not all re-entrant"):
        pd.solve(pd.Problem(-D(u, x, 2) - D(u, y, 2) == 1, other, [u.on(pd.boundary) == 0]), enriched)
    # saved and loaded with its corner functions
    sol = pd.solve(poisson, enriched, points=(40, 40))
    sol.save(tmp_path / "corner.pdedsl")
    back = pd.load(tmp_path / "corner.pdedsl")
    pts = L.sample((9, 9), "grid")
    np.testing.assert_allclose(np.asarray(back(pts)), np.asarray(sol(pts)), rtol=0, atol=1e-14)
    assert back.model.corners is not None


# --- re-entrant edges (3D, space-time) and nonlinear equations -----------------------

z, t = pd.Symbol("z"), pd.Symbol("t")


def test_reentrant_edges_of_prisms_and_not_of_fichera():
    prism = pd.Box([x, y, z], [0, 0, 0], [1, 1, 2]) - pd.Box([x, y, z], [0.5, 0.5, 0], [1, 1, 2])
    (c,) = reentrant_corners(prism)
    assert (c.axes, c.point, c.missing) == ((0, 1), (0.5, 0.5), (1, 1))
    # a slot through the cube along x: two edges in the (y, z) plane
    slot = pd.Box([x, y, z], [0, 0, 0], [1, 1, 1]) - pd.Box([x, y, z], [0, 0.25, 0.5], [1, 0.75, 1])
    assert sorted((c.axes, c.point) for c in reentrant_corners(slot)) == [
        ((1, 2), (0.25, 0.5)),
        ((1, 2), (0.75, 0.5)),
    ]
    fichera = pd.Box([x, y, z], [0, 0, 0], [1, 1, 1]) - pd.Box([x, y, z], [0.5, 0.5, 0.5], [1, 1, 1])
    assert reentrant_corners(fichera) == ()  # its three edges end at the vertex
    w = pd.Function("w")(x, y, z)
    problem = pd.Problem(D(w, x, 2) + D(w, y, 2) + D(w, z, 2) == 1, fichera, [w.on(pd.boundary) == 0])
    model = pd.FBPINN(pd.Grid(fichera, 2, 2.0), pd.Polynomial(2))
    with pytest.raises(ValueError, match="ends inside the domain"):
        model.with_corners(problem)
    with pytest.warns(pd.CornerWarning, match="Fichera"):
        pd.solve(problem, model, points=(8, 8, 8))


def test_laplace_on_an_lshaped_prism():
    """-Laplacian(w) = f in 3D on L x [0, 1], w = (1 + z) r^(2/3) sin(2 theta / 3) + smooth:
    an elliptic equation along the edge too."""
    w = pd.Function("w")(x, y, z)
    prism = pd.Box([x, y, z], [0, 0, 0], [1, 1, 1]) - pd.Box([x, y, z], [0.5, 0.5, 0], [1, 1, 1])
    smooth = sp.sin(2 * x) * sp.exp(y) * sp.cos(z)
    exact = (1 + z) * _singular(sp.Rational(2, 3), sp.sin) + smooth
    f = -(sp.diff(smooth, x, 2) + sp.diff(smooth, y, 2) + sp.diff(smooth, z, 2))
    problem = pd.Problem(-D(w, x, 2) - D(w, y, 2) - D(w, z, 2) == f, prism, [w.on(pd.boundary) == exact])
    model = pd.FBPINN(pd.Grid(prism, (4, 4, 2), 2.0), pd.Polynomial(4))
    sol = pd.solve(problem, model, points=(24, 24, 12))
    assert [d["edge_degree"] for d in sol.info["corners"]] == [4, 4]
    # measured 1.4e-5; 7.0e-3 with corners=False
    assert sol.errors(exact)["rel_l2"] < 1e-4


def test_a_slot_through_a_cube_against_fem():
    """-Laplacian(w) = 1, w = 0 on the unit cube minus a slot along x: two re-entrant edges
    in the (y, z) plane. Without their functions the fit does not converge to FEM's
    solution as the grid is refined (6.5e-2 at 2x4x4 subdomains, 5.6e-2 at 4x8x8); with
    them it does (2.4e-2, then 4.1e-3)."""
    w = pd.Function("w")(x, y, z)
    slot = pd.Box([x, y, z], [0, 0, 0], [1, 1, 1]) - pd.Box([x, y, z], [0, 0.25, 0.5], [1, 0.75, 1])
    problem = pd.Problem(-D(w, x, 2) - D(w, y, 2) - D(w, z, 2) == 1, slot, [w.on(pd.boundary) == 0])
    fem = pd.finite_elements(problem, 1 / 16, degree=2)
    pts = slot.sample((21, 21, 21))
    ref = np.asarray(fem(pts))
    errors, info = {}, {}
    for corners in (None, False):
        model = pd.FBPINN(pd.Grid(slot, (4, 8, 8), 2.0), pd.Polynomial(4))
        sol = pd.solve(problem, model, points=(24, 40, 40), corners=corners)
        errors[corners] = np.linalg.norm(np.asarray(sol(pts)) - ref) / np.linalg.norm(ref)
        info[corners] = sol.info["corners"]
    assert {(d["axes"], d["point"]) for d in info[None]} == {((1, 2), (0.25, 0.5)), ((1, 2), (0.75, 0.5))}
    assert info[False] is None
    # measured 4.1e-3 and 5.6e-2 (P2 h=1/16 and 1/32 differ by 2.6e-3). Before the grid dropped
    # the slivers along the slot (pd.Grid(..., trim=False): 232 subdomains, not 200) they
    # were 6.5e-3 and 0.20.
    assert errors[None] < 1e-2 and errors[False] > 3e-2


def _heat_on_a_space_time_lshape():
    """u_t = Laplacian(u) on the L x [0, 1/2], u = (1 + t) r^(2/3) sin(2 theta / 3) + sin(2x) e^(y - t):
    the singular part's coefficient grows in time, so it needs polynomials along the edge."""
    v = pd.Function("v")(x, y, t)
    dom = pd.Box([x, y, t], [0, 0, 0], [1, 1, 0.5]) - pd.Box([x, y, t], [0.5, 0.5, 0], [1, 1, 0.5])
    singular = _singular(sp.Rational(2, 3), sp.sin)
    smooth = sp.sin(2 * x) * sp.exp(y - t)
    exact = (1 + t) * singular + smooth
    walls = [v.on(face) == exact for face in dom.faces if face.axis != 2]
    problem = pd.Problem(
        D(v, t) - D(v, x, 2) - D(v, y, 2) == singular + 2 * smooth,  # the singular part is harmonic
        dom,
        [v.at(t=0) == exact.subs(t, 0), *walls],
    )
    return problem, exact


def test_space_time_lshape_globally_and_by_time_marching():
    problem, exact = _heat_on_a_space_time_lshape()
    model = pd.FBPINN(pd.Grid(problem.domain, (4, 4, 2), 2.0), pd.Polynomial(5))
    enriched = model.with_corners(problem)
    (term, _) = enriched.corners.summary()
    assert term["axes"] == (0, 1) and term["edge_degree"] == 5  # the basis's degree along t
    sol = pd.solve(problem, model, points=(24, 24, 12))
    assert sol.info["corners"] == enriched.corners.summary()
    # measured 1.8e-6; without the corner functions 1.1e-2 (1.3e-2 at 8^2 x 2 subdomains, 80^2 x 16 points)
    assert sol.errors(exact)["rel_l2"] < 1e-4
    assert pd.solve(problem, model, points=(24, 24, 12), corners=False).errors(exact)["rel_l2"] > 3e-3
    marched = pd.solve(
        problem,
        pd.FBPINN(pd.Grid(problem.domain, (4, 4, 3), 2.0), pd.Polynomial(4)),
        points=(24, 24, 18),
        schedule=pd.TimeMarching(t, active=2),
    )
    assert marched.info["corners"] is not None
    assert marched.errors(exact)["rel_l2"] < 1e-4  # measured 1.4e-5 (1.1e-2 with corners=False)


def test_semilinear_equation_on_the_lshape():
    exact = _singular(sp.Rational(2, 3), sp.sin) + SMOOTH
    f = -(sp.diff(SMOOTH, x, 2) + sp.diff(SMOOTH, y, 2)) + exact**3
    problem = pd.Problem(-D(u, x, 2) - D(u, y, 2) + u**3 == f, L, [u.on(pd.boundary) == exact])
    model = pd.FBPINN(pd.Grid(L, 4, 2.0), pd.Polynomial(5))
    sol = pd.solve(problem, model, points=(48, 48))
    assert sol.info["corners"] is not None and sol.info["solver"].startswith("GaussNewton")
    # measured 1.2e-6 (4.2e-3 with corners=False; 8^2 subdomains at 96^2 points: 5.4e-7 and 7.5e-3)
    assert sol.errors(exact)["rel_l2"] < 1e-5
    assert pd.solve(problem, model, points=(48, 48), corners=False).errors(exact)["rel_l2"] > 1e-3
    # an anisotropy that depends on u: no singular functions, and a warning that says why
    quasi = pd.Problem(-(1 + u**2) * D(u, x, 2) - D(u, y, 2) == 1, L, [u.on(pd.boundary) == 0])
    with pytest.warns(pd.CornerWarning, match="depend on u"):
        assert (
            pd.solve(quasi, pd.FBPINN(pd.Grid(L, 2, 2.0), pd.Polynomial(3)), points=(20, 20)).info["corners"]
            is None
        )


def test_the_wave_equation_is_not_enriched_along_time():
    v = pd.Function("v")(x, y, t)
    dom = pd.Box([x, y, t], [0, 0, 0], [1, 1, 1]) - pd.Box([x, y, t], [0.5, 0.5, 0], [1, 1, 1])
    walls = [v.on(face) == 0 for face in dom.faces if face.axis != 2]
    problem = pd.Problem(
        D(v, t, 2) - D(v, x, 2) - D(v, y, 2) == 0,
        dom,
        [v.at(t=0) == sp.sin(sp.pi * x) * sp.sin(sp.pi * y), D(v, t).at(t=0) == 0, *walls],
    )
    with pytest.raises(ValueError, match="hyperbolic along the edge"):
        pd.FBPINN(pd.Grid(dom, 2, 2.0), pd.Polynomial(3)).with_corners(problem)


def test_train_warns_without_corner_functions_and_trains_them_when_given():
    exact = _singular(sp.Rational(2, 3), sp.sin) + SMOOTH
    f = -(sp.diff(SMOOTH, x, 2) + sp.diff(SMOOTH, y, 2))
    problem = pd.Problem(-D(u, x, 2) - D(u, y, 2) == f, L, [u.on(pd.boundary) == exact])
    model = pd.FBPINN(pd.Grid(L, 4, 2.0), pd.MLP(hidden=(16,)))
    with pytest.warns(pd.CornerWarning, match="with_corners"):
        plain = pd.train(problem, model, steps=1000, progress=False)
    enriched = model.with_corners(problem)
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.CornerWarning)
        sol = pd.train(problem, enriched, steps=1000, progress=False)
    # measured 3.5e-2 with them, 7.2e-2 without (2,000 steps: 1.2e-2 and 3.8e-2)
    assert sol.errors(exact)["rel_l2"] < 0.7 * plain.errors(exact)["rel_l2"]
    # a PINN (one network) on the L-shape, the baseline's usual form
    pinn = pd.PINN(L, hidden=(8,))
    assert pinn.num_subdomains == 1 and pinn.with_corners(problem).corners is not None


def test_model_features_are_the_windowed_features_without_the_window():
    """What the time-marching consistency rows compare across subdomains (pd.solve and
    pd.train): the basis functions and the corner functions along the edge."""
    problem, _ = _heat_on_a_space_time_lshape()
    model = pd.FBPINN(pd.Grid(problem.domain, (2, 2, 3), 2.0), pd.MLP(hidden=(8,))).with_corners(problem)
    dec = model.decomposition
    for point in ([0.45, 0.55, 0.2], [0.3, 0.2, 0.4]):
        xp = jnp.asarray(point)
        idx, mask = dec.cover(xp)
        windowed = model.local(xp, idx, mask)
        w = dec.normalise(jax.vmap(model.window)(dec.local_coordinates(xp, idx)) * mask)
        for k in np.flatnonzero(np.asarray(w) > 1e-3):
            np.testing.assert_allclose(
                np.asarray(model.features(xp, idx[k])), np.asarray(windowed[k] / w[k]), rtol=1e-12, atol=1e-14
            )
    assert model.features(jnp.asarray([0.45, 0.55, 0.2]), idx[0]).shape == (model.num_features,)
    # pd.train marches an enriched model (the consistency rows include its corner functions)
    sol = pd.train(problem, model, steps=50, schedule=pd.TimeMarching(t, active=2), progress=False)
    assert np.isfinite(sol.info["loss_history"]).all()
