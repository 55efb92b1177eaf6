"""Periodic conditions: `u.at(x=a) == u.at(x=b)` with a grid that wraps around
(`pd.Grid(..., periodic=[x])`), and the finite-difference and finite-element
references with the same conditions. Exact (manufactured) periodic solutions."""

import os
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import pdedsl as pd
from pdedsl import D
from pdedsl.ansatz import evaluate

x, y, t = pd.Symbol("x"), pd.Symbol("y"), pd.Symbol("t")
L = 2 * np.pi


def rel_l2(sol, exact, points):
    ref = sp.lambdify(sol.problem.coords, exact, "numpy")(*points.T) * np.ones(points.shape[0])
    return float(np.linalg.norm(np.asarray(sol(points)) - ref) / np.linalg.norm(ref))


def ansatz_values(model, points, orders):
    """sum_jk a_jk D^alpha(w_j phi_jk) at `points` for random coefficients, per multi-index."""
    a = jax.random.normal(jax.random.PRNGKey(1), (model.num_subdomains, model.num_features))
    idx, vals = evaluate(model, jnp.asarray(points), orders)
    return {k: np.asarray(jnp.einsum("npk,npk->n", v, a[idx])) for k, v in vals.items()}


# -- the ansatz ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda dom: pd.Grid(dom, 7, 2.9, periodic=[x]),
        lambda dom: pd.Grid(dom, 5, 4.0, periodic=["x"]),
        lambda dom: pd.Multilevel(dom, subdomains=[3, 6], periodic=[x]),
        lambda dom: pd.Multilevel(dom, subdomains=[5, 10], bspline=3, periodic=[x]),
        lambda dom: pd.Multilevel(dom, subdomains=[4, 8], bspline=2, periodic=[x]),
    ],
    ids=["grid", "grid-overlap4", "multilevel", "bspline3", "bspline2"],
)
def test_periodic_ansatz_and_its_derivatives_match_at_the_two_ends(make):
    dom = pd.Interval(x, -1.0, 2.0)
    dec = make(dom)
    window = pd.BSpline(dec.bspline) if getattr(dec, "bspline", None) else pd.Bump()
    model = pd.FBPINN(dec, pd.Polynomial(5), window)
    ends = np.array([[-1.0], [2.0]])
    orders = [(0,), (1,), (2,), (3,)] if window.smoothness >= 3 else [(0,), (1,)]
    vals = ansatz_values(model, ends, orders)
    for k, v in vals.items():
        assert abs(v[0] - v[1]) <= 1e-9 * (1 + abs(v[0])), (k, v)
    # and the function is not trivially constant: it varies inside
    inside = ansatz_values(model, np.linspace(-1, 2, 9)[:, None], [(0,)])[(0,)]
    assert np.ptp(inside) > 1e-2


def test_periodic_windows_are_a_partition_of_unity_across_the_seam():
    dom = pd.Box([x, y], [0, 0], [1, 1])
    dec = pd.Grid(dom, (5, 3), 2.5, periodic=[x])
    one = pd.FBPINN(dec, pd.Polynomial(0))
    pts = np.stack(np.meshgrid(np.linspace(0, 1, 21), np.linspace(0, 1, 7), indexing="ij"), -1).reshape(-1, 2)
    idx, vals = evaluate(one, jnp.asarray(pts), [(0, 0)])
    total = np.asarray(jnp.sum(vals[(0, 0)][..., 0], axis=1))
    np.testing.assert_allclose(total, 1.0, atol=1e-13)
    # the subdomain centred at x = 0 covers both ends (wraps around)
    first = np.asarray(idx)
    near0, near1 = first[np.isclose(pts[:, 0], 0.0)], first[np.isclose(pts[:, 0], 1.0)]
    assert set(near0.ravel()) == set(near1.ravel())
    np.testing.assert_allclose(np.asarray(dec.centres)[::3, 0], [0, 0.2, 0.4, 0.6, 0.8])


def test_periodic_grid_refuses_what_it_cannot_build():
    dom = pd.Interval(x, 0, 1)
    with pytest.raises(ValueError, match="more subdomains than the overlap"):
        pd.Grid(dom, 2, 2.9, periodic=[x])
    # level 0 of the default has one subdomain: the message gives counts that work
    with pytest.raises(ValueError, match=r"periodic Multilevel .* subdomains=\[4, 8, 16\]"):
        pd.Multilevel(dom, levels=3, periodic=[x])
    pd.Multilevel(dom, subdomains=[4, 8, 16], periodic=[x])
    with pytest.raises(ValueError, match=r"overlap \(4\).*subdomains=\[8, 16\]"):
        pd.Multilevel(dom, levels=2, bspline=3, periodic=[x])
    pd.Multilevel(dom, subdomains=[8, 16], bspline=3, periodic=[x])
    with pytest.raises(NotImplementedError, match="Graded"):
        pd.Grid(dom, np.array([0.0, 0.3, 1.0]), 2.0, periodic=[x])
    with pytest.raises(ValueError, match="not a coordinate"):
        pd.Grid(dom, 8, 2.0, periodic=[y])
    with pytest.raises(TypeError, match="coordinates"):
        pd.Grid(dom, 8, 2.0, periodic=[1.5])
    holed = pd.Box([x, y], [0, 0], [1, 1]) - pd.Box([x, y], [0.5, 0.5], [1, 1])
    with pytest.raises(NotImplementedError, match="holes"):
        pd.Grid(holed, 8, 2.0, periodic=[x])


# -- the problem ----------------------------------------------------------------------


def test_periodic_condition_is_recorded_and_printed():
    u = pd.Function("u")(x, y)
    dom = pd.Box([x, y], [0, 0], [L, 1])
    prob = pd.Problem(
        -D(u, x, 2) - D(u, y, 2) == 1,
        domain=dom,
        conditions=[u.at(x=0) == u.at(x=L), D(u, x).at(x=L) == D(u, x).at(x=0), u.on(pd.boundary) == 0],
    )
    assert prob.periodic == (0,) and prob.periodic_coords == (x,)
    # pd.boundary is the two faces y = 0 and y = 1 only; the periodic conditions add no rows
    assert [str(c.region) for c in prob.lowered_conditions] == ["y = 0", "y = 1"]
    assert "u at x = 0 = u at x = " in str(prob)
    assert r"\right|" in prob.latex()
    # a face object works as well as .at()
    prob2 = pd.Problem(
        -D(u, x, 2) - D(u, y, 2) == 1,
        domain=dom,
        conditions=[u.on(dom.face(x=0)) == u.on(dom.face(x=L)), u.on(pd.boundary) == 0],
    )
    assert prob2.periodic == (0,)


def test_periodic_conditions_refused_with_a_reason():
    u = pd.Function("u")(x, y)
    dom = pd.Box([x, y], [0, 0], [1, 1])
    eq = -D(u, x, 2) - D(u, y, 2) == 1
    with pytest.raises(ValueError, match="two different expressions"):
        pd.Problem(eq, domain=dom, conditions=[u.at(x=0) == D(u, x).at(x=1)])
    with pytest.raises(ValueError, match="two ends of the domain"):
        pd.Problem(eq, domain=dom, conditions=[u.at(x=0) == u.at(x=0.5)])
    with pytest.raises(ValueError, match="two ends of the domain"):
        pd.Problem(eq, domain=dom, conditions=[u.at(x=0) == u.at(y=1)])
    with pytest.raises(ValueError, match="links two places"):
        pd.Problem(eq, domain=dom, conditions=[u.at(x=0, y=0) == u.at(x=1, y=0)])
    with pytest.raises(NotImplementedError, match="only derivatives"):
        pd.Problem(eq, domain=dom, conditions=[D(u, x).at(x=0) == D(u, x).at(x=1)])
    with pytest.raises(NotImplementedError, match="the unknown and its derivatives"):
        pd.Problem(eq, domain=dom, conditions=[(2 * u).at(x=0) == (2 * u).at(x=1)])
    with pytest.raises(ValueError, match="no boundary"):
        pd.Problem(
            eq,
            domain=dom,
            conditions=[u.at(x=0) == u.at(x=1), u.at(y=0) == u.at(y=1), u.on(pd.boundary) == 0],
        )
    holed = dom - pd.Box([x, y], [0.5, 0.5], [1, 1])
    with pytest.raises(NotImplementedError, match="holes"):
        pd.Problem(eq, domain=holed, conditions=[u.at(x=0) == u.at(x=1)])
    with pytest.raises(TypeError, match="u.at\\(x=0\\) == u.at\\(x=1\\)"):
        u.at(x=0) - u.at(x=1)


# -- solving --------------------------------------------------------------------------

U1 = sp.sin(3 * x) + sp.cos(x) ** 3


def periodic_1d(nonlinear=False):
    u = pd.Function("u")(x)
    lhs = -D(u, x, 2) + (u**3 if nonlinear else u)
    f = -sp.diff(U1, x, 2) + (U1**3 if nonlinear else U1)
    return pd.Problem(lhs == f, domain=pd.Interval(x, 0, L), conditions=[u.at(x=0) == u.at(x=L)])


def test_periodic_1d_linear_solve_is_accurate():
    prob = periodic_1d()
    sol = pd.solve(prob, pd.FBPINN(pd.Grid(prob.domain, 8, 2.9, periodic=[x]), pd.Polynomial(8)))
    pts = np.linspace(0, L, 401)[:, None]
    assert rel_l2(sol, U1, pts) < 1e-6  # measured 2.3e-7
    assert abs(float(sol(np.array([0.0]))[0]) - float(sol(np.array([L]))[0])) < 1e-12


def test_periodic_1d_nonlinear_solve_is_accurate():
    prob = periodic_1d(nonlinear=True)
    assert not prob.linear
    sol = pd.solve(prob, pd.FBPINN(pd.Grid(prob.domain, 10, 2.9, periodic=[x]), pd.Polynomial(8)))
    assert rel_l2(sol, U1, np.linspace(0, L, 401)[:, None]) < 1e-6  # measured 1.9e-8


def test_model_and_problem_must_agree_on_periodicity():
    prob = periodic_1d()
    with pytest.raises(ValueError, match="periodic along x but the model is not"):
        pd.solve(prob, pd.FBPINN(pd.Grid(prob.domain, 8, 2.9), pd.Polynomial(8)))
    with pytest.raises(ValueError, match="periodic along x but the model is not"):
        pd.train(prob, pd.PINN(prob.domain), steps=1)
    u = pd.Function("u")(x)
    plain = pd.Problem(-D(u, x, 2) == 1, domain=pd.Interval(x, 0, 1), conditions=[u.on(pd.boundary) == 0])
    with pytest.raises(ValueError, match="model is periodic along x but the problem"):
        pd.solve(plain, pd.FBPINN(pd.Grid(plain.domain, 8, 2.9, periodic=[x]), pd.Polynomial(4)))


NU, C = 0.05, 1.0
W = sp.exp(-NU * t) * sp.sin(x - C * t) + sp.Rational(1, 2) * sp.exp(-4 * NU * t) * sp.cos(2 * (x - C * t))


def advection_diffusion():
    """w_t + c w_x = nu w_xx, periodic in x: the exact solution is two damped travelling waves."""
    w = pd.Function("w")(x, t)
    return pd.Problem(
        D(w, t) + C * D(w, x) - NU * D(w, x, 2) == 0,
        domain=pd.Box([x, t], [0, 0], [L, 1]),
        conditions=[w.at(t=0) == W.subs(t, 0), w.at(x=0) == w.at(x=L)],
    )


def test_periodic_advection_diffusion_marching_in_time():
    prob = advection_diffusion()
    model = pd.FBPINN(pd.Grid(prob.domain, (12, 6), 2.9, periodic=[x]), pd.Polynomial(7))
    # SparseNormal per stage: 11 s here, against 65 s for the dense SVD (same error)
    sol = pd.solve(prob, model, schedule=pd.TimeMarching(t, active=3), solver=pd.SparseNormal())
    pts = prob.domain.sample((41, 21))
    assert rel_l2(sol, W, pts) < 1e-6  # measured 7.7e-8
    with pytest.raises(ValueError, match="periodic along x"):
        pd.solve(prob, model, schedule=pd.TimeMarching(x, active=3))


def test_periodic_solution_saves_and_loads():
    prob = periodic_1d()
    sol = pd.solve(prob, pd.FBPINN(pd.Grid(prob.domain, 6, 2.9, periodic=[x]), pd.Polynomial(6)))
    path = os.path.join(tempfile.mkdtemp(), "periodic.pdedsl")
    sol.save(path)
    again = pd.load(path)
    pts = np.linspace(0, L, 33)
    assert (np.asarray(again(pts)) == np.asarray(sol(pts))).all()
    assert again.model.decomposition.periodic_axes == (0,)


# -- the classical references ---------------------------------------------------------


def observed_order(errors):
    return float(np.log2(errors[0] / errors[1]))


@pytest.mark.parametrize("order", [2, 4])
def test_finite_differences_periodic_converge_at_nominal_order(order):
    prob = periodic_1d()
    errs = [pd.finite_differences(prob, n, order).errors(U1)["rel_l2"] for n in (33, 65)]
    assert order - 0.2 <= observed_order(errs) <= order + 0.4, errs
    # time-dependent: method of lines, the periodic axis in space
    errs = [pd.finite_differences(advection_diffusion(), (n, n), order).errors(W)["rel_l2"] for n in (33, 65)]
    assert order - 0.2 <= observed_order(errs) <= order + 0.4, errs


def test_finite_differences_periodic_with_dirichlet_walls():
    v = pd.Function("v")(x, y)
    exact = sp.sin(x) * sp.sin(sp.pi * y)
    prob = pd.Problem(
        -D(v, x, 2) - D(v, y, 2) == (1 + sp.pi**2) * exact,
        domain=pd.Box([x, y], [0, 0], [L, 1]),
        conditions=[v.at(x=0) == v.at(x=L), v.on(pd.boundary) == 0],
    )
    errs = [pd.finite_differences(prob, (n, n), 4).errors(exact)["rel_l2"] for n in (17, 33)]
    assert 3.6 <= observed_order(errs) <= 4.6, errs
    fem = [pd.finite_elements(prob, r, 2).errors(exact)["rel_l2"] for r in (4, 5)]
    assert 2.6 <= observed_order(fem) <= 3.5, fem  # P2: h^3 in L2


def test_finite_elements_periodic_1d():
    errs = [pd.finite_elements(periodic_1d(), r, 2).errors(U1)["rel_l2"] for r in (4, 5)]
    assert 2.6 <= observed_order(errs) <= 3.5, errs


def test_references_refuse_a_condition_across_the_periodic_axis():
    u = pd.Function("u")(x)
    prob = pd.Problem(
        -D(u, x, 2) + u == 1, domain=pd.Interval(x, 0, 1), conditions=[u.at(x=0) == u.at(x=1), u.at(x=0) == 1]
    )
    with pytest.raises(NotImplementedError, match="periodic axis"):
        pd.finite_differences(prob, 33)


def test_periodic_fbpinn_trains_with_adam():
    prob = periodic_1d()
    model = pd.FBPINN(pd.Grid(prob.domain, 6, 2.0, periodic=[x]), pd.MLP(hidden=(16,)))
    sol = pd.train(prob, model, steps=2000, points=200)
    ends = np.asarray(sol(np.array([0.0, L])))
    assert ends[0] == pytest.approx(ends[1], abs=1e-12)
    assert rel_l2(sol, U1, np.linspace(0, L, 401)[:, None]) < 0.15  # measured 0.063 (Adam, 2,000 steps)


def test_plain_sympy_periodic_condition_gives_the_same_problem():
    U = sp.Function("u")
    eq = sp.Eq(-U(x).diff(x, 2) + U(x), sp.cos(x))
    prob = pd.Problem(eq, domain=pd.Interval(x, 0, L), conditions=[sp.Eq(U(0), U(2 * sp.pi))])
    assert prob.periodic == (0,)
    sol = pd.solve(prob, pd.FBPINN(pd.Grid(prob.domain, 6, 2.9, periodic=[x]), pd.Polynomial(8)))
    assert sol.errors(sp.cos(x) / 2)["rel_l2"] < 1e-8  # measured 4.3e-10
    V = sp.Function("v")
    prob2 = pd.Problem(
        sp.Eq(-V(x, y).diff(x, 2) - V(x, y).diff(y, 2), 1),
        domain=pd.Box([x, y], [0, 0], [1, 1]),
        conditions=[sp.Eq(V(0, y), V(1, y)), sp.Eq(V(x, 0), 0), sp.Eq(V(x, 1), 0)],
    )
    assert prob2.periodic == (0,) and len(prob2.lowered_conditions) == 2
    with pytest.raises(ValueError, match="two different places"):
        pd.Problem(eq, domain=pd.Interval(x, 0, L), conditions=[sp.Eq(U(0) + U(1), 1)])


def test_periodic_pinn_feeds_the_network_a_circle():
    prob = periodic_1d()
    model = pd.PINN(prob.domain, hidden=(32, 32), periodic=[x])
    assert model.periodic_axes == (0,)
    vals = ansatz_values(model, np.array([[0.0], [L]]), [(0,), (1,), (2,), (3,)])
    for k, v in vals.items():
        assert abs(v[0] - v[1]) <= 1e-9 * (1 + abs(v[0])), (k, v)
    sol = pd.train(prob, model, steps=3000, points=200)
    assert rel_l2(sol, U1, np.linspace(0, L, 401)[:, None]) < 1e-3  # measured 5.2e-5 (Adam, 3,000 steps)
    with pytest.raises(ValueError, match="one subdomain along its periodic axes"):
        pd.FBPINN(pd.Grid(prob.domain, 4, 2.0), pd.PeriodicInput(pd.MLP(), (0,), 1.0))
