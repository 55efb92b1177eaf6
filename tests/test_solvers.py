"""Every solver x preconditioner on small well-conditioned problems; operators vs dense."""

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest
import sympy as sp

import pdedsl as pd
from pdedsl import D
from pdedsl.assemble import assemble
from pdedsl.solve import collocation
from pdedsl.solve.iterative import normal_operator, operator
from pdedsl.solve.preconditioners import block_gram, build
from pdedsl.solve.sparse import to_scipy

x = pd.Symbol("x")
u = pd.Function("u")(x)
EXACT = sp.sin(2 * x) + x**2
PROBLEM = pd.Problem(
    D(u, x, 2) - u == sp.diff(EXACT, x, 2) - EXACT,
    domain=pd.Interval(x, 0, 2),
    conditions=[u.at(x=0) == EXACT.subs(x, 0), u.at(x=2) == EXACT.subs(x, 2)],
)
MODEL = pd.FBPINN(pd.Grid(PROBLEM.domain, 6, 2.0), pd.Polynomial(6))

SOLVERS = [
    pd.DenseLeastSquares(),
    pd.DenseLeastSquares("qr"),
    pd.SparseNormal(),
    pd.LSMR(pd.ColumnScaling()),
    pd.LSMR(pd.BlockFilter()),
    pd.CGNormal(pd.Identity()),
    pd.CGNormal(pd.ColumnScaling()),
    pd.CGNormal(pd.BlockFilter()),
    pd.CGNormal(pd.AdditiveSchwarz()),
    lx.LSMR(rtol=1e-12, atol=0.0, max_steps=5000, conlim=1e30),
    lx.CG(rtol=1e-10, atol=1e-14, max_steps=5000),
]


@pytest.mark.parametrize("solver", SOLVERS, ids=lambda s: getattr(s, "name", type(s).__name__))
def test_every_solver_reaches_the_dense_answer(solver):
    sol = pd.solve(PROBLEM, MODEL, points=120, solver=solver)
    assert sol.errors(EXACT)["rel_l2"] <= 1e-7
    if sol.info["iterations"] is not None:
        assert 0 < sol.info["iterations"] < 5000


def test_gmres_on_a_square_system():
    rows = MODEL.num_unknowns - 2  # plus the two condition rows = square
    sol = pd.solve(PROBLEM, MODEL, points=rows, solver=pd.GMRES())
    assert sol.info["points"] == MODEL.num_unknowns
    assert sol.errors(EXACT)["rel_l2"] <= 1e-6
    with pytest.raises(ValueError, match="square"):
        pd.solve(PROBLEM, MODEL, points=120, solver=pd.GMRES())


def test_non_convergence_raises_with_a_suggestion_and_reports_otherwise():
    solver = pd.LSMR(pd.Identity(), max_steps=3)
    with pytest.raises(pd.SolveError, match="max_steps|failed"):
        pd.solve(PROBLEM, MODEL, points=120, solver=solver)
    sol = pd.solve(PROBLEM, MODEL, points=120, solver=solver, throw=False)
    assert sol.info["success"] is False
    assert sol.info["iterations"] == 3


def test_auto_linear_solver_is_refused():
    with pytest.raises(TypeError, match="AutoLinearSolver"):
        pd.solve(PROBLEM, MODEL, solver=lx.AutoLinearSolver(well_posed=False))


@pytest.fixture(scope="module")
def system2d():
    y = pd.Symbol("y")
    v = pd.Function("v")(x, y)
    dom = pd.Box([x, y], [0, 0], [1, 1])
    problem = pd.Problem(D(v, x, 2) + D(v, y, 2) == 1, domain=dom, conditions=[v.on(pd.boundary) == 0])
    model = pd.FBPINN(pd.Multilevel(dom, levels=3, overlap=2.0), pd.Polynomial(3))
    return assemble(model, collocation(problem, model, points=(12, 12)))


def test_matrix_free_operators_and_transposes_match_dense(system2d):
    dense = np.asarray(system2d.dense())
    j, k = system2d.num_subdomains, system2d.num_features
    v = jax.random.normal(jax.random.PRNGKey(0), (j, k))
    w = jax.random.normal(jax.random.PRNGKey(1), (dense.shape[0],))
    op = operator(system2d)
    np.testing.assert_allclose(op.mv(v), dense @ np.asarray(v).ravel(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        np.asarray(op.transpose().mv(w)).ravel(), dense.T @ np.asarray(w), rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(
        np.asarray(normal_operator(system2d).mv(v)).ravel(),
        dense.T @ dense @ np.asarray(v).ravel(),
        rtol=1e-10,
    )
    np.testing.assert_allclose(to_scipy(system2d).toarray(), dense, rtol=0, atol=0)
    gram = np.asarray(block_gram(system2d))
    for s in (0, 3, j - 1):
        cols = slice(s * k, (s + 1) * k)
        np.testing.assert_allclose(gram[s], dense[:, cols].T @ dense[:, cols], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "pre", [pd.ColumnScaling(), pd.BlockFilter(), pd.AdditiveSchwarz()], ids=lambda p: p.name
)
def test_preconditioners_are_symmetric_positive_semidefinite(system2d, pre):
    built = build(pre, system2d)
    j, k = system2d.num_subdomains, system2d.num_features
    basis = jnp.eye(j * k).reshape(j * k, j, k)
    p = np.stack([np.asarray(built.normal(e)).ravel() for e in basis])
    np.testing.assert_allclose(p, p.T, atol=1e-8 * np.abs(p).max())
    assert np.linalg.eigvalsh((p + p.T) / 2).min() >= -1e-8 * np.abs(p).max()


def test_block_filter_orthonormalises_each_subdomains_columns(system2d):
    built = build(pd.BlockFilter(rtol=1e-10), system2d)
    dense = np.asarray(system2d.dense())
    k = system2d.num_features
    r = np.asarray(built.r)
    for s in (0, 1, 5):
        q = dense[:, s * k : (s + 1) * k] @ r[s]
        kept = np.abs(q).sum(axis=0) > 0
        np.testing.assert_allclose(q[:, kept].T @ q[:, kept], np.eye(kept.sum()), atol=1e-8)


def test_block_filter_drops_duplicated_features():
    class Twice(pd.AbstractBasis):
        def num_features(self, dim):
            return 4

        def features(self, params, z):
            return jnp.array([1.0, z[0], z[0], z[0] ** 2])

    model = pd.FBPINN(pd.Grid(PROBLEM.domain, 4, 2.0), Twice())
    system = assemble(model, collocation(PROBLEM, model, points=60))
    built = build(pd.BlockFilter(), system)
    assert int(built.filtered) == 4  # one duplicate per subdomain


def test_multilevel_windows_sum_to_one_in_3d():
    y, z = pd.Symbol("y"), pd.Symbol("z")
    dom = pd.Box([x, y, z], [0, 0, 0], [1, 2, 1])

    class One(pd.AbstractBasis):
        def num_features(self, dim):
            return 1

        def features(self, params, s):
            return jnp.ones(1)

    model = pd.FBPINN(pd.Multilevel(dom, levels=3, overlap=2.5), One())
    assert model.num_subdomains == 1 + 8 + 64
    pts = jnp.asarray(dom.sample(200, "uniform", seed=3))
    from pdedsl.ansatz import evaluate

    _, vals = evaluate(model, pts, ((0, 0, 0), (1, 0, 0), (0, 0, 2)))
    np.testing.assert_allclose(vals[(0, 0, 0)].sum(axis=(1, 2)), 1.0, atol=1e-12)
    np.testing.assert_allclose(vals[(1, 0, 0)].sum(axis=(1, 2)), 0.0, atol=1e-9)
    np.testing.assert_allclose(vals[(0, 0, 2)].sum(axis=(1, 2)), 0.0, atol=1e-7)


def test_multilevel_solves_poisson():
    y = pd.Symbol("y")
    v = pd.Function("v")(x, y)
    exact = sp.sin(sp.pi * x) * sp.sin(2 * sp.pi * y)
    dom = pd.Box([x, y], [0, 0], [1, 1])
    problem = pd.Problem(
        D(v, x, 2) + D(v, y, 2) == -5 * sp.pi**2 * exact, domain=dom, conditions=[v.on(pd.boundary) == 0]
    )
    model = pd.FBPINN(pd.Multilevel(dom, subdomains=[1, 3, (6, 6)], overlap=2.0), pd.Polynomial(5))
    assert model.decomposition.num_levels == 3
    sol = pd.solve(problem, model, points=(40, 40), solver=pd.SparseNormal())
    dense = pd.solve(problem, model, points=(40, 40), solver=pd.DenseLeastSquares())
    # the space, not the solver, limits the error here: both solvers agree
    assert sol.errors(exact)["rel_l2"] <= 1e-4
    assert dense.errors(exact)["rel_l2"] <= 1e-4


def test_multilevel_rejects_bad_levels():
    with pytest.raises(ValueError, match="levels"):
        pd.Multilevel(PROBLEM.domain, levels=0)
    with pytest.raises(ValueError, match="levels"):
        pd.Multilevel(PROBLEM.domain, levels=2, subdomains=[1, 2, 4])
