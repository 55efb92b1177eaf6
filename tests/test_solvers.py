"""Every solver x preconditioner on small well-conditioned problems; operators vs dense."""

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest
import sympy as sp

import pdedsl as pd
from pdedsl import D, demos
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
    pd.SparseQR(),
    pd.LSMR(pd.ColumnScaling()),
    pd.LSMR(pd.BlockFilter()),
    pd.CGNormal(pd.Identity()),
    pd.CGNormal(pd.ColumnScaling()),
    pd.CGNormal(pd.BlockFilter()),
    pd.CGNormal(pd.AdditiveSchwarz()),
    pd.CGNormal(pd.BoxSchwarz()),
    pd.CGNormal(pd.MultiplicativeSchwarz()),
    pd.CGNormal(pd.TwoLevel()),
    pd.CGNormal(pd.TwoLevel(aggregate=3, degree=3, local=pd.MultiplicativeSchwarz())),
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


@pytest.mark.parametrize("steps", [4, 5000])
def test_iterative_solvers_report_the_measure_their_rtol_bounds(steps):
    """`stop_measure` is recomputed here from the returned coefficients: CG's
    preconditioned normal residual sqrt(r^T P r / r0^T P r0), GMRES's ||r|| / ||b||.
    Converged, it is at most rtol (LSMR's too); stopped early, above it."""
    system = assemble(MODEL, collocation(PROBLEM, MODEL, 120))
    cg = pd.CGNormal(pd.BlockFilter(), rtol=1e-8, max_steps=steps)
    res = cg(system)
    pre = build(pd.BlockFilter(), system)
    r0 = system.rmv(system.rhs)
    r = system.rmv(system.rhs - system.mv(res.coefficients))
    want = float(jnp.sqrt(jnp.sum(r * pre.normal(r)) / jnp.sum(r0 * pre.normal(r0))))
    got = float(res.stop_measure)
    assert bool(res.success) == (steps == 5000)
    assert (got <= 1e-8) if steps == 5000 else (got > 1e-8)
    if steps == 4:  # (once converged, CG's recursive residual drifts from the true one at ~1e-12)
        assert got == pytest.approx(want, rel=1e-6)
    assert "preconditioned normal residual" in res.stop_rule

    lsmr = pd.LSMR(pd.BlockFilter(), rtol=1e-10, max_steps=steps)(system)
    assert (float(lsmr.stop_measure) <= 1e-10) == (steps == 5000) == bool(lsmr.success)

    rows = MODEL.num_unknowns - 2
    square = assemble(MODEL, collocation(PROBLEM, MODEL, rows))
    gm = pd.GMRES(rtol=1e-10, max_steps=1 if steps == 4 else 50, restart=4 if steps == 4 else 100)(square)
    true = jnp.linalg.norm(square.mv(gm.coefficients) - square.rhs) / jnp.linalg.norm(square.rhs)
    assert float(gm.stop_measure) == pytest.approx(float(true), rel=1e-6)
    assert (float(gm.stop_measure) <= 1e-10) == bool(gm.success) == (steps == 5000)
    # direct solvers have none
    assert pd.DenseLeastSquares()(system).stop_measure is None


def test_non_convergence_message_quotes_the_measure_and_suits_the_solver(model2d):
    problem, model = model2d  # three levels
    with pytest.raises(pd.SolveError) as err:
        pd.solve(
            problem, model, points=(12, 12), solver=pd.CGNormal(pd.BlockFilter(), rtol=1e-9, max_steps=3)
        )
    msg = str(err.value)
    sol = pd.solve(
        problem,
        model,
        points=(12, 12),
        solver=pd.CGNormal(pd.BlockFilter(), rtol=1e-9, max_steps=3),
        throw=False,
    )
    assert f"reached {sol.info['stop_measure']:.2e}, against rtol=1e-09" in msg
    assert sol.info["stop_measure"] > 1e-9 and "relative to its start" in sol.info["stop_rule"]
    assert "pd.BlockFilter()" not in msg and "pd.BoxSchwarz()" in msg  # not the one it has
    assert "multilevel ansatz" in msg  # the levels may never converge: says what to do
    assert "stopping measure" in sol.report()
    assert "NOT CONVERGED" in sol.report()  # kept by throw=False, and the report says so
    # one level: no multilevel hint; LSMR is offered only what it can use
    one = pd.FBPINN(pd.Grid(problem.domain, 3, 2.0), pd.Polynomial(3))
    with pytest.raises(pd.SolveError) as err:
        pd.solve(problem, one, points=(12, 12), solver=pd.LSMR(pd.ColumnScaling(), rtol=1e-12, max_steps=2))
    msg = str(err.value)
    assert "multilevel" not in msg and "BoxSchwarz()," not in msg
    assert "pd.BlockFilter()" in msg and "LSMR's two tests" in msg


def _poisson_1d():
    """u'' = -pi^2 sin(pi x) (1 + x) on [0, 1], u = 0 at both ends."""
    x = pd.Symbol("x")
    u = pd.Function("u")(x)
    return pd.Problem(
        D(u, x, 2) == -(sp.pi**2) * sp.sin(sp.pi * x) * (1 + x),
        domain=pd.Interval(x, 0, 1),
        conditions=[u.at(x=0) == 0, u.at(x=1) == 0],
    )


@pytest.mark.parametrize("degree, subdomains", [(3, 4), (5, 8)])
def test_cg_condition_estimate_matches_the_preconditioned_normal_matrix(degree, subdomains):
    """CG's Lanczos coefficients give the condition number of P M^T M (here P the
    unit column scaling D^2, so that of (M D)^T (M D)), exactly once CG has run to a
    tight tolerance on a small system (measured: 945 and 74,235, ratio 1.000)."""
    problem = _poisson_1d()
    model = pd.FBPINN(pd.Grid(problem.domain, subdomains, 2.0), pd.Polynomial(degree))
    system = pd.linear_system(problem, model)
    m = np.asarray(system.dense())
    scaled = m / np.linalg.norm(m, axis=0)
    w = np.linalg.eigvalsh(scaled.T @ scaled)
    result = pd.CGNormal(pd.ColumnScaling(), rtol=1e-13, max_steps=2000)(system)
    assert bool(result.success)
    assert float(result.condition_number) == pytest.approx(w[-1] / w[0], rel=1e-3)
    assert "Lanczos" in result.condition_rule and result.lanczos is None  # the arrays are dropped
    sol = pd.solve(problem, model, solver=pd.CGNormal(pd.ColumnScaling(), rtol=1e-13, max_steps=2000))
    assert sol.info["condition_number"] == pytest.approx(w[-1] / w[0], rel=1e-3)
    assert "condition" in sol.report() and "Lanczos estimate of cond(P M^T M)" in sol.report()
    # the other solvers say what their number is
    assert "exact" in pd.DenseLeastSquares()(system).condition_rule
    assert "LSMR's estimate" in pd.LSMR(rtol=1e-10)(system).condition_rule
    # too few iterations for an estimate: none, and no rule
    one = pd.CGNormal(pd.ColumnScaling(), rtol=1e-13, max_steps=1)(system)
    assert one.condition_number is None and one.condition_rule == ""


def test_cg_stops_when_the_right_hand_side_is_nearly_orthogonal_to_the_range():
    """b = eps M a + s with s orthogonal to the range of M and ||s|| = 1: the least-
    squares gradient M^T b is eps times smaller than ||M|| ||b||. CG's first test
    (the preconditioned normal residual relative to its start) is out of reach once
    the start is at the rounding level of M^T b, as in Gauss-Newton's last steps; its
    second, LSMR's test ||(M P^(1/2))^T s|| <= rtol ||M P^(1/2)|| ||s||, stops it
    there, with the backward-stable answer (measured: 7 and 1 iterations at eps = 1e-9
    and 1e-12; 20 before, which this well-conditioned system allowed, but on a worse
    conditioned one CG stalled instead: test_nonlinear.py's
    test_gauss_newton_with_cg_stops_its_last_linear_solves). Where b lies in the range
    (eps = 1) the first test decides and the answer is exact."""
    problem = _poisson_1d()
    model = pd.FBPINN(pd.Grid(problem.domain, 4, 2.0), pd.Polynomial(3))
    system = pd.linear_system(problem, model)
    m = np.asarray(system.dense())
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(m)
    perp = rng.normal(size=m.shape[0])
    perp -= q @ (q.T @ perp)
    perp /= np.linalg.norm(perp)
    a = rng.normal(size=m.shape[1])
    for eps, its in [(1.0, None), (1e-9, 10), (1e-12, 2)]:
        rhs = eps * (m @ a) + perp
        result = pd.CGNormal(pd.ColumnScaling(), rtol=1e-10, max_steps=500)(
            eqx.tree_at(lambda s: s.rhs, system, jnp.asarray(rhs))
        )
        assert bool(result.success)
        coefficients = np.asarray(result.coefficients).ravel()
        gradient = np.linalg.norm(m.T @ (rhs - m @ coefficients))
        # backward stable: the gradient at the rounding level of ||M|| ||s||
        assert gradient <= 1e-9 * np.linalg.norm(m, 2) * np.linalg.norm(rhs - m @ coefficients)
        if its is None:  # b in the range: the first test, the exact answer
            assert np.linalg.norm(coefficients - a) <= 1e-8 * np.linalg.norm(a)
        else:
            assert int(result.iterations) <= its
            assert float(result.stop_measure) <= 1e-10


def test_auto_linear_solver_is_refused():
    with pytest.raises(TypeError, match="AutoLinearSolver"):
        pd.solve(PROBLEM, MODEL, solver=lx.AutoLinearSolver(well_posed=False))


@pytest.mark.parametrize(
    "make, error, match",
    [
        # a tolerance >= 1 or < 0 "converged" at once on the zero iterate before these checks
        (
            lambda: pd.CGNormal(rtol=-1.0),
            ValueError,
            r"CGNormal\(rtol=...\) must be a number with 0 <= rtol < 1",
        ),
        (lambda: pd.LSMR(rtol=2.0), ValueError, r"LSMR\(rtol=...\)"),
        (lambda: pd.GMRES(rtol=1.0), ValueError, r"GMRES\(rtol=...\)"),
        (lambda: pd.CGNormal(pd.BlockFilter(rtol=-1e-7)), ValueError, r"BlockFilter\(rtol=...\)"),
        (lambda: pd.AdditiveSchwarz(rtol=1.5), ValueError, r"AdditiveSchwarz\(rtol=...\)"),
        (lambda: pd.MultiplicativeSchwarz(rtol=float("nan")), ValueError, "MultiplicativeSchwarz"),
        (lambda: pd.BoxSchwarz(size=2.5), ValueError, r"BoxSchwarz\(size=...\) must be an int >= 1"),
        (lambda: pd.CGNormal(max_steps=0), ValueError, r"max_steps=...\) must be an int >= 1"),
        (lambda: pd.LSMR(max_steps=100.0), ValueError, "max_steps"),
        (lambda: pd.GMRES(restart=0), ValueError, "restart"),
        (lambda: pd.Auto(max_steps=0), ValueError, r"Auto\(max_steps=...\)"),
        (lambda: pd.Auto(dense_unknowns=-1), ValueError, r"Auto\(dense_unknowns=...\)"),
        (lambda: pd.Auto(normal_bytes=-1), ValueError, "bytes"),
        # the class, not an instance: a common slip
        (lambda: pd.CGNormal(pd.BlockFilter), TypeError, r"pd.BlockFilter\(\), not the class"),
        (lambda: pd.CGNormal("jacobi"), TypeError, "must be a pdedsl preconditioner"),
        (lambda: pd.TwoLevel(local="block"), TypeError, r"TwoLevel\(local=...\)"),
        # normal-equation preconditioners have no right form M R: say so before building them
        (lambda: pd.LSMR(pd.AdditiveSchwarz()), ValueError, "AdditiveSchwarz .* pd.CGNormal only"),
        (lambda: pd.LSMR(pd.TwoLevel()), ValueError, "TwoLevel"),
        (lambda: pd.GMRES(pd.MultiplicativeSchwarz()), ValueError, "MultiplicativeSchwarz"),
        (lambda: pd.LSMR(pd.SplineFrame()), ValueError, "SplineFrame"),
        (lambda: pd.LSMR(pd.BoxSchwarz()), ValueError, "BoxSchwarz"),
    ],
)
def test_bad_solver_arguments_fail_at_construction(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_solver_class_instead_of_instance_is_refused():
    with pytest.raises(TypeError, match=r"pd.CGNormal\(\), not the class"):
        pd.solve(PROBLEM, MODEL, solver=pd.CGNormal)
    # the defaults and the limits of the ranges are accepted
    pd.CGNormal(pd.BlockFilter(rtol=0.0), rtol=0.0, max_steps=1)
    pd.GMRES(restart=1)
    pd.Auto(normal_bytes=4e9, random_unknowns_3d=None)


@pytest.fixture(scope="module")
def model2d():
    y = pd.Symbol("y")
    v = pd.Function("v")(x, y)
    dom = pd.Box([x, y], [0, 0], [1, 1])
    problem = pd.Problem(D(v, x, 2) + D(v, y, 2) == 1, domain=dom, conditions=[v.on(pd.boundary) == 0])
    model = pd.FBPINN(pd.Multilevel(dom, levels=3, overlap=2.0), pd.Polynomial(3))
    return problem, model


@pytest.fixture(scope="module")
def system2d(model2d):
    problem, model = model2d
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
    "pre",
    [
        pd.ColumnScaling(),
        pd.BlockFilter(),
        pd.AdditiveSchwarz(),
        pd.BoxSchwarz(),
        pd.MultiplicativeSchwarz(),
        pd.TwoLevel(),
        pd.TwoLevel(local=pd.MultiplicativeSchwarz()),
        pd.TwoLevel(local=pd.BoxSchwarz()),
    ],
    ids=lambda p: p.name + (f"({p.local.name})" if isinstance(p, pd.TwoLevel) else ""),
)
def test_preconditioners_are_symmetric_positive_semidefinite(model2d, system2d, pre):
    built = build(pre.bind(model2d[1]), system2d)
    p = _dense_normal(built, system2d)
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


def _poisson_2d():
    """Poisson on the unit square with exact solution sin(pi x) sin(2 pi y):
    (problem, exact, domain)."""
    y = pd.Symbol("y")
    v = pd.Function("v")(x, y)
    exact = sp.sin(sp.pi * x) * sp.sin(2 * sp.pi * y)
    dom = pd.Box([x, y], [0, 0], [1, 1])
    problem = pd.Problem(
        D(v, x, 2) + D(v, y, 2) == -5 * sp.pi**2 * exact, domain=dom, conditions=[v.on(pd.boundary) == 0]
    )
    return problem, exact, dom


def test_multilevel_solves_poisson():
    problem, exact, dom = _poisson_2d()
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


def _columns(model, pts):
    """All windowed basis functions at `pts`, dense (N, J*K)."""
    from pdedsl.ansatz import evaluate

    idx, vals = evaluate(model, pts, ((0,) * pts.shape[1],))
    v = np.asarray(vals[(0,) * pts.shape[1]])
    n, p, k = v.shape
    out = np.zeros((n, model.num_subdomains, k))
    np.add.at(out, (np.repeat(np.arange(n), p), np.asarray(idx).ravel()), v.reshape(n * p, k))
    return out.reshape(n, -1)


def test_bspline_multilevel_windows_sum_to_one_and_are_nested():
    y = pd.Symbol("y")
    dom = pd.Box([x, y], [0, 0], [2, 1])
    pts = jnp.asarray(dom.sample(500, "uniform", seed=4))
    for degree in (2, 3):
        ml = pd.Multilevel(dom, levels=3, bspline=degree)
        # 2^l cells and 2^l + degree B-splines per axis, all on the box's spacing
        assert ml.num_subdomains == sum((2**level + degree) ** 2 for level in range(3))
        model = pd.FBPINN(ml, pd.Polynomial(2))
        assert model.window == pd.BSpline(degree)
        cols = _columns(model, pts)
        # every level is a partition of unity on the box (no normalisation needed)
        ones = pd.FBPINN(ml, pd.Polynomial(0))
        np.testing.assert_allclose(_columns(ones, pts).sum(axis=1), 1.0, atol=1e-12)
        # each coarse level's windows x quadratics lie in the next level's span
        lev = np.repeat(np.asarray(ml.levels), 6)
        for coarse in (0, 1):
            fine = cols[:, lev == coarse + 1]
            fit = np.linalg.lstsq(fine, cols[:, lev == coarse], rcond=None)[0]
            assert np.max(np.abs(fine @ fit - cols[:, lev == coarse])) < 1e-9
        # the cosine levels are only nearly nested (the contrast the option exists for)
        # (levels 1 and 2: level 0's single window is constant)
        cos = pd.FBPINN(pd.Multilevel(dom, levels=3, overlap=3.0), pd.Polynomial(2))
        cc, cl = _columns(cos, pts), np.repeat(np.asarray(cos.decomposition.levels), 6)
        fit = np.linalg.lstsq(cc[:, cl == 2], cc[:, cl == 1], rcond=None)[0]
        assert np.max(np.abs(cc[:, cl == 2] @ fit - cc[:, cl == 1])) > 1e-6  # nearly, not exactly


def test_bspline_multilevel_solves_poisson_like_the_dense_solver():
    problem, exact, dom = _poisson_2d()
    model = pd.FBPINN(pd.Multilevel(dom, levels=3, bspline=3), pd.Polynomial(2))
    dense = pd.solve(problem, model, points=(24, 24), solver=pd.DenseLeastSquares())
    cg = pd.solve(
        problem, model, points=(24, 24), solver=pd.CGNormal(pd.AdditiveSchwarz(), rtol=1e-8, max_steps=2000)
    )
    e_dense, e_cg = dense.errors(exact)["rel_l2"], cg.errors(exact)["rel_l2"]
    assert e_dense < 2e-3
    assert abs(e_cg - e_dense) <= 1e-2 * e_dense


def test_bspline_multilevel_rejects_bad_input():
    dom = PROBLEM.domain
    with pytest.raises(ValueError, match="degree"):
        pd.Multilevel(dom, levels=2, bspline=0)
    with pytest.raises(ValueError, match="overlap"):
        pd.Multilevel(dom, levels=2, bspline=3, overlap=2.0)
    pd.Multilevel(dom, levels=2, bspline=3, overlap=4.0)  # the one it uses anyway
    with pytest.raises(ValueError, match=r"BSpline\(3\)"):
        pd.FBPINN(pd.Multilevel(dom, levels=2, bspline=3), pd.Polynomial(2), pd.Cosine())
    with pytest.raises(ValueError, match=r"BSpline\(3\)"):
        pd.FBPINN(pd.Multilevel(dom, levels=2, bspline=3), pd.Polynomial(2), pd.BSpline(2))


def _dense_normal(built, system):
    j, k = system.num_subdomains, system.num_features
    basis = jnp.eye(j * k).reshape(j * k, j, k)
    columns = eqx.filter_jit(jax.vmap(lambda b, e: b.normal(e), in_axes=(None, 0)))(built, basis)
    return np.asarray(columns).reshape(j * k, j * k).T


def test_additive_schwarz_patches_are_filtered_inverses_of_same_level_neighbours(system2d):
    """Each subdomain's patch is itself and its neighbours of the same level (those
    whose block of the normal matrix is not zero), and its inverse is the
    eigenvalue-filtered pseudo-inverse of that patch's block of D M^T M D, all
    computed here from the dense matrix."""
    dense = np.asarray(system2d.dense())
    j, k = system2d.num_subdomains, system2d.num_features
    lev = np.asarray(system2d.levels)
    norms = np.linalg.norm(dense, axis=0)
    a = (dense / norms).T @ (dense / norms)
    rtol = 1e-5
    built = build(pd.AdditiveSchwarz(rtol=rtol), system2d)
    members, inverses = np.asarray(built.members), np.asarray(built.inverses)
    sizes = set()
    for s in range(j):
        touch = np.abs(a[s * k : (s + 1) * k]).reshape(k, j, k).max(axis=(0, 2)) > 0
        patch = np.flatnonzero(touch & (lev == lev[s]))
        assert s in patch
        np.testing.assert_array_equal(members[s][members[s] >= 0], patch)
        sizes.add(patch.size)
        cols = (patch[:, None] * k + np.arange(k)).ravel()
        lam, vec = np.linalg.eigh(a[np.ix_(cols, cols)])
        keep = lam > lam[-1] * rtol**2
        want = (vec[:, keep] / lam[keep]) @ vec[:, keep].T
        got = inverses[s][: cols.size, : cols.size]
        np.testing.assert_allclose(got, want, atol=1e-8 * np.abs(want).max())
        assert not np.any(inverses[s][cols.size :]) and not np.any(inverses[s][:, cols.size :])
    assert len(sizes) > 2  # corner, edge, interior patches and the coarse levels'


def test_multiplicative_schwarz_is_the_symmetric_block_gauss_seidel_sweep(system2d):
    """B A = I - E^T-ordered product of the exact group corrections, groups finest
    level first and back; groups share no rows."""
    from pdedsl.solve.preconditioners import _colour_groups

    built = build(pd.MultiplicativeSchwarz(rtol=1e-12), system2d)
    dense = np.asarray(system2d.dense())
    a = dense.T @ dense
    k = system2d.num_features
    eye = np.eye(a.shape[0])
    groups = _colour_groups(system2d, system2d.levels)
    levels = np.asarray(system2d.levels)
    assert [levels[g[0]] for g in groups] == sorted((levels[g[0]] for g in groups), reverse=True)
    steps = []
    for g in groups:
        cols = (g[:, None] * k + np.arange(k)).ravel()
        sub = dense[:, cols]
        touched = np.abs(sub).reshape(sub.shape[0], g.size, k).sum(axis=2) > 0
        assert touched.sum(axis=1).max() <= 1  # one colour: no shared rows
        d = np.zeros_like(a)
        d[np.ix_(cols, cols)] = np.linalg.pinv(a[np.ix_(cols, cols)], rcond=1e-14, hermitian=True)
        steps.append(eye - d @ a)
    e = eye
    for step in steps + steps[::-1][1:]:
        e = step @ e
    np.testing.assert_allclose(_dense_normal(built, system2d) @ a, eye - e, atol=1e-8)


def _poisson2d(side, degree):
    y = pd.Symbol("y")
    v = pd.Function("v")(x, y)
    exact = sp.sin(sp.pi * x) * sp.sin(sp.pi * y) * sp.exp(x)
    dom = pd.Box([x, y], [0, 0], [1, 1])
    f = sp.diff(exact, x, 2) + sp.diff(exact, y, 2)
    problem = pd.Problem(D(v, x, 2) + D(v, y, 2) == f, domain=dom, conditions=[v.on(pd.boundary) == 0])
    return problem, pd.FBPINN(pd.Grid(dom, (side, side), 2.0), pd.Polynomial(degree)), exact


def test_two_level_coarse_space_reproduces_monomials_on_each_aggregate():
    """Z's functions are W_C q: with one aggregate over the whole grid (W_C = 1) the
    fine ansatz with coefficients Z[:, :, c] is the monomial q_c itself."""
    from pdedsl.ansatz.model import evaluate

    problem, model, _ = _poisson2d(4, 3)
    pre = pd.TwoLevel(aggregate=4, degree=2).bind(model)
    assert int(jnp.max(pre.aggregates)) == 0
    pts = jnp.asarray(np.random.default_rng(0).uniform(0, 1, (50, 2)))
    index, vals = evaluate(model, pts, [(0, 0)])
    half = float(model.decomposition.half_widths[0, 0])
    z = (pts - 0.5) / (0.5 + half)  # aggregate coordinates: the box that all windows cover
    monomials = [np.ones(50), z[:, 1], z[:, 1] ** 2, z[:, 0], z[:, 0] * z[:, 1], z[:, 0] ** 2]
    for c, q in enumerate(monomials):
        u = jnp.einsum("npk,npk->n", vals[(0, 0)], pre.coefficients[:, :, c][index])
        np.testing.assert_allclose(u, q, atol=1e-9)


def test_two_level_keeps_cg_iterations_flat_as_subdomains_grow():
    """Measured: block-Jacobi CG needs 64 then 235 iterations on 8^2 then 16^2
    subdomains; two-level CG 30 then 26 (same answer)."""
    its = {}
    for side in (8, 16):
        problem, model, exact = _poisson2d(side, 2)
        for name, pre in [("jacobi", pd.BlockFilter()), ("two-level", pd.TwoLevel())]:
            sol = pd.solve(problem, model, points=(5 * side + 3,) * 2, solver=pd.CGNormal(pre, rtol=1e-8))
            its[name, side] = sol.info["iterations"]
            assert sol.errors(exact)["rel_l2"] < 0.03
    assert its["two-level", 16] <= 1.5 * its["two-level", 8]
    assert 3 * its["two-level", 16] < its["jacobi", 16]
    assert its["jacobi", 16] > 2 * its["jacobi", 8]  # the growth the coarse level removes


def test_two_level_deflation_form_takes_the_balancing_steps_on_a_grid():
    """On a one-level grid the adapted-deflation form (the default there) is the
    balancing preconditioner in exact arithmetic (measured here: 26 / 26, 36 / 36 and
    41 / 41 iterations to rtol 1e-6 / 1e-9 / 1e-12), and its stop measure has the
    same start, so both stop at the same point. On a multilevel decomposition "auto"
    keeps the balancing form (3 levels, rtol 1e-10: 281 iterations; deflation 888)."""
    problem, model, _ = _poisson2d(8, 3)
    system = assemble(model, collocation(problem, model, points=(43, 43)))
    assert build(pd.TwoLevel(local=pd.BoxSchwarz()).bind(model), system).deflated
    balancing = build(pd.TwoLevel(local=pd.BoxSchwarz(), form="balancing").bind(model), system)
    b = system.rmv(system.rhs)

    def measure(a):  # sqrt(r^T B r / b^T B b), B the balancing form, r = b - A a
        r = system.rmv(system.rhs - system.mv(a))
        return float(jnp.sqrt(jnp.sum(r * balancing.normal(r)) / jnp.sum(b * balancing.normal(b))))

    out = {}
    for form in ("balancing", "deflation"):
        pre = pd.TwoLevel(local=pd.BoxSchwarz(), form=form).bind(model)
        early = pd.CGNormal(pre, rtol=1e-10, max_steps=5)(system)
        assert not bool(early.success)
        # (the deflated P equals B on residuals with Z^T r = 0, which CG keeps)
        assert float(early.stop_measure) == pytest.approx(measure(early.coefficients), rel=1e-6)
        out[form] = pd.CGNormal(pre, rtol=1e-10, max_steps=500)(system)
        assert bool(out[form].success)
        assert measure(out[form].coefficients) <= 1e-9
    assert abs(int(out["deflation"].iterations) - int(out["balancing"].iterations)) <= 1
    a, c = out["balancing"].coefficients, out["deflation"].coefficients
    assert float(jnp.linalg.norm(a - c) / jnp.linalg.norm(a)) < 1e-8

    ml = pd.FBPINN(pd.Multilevel(problem.domain, levels=3, overlap=2.0), pd.Polynomial(3))
    ml_system = assemble(ml, collocation(problem, ml, points=(12, 12)))
    assert not build(pd.TwoLevel(local=pd.BoxSchwarz()).bind(ml), ml_system).deflated
    assert build(pd.TwoLevel(form="deflation").bind(ml), ml_system).deflated
    # nor in 1D (where it lost iterations on every grid measured; docs/solving.md)
    u = pd.Function("u")(x)
    line = pd.Problem(-D(u, x, 2) == 1, pd.Interval(x, 0, 1), [u.at(x=0) == 0, u.at(x=1) == 0])
    grid = pd.FBPINN(pd.Grid(line.domain, 8, 2.0), pd.Polynomial(4))
    line_system = assemble(grid, collocation(line, grid))
    assert not build(pd.TwoLevel().bind(grid), line_system).deflated
    assert build(pd.TwoLevel(form="deflation").bind(grid), line_system).deflated


def test_two_level_deflation_does_not_stall_on_a_well_conditioned_coarse_problem():
    """1D Poisson on 8 subdomains of degree 4: the coarse matrix is well conditioned
    (lambda_min / max diag ~ 1e-3), yet with its factorisation always shifted by
    1e-12 max(diag) the deflated form's residual left Z^T r = 0 by ~1e-9 and CG
    stalled at rtol 1e-10 (20,000 iterations, stop measure 1.9e-10) where the
    balancing form took 31. Unshifted, the deflated form takes about the balancing
    form's steps. How many depends on the last bits of the assembly: the equation
    multiplied by 1, 3, 7, 0.1, 1.7 or 11 (the same system after row scaling, up to
    rounding) took 35 to 45 steps, against 31 or 32 (measured 2026-12-06, with the
    equation's numbers compiled in and as arguments alike)."""
    u = pd.Function("u")(x)
    problem = pd.Problem(
        -D(u, x, 2) == 9 * sp.sin(3 * x), pd.Interval(x, 0, 1), [u.at(x=0) == 0, u.at(x=1) == sp.sin(3)]
    )
    model = pd.FBPINN(pd.Grid(problem.domain, 8, 2.0), pd.Polynomial(4))
    its = {}
    for form in ("deflation", "balancing"):
        sol = pd.solve(problem, model, solver=pd.CGNormal(pd.TwoLevel(form=form), rtol=1e-10, max_steps=500))
        its[form] = sol.info["iterations"]
        assert sol.errors(sp.sin(3 * x))["rel_l2"] < 1e-5
    assert its["deflation"] <= 1.6 * its["balancing"]  # 45 of 32 at most, measured; stalled: 20,000


def test_a_stalled_two_level_solve_suggests_what_can_help():
    """A deflated TwoLevel CG that stalls (1D, tanh random features: stop measure
    2.4e-6 after 1,000 iterations where the balancing form converges in 158) is told
    to try the balancing form; the suggestions no longer offer block Jacobi (weaker)
    in place of a failed two-level preconditioner."""
    u = pd.Function("u")(x)
    problem = pd.Problem(
        -D(u, x, 2) == 9 * sp.sin(3 * x), pd.Interval(x, 0, 1), [u.at(x=0) == 0, u.at(x=1) == sp.sin(3)]
    )
    model = pd.FBPINN(pd.Grid(problem.domain, 8, 2.0), pd.RandomFeatures(12))
    deflated = pd.CGNormal(pd.TwoLevel(form="deflation"), rtol=1e-8, max_steps=300)
    with pytest.raises(pd.SolveError, match="without meeting") as caught:
        pd.solve(problem, model, solver=deflated)
    message = str(caught.value)
    assert 'pd.TwoLevel(form="balancing")' in message and "pd.BlockFilter()" not in message
    assert "pd.TwoLevel(local=pd.BoxSchwarz())" in message
    # the advice holds: the balancing form converges
    balancing = pd.CGNormal(pd.TwoLevel(form="balancing"), rtol=1e-8, max_steps=300)
    assert pd.solve(problem, model, solver=balancing).errors(sp.sin(3 * x))["rel_l2"] < 1e-5
    # (already balancing, with a Schwarz local part: nothing of those two to suggest)
    capped = pd.CGNormal(pd.TwoLevel(form="balancing", local=pd.BoxSchwarz()), rtol=1e-8, max_steps=2)
    with pytest.raises(pd.SolveError, match="without meeting") as caught:
        pd.solve(problem, model, solver=capped)
    assert 'form="balancing"' not in str(caught.value) and "pd.TwoLevel(degree=3)" in str(caught.value)
    top = pd.CGNormal(pd.TwoLevel(degree=3, local=pd.BoxSchwarz()), rtol=1e-8, max_steps=2)
    with pytest.raises(pd.SolveError, match="loosen rtol, or a direct solver"):
        pd.solve(problem, model, solver=top)


def test_two_level_coarse_factor_shifts_only_a_singular_matrix_and_refines():
    """The coarse matrix is factorised as it is when its pivots are sound; a singular
    one (two coarse functions coincide) gets a shift and a refinement step, and its
    solves still satisfy A_c y = b for b in its range."""
    import scipy.sparse as sps

    from pdedsl.solve.preconditioners import _coarse_factor, _host_coarse_solve, _register

    rng = np.random.default_rng(0)
    g = rng.standard_normal((40, 12)) @ np.diag(np.logspace(0, -4, 12))  # cond(A_c) = 1e8
    ac = sps.csc_matrix(g.T @ g)
    lu, shifted = _coarse_factor(ac)
    assert shifted is None
    b = g.T @ rng.standard_normal(40)
    y = _host_coarse_solve(_register((lu, shifted)), b)
    np.testing.assert_allclose(ac @ y, b, rtol=0, atol=1e-9 * np.linalg.norm(b))

    g[:, 5] = g[:, 4]  # two coincident coarse functions: A_c singular
    ac = sps.csc_matrix(g.T @ g)
    factor = _coarse_factor(ac)
    assert factor[1] is not None
    b = g.T @ rng.standard_normal(40)
    y = _host_coarse_solve(_register(factor), b)
    # the shift alone leaves an error of ~1e-12 max(diag) / lambda_min (2e-4 here, a
    # residual of 4e-8); refined: 4e-8 and 9e-12
    best = np.linalg.pinv(ac.toarray(), rcond=1e-13) @ b
    assert np.linalg.norm(y - best) <= 1e-6 * np.linalg.norm(best)
    assert np.linalg.norm(ac @ y - b) <= 1e-10 * np.linalg.norm(b)


def test_two_level_binding_compares_by_content_so_a_second_solve_compiles_nothing():
    """pd.solve binds TwoLevel to the model on every call, and the binding is a static
    field of the solver the jitted CG loop receives: held by identity, every call
    recompiled that loop (0.95 s warm against 0.05 s on 8^2 subdomains)."""
    import jax

    problem, model, _ = _poisson2d(4, 2)
    a, b = pd.TwoLevel().bind(model), pd.TwoLevel().bind(model)
    assert a == b and hash(a) == hash(b)
    other = pd.FBPINN(pd.Grid(problem.domain, (3, 3), 2.0), pd.Polynomial(2))
    assert pd.TwoLevel().bind(other) != a
    solver = pd.CGNormal(pd.TwoLevel(), rtol=1e-8)
    first = pd.solve(problem, model, points=(23, 23), solver=solver)
    compiles = []

    def listen(name, seconds, **kwargs):
        if name == "/jax/core/compile/backend_compile_duration":
            compiles.append(seconds)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        second = pd.solve(problem, model, points=(23, 23), solver=solver)
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    assert compiles == []
    np.testing.assert_array_equal(first.coefficients, second.coefficients)


def test_two_level_errors_are_clear():
    problem, model, _ = _poisson2d(4, 2)
    system = assemble(model, collocation(problem, model, points=(12, 12)))
    with pytest.raises(ValueError, match="bind"):
        build(pd.TwoLevel(), system)
    other = pd.FBPINN(pd.Grid(problem.domain, (3, 3), 2.0), pd.Polynomial(2))
    with pytest.raises(ValueError, match="different model"):
        build(pd.TwoLevel().bind(other), system)
    with pytest.raises(ValueError, match="max_coarse"):
        pd.TwoLevel(aggregate=1, max_coarse=10).bind(model)
    with pytest.raises(ValueError, match="aggregate"):
        pd.TwoLevel(aggregate=0)
    with pytest.raises(ValueError, match="form must be"):
        pd.TwoLevel(form="deflated")


@pytest.mark.parametrize("size", [2, 3, None])
def test_box_schwarz_is_the_sum_of_the_box_inverses(system2d, size):
    """Boxes of `size` per axis on each level (4 by default in 2D), on the grid and on
    the grid shifted by half a box; each box's block of A = M^T M inverted (after unit
    diagonal scaling)."""
    built = build(pd.BoxSchwarz(size=size, rtol=1e-12), system2d)
    side = 4 if size is None else size
    dense = np.asarray(system2d.dense())
    a = dense.T @ dense
    k = system2d.num_features
    centres = np.asarray(system2d.centres)
    levels = np.asarray(system2d.levels)
    expected = np.zeros_like(a)
    boxes = 0
    for level in np.unique(levels):
        sel = np.flatnonzero(levels == level)
        # integer position on the level's grid
        ij = np.stack([np.unique(centres[sel, a].round(9), return_inverse=True)[1] for a in (0, 1)], 1)
        for offset in (0, side // 2):
            keys = (ij + offset) // side
            for key in np.unique(keys, axis=0):
                members = sel[(keys == key).all(axis=1)]
                cols = (members[:, None] * k + np.arange(k)).ravel()
                block = a[np.ix_(cols, cols)]
                d = 1 / np.sqrt(np.diag(block))
                inv = d[:, None] * np.linalg.pinv(d[:, None] * block * d, rcond=1e-14, hermitian=True) * d
                expected[np.ix_(cols, cols)] += inv
                boxes += 1
    assert sum(m.shape[0] for m in built.members) == boxes
    np.testing.assert_allclose(_dense_normal(built, system2d), expected, atol=1e-8 * np.abs(expected).max())


def test_box_schwarz_beats_block_jacobi_in_3d():
    """Degree 4 in 3D, where neighbouring subdomains' features nearly cancel in their
    overlaps: block Jacobi needs several times more CG iterations than boxes of 2."""
    problem, _, _, exact = demos.poisson_3d()
    dom = problem.domain
    model = pd.FBPINN(pd.Grid(dom, (4, 4, 4), 2.0), pd.Polynomial(4))
    its = {}
    for name, pre in [("block", pd.BlockFilter()), ("box", pd.BoxSchwarz())]:
        sol = pd.solve(
            problem, model, points=(19, 19, 19), solver=pd.CGNormal(pre, rtol=1e-8, max_steps=2000)
        )
        assert sol.errors(exact)["rel_l2"] < 1e-3
        its[name] = sol.info["iterations"]
    assert its["box"] * 3 < its["block"], its


def test_box_schwarz_default_size_by_dimension():
    assert [pd.BoxSchwarz().box_size(d) for d in (1, 2, 3, 4)] == [4, 4, 2, 2]
    assert pd.BoxSchwarz(size=3).box_size(3) == 3


def test_box_schwarz_errors(system2d):
    with pytest.raises(ValueError, match="size"):
        pd.BoxSchwarz(size=0)
    import dataclasses

    with pytest.raises(ValueError, match="centres"):
        build(pd.BoxSchwarz(), dataclasses.replace(system2d, centres=None))


def _poisson_3d(basis, decomposition=None):
    xs = [pd.Symbol(c) for c in "xyz"]
    v = pd.Function("v")(*xs)
    exact = sp.sin(sp.pi * xs[0]) * sp.sin(sp.pi * xs[1]) * sp.sin(sp.pi * xs[2])
    domain = pd.Box(xs, [0, 0, 0], [1, 1, 1])
    f = -sum(sp.diff(exact, c, 2) for c in xs)
    problem = pd.Problem(-sum(D(v, c, 2) for c in xs) == f, domain, [v.on(pd.boundary) == 0])
    dec = pd.Grid(domain, 2, 2.0) if decomposition is None else decomposition(domain)
    return problem, pd.FBPINN(dec, basis), exact


def test_auto_choice_by_size_dimension_and_basis():
    # thresholds shrunk so that small systems take every branch
    small = pd.Auto(dense_unknowns=10, sparse_unknowns_2d=20, sparse_unknowns_3d=20)
    one_d = assemble(MODEL, collocation(PROBLEM, MODEL, 120))
    assert isinstance(pd.Auto().choose(one_d), pd.DenseLeastSquares)
    assert isinstance(small.choose(one_d, MODEL), pd.SparseNormal)  # no sparse limit in 1D
    # 2D: the two-level CG for polynomials on a grid past the limit; SparseNormal otherwise
    y = pd.Symbol("y")
    v = pd.Function("v")(x, y)
    dom2 = pd.Box([x, y], [0, 0], [1, 1])
    prob2 = pd.Problem(D(v, x, 2) + D(v, y, 2) == 1, domain=dom2, conditions=[v.on(pd.boundary) == 0])
    grid2 = pd.FBPINN(pd.Grid(dom2, 3, 2.0), pd.Polynomial(2))
    sys2 = assemble(grid2, collocation(prob2, grid2, (12, 12)))
    assert isinstance(pd.Auto(dense_unknowns=10).choose(sys2, grid2), pd.SparseNormal)
    # polynomials on a grid, and random features, leave the dense SVD earlier
    # (benchmarks/auto_dense.py); a system without its model keeps it up to
    # dense_unknowns
    assert isinstance(pd.Auto().choose(sys2, grid2), pd.DenseLeastSquares)  # 54 unknowns
    early = pd.Auto(dense_unknowns_polynomial=50)
    assert isinstance(early.choose(sys2, grid2), pd.SparseNormal)
    assert isinstance(early.choose(sys2), pd.DenseLeastSquares)
    rf2 = pd.FBPINN(pd.Grid(dom2, 3, 2.0), pd.RandomFeatures(6))
    assert isinstance(pd.Auto().choose(sys2, rf2), pd.DenseLeastSquares)
    assert isinstance(early.choose(sys2, rf2), pd.SparseQR)
    assert isinstance(
        early.choose(sys2, pd.FBPINN(pd.Multilevel(dom2, levels=2), pd.RandomFeatures(6))),
        pd.SparseQR,
    )
    chosen2 = small.choose(sys2, grid2)
    assert isinstance(chosen2, pd.CGNormal) and isinstance(chosen2.preconditioner, pd.TwoLevel)
    assert isinstance(small.choose(sys2), pd.SparseNormal)
    # a cut domain (an L) keeps the factorisation in 2D
    ell = dom2 - pd.Box([x, y], [0.5, 0.5], [1, 1])
    prob_l = pd.Problem(D(v, x, 2) + D(v, y, 2) == 1, domain=ell, conditions=[v.on(pd.boundary) == 0])
    grid_l = pd.FBPINN(pd.Grid(ell, 4, 2.0), pd.Polynomial(2))
    sys_l = assemble(grid_l, collocation(prob_l, grid_l, (12, 12)))
    assert isinstance(small.choose(sys_l, grid_l), pd.SparseNormal)
    sol2 = pd.solve(prob2, grid2, points=(12, 12), solver=small)
    assert sol2.info["solver"].startswith("CG") and "TwoLevel" in sol2.info["solver"]
    ref2 = pd.solve(prob2, grid2, points=(12, 12), solver=pd.DenseLeastSquares())
    p2 = dom2.sample((9, 9))
    assert np.linalg.norm(sol2(p2) - ref2(p2)) <= 1e-5 * np.linalg.norm(ref2(p2))
    # random features: the QR of M in 1D to 3D, on one level or several (at any size
    # where the factorisation is chosen)
    assert isinstance(small.choose(sys2, rf2), pd.SparseQR)
    assert isinstance(pd.Auto(dense_unknowns=10).choose(sys2, rf2), pd.SparseQR)
    rf1 = pd.FBPINN(pd.Grid(PROBLEM.domain, 6, 2.0), pd.RandomFeatures(7))
    assert isinstance(small.choose(one_d, rf1), pd.SparseQR)
    rf_levels = pd.FBPINN(pd.Multilevel(dom2, levels=2), pd.RandomFeatures(6))
    assert isinstance(pd.Auto(dense_unknowns=10).choose(sys2, rf_levels), pd.SparseQR)
    sol_rf = pd.solve(prob2, rf2, points=(12, 12), solver=pd.Auto(dense_unknowns=10))
    assert sol_rf.info["solver"] == "SparseQR"
    ref_rf = pd.solve(prob2, rf2, points=(12, 12), solver=pd.DenseLeastSquares())
    assert np.linalg.norm(sol_rf(p2) - ref_rf(p2)) <= 1e-6 * np.linalg.norm(ref_rf(p2))
    bspline = pd.FBPINN(pd.Grid(dom2, 4, 4.0), pd.Polynomial(2), window=pd.BSpline())
    sys_b = assemble(bspline, collocation(prob2, bspline, (12, 12)))
    assert isinstance(small.choose(sys_b, bspline), pd.SparseNormal)
    # nested B-spline levels in 2D: CG with the spline frame past frame_unknowns_2d
    nested = pd.FBPINN(pd.Multilevel(dom2, levels=2, bspline=3), pd.Polynomial(2))
    sys_n = assemble(nested, collocation(prob2, nested, (12, 12)))
    assert isinstance(pd.Auto(dense_unknowns=10).choose(sys_n, nested), pd.SparseNormal)
    framed = pd.Auto(dense_unknowns=10, frame_unknowns_2d=20)
    chosen_n = framed.choose(sys_n, nested)
    assert isinstance(chosen_n, pd.CGNormal) and isinstance(chosen_n.preconditioner, pd.SplineFrame)
    sol_n = pd.solve(prob2, nested, points=(12, 12), solver=framed)
    assert "SplineFrame" in sol_n.info["solver"]
    ref_n = pd.solve(prob2, nested, points=(12, 12), solver=pd.DenseLeastSquares())
    assert np.linalg.norm(sol_n(p2) - ref_n(p2)) <= 1e-5 * np.linalg.norm(ref_n(p2))
    problem, model, _ = _poisson_3d(pd.Polynomial(2))
    system = assemble(model, collocation(problem, model, (8, 8, 8)))
    assert isinstance(pd.Auto(dense_unknowns=10).choose(system, model), pd.SparseNormal)
    chosen = small.choose(system, model)
    assert isinstance(chosen, pd.CGNormal)
    assert isinstance(chosen.preconditioner, pd.TwoLevel)
    assert isinstance(chosen.preconditioner.local, pd.BoxSchwarz)
    # without the model, with random features or with a multilevel decomposition: LSMR
    assert isinstance(small.choose(system), pd.LSMR)
    # called on a system, Auto falls back to the factorisation when LSMR fails
    capped = pd.Auto(dense_unknowns=10, sparse_unknowns_3d=20, max_steps=2)
    assert not bool(capped.choose(system)(system).success)
    assert bool(capped(system).success)
    _, tanh, _ = _poisson_3d(pd.RandomFeatures(10))
    assert isinstance(small.choose(system, tanh), pd.SparseQR)  # 3D random features: where the QR fits
    assert isinstance(pd.Auto(dense_unknowns=10).choose(system, tanh), pd.SparseQR)
    beyond = pd.Auto(dense_unknowns=10, sparse_unknowns_3d=20, random_unknowns_3d=20)
    assert isinstance(beyond.choose(system, tanh), pd.LSMR)
    # past the sparse limits, the QR only while its estimated memory fits qr_bytes
    tight = pd.Auto(dense_unknowns=10, sparse_unknowns_2d=20, sparse_unknowns_3d=20, qr_bytes=1)
    assert isinstance(tight.choose(system, tanh), pd.LSMR)
    assert isinstance(tight.choose(sys2, rf2), pd.LSMR)
    assert isinstance(small.choose(sys2, rf2), pd.SparseQR)  # 2D: no limit but memory
    _, ml, _ = _poisson_3d(pd.Polynomial(2), lambda d: pd.Multilevel(d, levels=2))
    assert isinstance(small.choose(system, ml), pd.LSMR)


def test_auto_large_3d_choice_solves():
    problem, model, exact = _poisson_3d(pd.Polynomial(4), lambda d: pd.Grid(d, 3, 2.0))
    points = (16, 16, 16)
    sol = pd.solve(problem, model, points=points, solver=pd.Auto(dense_unknowns=10, sparse_unknowns_3d=20))
    assert sol.info["solver"].startswith("CG") and "TwoLevel" in sol.info["solver"]
    reference = pd.solve(problem, model, points=points, solver=pd.DenseLeastSquares())
    p = problem.domain.sample((12, 12, 12))
    assert np.linalg.norm(sol(p) - reference(p)) <= 1e-5 * np.linalg.norm(reference(p))
    assert sol.errors(exact)["rel_l2"] < 1e-2


class _NegativeDiagonal(pd.ColumnScaling):
    def build(self, system, levels=None):
        from pdedsl.solve.preconditioners import BuiltPreconditioner

        d = super().build(system, levels).d

        class _Neg(BuiltPreconditioner):
            d: jax.Array

            @property
            def has_right(self):
                return False

            def normal(self, r):
                return -(self.d**2) * r

        return _Neg(d=d)


def test_cg_breakdown_is_reported_not_mistaken_for_convergence():
    """r^T P r < 0 (a preconditioner that is not positive definite) stops CG as a
    failure with `breakdown` set; pd.solve says so and names the fix."""
    system = assemble(MODEL, collocation(PROBLEM, MODEL, 120))
    res = pd.CGNormal(_NegativeDiagonal(), rtol=1e-10, max_steps=100)(system)
    assert bool(res.breakdown) and not bool(res.success)
    assert int(res.iterations) <= 1
    with pytest.raises(pd.SolveError, match="broke down"):
        pd.solve(PROBLEM, MODEL, points=120, solver=pd.CGNormal(_NegativeDiagonal(), max_steps=100))
    ok = pd.CGNormal(pd.ColumnScaling(), rtol=1e-10, max_steps=5000)(system)
    assert not bool(ok.breakdown)


def test_auto_falls_back_to_the_factorisation_when_its_iterative_choice_fails():
    y = pd.Symbol("y")
    v = pd.Function("v")(x, y)
    dom = pd.Box([x, y], [0, 0], [1, 1])
    exact = sp.sin(sp.pi * x) * sp.sin(sp.pi * y)
    prob = pd.Problem(
        D(v, x, 2) + D(v, y, 2) == sp.diff(exact, x, 2) + sp.diff(exact, y, 2),
        domain=dom,
        conditions=[v.on(pd.boundary) == 0],
    )
    model = pd.FBPINN(pd.Grid(dom, 3, 2.0), pd.Polynomial(4))
    # the iterative choice capped at 2 iterations cannot converge
    auto = pd.Auto(dense_unknowns=10, sparse_unknowns_2d=20, max_steps=2)
    sol = pd.solve(prob, model, points=(20, 20), solver=auto)
    assert sol.info["success"] and sol.info["solver"] == "SparseNormal"
    failed = sol.info["fallback_from"]
    assert failed["solver"].startswith("CGNormal") and failed["iterations"] == 2
    assert sol.errors(exact)["rel_l2"] < 1e-3
    # above SparseNormal's limit the QR of M, where its estimated memory fits qr_bytes
    past = pd.Auto(dense_unknowns=10, sparse_unknowns_2d=20, max_steps=2, fallback_unknowns_2d=20)
    sol_qr = pd.solve(prob, model, points=(20, 20), solver=past)
    assert sol_qr.info["success"] and sol_qr.info["solver"] == "SparseQR"
    assert sol_qr.info["fallback_from"]["iterations"] == 2
    p = dom.sample((9, 9))
    assert np.linalg.norm(sol_qr(p) - sol(p)) <= 1e-8 * np.linalg.norm(sol(p))
    # no fallback where neither fits: the failure is reported
    with pytest.raises(pd.SolveError, match="without meeting its tolerance"):
        pd.solve(prob, model, points=(20, 20), solver=eqx.tree_at(lambda a: a.qr_bytes, past, 1))
    # and none needed when the choice converges
    assert pd.solve(prob, model, points=(20, 20)).info["fallback_from"] is None


def test_auto_falls_back_to_the_qr_for_random_features():
    """Random features past the 3D limits: LSMR, and when it fails the QR of M (more
    accurate than the normal equations on them) even where SparseNormal would fit."""
    problem, model, exact = _poisson_3d(pd.RandomFeatures(10))
    auto = pd.Auto(dense_unknowns=10, sparse_unknowns_3d=20, random_unknowns_3d=20, max_steps=2)
    sol = pd.solve(problem, model, points=(8, 8, 8), solver=auto)
    assert sol.info["solver"] == "SparseQR" and sol.info["fallback_from"]["solver"].startswith("LSMR")
    reference = pd.solve(problem, model, points=(8, 8, 8), solver=pd.DenseLeastSquares())
    p = problem.domain.sample((6, 6, 6))
    assert np.linalg.norm(sol(p) - reference(p)) <= 1e-6 * np.linalg.norm(reference(p))
    # where the QR does not fit qr_bytes, SparseNormal within its limit
    tight = eqx.tree_at(lambda a: a.qr_bytes, auto, 1)
    assert pd.solve(problem, model, points=(8, 8, 8), solver=tight).info["solver"] == "SparseNormal"


@pytest.mark.parametrize("ordering", ["multifrontal", "symmetric", "colamd"])
@pytest.mark.parametrize("lam", [1e-6, 1e-3])
def test_sparse_normal_without_refinement_is_the_tikhonov_solution(system2d, lam, ordering):
    """refine=0 gives the solution of the column-scaled, regularised normal equations
    (M_s^T M_s + lam I) y = M_s^T b, a = y / ||columns||, computed densely here, with
    each factorisation (the multifrontal Cholesky, SuperLU with either ordering); the
    default refinement moves it towards the unregularised least-squares solution."""
    fac = dict(ordering=ordering, factorisation="superlu") if ordering != "multifrontal" else {}
    m = np.asarray(system2d.dense())
    b = np.asarray(system2d.rhs)
    norms = np.linalg.norm(m, axis=0)
    ms = m / norms
    y = np.linalg.solve(ms.T @ ms + lam * np.eye(ms.shape[1]), ms.T @ b)
    want = (y / norms).reshape(system2d.num_subdomains, system2d.num_features)
    # dense_fraction=2: sparse even though this small normal matrix is nearly full
    result = pd.SparseNormal(regularisation=lam, refine=0, dense_fraction=2.0, **fac)(system2d)
    assert {"multifrontal": "multifrontal Cholesky", "symmetric": "minimum degree", "colamd": "COLAMD"}[
        ordering
    ] in result.message
    got = np.asarray(result.coefficients)
    assert np.linalg.norm(got - want) <= 1e-8 * np.linalg.norm(want)
    # the damping costs residual; refinement wins most of it back
    res = lambda c: np.linalg.norm(m @ np.asarray(c).reshape(-1) - b)
    refined = pd.SparseNormal(regularisation=lam, refine=3, dense_fraction=2.0, **fac)(system2d).coefficients
    exact = np.linalg.lstsq(m, b, rcond=None)[0]
    assert res(exact) <= res(refined) < res(got)


def test_sparse_normal_cg_refinement_reaches_the_dense_accuracy():
    """The factors of the normal equations carry the squared condition number; CG
    steps on M itself win the difference back. The w0 = 40 oscillator on 20
    subdomains of Legendre degree 11 (240 unknowns, 480 points): measured rel_l2
    1.45e-9 with three Richardson steps (the old default), 9.3e-11 with the default
    CG steps, 4.6e-11 dense QR."""
    problem, _, _, exact = demos.oscillator(w0=40.0, d=2.0)
    model = pd.FBPINN(pd.Grid(problem.domain, 20, 2.0), pd.Polynomial(11))
    err = {}
    for name, solver in (
        ("richardson", pd.SparseNormal(refinement="richardson", refine=3)),
        ("cg", pd.SparseNormal()),
        ("dense", pd.DenseLeastSquares()),
    ):
        sol = pd.solve(problem, model, points=480, solver=solver)
        err[name] = sol.errors(exact)["rel_l2"]
        if name == "cg":
            assert 1 <= sol.info["iterations"] <= 5 and "cg refinement" in sol.info["solver_message"]
    assert err["cg"] < 3e-10 and err["dense"] < 1e-10
    assert err["richardson"] > 5 * err["cg"]
    with pytest.raises(ValueError, match="refinement"):
        pd.SparseNormal(refinement="lsqr")
    with pytest.raises(ValueError, match="refine"):
        pd.SparseNormal(refine=-1)


def test_sparse_normal_cg_refinement_converges_to_least_squares(system2d):
    """Heavily damped factors (lam = 1e-3) as a preconditioner: CG reaches the
    unregularised least-squares residual where as many Richardson steps do not."""
    m = np.asarray(system2d.dense())
    b = np.asarray(system2d.rhs)
    best = np.linalg.norm(m @ np.linalg.lstsq(m, b, rcond=None)[0] - b)
    res = {}
    for how in ("cg", "richardson"):
        c = pd.SparseNormal(regularisation=1e-3, refine=40, refinement=how)(system2d).coefficients
        res[how] = np.linalg.norm(m @ np.asarray(c).reshape(-1) - b)
    assert res["cg"] <= best * (1 + 1e-8)
    assert res["richardson"] > res["cg"]


def test_sparse_normal_orderings(monkeypatch):
    import scipy.sparse as sps
    import scipy.sparse.linalg as spl

    from pdedsl.solve import sparse

    with pytest.raises(ValueError, match="ordering"):
        pd.SparseNormal(ordering="amd")
    spd = sps.csc_matrix(np.array([[4.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 2.0]]))
    lu, how = sparse._factorise(spd, "symmetric")
    assert "minimum degree" in how
    np.testing.assert_allclose(spd @ lu.solve(np.ones(3)), np.ones(3), atol=1e-14)
    # where the factorisation without pivoting fails, it factorises again with pivoting
    real = spl.splu

    def no_symmetric(a, **kw):
        if kw.get("permc_spec") == "MMD_AT_PLUS_A":
            raise RuntimeError("Factor is exactly singular")
        return real(a, **kw)

    monkeypatch.setattr(sparse.spl, "splu", no_symmetric)
    lu, how = sparse._factorise(spd, "symmetric")
    assert "COLAMD" in how
    np.testing.assert_allclose(spd @ lu.solve(np.ones(3)), np.ones(3), atol=1e-14)


def test_sparse_normal_dense_cholesky_where_the_normal_matrix_is_full(system2d, monkeypatch):
    """A normal matrix at least `dense_fraction` full is factorised dense (LAPACK
    Cholesky): the same Tikhonov solution as the sparse factors, computed densely here;
    where that Cholesky fails it falls back to the sparse factorisation."""
    import scipy.linalg as sla

    from pdedsl.solve import sparse

    m = np.asarray(system2d.dense())
    b = np.asarray(system2d.rhs)
    norms = np.linalg.norm(m, axis=0)
    lam = 1e-6
    y = np.linalg.solve((m / norms).T @ (m / norms) + lam * np.eye(m.shape[1]), (m / norms).T @ b)
    want = (y / norms).reshape(system2d.num_subdomains, system2d.num_features)
    for fraction, how in ((1e-9, "dense Cholesky"), (2.0, "multifrontal Cholesky")):
        result = pd.SparseNormal(regularisation=lam, refine=0, dense_fraction=fraction)(system2d)
        assert how in result.message
        got = np.asarray(result.coefficients)
        assert np.linalg.norm(got - want) <= 1e-8 * np.linalg.norm(want)
    # too big for dense_bytes: sparse
    small = pd.SparseNormal(dense_fraction=1e-9, dense_bytes=8)(system2d)
    assert "multifrontal Cholesky" in small.message

    def fails(*args, **kwargs):
        raise np.linalg.LinAlgError("not positive definite")

    monkeypatch.setattr(sparse.sla, "cho_factor", fails)
    result = pd.SparseNormal(regularisation=lam, refine=0, dense_fraction=1e-9)(system2d)
    assert "multifrontal Cholesky" in result.message
    assert np.linalg.norm(np.asarray(result.coefficients) - want) <= 1e-8 * np.linalg.norm(want)
    monkeypatch.setattr(sparse.sla, "cho_factor", sla.cho_factor)
    for bad in (0.0, -1.0, True, "dense"):
        with pytest.raises(ValueError, match="dense_fraction"):
            pd.SparseNormal(dense_fraction=bad)


@pytest.mark.parametrize("chunk_bytes", [1, 2**28])
def test_normal_matrix_matches_dense(system2d, chunk_bytes):
    """The block-wise normal matrix (rows grouped by the subdomains they touch)
    equals (M D)^T (M D) formed densely, with the column norms as D^-1; a chunk of
    one pattern at a time gives the same."""
    from pdedsl.solve.sparse import column_norms, normal_matrix

    m = np.asarray(system2d.dense())
    norms = column_norms(system2d)
    np.testing.assert_allclose(norms, np.linalg.norm(m, axis=0), rtol=1e-13)
    # a (made up) scaling with a zero, as for an empty column
    scale = 1.0 / norms
    scale[3] = 0.0
    want = (m * scale).T @ (m * scale)
    got = normal_matrix(system2d, scale, chunk_bytes=chunk_bytes)
    assert got.blocksize == (system2d.num_features,) * 2
    np.testing.assert_allclose(got.toarray(), want, atol=1e-13 * np.abs(want).max())


def test_host_blocks_sort_rows_given_in_any_order(system2d):
    """Rows whose blocks come in any order (some shuffled, some not) are sorted by
    subdomain, padding last, by their keys alone (the values are neither copied nor
    touched); M, its column norms and its normal matrix are unchanged."""
    from pdedsl.solve.sparse import HostBlocks, column_norms, normal_matrix

    index, values = np.asarray(system2d.index), np.asarray(system2d.values)
    rng = np.random.default_rng(0)
    perm = np.stack(
        [rng.permutation(index.shape[1]) if i % 3 else np.arange(index.shape[1]) for i in range(len(index))]
    )
    shuffled = eqx.tree_at(
        lambda s: (s.index, s.values),
        system2d,
        (
            jnp.asarray(np.take_along_axis(index, perm, 1)),
            jnp.asarray(np.take_along_axis(values, perm[:, :, None], 1)),
        ),
    )
    before = np.asarray(shuffled.values).copy()
    blocks = HostBlocks.of(shuffled)
    j, p = system2d.num_subdomains, index.shape[1]
    assert blocks.order is not None
    assert np.all(blocks.key[:, 1:] >= blocks.key[:, :-1])
    ordered = blocks.sorted_blocks(np.arange(len(index)), p)
    assert np.all(np.any(ordered != 0, axis=-1) == (blocks.key < j))
    np.testing.assert_array_equal(np.asarray(shuffled.values), before)
    # rows already in order (padding last) need no permutation, and give the same blocks
    in_order = eqx.tree_at(
        lambda s: (s.index, s.values),
        system2d,
        (jnp.asarray(np.where(blocks.key < j, blocks.key, 0)), jnp.asarray(ordered)),
    )
    again = HostBlocks.of(in_order)
    assert again.order is None
    np.testing.assert_array_equal(again.key, blocks.key)
    np.testing.assert_array_equal(again.sorted_blocks(np.arange(len(index)), p), ordered)
    m = np.asarray(system2d.dense())
    np.testing.assert_array_equal(to_scipy(shuffled, blocks).toarray(), m)
    np.testing.assert_allclose(column_norms(shuffled, blocks), np.linalg.norm(m, axis=0), rtol=1e-13)
    scale = np.linspace(0.5, 1.5, m.shape[1])
    want = (m * scale).T @ (m * scale)
    for chunk_bytes in (1, 2**28):
        got = normal_matrix(shuffled, scale, chunk_bytes=chunk_bytes, blocks=blocks).toarray()
        np.testing.assert_allclose(got, want, atol=1e-13 * np.abs(want).max())


def test_normal_matrix_merges_patterns_on_multilevel_windows():
    """On a multilevel decomposition, rows of neighbouring patterns are multiplied
    together over the union of their subdomains (`_merge_patterns`); the normal
    matrix is the same, with no blocks for pairs of subdomains that share no row."""
    from pdedsl.solve.sparse import HostBlocks, _merge_patterns, _normal_pairs, _to_bsr

    problem, _, _, _ = demos.poisson()
    model = pd.FBPINN(pd.Multilevel(problem.domain, levels=3, overlap=3.0), pd.Polynomial(2))
    system = assemble(model, collocation(problem, model, points=(20, 20)))
    j, k = system.num_subdomains, system.num_features
    key = HostBlocks.of(system).key
    patterns = np.unique(key, axis=0)
    count = np.sum(patterns < j, axis=1)
    group, union, ucount = _merge_patterns(patterns, count, j, k, 1.4)
    assert ucount.size < patterns.shape[0] / 2  # merged
    for g in range(ucount.size):  # each union is its members' subdomains, within the bound
        members = patterns[group == g]
        assert np.array_equal(union[g, : ucount[g]], np.unique(members[members < j]))
        assert ucount[g] <= 1.4 * count[group == g].max()
    m = np.asarray(system.dense())
    scale = np.linspace(0.5, 1.5, m.shape[1])
    want = (m * scale).T @ (m * scale)
    merged = _normal_pairs(system, scale)
    alone = _normal_pairs(system, scale, grow=1.0)
    np.testing.assert_array_equal(merged[0], alone[0])  # the same pairs
    np.testing.assert_allclose(merged[1], alone[1], atol=1e-14 * np.abs(want).max())
    np.testing.assert_allclose(_to_bsr(*merged).toarray(), want, atol=1e-13 * np.abs(want).max())
    # the stored pairs are exactly the pairs of subdomains that share a row
    touch = (m != 0).reshape(m.shape[0], j, k).any(axis=2).astype(float)
    share = np.triu(touch.T @ touch > 0)
    np.testing.assert_array_equal(merged[0], np.flatnonzero(share))


def test_sorted_keys_and_plan_are_made_once_per_system(system2d, monkeypatch):
    """Auto's memory estimates and the solver it picks share one set of sorted keys
    and one elimination plan per system (the same arrays); another system gets its
    own, and they are forgotten with the system's values."""
    import gc

    from pdedsl.solve import sparse, sparse_qr

    calls = []
    plan = sparse_qr._plan
    monkeypatch.setattr(sparse_qr, "_plan", lambda key, j: calls.append(j) or plan(key, j))
    system = eqx.tree_at(lambda s: s.values, system2d, system2d.values * 1.0)  # its own arrays
    key = sparse.HostBlocks.of(system).key
    estimate = pd.SparseNormal().estimate(system)
    assert pd.SparseQR().estimate(system)["fronts"] == estimate["fronts"]
    result = pd.SparseNormal(dense_bytes=0)(system)  # the multifrontal way, with the plan
    assert "multifrontal" in result.message
    assert pd.SparseQR()(system).success
    assert len(calls) == 1 and sparse.HostBlocks.of(system).key is key
    other = eqx.tree_at(lambda s: s.values, system, system.values * 2.0)
    assert sparse.HostBlocks.of(other).key is not key
    pd.SparseNormal().estimate(other)
    assert len(calls) == 2
    np.testing.assert_array_equal(sparse.HostBlocks.of(other).key, key)
    del other
    gc.collect()
    assert sparse._LAST == {}
    # numpy arrays (which can change in place) are never remembered
    host = eqx.tree_at(
        lambda s: (s.values, s.index), system, (np.asarray(system.values), np.asarray(system.index))
    )
    sparse.HostBlocks.of(host)
    assert sparse._LAST == {}


def test_normal_pairs_helpers_match_their_numpy_definitions():
    """`_unique_rows` is `np.unique(axis=0, return_inverse=True)`; `_pair_keys` lists
    the same pairs by its table and by sorting; `_add_blocks` sums repeated ids."""
    from pdedsl.solve.sparse import _add_blocks, _pair_keys, _unique_rows

    rng = np.random.default_rng(3)
    j = 9
    key = np.sort(np.stack([rng.choice(j + 1, 4, replace=False) for _ in range(200)]), axis=1)
    key[::7, 2:] = j  # some rows padded
    patterns, inverse = _unique_rows(key)
    want, want_inverse = np.unique(key, axis=0, return_inverse=True)
    np.testing.assert_array_equal(patterns, want)
    np.testing.assert_array_equal(inverse, want_inverse.ravel())
    np.testing.assert_array_equal(patterns[inverse], key)
    empty = _unique_rows(key[:0])
    assert empty[0].shape == (0, 4) and empty[1].shape == (0,)
    pairs = {(s, t) for row in key for s in row for t in row if s <= t < j}
    listed = np.array(sorted(s * j + t for s, t in pairs))
    np.testing.assert_array_equal(_pair_keys(patterns, j), listed)
    np.testing.assert_array_equal(_pair_keys(patterns, j, table=1), listed)
    blocks = np.zeros((6, 2, 3))
    ids = np.array([4, 1, 4, 0, 4, 1])
    gram = rng.standard_normal((6, 2, 3))
    want = blocks.copy()
    np.add.at(want, ids, gram)
    _add_blocks(blocks, ids, gram)
    np.testing.assert_allclose(blocks, want, rtol=1e-15)


@pytest.mark.parametrize("empty", [False, True])
def test_sparse_normal_writes_the_shifted_normal_matrix_as_csc(system2d, empty):
    """`_to_csc` (what SuperLU factorises) is the block-sparse normal matrix plus the
    shift on the diagonal, in canonical CSC form; also where a subdomain touches no
    row (its diagonal is not stored, so the shift is added the general way)."""
    from pdedsl.solve.sparse import _normal_pairs, _to_bsr, _to_csc

    system = system2d
    if empty:  # subdomain 5's blocks zero everywhere: it is padding in every row
        vals = np.where(np.asarray(system.index)[..., None] == 5, 0.0, np.asarray(system.values))
        system = eqx.tree_at(lambda s: s.values, system, jnp.asarray(vals))
    scale = np.linspace(0.5, 1.5, system.shape[1])
    pairs = _normal_pairs(system, scale)
    j = system.num_subdomains
    assert (5 * j + 5 in pairs[0]) != empty
    want = _to_bsr(*pairs).toarray() + 1e-3 * np.eye(system.shape[1])
    got = _to_csc(*pairs, shift=1e-3)
    assert got.format == "csc" and got.has_canonical_format
    np.testing.assert_array_equal(got.toarray(), want)
    m = np.asarray(system.dense()) * scale
    np.testing.assert_allclose(want, m.T @ m + 1e-3 * np.eye(m.shape[1]), atol=1e-13 * np.abs(want).max())


def test_normal_matrix_with_a_subdomain_twice_in_a_row(system2d):
    """A row listing one subdomain twice (its blocks add up) takes the general path."""
    from pdedsl.solve.sparse import normal_matrix

    index = np.asarray(system2d.index).copy()
    index[0, 1] = index[0, 0]
    dup = eqx.tree_at(lambda s: s.index, system2d, jnp.asarray(index))
    m = np.asarray(dup.dense())
    scale = np.linspace(0.5, 1.5, m.shape[1])
    want = (m * scale).T @ (m * scale)
    np.testing.assert_allclose(normal_matrix(dup, scale).toarray(), want, atol=1e-13 * np.abs(want).max())


# --- SplineFrame: the nested B-spline levels' own B-splines as a multilevel frame ---
def _clamped_bsplines(lo, hi, cells, degree, x):
    """Clamped C2 B-splines of `degree` on `cells` cells of [lo, hi] at x, (len(x), n)."""
    from scipy.interpolate import BSpline

    inner = np.repeat(lo + (hi - lo) * np.arange(1, cells) / cells, degree - 2)
    t = np.concatenate([np.full(degree + 1, lo), inner, np.full(degree + 1, hi)])
    n = len(t) - degree - 1
    return np.stack([BSpline(t, np.eye(n)[m], degree)(x) for m in range(n)], axis=1)


def test_spline_frame_functions_are_the_levels_tensor_b_splines():
    """T maps each frame coefficient to window x quadratic coefficients whose function
    is the tensor B-spline of degrees (3 + A_x, 3 + A_y), |A| = 2, on the level's cells
    (SciPy's B-splines as the truth), on a non-square box."""
    from pdedsl.solve.frame import _synthesise_one

    y = pd.Symbol("y")
    dom = pd.Box([x, y], [0.5, -1.0], [2.5, 0.0])
    model = pd.FBPINN(pd.Multilevel(dom, levels=3, bspline=3), pd.Polynomial(2))
    bound = pd.SplineFrame().bind(model).bound
    assert bound.blocks == ((0, 2), (1, 1), (2, 0))
    pts = np.asarray(dom.sample(400, "uniform", seed=1))
    cols = _columns(model, jnp.asarray(pts))
    fits = jax.tree_util.tree_map(jnp.asarray, bound.fits)
    rng = np.random.default_rng(0)
    for level in range(3):
        cells = 2**level
        start = bound.offsets[level]
        stop = start + int(np.prod(bound.shapes[level]))
        for bi, (ax, ay) in enumerate(bound.blocks):
            bx = _clamped_bsplines(0.5, 2.5, cells, 3 + ax, pts[:, 0])
            by = _clamped_bsplines(-1.0, 0.0, cells, 3 + ay, pts[:, 1])
            coef = rng.standard_normal((bx.shape[1], by.shape[1]))
            truth = np.einsum("ni,nj,ij->n", bx, by, coef)
            local = np.asarray(_synthesise_one(bound, fits, level, bi, jnp.asarray(coef)))
            full = np.zeros((model.num_subdomains, 6))
            full[start:stop] = local
            np.testing.assert_allclose(cols @ full.ravel(), truth, atol=1e-9 * np.abs(truth).max())


def test_spline_frame_scales_are_the_frame_functions_inverse_squared_column_norms():
    """The probed norms (all of a level's colours in one product with M) against
    their definition: ||M T e_m||^2 for every frame function m, one by one, with the
    dense M; and the boundary strip's B-splines are the finest level's that meet the
    outer layer of cells."""
    from pdedsl.solve.frame import _level_ranges, _synthesise_one

    problem, _, dom = _poisson_2d()
    levels = 4
    model = pd.FBPINN(pd.Multilevel(dom, levels=levels, bspline=3), pd.Polynomial(2))
    system = assemble(model, collocation(problem, model, points=(40, 40)))
    built = build(pd.SplineFrame().bind(model), system)
    bound, fits = built.bound, built.fits
    m = np.asarray(to_scipy(system).todense())
    for level, (start, stop) in enumerate(_level_ranges(bound)):
        for block in range(len(bound.blocks)):
            scale = np.asarray(built.scales[level][block])
            eye = jnp.eye(scale.size).reshape((scale.size,) + scale.shape)
            local = jax.vmap(lambda y, b=block, lv=level: _synthesise_one(bound, fits, lv, b, y))(eye)
            full = np.zeros((scale.size, system.num_subdomains, 6))
            full[:, start:stop] = np.asarray(local)
            norms = np.sum((full.reshape(scale.size, -1) @ m.T) ** 2, axis=1)
            assert norms.min() > 0  # none filtered here
            np.testing.assert_allclose(scale.ravel(), 1 / norms, rtol=1e-10)
    # the strip: the finest level's B-splines (SciPy's) that are nonzero somewhere
    # in the outer layer of cells (points sampled densely there)
    cells = 2 ** (levels - 1)
    pts = np.asarray(dom.sample(40_000, "uniform", seed=3))
    layer = pts[np.any((pts < 1 / cells) | (pts > 1 - 1 / cells), axis=1)]
    for block, (ax, ay) in enumerate(bound.blocks):
        bx = _clamped_bsplines(0.0, 1.0, cells, 3 + ax, layer[:, 0])
        by = _clamped_bsplines(0.0, 1.0, cells, 3 + ay, layer[:, 1])
        meets = np.einsum("ni,nj->ij", bx > 0, by > 0) > 0
        assert 0 < meets.sum() < meets.size
        np.testing.assert_array_equal(np.asarray(built.strip[block]), np.flatnonzero(meets))
    # Q A t from the kept columns M Z and M t on the strip's rows only, against Q (M^T M t):
    # equal up to the strip's (nearly) dependent functions, which M maps to ~0
    # (measured: 3e-12 after M, 5e-8 before)
    t = jnp.asarray(np.random.default_rng(4).standard_normal((system.num_subdomains, 6)))
    kept = np.asarray(system.mv(built._exact_normal(t)))
    full = np.asarray(system.mv(built._exact(system.rmv(system.mv(t)))))
    np.testing.assert_allclose(kept, full, atol=1e-10 * np.abs(full).max())


@pytest.mark.parametrize("boundary", [0, 1, 2])
def test_spline_frame_is_symmetric_positive_semidefinite_where_cg_uses_it(boundary):
    """CG applies the preconditioner only to vectors M^T s: there it must be symmetric
    positive semidefinite (M B M^T), and lose no direction of the problem. (The plain
    frame is symmetric everywhere; the exact boundary solve is not along coefficient
    vectors of the zero function, which CG never meets.)"""
    problem, _, dom = _poisson_2d()
    model = pd.FBPINN(pd.Multilevel(dom, levels=3, bspline=3), pd.Polynomial(2))
    system = assemble(model, collocation(problem, model, points=(20, 20)))
    built = build(pd.SplineFrame(boundary=boundary).bind(model), system)
    assert not built.has_right and built.filtered == 0
    b = _dense_normal(built, system)
    m = np.asarray(to_scipy(system).todense())
    if boundary == 0:
        np.testing.assert_allclose(b, b.T, atol=1e-10 * np.abs(b).max())
    c = m @ b @ m.T
    # the boundary solve's relative shift (1e-8, frame._SHIFT) perturbs Q A Q = Q at
    # about that level (measured: 7e-8 of the largest entry)
    np.testing.assert_allclose(c, c.T, atol=1e-6 * np.abs(c).max())
    lam = np.linalg.eigvalsh((c + c.T) / 2)
    assert lam.min() > -1e-6 * lam.max()

    def rank(a):
        return np.linalg.matrix_rank(a, 1e-9 * np.linalg.norm(a, 2))

    assert rank(c) == rank(m)


@pytest.mark.parametrize("dim", [1, "1-coarse", 2, 3])
def test_spline_frame_cg_reaches_the_dense_answer(dim):
    if dim == 1:
        problem, exact, dom = PROBLEM, EXACT, PROBLEM.domain
        model, points = pd.FBPINN(pd.Multilevel(dom, levels=4, bspline=3), pd.Polynomial(2)), 60
    elif dim == "1-coarse":
        # the boundary strip is most of the finest level: with the Gram matrix shifted by
        # 1e-8 (as the redundant multi-space strips of 2D and 3D need) its Q was inexact
        # and the deflated form stalled (2,000 iterations at rtol 1e-6; balancing: 7)
        problem, exact, dom = PROBLEM, EXACT, PROBLEM.domain
        model, points = pd.FBPINN(pd.Multilevel(dom, levels=3, bspline=3), pd.Polynomial(3)), 120
    elif dim == 2:
        problem, exact, dom = _poisson_2d()
        model, points = pd.FBPINN(pd.Multilevel(dom, levels=3, bspline=3), pd.Polynomial(2)), (24, 24)
    else:  # linear polynomials: three tensor spline spaces per level (S4xS3xS3, ...)
        problem, _, _, exact = demos.poisson_3d()
        dom = problem.domain
        # three levels, so that the finest level's boundary strip (boundary=1) is a
        # proper part of it, as in 2D (4^3 cells, 532 subdomains, rank 931 of 2,128)
        model, points = pd.FBPINN(pd.Multilevel(dom, levels=3, bspline=3), pd.Polynomial(1)), (16, 16, 16)
    dense = pd.solve(problem, model, points=points, solver=pd.DenseLeastSquares())
    test = dom.sample(500, "uniform", seed=2)
    its = {}
    for boundary, form in [(0, "deflation"), (1, "deflation"), (1, "balancing")]:
        solver = pd.CGNormal(pd.SplineFrame(boundary=boundary, form=form), rtol=1e-10, max_steps=500)
        cg = pd.solve(problem, model, points=points, solver=solver)
        assert cg.info["success"]
        np.testing.assert_allclose(cg(test), dense(test), atol=1e-7 * np.abs(dense(test)).max())
        its[boundary, form] = cg.info["iterations"]
    # the deflated form takes the balancing form's steps (from Q b, on Z^T r = 0)
    assert abs(its[1, "deflation"] - its[1, "balancing"]) <= max(2, its[1, "balancing"] // 20)
    assert dense.errors(exact)["rel_l2"] < (2e-3 if dim != 3 else 5e-4)  # 3D: 1.5e-4


def test_spline_frame_keeps_cg_iterations_nearly_flat_as_levels_grow():
    """The point of the frame: block Jacobi's iterations grow with the levels, the
    frame's barely (measured, additive frame: 101 -> 127 from 4 to 5 levels; block
    Jacobi 457 at 4 levels), and the exact boundary solve cuts them further."""
    import pathlib
    import sys

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
    import laplace_multilevel

    its = {}
    for levels in (4, 5):
        problem, _, dom = laplace_multilevel.setup(levels)
        model = pd.FBPINN(pd.Multilevel(dom, levels=levels, bspline=3), pd.Polynomial(2))
        pts = (5 * 2 ** (levels - 1),) * 2
        pres = [("additive", pd.SplineFrame(boundary=0)), ("default", pd.SplineFrame())]
        if levels == 4:  # block Jacobi: 457 at 4 levels, past 1,000 from 5 on (docs/solving.md)
            pres.append(("jacobi", pd.BlockFilter()))
        for name, pre in pres:
            solver = pd.CGNormal(pre, rtol=1e-6, max_steps=600)
            sol = pd.solve(problem, model, points=pts, solver=solver, throw=False)
            its[name, levels] = sol.info["iterations"] if sol.info["success"] else np.inf
    assert its["additive", 5] < 1.5 * its["additive", 4]
    assert its["additive", 5] < 200
    assert its["jacobi", 4] > 3 * its["additive", 4]
    for levels in (4, 5):
        assert its["default", levels] < 0.6 * its["additive", levels]
    assert its["default", 5] <= 60


def test_spline_frame_binding_compares_by_content_and_errors_are_clear():
    problem, _, dom = _poisson_2d()
    model = pd.FBPINN(pd.Multilevel(dom, levels=2, bspline=3), pd.Polynomial(2))
    a, b = pd.SplineFrame().bind(model), pd.SplineFrame().bind(model)
    assert a == b and hash(a) == hash(b)
    other = pd.FBPINN(pd.Multilevel(dom, levels=3, bspline=3), pd.Polynomial(2))
    assert pd.SplineFrame().bind(other) != a
    system = assemble(model, collocation(problem, model, points=(12, 12)))
    with pytest.raises(ValueError, match="bind"):
        build(pd.SplineFrame(), system)
    with pytest.raises(ValueError, match="different model"):
        build(pd.SplineFrame().bind(other), system)
    for bad in [
        pd.FBPINN(pd.Multilevel(dom, levels=2), pd.Polynomial(2)),
        pd.FBPINN(pd.Grid(dom, 4, 2.0), pd.Polynomial(2)),
    ]:
        with pytest.raises(ValueError, match="bspline=p"):
            pd.SplineFrame().bind(bad)
    with pytest.raises(ValueError, match="Polynomial"):
        pd.SplineFrame().bind(pd.FBPINN(pd.Multilevel(dom, levels=2, bspline=3), pd.RandomFeatures(6)))
    with pytest.raises(ValueError, match="boundary"):
        pd.SplineFrame(boundary=-1)
    with pytest.raises(ValueError, match="form must be"):
        pd.SplineFrame(form="auto")
