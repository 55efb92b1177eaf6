"""Finite-difference references: observed convergence orders on manufactured solutions,
interpolation, `Solution.compare`, and the errors for what they cannot do."""

import numpy as np
import pytest
import sympy as sp

import pdedsl as pd
from pdedsl import D, Dn, demos

# Observed order between two resolutions (h and h/2) must fall in these bands.
BAND = {2: (1.8, 2.35), 3: (2.7, 3.4), 4: (3.6, 4.6), 5: (4.5, 5.6)}


def observed_order(problem, exact, shapes, order, points=None):
    errs = [pd.finite_differences(problem, s, order).errors(exact, points=points)["rel_l2"] for s in shapes]
    return np.log2(errs[0] / errs[1]), errs


def assert_order(rate, nominal):
    lo, hi = BAND[nominal]
    assert lo <= rate <= hi, f"observed order {rate:.2f}, expected about {nominal}"


x, y, z, t = pd.Symbol("x"), pd.Symbol("y"), pd.Symbol("z"), pd.Symbol("t")


def one_d(kind):
    u = pd.Function("u")(x)
    ex = sp.sin(3 * x) + x**2
    f = sp.diff(ex, x, 2) - ex
    dex = sp.diff(ex, x)
    conds = {
        "dirichlet": [u.at(x=0) == ex.subs(x, 0), u.at(x=1) == ex.subs(x, 1)],
        "neumann": [u.at(x=0) == ex.subs(x, 0), Dn(u).at(x=1) == dex.subs(x, 1)],
        "robin": [(Dn(u) + 2 * u).at(x=0) == (-dex + 2 * ex).subs(x, 0), u.at(x=1) == ex.subs(x, 1)],
    }[kind]
    return pd.Problem(D(u, x, 2) - u == f, domain=pd.Interval(x, 0, 1), conditions=conds), ex


@pytest.mark.parametrize("order", [2, 4])
@pytest.mark.parametrize("kind", ["dirichlet", "neumann", "robin"])
def test_1d_boundary_conditions_converge_at_nominal_order(kind, order):
    problem, ex = one_d(kind)
    rate, errs = observed_order(problem, ex, [(41,), (81,)], order)
    assert_order(rate, order)
    assert errs[1] < (1e-3 if order == 2 else 1e-6)


def fourth_order_1d():
    s = pd.Symbol("s")
    q = pd.Function("q")(s)
    ex = sp.sin(2 * s) + s**3
    problem = pd.Problem(
        D(q, s, 4) + q == sp.diff(ex, s, 4) + ex,
        domain=pd.Interval(s, 0, 1),
        conditions=[
            q.at(s=0) == ex.subs(s, 0),
            D(q, s).at(s=0) == sp.diff(ex, s).subs(s, 0),
            q.at(s=1) == ex.subs(s, 1),
            D(q, s, 2).at(s=1) == sp.diff(ex, s, 2).subs(s, 1),
        ],
    )
    return problem, ex


@pytest.mark.parametrize("order", [2, 4])
def test_1d_fourth_order_equation_two_conditions_per_end(order):
    problem, ex = fourth_order_1d()
    rate, _ = observed_order(problem, ex, [(41,), (81,)], order)
    assert_order(rate, order)


def variable_2d():
    u = pd.Function("u")(x, y)
    ex = sp.sin(2 * x + y) * sp.exp(y / 2) + x**2

    def op(w, d):
        return (
            (1 + x**2 / 2) * d(w, x, 2)
            + sp.Rational(3, 5) * d(w, x, y)
            + (2 + sp.sin(y)) * d(w, y, 2)
            + x * d(w, x)
            - y * d(w, y)
            - w
        )

    conds = [
        u.at(x=0) == ex.subs(x, 0),
        Dn(u).at(x=1) == sp.diff(ex, x).subs(x, 1),
        (Dn(u) + 3 * u).at(y=0) == (-sp.diff(ex, y) + 3 * ex).subs(y, 0),
        u.at(y=1) == ex.subs(y, 1),
    ]
    problem = pd.Problem(op(u, D) == op(ex, sp.diff), domain=pd.Box([x, y], [0, 0], [1, 1]), conditions=conds)
    return problem, ex


@pytest.mark.parametrize("order", [2, 4])
def test_2d_variable_coefficients_mixed_derivative_and_mixed_conditions(order):
    problem, ex = variable_2d()
    rate, _ = observed_order(problem, ex, [(17, 17), (33, 33)], order)
    assert_order(rate, order)


@pytest.mark.parametrize("order", [2, 4])
def test_interpolation_keeps_the_order_between_nodes(order):
    problem, ex = variable_2d()
    pts = np.random.default_rng(1).random((500, 2))
    rate, _ = observed_order(problem, ex, [(17, 17), (33, 33)], order, points=pts)
    assert_order(rate, order)


def poisson_3d():
    problem, _, _, ex = demos.poisson_3d()
    return problem, ex


@pytest.mark.parametrize("order", [2, 4])
def test_3d_poisson(order):
    problem, ex = poisson_3d()
    # at fixed points: the share of (exact) boundary nodes in a node average shrinks
    # with h on coarse 3D grids and would bias the observed order
    pts = np.random.default_rng(0).random((1000, 3))
    rate, _ = observed_order(problem, ex, [(9, 9, 9), (17, 17, 17)], order, points=pts)
    assert_order(rate, order)


@pytest.mark.parametrize("order", [2, 4])
@pytest.mark.parametrize("case", ["3d", "variable_2d", "fourth_order_1d"])
def test_steady_factorisation_keeps_the_diagonal_pivots(monkeypatch, case, order):
    """The rows go to node order, so for second-order equations SuperLU pivots on the
    diagonal throughout (a symmetric permutation, perm_r == perm_c) and keeps the fill of
    the minimum-degree ordering."""
    import importlib

    fd = importlib.import_module("pdedsl.reference.finite_differences")
    seen = []
    splu = fd.spl.splu

    class Spy:  # records the matrix and right-hand side the reference solves with
        def __init__(self, mat, **kw):
            self.mat, self.lu = mat, splu(mat, **kw)

        def solve(self, b):
            self.b = b
            return self.lu.solve(b)

        def __getattr__(self, name):  # L, U, ...
            return getattr(self.lu, name)

    def spy(mat, **kw):
        seen.append(Spy(mat, **kw))
        return seen[-1]

    monkeypatch.setattr(fd.spl, "splu", spy)
    if case == "3d":
        problem, ex = poisson_3d()
        shape = (13, 13, 13)
    elif case == "variable_2d":
        problem, ex = variable_2d()
        shape = (17, 17)
    else:
        problem, ex = fourth_order_1d()
        shape = (41,)
    ref = pd.finite_differences(problem, shape, order)
    (run,) = seen
    mat, lu = run.mat, run.lu
    if case != "fourth_order_1d":
        assert np.all(abs(mat.diagonal()) >= 0.1)
        np.testing.assert_array_equal(lu.perm_r, lu.perm_c)
    # (the off-centred order-4 stencil of D^4 puts almost no weight on its own node, so
    # SuperLU pivots off the diagonal there; the solution must not change, below)
    colamd = splu(mat)  # SciPy's default: COLAMD, partial pivoting
    if case == "3d":
        assert ref.info["lu_nonzeros"] < 0.7 * (colamd.L.nnz + colamd.U.nnz)
    values = ref.values.ravel()
    np.testing.assert_allclose(values, colamd.solve(run.b), rtol=0, atol=1e-11 * abs(values).max())


def oscillator():
    u = pd.Function("u")(t)
    d, w0 = 2, 80
    w = np.sqrt(w0**2 - d**2)
    ex = sp.exp(-d * t) * (sp.cos(w * t) + d / w * sp.sin(w * t))
    problem = pd.Problem(
        D(u, t, 2) + 2 * d * D(u, t) + w0**2 * u == 0,
        domain=pd.Interval(t, 0, 1),
        conditions=[u.at(t=0) == 1, D(u, t).at(t=0) == 0],
    )
    return problem, ex


@pytest.mark.parametrize("order", [2, 4])
def test_damped_oscillator_ivp_converges_at_the_time_integrators_order(order):
    # An initial-value axis is integrated by Radau IIA of order `order + 1`.
    problem, ex = oscillator()
    rate, errs = observed_order(problem, ex, [(201,), (401,)], order)
    assert_order(rate, order + 1)
    sol = pd.finite_differences(problem, (401,), order)
    assert sol.info["time_steps"] == 400 and sol.values[0] == 1.0


def heat():
    u = pd.Function("u")(x, t)
    ex = sp.exp(-t) * sp.sin(2 * x) + x * t
    f = sp.diff(ex, t) - sp.diff(ex, x, 2)
    conds = [
        u.at(t=0) == ex.subs(t, 0),
        u.at(x=0) == ex.subs(x, 0),
        (Dn(u) + u).at(x=1) == (sp.diff(ex, x) + ex).subs(x, 1),
    ]
    return pd.Problem(D(u, t) - D(u, x, 2) == f, domain=pd.Box([x, t], [0, 0], [1, 1]), conditions=conds), ex


def wave():
    u = pd.Function("u")(t, x)  # time first: the time axis may be any axis
    ex = sp.sin(sp.pi * x) * sp.cos(sp.pi * t) + sp.sin(2 * x + t)
    f = sp.diff(ex, t, 2) - (1 + x / 2) * sp.diff(ex, x, 2)
    conds = [
        u.at(t=0) == ex.subs(t, 0),
        D(u, t).at(t=0) == sp.diff(ex, t).subs(t, 0),
        u.at(x=0) == ex.subs(x, 0),
        u.at(x=1) == ex.subs(x, 1),
    ]
    eq = D(u, t, 2) - (1 + x / 2) * D(u, x, 2) == f
    return pd.Problem(eq, domain=pd.Box([t, x], [0, 0], [1, 1]), conditions=conds), ex


@pytest.mark.parametrize("order", [2, 4])
@pytest.mark.parametrize("make", [heat, wave], ids=["heat", "wave"])
def test_time_dependent_problems_converge_at_nominal_order(make, order):
    problem, ex = make()
    rate, _ = observed_order(problem, ex, [(41, 41), (81, 81)], order)
    assert_order(rate, order)


def test_time_dependent_coefficients_take_the_coupled_path():
    u = pd.Function("u")(x, t)
    ex = sp.exp(-t) * sp.sin(2 * x) + x * t
    c = 1 + t / 2
    f = sp.diff(ex, t) - c * sp.diff(ex, x, 2)
    problem = pd.Problem(
        D(u, t) - c * D(u, x, 2) == f,
        domain=pd.Box([x, t], [0, 0], [1, 1]),
        conditions=[u.at(t=0) == ex.subs(t, 0), u.at(x=0) == ex.subs(x, 0), u.at(x=1) == ex.subs(x, 1)],
    )
    rate, _ = observed_order(problem, ex, [(21, 21), (41, 41)], 2)
    assert_order(rate, 2)


def test_solution_object():
    problem, ex = variable_2d()
    sol = pd.finite_differences(problem, (21, 31), order=4)
    assert [g.size for g in sol.grid] == [21, 31] and sol.values.shape == (21, 31)
    assert sol.grid[1][0] == 0.0 and sol.grid[1][-1] == 1.0
    assert sol.info["unknowns"] == 21 * 31
    assert sol.info["setup_s"] >= 0 and sol.info["solve_s"] >= 0
    nodes = sol.nodes()
    np.testing.assert_allclose(sol(nodes), sol.values.ravel(), rtol=0, atol=1e-12)
    assert sol.nodes(max_points=100).shape[0] <= 100
    assert np.shape(sol(np.array([0.3, 0.4]))) == ()
    e = sol.errors(ex)
    assert set(e) == {"rel_l2", "max_abs", "rel_max", "norm_l1", "points"} and e["points"] == 21 * 31
    assert e["rel_l2"] < 1e-5
    f = sp.lambdify((x, y), ex)
    assert sol.errors(lambda p: f(p[:, 0], p[:, 1]))["rel_l2"] == pytest.approx(e["rel_l2"])
    with pytest.raises(ValueError, match="outside"):
        sol(np.array([[1.5, 0.5]]))
    with pytest.raises(ValueError, match="shape"):
        sol(np.zeros((3, 3)))
    assert "grid 21x31" in repr(sol)


def test_solution_compare_against_a_reference():
    u = pd.Function("u")(x)
    ex = sp.sin(3 * x) + x**2
    domain = pd.Interval(x, 0, 1)
    conds = [u.at(x=0) == ex.subs(x, 0), u.at(x=1) == ex.subs(x, 1)]
    problem = pd.Problem(D(u, x, 2) == sp.diff(ex, x, 2), domain=domain, conditions=conds)
    sol = pd.solve(problem, pd.FBPINN(pd.Grid(domain, 3, 2.0), pd.Polynomial(10)), points=80)
    # (few distinct point counts: each new one costs a JIT compilation)
    coarse = pd.finite_differences(problem, (21,), order=2)
    assert sol.errors(ex, points=coarse.nodes())["rel_l2"] < 1e-10
    got = sol.compare(coarse)
    assert set(got) == set(sol.errors(ex, points=coarse.nodes())) and got["points"] == 21
    mine = np.asarray(sol(coarse.nodes()))
    manual = np.linalg.norm(mine - coarse.values) / np.linalg.norm(coarse.values)
    assert got["rel_l2"] == pytest.approx(manual, rel=1e-9)
    # pdedsl is exact to ~1e-10, so the comparison measures the FD error (~1e-3)
    assert got["rel_l2"] == pytest.approx(coarse.errors(ex)["rel_l2"], rel=1e-2)
    fine = pd.finite_differences(problem, (41,), order=4)
    assert sol.compare(fine)["rel_l2"] < 1e-6
    pts = np.random.default_rng(0).random(41)
    assert sol.compare(fine, points=pts)["points"] == 41
    other = pd.Problem(D(u, x, 2) == 1, pd.Interval(x, 0, 2), [u.at(x=0) == 0, u.at(x=2) == 0])
    with pytest.raises(ValueError, match="domain"):
        sol.compare(pd.finite_differences(other, (9,)))
    with pytest.raises(TypeError, match="callable"):
        sol.compare(np.zeros(3))


def test_clear_errors_for_what_it_cannot_do():
    u = pd.Function("u")(x)
    base = [u.at(x=0) == 0, u.at(x=1) == 0]
    ok = pd.Problem(D(u, x, 2) == 1, domain=pd.Interval(x, 0, 1), conditions=base)
    with pytest.raises(ValueError, match="order must be one of"):
        pd.finite_differences(ok, (11,), order=3)
    with pytest.raises(ValueError, match="at least 6 grid nodes along x"):
        pd.finite_differences(ok, (5,), order=4)
    with pytest.raises(ValueError, match="1 entries but the domain has 2"):
        pd.finite_differences(variable_2d()[0], (11,))
    with pytest.raises(TypeError, match="pd.Problem"):
        pd.finite_differences("u'' = 1", (11,))
    with pytest.raises(ValueError, match="needs exactly 2"):
        pd.finite_differences(pd.Problem(D(u, x, 2) == 1, pd.Interval(x, 0, 1), [u.at(x=0) == 0]), (11,))
    inner = pd.Problem(D(u, x, 2) == 1, pd.Interval(x, 0, 1), [u.at(x=0) == 0, u.at(x=0.5) == 0])
    with pytest.raises(NotImplementedError, match="inside the domain"):
        pd.finite_differences(inner, (11,))
    final = pd.Problem(D(u, x, 2) == 1, pd.Interval(x, 0, 1), [u.at(x=1) == 0, D(u, x).at(x=1) == 0])
    with pytest.raises(NotImplementedError, match="final-value"):
        pd.finite_differences(final, (11,))
    v = pd.Function("v")(x, y)
    corner = pd.Problem(
        D(v, x, 2) + D(v, y, 2) == 1,
        pd.Box([x, y], [0, 0], [1, 1]),
        [v.on(pd.boundary) == 0, v.at(x=0.5, y=0.5) == 1],
    )
    with pytest.raises(NotImplementedError, match="single point of a 2D domain"):
        pd.finite_differences(corner, (11, 11))
    square = pd.Box([x, y], [0, 0], [1, 1])
    for shape in (square - pd.Box([x, y], [0.5, 0.5], [1, 1]), square | pd.Box([x, y], [1, 0], [2, 0.5])):
        cut = pd.Problem(D(v, x, 2) + D(v, y, 2) == 1, shape, [v.on(pd.boundary) == 0])
        with pytest.raises(NotImplementedError, match="solves on a box .* pd.finite_elements"):
            pd.finite_differences(cut, (11, 11))
    two_times = pd.Problem(
        D(v, x) + D(v, y) == 0, pd.Box([x, y], [0, 0], [1, 1]), [v.at(x=0) == 0, v.at(y=0) == 0]
    )
    with pytest.raises(NotImplementedError, match="at most one initial-value"):
        pd.finite_differences(two_times, (11, 11))
    w = pd.Function("w")(x, t)
    box = pd.Box([x, t], [0, 0], [1, 1])
    moving = pd.Problem(
        D(w, t) == D(w, x, 2), box, [w.at(t=0) == 0, (D(w, t) + w).at(x=0) == 0, w.at(x=1) == 0]
    )
    with pytest.raises(NotImplementedError, match="t-derivatives"):
        pd.finite_differences(moving, (11, 11))
    slope = pd.Problem(D(w, t) == D(w, x, 2), box, [D(w, x).at(t=0) == 0, w.at(x=0) == 0, w.at(x=1) == 0])
    with pytest.raises(NotImplementedError, match="initial condition"):
        pd.finite_differences(slope, (11, 11))
    rate = pd.Problem(D(w, t) == D(w, x, 2), box, [D(w, t).at(t=0) == 0, w.at(x=0) == 0, w.at(x=1) == 0])
    with pytest.raises(ValueError, match="order 1 in t"):
        pd.finite_differences(rate, (11, 11))
    problem, _ = heat()
    problem.equation_form = "not a linear form"  # what a future nonlinear problem would carry
    with pytest.raises(pd.NonlinearError, match="linear problems"):
        pd.finite_differences(problem, (11, 11))
