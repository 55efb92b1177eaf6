"""Interfaces: `expr.jump(x=c) == g` conditions on a model cut there (`pd.Cut`)."""

import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import pdedsl as pd
from pdedsl import D
from pdedsl.ansatz import evaluate

x, y = pd.Symbol("x"), pd.Symbol("y")
u = pd.Function("u")(x)
K = sp.Piecewise((1, x < 0.5), (10, True))


def _layered(k=K, c=0.5):
    return pd.Problem(
        -D(k * D(u, x), x) == 1,
        pd.Interval(x, 0, 1),
        [u.at(x=0) == 0, u.at(x=1) == 0, u.jump(x=c) == 0, (k * D(u, x)).jump(x=c) == 0],
    )


def _layered_exact():
    """-(k u')' = 1, u(0) = u(1) = 0, k = 1 | 10 at 1/2: u and k u' continuous (sympy)."""
    a, b, c = sp.symbols("a b c")
    left = -(x**2) / 2 + a * x
    right = -(x**2) / 20 + b * x + c
    half = sp.Rational(1, 2)
    coef = sp.solve(
        [
            right.subs(x, 1),
            (left - right).subs(x, half),
            (sp.diff(left, x) - 10 * sp.diff(right, x)).subs(x, half),
        ],
        [a, b, c],
    )
    left, right = left.subs(coef), right.subs(coef)
    return lambda t: np.where(t < 0.5, sp.lambdify(x, left)(t), sp.lambdify(x, right)(t))


@pytest.mark.parametrize("basis", [pd.Polynomial(4), pd.RandomFeatures(12)])
def test_layered_medium_1d_matches_the_exact_solution(basis):
    exact = _layered_exact()
    model = pd.FBPINN(pd.Cut(pd.Grid(pd.Interval(x, 0, 1), 8, overlap=2.0), x=0.5), basis)
    sol = pd.solve(_layered(), model)
    t = np.linspace(0, 1, 1001)
    v = np.asarray(sol(jnp.asarray(t)))
    tol = 1e-12 if isinstance(basis, pd.Polynomial) else 1e-8
    assert np.linalg.norm(v - exact(t)) / np.linalg.norm(exact(t)) < tol
    # u(1/2) = 1/44: the layered medium's value (the product rule alone gives 0.069)
    assert abs(float(sol(jnp.asarray([0.5]))[0]) - 1 / 44) < 1e-8
    # the flux k u' is continuous across the interface, u' itself jumps by a factor 10
    du = sol.derivative(x)
    below, above = (float(du(jnp.asarray([0.5 + s * 1e-9]))[0]) for s in (-1, 1))
    assert abs(below - 10 * above) < 1e-6 * abs(below)
    assert abs(below - above) > 0.1 * abs(below)


def test_multilevel_decomposition_can_be_cut():
    exact = _layered_exact()
    dec = pd.Cut(pd.Multilevel(pd.Interval(x, 0, 1), levels=3), x=0.5)
    sol = pd.solve(_layered(), pd.FBPINN(dec, pd.Polynomial(4)))
    t = np.linspace(0, 1, 401)
    assert np.linalg.norm(np.asarray(sol(jnp.asarray(t))) - exact(t)) / np.linalg.norm(exact(t)) < 1e-10


def test_two_media_in_2d_with_prescribed_jumps():
    """Manufactured: different smooth functions on each side of x = 0.4, k = 1 | 5;
    the jumps of u and of k du/dx are prescribed (non-zero, varying along y)."""
    v = pd.Function("v")(x, y)
    c, k_left, k_right = 0.4, 1, 5
    left = sp.sin(sp.pi * x) * sp.sin(sp.pi * y) + x * y
    right = sp.cos(x + 2 * y) + x
    k = sp.Piecewise((k_left, x < c), (k_right, True))
    exact = sp.Piecewise((left, x < c), (right, True))
    lap = lambda w: sp.diff(w, x, 2) + sp.diff(w, y, 2)  # noqa: E731
    f = sp.Piecewise((-k_left * lap(left), x < c), (-k_right * lap(right), True))
    problem = pd.Problem(
        -(D(k * D(v, x), x) + D(k * D(v, y), y)) == f,
        pd.Box([x, y], [0, 0], [1, 1]),
        [
            v.on(pd.boundary) == exact,
            v.jump(x=c) == (right - left).subs(x, c),
            (k * D(v, x)).jump(x=c) == (k_right * sp.diff(right, x) - k_left * sp.diff(left, x)).subs(x, c),
        ],
    )
    model = pd.FBPINN(pd.Cut(pd.Grid(problem.domain, 6, overlap=2.0), x=c), pd.Polynomial(6))
    sol = pd.solve(problem, model)
    g = np.linspace(0, 1, 41)
    pts = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    want = sp.lambdify((x, y), exact, "numpy")(pts[:, 0], pts[:, 1])
    got = np.asarray(sol(jnp.asarray(pts)))
    assert np.linalg.norm(got - want) / np.linalg.norm(want) < 1e-7  # measured 6.7e-9


def test_cut_windows_are_a_partition_of_unity_on_each_side():
    dom = pd.Box([x, y], [0, 0], [1, 1])
    dec = pd.Cut(pd.Grid(dom, (6, 3), 2.0), x=[0.3, 0.7])
    one = pd.FBPINN(dec, pd.Polynomial(0))
    g = np.linspace(0, 1, 31)
    pts = np.stack(np.meshgrid(g, np.linspace(0, 1, 5), indexing="ij"), -1).reshape(-1, 2)
    idx, vals = evaluate(one, jnp.asarray(pts), [(0, 0)])
    np.testing.assert_allclose(np.asarray(jnp.sum(vals[(0, 0)][..., 0], axis=1)), 1.0, atol=1e-13)
    # every active copy sits on the point's own side (a point on a cut: the upper side)
    piece = np.searchsorted([0.3, 0.7], pts[:, 0], side="right")
    c, hw = np.asarray(dec.centres), np.asarray(dec.half_widths)
    edges = np.array([0.0, 0.3, 0.7, 1.0])
    active = np.abs(np.asarray(vals[(0, 0)][..., 0])) > 0
    for i in range(pts.shape[0]):
        for j in np.asarray(idx[i])[active[i]]:
            p = piece[i]
            assert c[j, 0] - hw[j, 0] < edges[p + 1] and c[j, 0] + hw[j, 0] > edges[p]
    # on the cut, each side's windows alone sum to one
    on = jnp.asarray([[0.3, 0.5], [0.7, 0.25]])
    for s in (1, -1):
        for k in range(on.shape[0]):
            _, w = evaluate(one, on[k : k + 1], [(0, 0)], side=(0, float(on[k, 0]), s))
            assert abs(float(jnp.sum(w[(0, 0)])) - 1.0) < 1e-13


def test_cut_copies_only_subdomains_centred_on_a_side_but_keeps_every_piece_covered():
    dom = pd.Interval(x, 0, 1)
    base = pd.Grid(dom, 8, overlap=2.0)  # centres k/7, half-width 1/7
    c = np.asarray(base.centres)[:, 0]
    # a cut between centres: every subdomain stays on the side of its centre (those
    # reaching past the cut would have few points there and oscillate between them)
    src = np.asarray(pd.Cut(base, x=0.4).source)
    np.testing.assert_array_equal(src, np.arange(8))
    # a cut through the centre of one: that one gets a copy on each side
    src = np.asarray(pd.Cut(base, x=3 / 7).source)
    j = int(np.argmin(np.abs(c - 3 / 7)))
    assert np.sum(src == j) == 2 and src.size == 9
    # overlap 1.05: the centred copies leave a gap next to the cut, filled by the
    # copy of the neighbour reaching farthest past it
    for cut in (0.4, 0.45):
        tight = pd.Cut(pd.Grid(dom, 8, overlap=1.05), x=cut)
        one = pd.FBPINN(tight, pd.Polynomial(0))
        t = jnp.linspace(0, 1, 801)[:, None]
        _, w = evaluate(one, t, [(0,)])
        np.testing.assert_allclose(np.asarray(jnp.sum(w[(0,)][..., 0], axis=1)), 1.0, atol=1e-12)
        assert np.asarray(tight.source).size == 9


def test_jumping_coefficient_is_allowed_only_at_a_declared_interface():
    _layered()  # accepted: the jump of k is at the interface
    with pytest.raises(NotImplementedError, match="Declare the interface"):
        pd.Problem(-D(K * D(u, x), x) == 1, pd.Interval(x, 0, 1), [u.at(x=0) == 0, u.at(x=1) == 0])
    # an interface elsewhere does not excuse the jump at 0.5
    with pytest.raises(NotImplementedError, match="not smooth"):
        pd.Problem(
            -D(K * D(u, x), x) == 1,
            pd.Interval(x, 0, 1),
            [u.at(x=0) == 0, u.at(x=1) == 0, u.jump(x=0.3) == 0, D(u, x).jump(x=0.3) == 0],
        )
    # Heaviside with its step on the interface
    h = 1 + 9 * sp.Heaviside(x - sp.Rational(1, 2))
    p = _layered(k=h)
    model = pd.FBPINN(pd.Cut(pd.Grid(p.domain, 6, 2.0), x=0.5), pd.Polynomial(4))
    assert abs(float(pd.solve(p, model)(jnp.asarray([0.5]))[0]) - 1 / 44) < 1e-8


def test_interface_mistakes_are_refused_with_a_reason():
    dom = pd.Interval(x, 0, 1)
    problem = _layered()
    with pytest.raises(ValueError, match="not cut"):
        pd.solve(problem, pd.FBPINN(pd.Grid(dom, 8, 2.0), pd.Polynomial(4)))
    with pytest.raises(ValueError, match="not cut"):
        pd.solve(problem, pd.FBPINN(pd.Cut(pd.Grid(dom, 8, 2.0), x=0.6), pd.Polynomial(4)))
    smooth = pd.Problem(-D(u, x, 2) == 1, dom, [u.at(x=0) == 0, u.at(x=1) == 0])
    with pytest.raises(ValueError, match="no interface condition"):
        pd.solve(smooth, pd.FBPINN(pd.Cut(pd.Grid(dom, 8, 2.0), x=0.5), pd.Polynomial(4)))
    with pytest.raises(ValueError, match="strictly inside"):
        pd.Problem(-D(u, x, 2) == 1, dom, [u.at(x=0) == 0, u.jump(x=1) == 0, D(u, x).jump(x=1) == 0])
    with pytest.raises(ValueError, match="lies on the interface"):
        pd.Problem(-D(u, x, 2) == 1, dom, [u.at(x=0) == 0, u.jump(x=0.5) == 0, u.at(x=0.5) == 1])
    with pytest.raises(ValueError, match="needs 2 interface condition"):
        pd.Problem(-D(K * D(u, x), x) == 1, dom, [u.at(x=0) == 0, u.at(x=1) == 0, u.jump(x=0.5) == 0])
    with pytest.raises(ValueError, match="outward normal derivative"):
        pd.Problem(-D(u, x, 2) == 1, dom, [u.at(x=0) == 0, u.jump(x=0.5) == 0, pd.Dn(u).jump(x=0.5) == 0])
    with pytest.raises(ValueError, match="terms without"):
        pd.Problem(
            -D(u, x, 2) == 1, dom, [u.at(x=0) == 0, (u + x).jump(x=0.5) == 0, D(u, x).jump(x=0.5) == 0]
        )
    with pytest.raises(ValueError, match="one coordinate"):
        u.jump(x=0.5, t=1)
    with pytest.raises(ValueError, match="strictly inside"):
        pd.Cut(pd.Grid(dom, 8, 2.0), x=1.0)
    with pytest.raises(NotImplementedError, match="periodic"):
        pd.Cut(pd.Grid(dom, 8, 2.0, periodic=[x]), x=0.5)
    nonlinear = pd.Problem(
        -D(u, x, 2) + u**3 == 1,
        dom,
        [u.at(x=0) == 0, u.at(x=1) == 0, u.jump(x=0.5) == 0, D(u, x).jump(x=0.5) == 0],
    )
    with pytest.raises(NotImplementedError, match="pd.solve"):
        pd.train(nonlinear, pd.FBPINN(pd.Cut(pd.Grid(dom, 4, 2.0), x=0.5), pd.MLP(hidden=(8,))), steps=1)


def test_interface_condition_is_printed():
    text = str(_layered())
    assert "interface x = 0.5 (jump: upper - lower side)" in text


def test_finite_elements_solve_the_layered_medium_and_agree_in_2d():
    exact = _layered_exact()
    ref = pd.finite_elements(_layered(), 4, degree=2)  # the interface is a mesh node
    t = np.linspace(0, 1, 201)
    assert np.max(np.abs(np.asarray(ref(t[:, None])) - exact(t))) < 1e-12
    # 2D: k = 1 | 4 across y = 0.3, u = 0 on the boundary, f = 1
    v = pd.Function("v")(x, y)
    k = 1 + 3 * sp.Heaviside(y - sp.Rational(3, 10))
    problem = pd.Problem(
        -(D(k * D(v, x), x) + D(k * D(v, y), y)) == 1,
        pd.Box([x, y], [0, 0], [1, 1]),
        [v.on(pd.boundary) == 0, v.jump(y=0.3) == 0, (k * D(v, y)).jump(y=0.3) == 0],
    )
    fem = pd.finite_elements(problem, 6, degree=2)
    sol = pd.solve(problem, pd.FBPINN(pd.Cut(pd.Grid(problem.domain, 8, 2.0), y=0.3), pd.Polynomial(5)))
    g = np.linspace(0, 1, 33)
    pts = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    a, b = np.asarray(sol(jnp.asarray(pts))), np.asarray(fem(pts))
    # measured 6.7e-5 against P2 at 2^-8 (P2 at 2^-6 is 1.4e-6 from it)
    assert np.linalg.norm(a - b) / np.linalg.norm(b) < 3e-4
    with pytest.raises(NotImplementedError, match="interface"):
        pd.finite_differences(problem, 33)
    jumpy = pd.Problem(
        -D(K * D(u, x), x) == 1,
        pd.Interval(x, 0, 1),
        [u.at(x=0) == 0, u.at(x=1) == 0, u.jump(x=0.5) == 1, (K * D(u, x)).jump(x=0.5) == 0],
    )
    with pytest.raises(NotImplementedError, match="continuous"):
        pd.finite_elements(jumpy, 4)


def test_repeated_solves_reuse_the_interface_rows():
    """The jump forms of a second solve compare equal to the first's (their numbers
    are array leaves), so the jitted assembly is not compiled again (it was, 3 s per
    solve, before)."""
    from helpers import compilations

    problem = _layered()
    model = pd.FBPINN(pd.Cut(pd.Grid(problem.domain, 6, 2.0), x=0.5), pd.Polynomial(4))
    first = pd.solve(problem, model)
    with compilations() as compiled:
        second = pd.solve(_layered(), model)
    assert compiled == []
    np.testing.assert_array_equal(np.asarray(first.coefficients), np.asarray(second.coefficients))


@pytest.mark.parametrize(
    "lshape, c",
    [(False, 0.25), (True, 0.25), (True, 0.3)],
    ids=["square-cut-through-centres", "lshape-cut-through-centres", "lshape"],
)
def test_a_cut_without_a_jump_changes_nothing(lshape, c):
    """k = 1 and continuous u and u_y across y = c: the cut model must reproduce the
    smooth solution as well as the uncut one (1e-9). A cut through a row of subdomain
    centres gave 3.8e-7 before the equation was collocated on the interface itself."""
    v = pd.Function("v")(x, y)
    dom = pd.Box([x, y], [0, 0], [1, 1])
    if lshape:
        dom = dom - pd.Box([x, y], [0.5, 0.5], [1, 1])
    exact = sp.sin(sp.pi * x) * sp.sin(sp.pi * y) + x * y
    problem = pd.Problem(
        -(D(v, x, 2) + D(v, y, 2)) == 2 * sp.pi**2 * sp.sin(sp.pi * x) * sp.sin(sp.pi * y),
        dom,
        [v.on(pd.boundary) == exact, v.jump(y=c) == 0, D(v, y).jump(y=c) == 0],
    )
    sol = pd.solve(problem, pd.FBPINN(pd.Cut(pd.Grid(dom, 9, 2.0), y=c), pd.Polynomial(6)))
    assert sol.errors(exact)["rel_l2"] < 2e-8  # measured 4.1e-9, 9.7e-10, 1.2e-9


def test_auto_treats_a_cut_grid_of_polynomials_like_a_grid_and_saved_solutions_load(tmp_path):
    problem = _layered()
    model = pd.FBPINN(pd.Cut(pd.Grid(problem.domain, 300, 2.0), x=0.5), pd.Polynomial(3))
    sol = pd.solve(problem, model)  # 1,200 unknowns: above the 1,000 of polynomial grids
    assert sol.info["solver"] == "SparseNormal"
    assert abs(float(sol(np.array([0.5]))[0]) - 1 / 44) < 1e-10
    sol.save(tmp_path / "layered.pdedsl")
    back = pd.load(tmp_path / "layered.pdedsl")
    t = np.linspace(0, 1, 101)
    np.testing.assert_allclose(np.asarray(back(t)), np.asarray(sol(t)), rtol=0, atol=1e-14)


def _rod():
    """u_t = (k u_x)_x, k = 1 | 5 across x = 0.4, u = 0 at both ends: the slowest mode
    exp(-a^2 t) g(x), g = sin(a x) | B sin(a (1 - x) / sqrt(5)), with a the first root
    of the interface conditions (continuity of g and of k g')."""
    from scipy.optimize import brentq

    t = pd.Symbol("t")
    w = pd.Function("w")(x, t)
    c, big = 0.4, 5.0

    def mismatch(a):
        b = a / np.sqrt(big)
        return a * np.cos(a * c) * np.sin(b * (1 - c)) + big * b * np.cos(b * (1 - c)) * np.sin(a * c)

    a = brentq(mismatch, 2.0, 6.0)
    b = a / np.sqrt(big)
    g = sp.Piecewise(
        (sp.sin(a * x), x < c), (np.sin(a * c) / np.sin(b * (1 - c)) * sp.sin(b * (1 - x)), True)
    )
    k = sp.Piecewise((1, x < c), (big, True))
    problem = pd.Problem(
        D(w, t) - D(k * D(w, x), x) == 0,
        pd.Box([x, t], [0, 0], [1, 0.2]),
        [w.at(t=0) == g, w.at(x=0) == 0, w.at(x=1) == 0, w.jump(x=c) == 0, (k * D(w, x)).jump(x=c) == 0],
    )
    return problem, sp.exp(-(a**2) * t) * g, t, c


def test_heat_equation_in_a_layered_rod():
    problem, exact, _, c = _rod()
    model = pd.FBPINN(pd.Cut(pd.Grid(problem.domain, (10, 4), 2.0), x=c), pd.Polynomial(6))
    assert pd.solve(problem, model).errors(exact)["rel_l2"] < 1e-5  # measured 9.7e-7


def test_time_marching_across_a_layered_rod():
    problem, exact, t, c = _rod()
    model = pd.FBPINN(pd.Cut(pd.Grid(problem.domain, (10, 8), 2.0), x=c), pd.Polynomial(6))
    sol = pd.solve(problem, model, schedule=pd.TimeMarching(t, active=3))
    assert len(sol.info["stages"]) == 6
    assert sol.errors(exact)["rel_l2"] < 1e-6  # measured 1.3e-7 (one solve: 7.0e-8)
    with pytest.raises(NotImplementedError, match="cut across"):
        pd.solve(problem, model, schedule=pd.TimeMarching(pd.Symbol("x"), active=3))


def test_cuts_along_two_coordinates():
    v = pd.Function("v")(x, y)
    dom = pd.Box([x, y], [0, 0], [1, 1])
    exact = sp.sin(sp.pi * x) * sp.sin(sp.pi * y) + x * y
    problem = pd.Problem(
        -(D(v, x, 2) + D(v, y, 2)) == 2 * sp.pi**2 * sp.sin(sp.pi * x) * sp.sin(sp.pi * y),
        dom,
        [
            v.on(pd.boundary) == exact,
            v.jump(x=0.3) == 0,
            D(v, x).jump(x=0.3) == 0,
            v.jump(y=0.6) == 0,
            D(v, y).jump(y=0.6) == 0,
        ],
    )
    sol = pd.solve(problem, pd.FBPINN(pd.Cut(pd.Grid(dom, 9, 2.0), x=0.3, y=0.6), pd.Polynomial(6)))
    assert sol.errors(exact)["rel_l2"] < 2e-8  # measured 1.8e-9


def test_adam_trained_fbpinn_with_an_interface():
    """The Adam baseline on the same interface problem: windows of a cut grid x small
    networks, trained with the jump rows in the loss."""
    problem = _layered()
    model = pd.FBPINN(pd.Cut(pd.Grid(problem.domain, 4, 2.0), x=0.5), pd.MLP(hidden=(16,)))
    sol = pd.train(problem, model, steps=3000, learning_rate=1e-2)
    # measured 0.02340 against 1/44 = 0.02273 (the product rule alone gives 0.069)
    assert abs(float(sol(np.array([0.5]))[0]) - 1 / 44) < 5e-3


def test_finite_elements_take_an_interface_cut_by_a_hole():
    """The plane y = 0.5 crosses the hole, so each interface condition is lowered once per
    piece; the reference must count conditions, not pieces (it refused this before). With
    k = 1 the interface changes nothing: the same P2 solution as without it."""
    v = pd.Function("v")(x, y)
    dom = pd.Box([x, y], [0, 0], [1, 1]) - pd.Box([x, y], [0.4, 0.4], [0.6, 0.6])
    lap = D(v, x, 2) + D(v, y, 2)
    plain = pd.Problem(-lap == 1, dom, [v.on(pd.boundary) == 0])
    cut = pd.Problem(-lap == 1, dom, [v.on(pd.boundary) == 0, v.jump(y=0.5) == 0, D(v, y).jump(y=0.5) == 0])
    assert sum(isinstance(c.region, pd.problem.Interface) for c in cut.lowered_conditions) == 4
    pts = dom.sample((40, 40))
    a, b = (np.asarray(pd.finite_elements(p, 6, degree=2)(pts)) for p in (cut, plain))
    assert np.linalg.norm(a - b) / np.linalg.norm(b) < 1e-4  # measured 9.6e-6 (the mesh differs)
