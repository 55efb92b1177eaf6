"""The scikit-fem reference built from a pd.Problem: convergence orders, conditions, errors."""

import numpy as np
import pytest
import sympy as sp

import pdedsl as pd
from pdedsl import D, Dn, demos

pytest.importorskip("skfem")

x, y, z = pd.Symbol("x"), pd.Symbol("y"), pd.Symbol("z")
SQUARE = pd.Box([x, y], [0, 0], [1, 1])
L = SQUARE - pd.Box([x, y], [0.5, 0.5], [1, 1])


def laplacian(e, coords):
    return sum(sp.diff(e, c, 2) for c in coords)


def order(problem, exact, degree, r0, r1=None, **kw):
    """Observed L2 order between refinements r0 and r1 = r0 + 1 (halving h)."""
    r1 = r0 + 1 if r1 is None else r1
    e0 = pd.finite_elements(problem, r0, degree, **kw).l2_errors(exact)["rel_l2"]
    e1 = pd.finite_elements(problem, r1, degree, **kw).l2_errors(exact)["rel_l2"]
    return np.log2(e0 / e1) / (r1 - r0), e1


def poisson_1d():
    u = pd.Function("u")(x)
    ex = x * sp.exp(-(x**2))
    p = pd.Problem(
        -D(u, x, 2) == -sp.diff(ex, x, 2),
        domain=pd.Interval(x, -1, 2),
        conditions=[u.at(x=-1) == ex.subs(x, -1), u.at(x=2) == ex.subs(x, 2)],
    )
    return p, ex


def helmholtz_l():
    u = pd.Function("u")(x, y)
    ex = sp.sin(3 * x) * sp.cos(2 * y) + x * y
    p = pd.Problem(
        D(u, x, 2) + D(u, y, 2) + 4 * u == laplacian(ex, (x, y)) + 4 * ex,
        domain=L,
        conditions=[u.on(pd.boundary) == ex],
    )
    return p, ex


def poisson_3d():
    p, _, _, ex = demos.poisson_3d()
    return p, ex


def variable_mixed_conditions():
    """Variable coefficients, a first-order term, Dirichlet + Neumann + Robin."""
    u = pd.Function("u")(x, y)
    ex = sp.exp(x) * sp.sin(2 * y) + y
    k = 1 + x * y
    lhs = -k * (D(u, x, 2) + D(u, y, 2)) + y * D(u, x) + 2 * u
    rhs = -k * laplacian(ex, (x, y)) + y * sp.diff(ex, x) + 2 * ex
    p = pd.Problem(
        lhs == rhs,
        domain=SQUARE,
        conditions=[
            u.at(x=0) == ex.subs(x, 0),
            u.at(y=0) == ex.subs(y, 0),
            Dn(u).at(x=1) == sp.diff(ex, x).subs(x, 1),
            (3 * Dn(u) + u).at(y=1) == (3 * sp.diff(ex, y) + ex).subs(y, 1),
        ],
    )
    return p, ex


@pytest.mark.parametrize(
    "case, degree, r0",
    [
        (poisson_1d, 1, 4),
        (poisson_1d, 2, 4),
        (helmholtz_l, 1, 3),
        (helmholtz_l, 2, 3),
        (poisson_3d, 1, 3),
        (poisson_3d, 2, 2),
        (variable_mixed_conditions, 1, 3),
        (variable_mixed_conditions, 2, 3),
    ],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
def test_observed_order_is_nominal(case, degree, r0):
    problem, exact = case()
    rate, err = order(problem, exact, degree, r0)
    assert degree + 1 - 0.15 < rate < degree + 1 + 0.15, (rate, err)


def test_grid_errors_match_solution_errors_keys_and_shrink():
    problem, exact = helmholtz_l()
    ref = pd.finite_elements(problem, 4, degree=2)
    err = ref.errors(exact)
    assert set(err) == {"rel_l2", "max_abs", "rel_max", "norm_l1", "points"}
    assert err["rel_l2"] < 1e-4
    assert err["points"] > 1500
    info = ref.info
    assert info["degree"] == 2 and info["element"] == "ElementTriP2"
    # h = 1/16: V = 17^2 - 8^2 vertices, T = 2 (16^2 - 8^2) triangles, E = V + T - 1 edges
    vertices, triangles = 17**2 - 8**2, 2 * (16**2 - 8**2)
    assert info["elements"] == triangles
    assert info["dofs"] == ref.values.shape[0] == vertices + (vertices + triangles - 1)
    assert info["setup_s"] > 0 and info["solve_s"] > 0


def test_values_on_reentrant_edges_and_nodes():
    problem, exact = helmholtz_l()
    ref = pd.finite_elements(problem, 3, degree=1)
    # Dirichlet nodes carry the exact values; points on the re-entrant edges are found
    f = sp.lambdify((x, y), exact)
    pts = np.array([[0.5, 0.75], [0.75, 0.5], [0.5, 0.5], [1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(ref(pts), f(pts[:, 0], pts[:, 1]), atol=1e-12)
    assert np.shape(ref(np.array([0.2, 0.3]))) == ()
    with pytest.raises(ValueError, match="outside"):
        ref(np.array([[0.75, 0.75]]))
    with pytest.raises(ValueError, match="shape"):
        ref(np.zeros((3, 3)))


def test_direct_and_multigrid_solvers_agree():
    pytest.importorskip("pyamg")
    problem, _ = poisson_3d()
    a = pd.finite_elements(problem, 3, 1, solver="direct")
    b = pd.finite_elements(problem, 3, 1, solver="amg")
    assert a.info["solver"] == "SuperLU" and b.info["iterations"] > 0
    np.testing.assert_allclose(a.values, b.values, atol=1e-9)


# -- what it refuses -------------------------------------------------------------------------

u2 = pd.Function("u")(x, y)


@pytest.mark.parametrize(
    "equation, conditions, match",
    [
        (D(u2, x, y) + D(u2, x, 2) + D(u2, y, 2) == 0, [u2.on(pd.boundary) == 0], "mixed derivatives"),
        (D(u2, x, 3) + D(u2, y, 2) == 0, [u2.on(pd.boundary) == 0], "order 3"),
        (D(u2, x) - D(u2, y, 2) == 0, [u2.on(pd.boundary) == 0], "none in x"),
        (D(u2, x, 2) - D(u2, y, 2) == 0, [u2.on(pd.boundary) == 0], "different signs"),
        ((x - 0.5) * D(u2, x, 2) + D(u2, y, 2) == 0, [u2.on(pd.boundary) == 0], "not elliptic"),
        (D(u2, x, 2) + D(u2, y, 2) == 1, [u2.at(x=0) == 0, u2.at(x=1) == 0], "every part of the boundary"),
        (D(u2, x, 2) + D(u2, y, 2) == 1, [u2.on(pd.boundary) == 0, Dn(u2).at(x=1) == 0], "exactly one"),
        (D(u2, x, 2) + D(u2, y, 2) == 1, [u2.on(pd.boundary) == 0, u2.at(x=0.5) == 0], "inside the domain"),
        (D(u2, x, 2) + D(u2, y, 2) == 1, [u2.on(pd.boundary) == 0, u2.at(x=0.5, y=0.5) == 0], "single point"),
        (D(u2, x, 2) + D(u2, y, 2) == 1, [D(u2, y).on(pd.boundary) == 0], "along the face"),
    ],
)
def test_refuses_what_it_cannot_handle(equation, conditions, match):
    problem = pd.Problem(equation, domain=SQUARE, conditions=conditions)
    with pytest.raises(ValueError, match=match):
        pd.finite_elements(problem, 2)


def test_both_references_refuse_nonlinear_problems():
    """A nonlinear equation or condition, or an unknown parameter (pd.finite_elements
    failed on a missing attribute of the nonlinear form; pd.finite_differences did not
    look at the conditions)."""
    k = pd.Symbol("k")
    cases = [
        (-D(u2, x, 2) - D(u2, y, 2) + u2**3 == 1, [u2.on(pd.boundary) == 0], {}, "is not linear"),
        (
            -D(u2, x, 2) - D(u2, y, 2) == 1,
            [(u2 + u2**2).on(pd.boundary) == 0],
            {},
            r"condition `.*` is not linear",
        ),
        (
            -k * D(u2, x, 2) - D(u2, y, 2) == 1,
            [u2.on(pd.boundary) == 0, u2.at(x=[0.5], y=[0.5]) == [0.1]],
            {"unknown_parameters": {k: 1.0}},
            "unknown parameters",
        ),
    ]
    for equation, conditions, kw, match in cases:
        problem = pd.Problem(equation, SQUARE, conditions, **kw)
        with pytest.raises(pd.NonlinearError, match=match):
            pd.finite_elements(problem, 2)
        with pytest.raises(pd.NonlinearError, match=match):
            pd.finite_differences(problem, (9, 9))


def test_bad_arguments():
    problem, _ = helmholtz_l()
    with pytest.raises(ValueError, match="degree"):
        pd.finite_elements(problem, 2, degree=3)
    with pytest.raises(ValueError, match="refinements"):
        pd.finite_elements(problem, -1)
    with pytest.raises(ValueError, match="element size"):
        pd.finite_elements(problem, 0.0)
    # 30 refinements (an element count mistaken for a refinement count) was killed for memory
    with pytest.raises(ValueError, match=r"resolution=30 refinements.* cells, more than 1e\+07"):
        pd.finite_elements(problem, 30)
    with pytest.raises(ValueError, match=r"elements of side 1e-05 make a grid"):
        pd.finite_elements(problem, 1e-5)
    with pytest.raises(TypeError, match="resolution"):
        pd.finite_elements(problem, "fine")
    with pytest.raises(ValueError, match="solver"):
        pd.finite_elements(problem, 2, solver="magic")
    with pytest.raises(TypeError, match="pd.Problem"):
        pd.finite_elements("problem", 2)


def test_mesh_size_puts_nodes_on_every_corner():
    problem, _ = helmholtz_l()
    ref = pd.finite_elements(problem, 0.3)  # 0.5-long segments need 2 elements of <= 0.3
    xs = np.unique(ref.mesh.p[0])
    np.testing.assert_allclose(xs, [0, 0.25, 0.5, 0.75, 1.0])
    assert ref.info["mesh_size"] == 0.3
