"""A box minus boxes (the L-shaped domain): membership, sampling, boundary and normals,
problems and solves on it, decompositions that cover its bounding box."""

import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import pdedsl as pd
from pdedsl import D, Dn
from pdedsl.geometry import SAMPLERS, Facet
from pdedsl.solve.solve import collocation

x, y, z = pd.Symbol("x"), pd.Symbol("y"), pd.Symbol("z")
SQUARE = pd.Box([x, y], [0, 0], [1, 1])
L = SQUARE - pd.Box([x, y], [0.5, 0.5], [1, 1])
CUBE = pd.Box([x, y, z], [0, 0, 0], [1, 1, 1])
FICHERA = CUBE - pd.Box([x, y, z], [0.5, 0.5, 0.5], [1, 1, 1])


def test_box_minus_box_is_a_difference():
    assert isinstance(L, pd.Difference)
    assert L.coords == (x, y) and L.dim == 2
    assert L.lower == (0.0, 0.0) and L.upper == (1.0, 1.0)
    assert L.bounding_box == SQUARE
    assert L.volume == pytest.approx(0.75)
    assert FICHERA.volume == pytest.approx(7 / 8)
    twice = L - pd.Box([x, y], [0, 0], [0.25, 0.25])
    assert len(twice.holes) == 2 and twice.volume == pytest.approx(0.75 - 1 / 16)


def test_contains_keeps_the_reentrant_edges_and_drops_the_cut_outer_boundary():
    pts = np.array(
        [
            [0.5, 0.7],  # on the re-entrant edge x = 0.5: in the (closed) domain
            [0.7, 0.5],  # on the re-entrant edge y = 0.5
            [0.5, 0.5],  # the re-entrant corner
            [0.25, 0.9],
            [0.9, 0.25],
            [0.7, 0.7],  # inside the hole
            [1.0, 0.7],  # the part of x = 1 that was cut away
            [0.7, 1.0],  # the part of y = 1 that was cut away
            [1.0, 1.0],
            [0.5 + 1e-9, 0.7],  # just inside the hole
            [1.1, 0.2],  # outside the bounding box
        ]
    )
    expected = [True, True, True, True, True, False, False, False, False, False, False]
    np.testing.assert_array_equal(L.contains(pts), expected)


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("domain", [L, FICHERA], ids=["L", "fichera"])
def test_samples_lie_in_the_domain(domain, sampler):
    pts = domain.sample(500, sampler, seed=3)
    assert pts.shape[1] == domain.dim
    assert np.all(domain.contains(pts))
    if sampler == "grid":
        assert 0.8 * 500 <= len(pts) <= 1.25 * 500  # about n points in the domain, not in the box
    else:
        assert len(pts) == 500
        # they fill the domain: the fraction in the "arm" x > 0.5 matches its share of the volume
        arm = np.mean(pts[:, 0] > 0.5)
        share = (0.25 if domain is L else 0.375) / domain.volume
        assert abs(arm - share) < 0.08


def test_grid_sample_of_a_shape_is_the_box_grid_restricted():
    pts = L.sample((11, 11))
    assert len(pts) == 121 - 25  # the 5 x 5 grid points strictly inside the hole are gone
    assert np.any(np.all(pts == [0.5, 1.0], axis=1))  # the top of the re-entrant edge stays


def _check_outward(domain, facet):
    """Points of the facet: stepping along the normal leaves the domain, against it stays in."""
    pts = facet.sample(60)
    n = facet.normal
    eps = 1e-6
    # stay off the facet's own edges, where another face may continue the boundary
    lo, hi = np.asarray(facet.box.lower), np.asarray(facet.box.upper)
    others = [i for i in range(domain.dim) if i != facet.axis]
    pad = 0.05 * (hi - lo)
    keep = np.all(
        (pts[:, others] > lo[others] + pad[others]) & (pts[:, others] < hi[others] - pad[others]), axis=1
    )
    pts = pts[keep]
    assert len(pts) > 0
    assert np.all(domain.contains(pts))
    assert not np.any(domain.contains(pts + eps * n))
    assert np.all(domain.contains(pts - eps * n))


def test_the_l_shape_has_six_edges_with_outward_normals():
    faces = L.faces
    assert len(faces) == 6 and all(isinstance(f, Facet) for f in faces)
    got = {(str(f), tuple(f.normal)) for f in faces}
    assert got == {
        ("x = 0 (0 <= y <= 1)", (-1.0, 0.0)),
        ("x = 0.5 (0.5 <= y <= 1)", (1.0, 0.0)),
        ("x = 1 (0 <= y <= 0.5)", (1.0, 0.0)),
        ("y = 0 (0 <= x <= 1)", (0.0, -1.0)),
        ("y = 0.5 (0.5 <= x <= 1)", (0.0, 1.0)),
        ("y = 1 (0 <= x <= 0.5)", (0.0, 1.0)),
    }
    length = sum(np.prod([f.box.lengths[i] for i in range(2) if i != f.axis]) for f in faces)
    assert length == pytest.approx(4.0)
    for f in faces:
        _check_outward(L, f)


def test_fichera_boundary_covers_the_surface_with_outward_normals():
    faces = FICHERA.faces
    area = sum(np.prod([f.box.lengths[i] for i in range(3) if i != f.axis]) for f in faces)
    assert area == pytest.approx(6.0)  # removing a corner octant keeps the surface area
    for f in faces:
        _check_outward(FICHERA, f)


def test_interval_minus_interval_has_four_end_points():
    iv = pd.Interval(x, 0, 1) - pd.Interval(x, 0.3, 0.6)
    assert [(f.value, f.normal[0]) for f in iv.faces] == [(0, -1), (0.3, 1), (0.6, -1), (1, 1)]


def test_slices_split_into_boundary_and_interior_pieces():
    pieces = L.slice(0, 0.5)
    assert {str(p): None if p.normal is None else tuple(p.normal) for p in pieces} == {
        "x = 0.5 (0.5 <= y <= 1)": (1.0, 0.0),
        "x = 0.5 (0 <= y <= 0.5)": None,
    }
    (right,) = L.slice(0, 1.0)
    assert str(right) == "x = 1 (0 <= y <= 0.5)" and tuple(right.normal) == (1.0, 0.0)
    (inner,) = L.slice(1, 0.25)
    assert inner.normal is None and tuple(inner.box.lower) == (0.0, 0.0) and inner.box.upper[0] == 1.0
    assert L.face(y=0.75) == L.slice(1, 0.75)[0]
    with pytest.raises(ValueError, match="2 pieces"):
        L.face(x=0.5)
    with pytest.raises(ValueError, match="outside the domain"):
        L.slice(0, 1.5)
    assert L.normal_at((0.5, 0.75)) is not None and L.normal_at((0.5, 0.5)) is None


@pytest.mark.parametrize(
    "hole, match",
    [
        (pd.Box([x, y], [2, 2], [3, 3]), "changes nothing"),
        (pd.Box([x, y], [1, 0], [2, 1]), "changes nothing"),  # only touches a face
        (pd.Box([x, y], [-1, -1], [2, 2]), "leaves nothing"),
        (pd.Box([y, x], [0.5, 0.5], [1, 1]), "same order"),
    ],
)
def test_bad_differences_are_refused(hole, match):
    with pytest.raises(ValueError, match=match):
        SQUARE - hole


def test_only_boxes_can_be_subtracted():
    with pytest.raises(TypeError):
        SQUARE - 1


# -- problems and solves -----------------------------------------------------------------------

u = pd.Function("u")(x, y)
EXACT = sp.sin(2 * x) * sp.exp(y) + x * y**2


def _problem(conditions=None):
    f = sp.diff(EXACT, x, 2) + sp.diff(EXACT, y, 2) + EXACT
    conditions = conditions or [u.on(pd.boundary) == EXACT]
    return pd.Problem(D(u, x, 2) + D(u, y, 2) + u == f, domain=L, conditions=conditions)


def test_problem_on_the_l_shape_lowers_one_condition_per_edge():
    p = _problem()
    assert len(p.lowered_conditions) == 6
    assert {str(c.region) for c in p.lowered_conditions} == {str(f) for f in L.faces}
    # u.at(x=1) is the part of x = 1 that belongs to the domain
    q = _problem([u.at(x=1) == 0, u.at(x=0) == 0])
    assert [str(c.region) for c in q.lowered_conditions] == ["x = 1 (0 <= y <= 0.5)", "x = 0 (0 <= y <= 1)"]


def test_normal_derivative_inside_the_l_shape_is_refused():
    with pytest.raises(ValueError, match="normal"):
        _problem([Dn(u).at(x=0.5) == 0])  # half of x = 0.5 is interior


def test_solve_on_the_l_shape_with_dirichlet_and_neumann_reaches_a_tight_tolerance():
    dn = {(1.0, 0.0): sp.diff(EXACT, x), (0.0, 1.0): sp.diff(EXACT, y)}
    # the normal derivative on the two re-entrant edges, the values elsewhere
    reentrant = [f for f in L.faces if f.value == 0.5]
    neumann = [Dn(u).on(f) == dn[tuple(f.normal)] for f in reentrant]
    dirichlet = [u.on(f) == EXACT for f in L.faces if f.value != 0.5]
    p = _problem(dirichlet + neumann)
    model = pd.FBPINN(pd.Grid(L, 4, 2.0), pd.Polynomial(6))
    # the one centred at (1, 1) sees only the hole; those at (2/3, 1) and (1, 2/3) hold a
    # quarter of their box in the L (slivers): dropped
    assert model.num_subdomains == 13
    sol = pd.solve(p, model, points=(30, 30))
    err = sol.errors(EXACT)
    assert err["rel_l2"] < 1e-7, err
    assert err["points"] > 1500


@pytest.mark.parametrize(
    "solver",
    [pd.SparseNormal(), pd.DenseLeastSquares(), pd.LSMR(pd.BlockFilter()), pd.CGNormal(pd.AdditiveSchwarz())],
    ids=["sparse", "dense", "lsmr", "cg-schwarz"],
)
def test_a_grid_on_the_bounding_box_leaves_empty_subdomains_that_every_solver_copes_with(solver):
    p = _problem()
    grid = pd.Grid(SQUARE, 4, 2.0)  # 16 subdomains; the one at (1, 1) sees no point of L
    model = pd.FBPINN(grid, pd.Polynomial(5))
    system = pd.assemble(model, collocation(p, model, (30, 30)))
    assert int(jnp.sum(jnp.all(system.rmv_squares() == 0, axis=1))) == 1  # one empty subdomain
    sol = pd.solve(p, model, points=(30, 30), solver=solver)
    assert sol.info["success"]
    assert sol.errors(EXACT)["rel_l2"] < 1e-6


def test_untrimmed_grid_keeps_exactly_the_subdomains_that_meet_the_domain():
    full = pd.Grid(SQUARE, 9, 2.5)
    grid = pd.Grid(L, 9, 2.5, trim=False)
    c, hw = np.asarray(full.centres), np.asarray(full.half_widths)
    meets = ~np.all(c - hw >= 0.5 - 1e-12, axis=1)  # not inside the hole (which reaches x, y = 1)
    assert grid.num_subdomains == meets.sum() < full.num_subdomains
    np.testing.assert_array_equal(np.asarray(grid.centres), c[meets])
    # cover() returns indices into the kept subdomains, and the windows still sum to one
    model = pd.FBPINN(grid, pd.Polynomial(0))
    pts = jnp.asarray(L.sample(400, "halton", seed=1))
    from pdedsl.ansatz import evaluate

    idx, vals = evaluate(model, pts, ((0, 0),))
    assert int(jnp.max(idx)) < grid.num_subdomains
    total = jnp.sum(vals[(0, 0)][..., 0], axis=1)  # degree 0: one constant feature
    np.testing.assert_allclose(np.asarray(total), 1.0, rtol=1e-12)
    multi = pd.Multilevel(L, subdomains=[1, 4, 9])
    assert multi.num_subdomains == 1 + pd.Grid(L, 4).num_subdomains + pd.Grid(L, 9).num_subdomains


def _fraction_in(domain, c, hw):
    """Monte Carlo: the fraction of each box (within the bounding box) in the domain."""
    rng = np.random.default_rng(0)
    s = rng.uniform(-1, 1, (4000, c.shape[1]))
    box = domain.bounding_box
    out = []
    for cj, hj in zip(c, hw):
        p = cj + hj * s
        p = p[np.all((p >= np.asarray(box.lower)) & (p <= np.asarray(box.upper)), axis=1)]
        out.append(domain.contains(p).mean())
    return np.asarray(out)


def test_grid_drops_the_slivers_along_a_hole():
    # 12 x 12 cosine windows on the L: the column centred at x = 6/11 (in the hole) meets
    # the domain only in the strip 0.455 < x < 0.5 (a quarter of its box): dropped
    full = pd.Grid(L, 12, 2.0, trim=False)
    grid = pd.Grid(L, 12, 2.0)
    c, hw = np.asarray(full.centres), np.asarray(full.half_widths)
    frac = _fraction_in(L, c, hw)
    kept = np.all(np.abs(c[:, None] - np.asarray(grid.centres)[None]) < 1e-12, axis=-1).any(axis=1)
    assert grid.num_subdomains == 109 < full.num_subdomains == 119
    assert np.all(frac[~kept] < 0.4) and np.all(frac[kept] > 0.35)  # the rule, up to sampling noise
    # the corner's own subdomain (7/16 of it in the L) stays
    assert np.any(np.all(np.abs(np.asarray(grid.centres) - 6 / 11) < 1e-12, axis=1))


def test_trimming_keeps_a_sliver_that_is_the_only_cover_of_a_thin_wall():
    # a wall 0.43 < x < 0.47 between two holes, 11 x 11 subdomains (spacing 0.1): the
    # boxes centred at x = 0.4 and 0.5 hold a fifth of domain each (slivers), but nothing
    # else covers the wall, so they stay; the slivers at x = 0.3 and 0.7 go
    walls = SQUARE - pd.Box([x, y], [0.23, 0.2], [0.43, 0.8]) - pd.Box([x, y], [0.47, 0.2], [0.77, 0.8])
    grid = pd.Grid(walls, 11, 2.0)
    c = np.asarray(grid.centres)

    def kept(point):
        return bool(np.any(np.all(np.abs(c - point) < 1e-12, axis=1)))

    assert kept([0.4, 0.5]) and kept([0.5, 0.5])
    assert not kept([0.3, 0.5]) and not kept([0.7, 0.5])
    assert grid.num_subdomains < pd.Grid(walls, 11, 2.0, trim=False).num_subdomains
    # every point of the domain, on the wall and on the holes' sides included, is covered
    from pdedsl.ansatz import evaluate

    model = pd.FBPINN(grid, pd.Polynomial(0))
    wall = [[0.45, 0.5], [0.43, 0.5], [0.47, 0.3], [0.23, 0.5], [0.77, 0.7]]
    pts = np.concatenate([walls.sample(2000, "halton", seed=2), wall])
    assert np.all(walls.contains(pts))
    _, vals = evaluate(model, jnp.asarray(pts), ((0, 0),))
    np.testing.assert_allclose(np.asarray(jnp.sum(vals[(0, 0)][..., 0], axis=1)), 1.0, rtol=1e-12)


def test_trimmed_grid_fits_a_smooth_solution_on_the_l_at_the_default_points():
    # measured: rel_l2 1.0e-9 (109 subdomains); with the slivers (trim=False, 119) 1.8e-6,
    # the error sitting between the points of the strips along the re-entrant edges
    smooth = sp.sin(2 * x) * sp.exp(y)
    f = -(sp.diff(smooth, x, 2) + sp.diff(smooth, y, 2))
    p = pd.Problem(-D(u, x, 2) - D(u, y, 2) == f, domain=L, conditions=[u.on(pd.boundary) == smooth])
    sol = pd.solve(p, pd.FBPINN(pd.Grid(L, 12, 2.0), pd.Polynomial(5)), corners=False)
    assert sol.errors(smooth, points=L.sample((201, 201)))["rel_l2"] < 1e-8


def test_trim_must_be_a_bool():
    with pytest.raises(TypeError, match="trim"):
        pd.Grid(L, 4, 2.0, trim="yes")


def test_plot_blanks_the_hole(tmp_path):
    p = _problem()
    sol = pd.solve(p, pd.FBPINN(pd.Grid(SQUARE, 4, 2.0), pd.Polynomial(5)), points=(30, 30))
    fig = sol.plot(exact=EXACT, path=tmp_path / "l.png", n=41)
    field = fig.axes[0].collections[0].get_array()
    assert np.ma.count_masked(field) == 20 * 20  # the grid points with 0.5 < x, y <= 1
    assert (tmp_path / "l.png").stat().st_size > 0
    sol.save(tmp_path / "l.pdedsl")  # the dropped-subdomain map travels with the model
    back = pd.load(tmp_path / "l.pdedsl")
    pts = L.sample(50, "halton")
    np.testing.assert_array_equal(np.asarray(back(pts)), np.asarray(sol(pts)))


# -- unions -----------------------------------------------------------------------


def test_union_of_two_boxes_is_its_bounding_box_minus_what_it_leaves_uncovered():
    bar, stem = pd.Box([x, y], [0, 0], [3, 1]), pd.Box([x, y], [1, 0], [2, 3])
    tee = bar | stem
    assert isinstance(tee, pd.Difference) and tee.bounding_box == pd.Box([x, y], [0, 0], [3, 3])
    assert tee.volume == pytest.approx(3 + 3 - 1)  # the overlap counted once
    pts = np.random.default_rng(0).uniform([-0.5, -0.5], [3.5, 3.5], (4000, 2))
    inside = np.all((pts >= 0) & (pts <= [3, 1]), axis=1) | np.all((pts >= [1, 0]) & (pts <= [2, 3]), axis=1)
    assert np.array_equal(tee.contains(pts), inside)
    # the boundary: eight edges of total length 12, each with its outward normal
    assert len(tee.faces) == 8
    assert sum(f.box.lengths[1 - f.axis] for f in tee.faces) == pytest.approx(12)
    for f in tee.faces:
        mid = (np.asarray(f.box.lower) + np.asarray(f.box.upper)) / 2
        mid[f.axis] = f.value
        assert tee.contains([mid + 1e-6 * -f.normal])[0] and not tee.contains([mid + 1e-6 * f.normal])[0]
    # a box inside another adds nothing; chains and mixed Box | Difference work
    assert (SQUARE | pd.Box([x, y], [0.2, 0.2], [0.5, 0.5])) == SQUARE
    assert (L | pd.Box([x, y], [0.5, 0.5], [1, 1])) == SQUARE
    plus = pd.Box([x, y], [-1, -0.2], [1, 0.2]) | pd.Box([x, y], [-0.2, -1], [0.2, 1])
    assert len(plus.holes) == 4 and plus.volume == pytest.approx(0.8 + 0.8 - 0.16)
    assert (plus | pd.Box([x, y], [-1, -1], [1, 1])) == pd.Box([x, y], [-1, -1], [1, 1])
    cubes = CUBE | pd.Box([x, y, z], [0.5, 0.5, 0.5], [1.5, 1.5, 1.5])
    assert cubes.volume == pytest.approx(2 - 1 / 8)


def test_union_of_two_intervals_apart_solves_on_both_pieces():
    t = pd.Symbol("t")
    two = pd.Interval(t, 0, 1) | pd.Interval(t, 2, 3)
    assert two.volume == pytest.approx(2) and sorted(f.value for f in two.faces) == [0, 1, 2, 3]
    w = pd.Function("w")(t)
    exact = sp.sin(3 * t) + t
    p = pd.Problem(-D(w, t, 2) == -sp.diff(exact, t, 2), two, conditions=[w.on(pd.boundary) == exact])
    sol = pd.solve(p, pd.FBPINN(pd.Grid(two, 6, 2.0), pd.Polynomial(8)))
    assert sol.errors(exact)["rel_l2"] < 1e-8


def test_poisson_on_a_union_shape_reaches_a_tight_tolerance():
    tee = pd.Box([x, y], [0, 0], [3, 1]) | pd.Box([x, y], [1, 0], [2, 3])
    exact = sp.sin(x) * sp.cos(y) + x * y
    p = pd.Problem(
        D(u, x, 2) + D(u, y, 2) == sp.diff(exact, x, 2) + sp.diff(exact, y, 2),
        tee,
        conditions=[u.on(pd.boundary) == exact],
    )
    model = pd.FBPINN(pd.Grid(tee, 4, 2.0), pd.Polynomial(8))
    assert model.num_subdomains == 12  # the two over each uncovered corner are dropped
    err = pd.solve(p, model, points=(60, 60)).errors(exact)  # 2,240 of the 3,600 lie in the T
    assert err["rel_l2"] < 1e-9, err  # measured 4.2e-11


def test_bad_unions_are_refused():
    with pytest.raises(ValueError, match="same coordinates"):
        SQUARE | pd.Box([y, x], [0, 0], [1, 1])
    with pytest.raises(TypeError):
        SQUARE | 3
