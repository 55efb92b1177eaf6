"""`pd.SparseQR`: the multifrontal QR of M against dense least squares."""

import sys

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import dense_answer, poisson_3d_system, poisson_system

import pdedsl as pd
from pdedsl import D, demos
from pdedsl.assemble import assemble
from pdedsl.solve import collocation

x, y = pd.Symbol("x"), pd.Symbol("y")


def test_sparse_qr_is_the_dense_least_squares_solution():
    """A well-conditioned (Legendre) basis on a grid: the same coefficients as the
    dense solve, and the residual it reports is ||M a - b||."""
    problem, model, system, _ = poisson_system(lambda d: pd.Grid(d, (5, 4), 2.0), pd.Polynomial(3), (17, 17))
    want, res = dense_answer(system)
    got = pd.SparseQR()(system)
    assert got.success
    a = np.asarray(got.coefficients).ravel()
    np.testing.assert_allclose(a, want, atol=1e-8 * np.abs(want).max())
    assert float(got.residual_norm) == pytest.approx(res, rel=1e-8)
    m = np.asarray(system.dense())
    assert np.linalg.norm(m @ a - np.asarray(system.rhs)) == pytest.approx(res, rel=1e-8)
    assert "fronts" in got.message


def test_sparse_qr_on_rank_deficient_levels_fits_like_the_dense_solve():
    """Three levels of quadratics repeat the global quadratics on every level (an
    exact null space): the QR is not the minimum-norm solution there, but it fits
    the points as well, and the function is the same."""
    problem, model, system, _ = poisson_system(
        lambda d: pd.Multilevel(d, levels=3, overlap=2.0), pd.Polynomial(3), (17, 17)
    )
    want, res = dense_answer(system)
    got = pd.SparseQR()(system)
    a = np.asarray(got.coefficients).ravel()
    m = np.asarray(system.dense())
    assert np.linalg.norm(m @ a - np.asarray(system.rhs)) == pytest.approx(res, rel=1e-6)
    assert float(got.residual_norm) == pytest.approx(res, rel=1e-6)
    np.testing.assert_allclose(m @ a, m @ want, atol=1e-6 * np.abs(m @ want).max())


def test_sparse_qr_keeps_the_accuracy_of_qr_on_random_features():
    """Nearly dependent tanh features (cond(M D) ~ 1e10 here): the QR of M reaches
    the dense least-squares residual, the normal equations' factors do not."""
    problem, model, points, exact = demos.oscillator(w0=60.0)  # 20 subdomains x 12 tanh
    system = assemble(model, collocation(problem, model, points))
    ms = np.asarray(system.dense())
    cond = np.linalg.cond(ms / np.linalg.norm(ms, axis=0))
    assert cond > 1e9
    _, res = dense_answer(system)
    qr = pd.SparseQR()(system)
    normal = pd.SparseNormal()(system)
    assert float(qr.residual_norm) <= 3 * res
    assert float(normal.residual_norm) > 100 * res  # what the squared condition number costs
    sol = pd.solve(problem, model, points=points, solver=pd.SparseQR())
    assert sol.errors(exact)["rel_l2"] <= 1e-7
    assert sol.info["solver"] == "SparseQR"


def test_sparse_qr_damping_and_empty_subdomains():
    """`damp` solves min ||M D c - b||^2 + damp^2 ||c||^2 (the dense answer with the
    rows damp * I); a subdomain without rows gets zero coefficients, not NaN."""
    problem, model, system, _ = poisson_system(
        lambda d: pd.Grid(d, (4, 4), 2.0), pd.RandomFeatures(8), (13, 13)
    )
    want, _ = dense_answer(system, damp=1e-3)
    got = np.asarray(pd.SparseQR(damp=1e-3)(system).coefficients).ravel()
    np.testing.assert_allclose(got, want, atol=1e-9 * np.abs(want).max())
    # subdomain 5's blocks zeroed: its column is empty
    values = np.asarray(system.values).copy()
    values[np.asarray(system.index) == 5] = 0.0
    empty = eqx.tree_at(lambda s: s.values, system, jnp.asarray(values))
    result = pd.SparseQR()(empty)
    c = np.asarray(result.coefficients)
    assert np.all(np.isfinite(c)) and np.all(c[5] == 0) and result.filtered == 8
    want, res = dense_answer(empty)
    assert float(result.residual_norm) == pytest.approx(res, rel=1e-6)


def test_sparse_qr_with_a_subdomain_twice_in_a_row():
    """A row that lists one subdomain twice: its two blocks add up, as in M."""
    problem, model, system, _ = poisson_system(lambda d: pd.Grid(d, (3, 3), 2.0), pd.Polynomial(2), (11, 11))
    index = np.asarray(system.index).copy()
    index[0, 1] = index[0, 0]
    dup = eqx.tree_at(lambda s: s.index, system, jnp.asarray(index))
    want, res = dense_answer(dup)
    got = pd.SparseQR()(dup)
    np.testing.assert_allclose(np.asarray(got.coefficients).ravel(), want, atol=1e-8 * np.abs(want).max())
    assert float(got.residual_norm) == pytest.approx(res, rel=1e-8)


@pytest.mark.parametrize("bad", [0, -1e-12, float("nan"), float("inf"), True, "1e-12"])
def test_sparse_qr_rejects_a_bad_damping(bad):
    with pytest.raises(ValueError, match="damp"):
        pd.SparseQR(damp=bad)


@pytest.mark.parametrize(
    "system",
    [
        lambda: poisson_system(lambda d: pd.Grid(d, (8, 8), 2.0), pd.RandomFeatures(12), (40, 40))[2],
        lambda: poisson_system(lambda d: pd.Multilevel(d, levels=3), pd.RandomFeatures(6), (30, 30))[2],
        lambda: poisson_3d_system(4, 20, 14),
    ],
    ids=["2d", "levels", "3d"],
)
def test_sparse_qr_estimate_bounds_the_factorisation(system):
    """`estimate` from the structure alone: the fronts, widest front and entries of R
    the factorisation reports, and a peak memory that bounds the one `tracemalloc`
    measures for the factorisation (NumPy's allocations; M's blocks and column norms
    are made before it) without being loose by more than 3 times."""
    import re
    import tracemalloc

    from pdedsl.solve.sparse import HostBlocks, column_norms

    sparse_qr = sys.modules["pdedsl.solve.sparse_qr"]  # the module, not pd.solve
    system = system()
    est = pd.SparseQR().estimate(system)
    result = pd.SparseQR()(system)
    blocks = HostBlocks.of(system)
    j, k = system.num_subdomains, system.num_features
    scale = 1.0 / column_norms(system, blocks)
    rhs = np.asarray(system.rhs)
    tracemalloc.start()
    sparse_qr._factor_solve(blocks, rhs, scale, j, k, 1e-12)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    fronts, widest, entries = map(
        int, re.search(r"\((\d+) fronts .* over (\d+) columns, (\d+) entries", result.message).groups()
    )
    assert (est["fronts"], est["widest"], est["r_entries"]) == (fronts, widest, entries)
    assert peak <= est["peak_bytes"] <= 3 * peak
    assert est["flops"] > 0


def test_sparse_qr_refuses_what_would_not_fit_before_factorising():
    _, _, system, _ = poisson_system(lambda d: pd.Grid(d, (4, 4), 2.0), pd.RandomFeatures(8), (13, 13))
    need = pd.SparseQR().estimate(system)["peak_bytes"]
    with pytest.raises(
        MemoryError,
        match=r"SparseQR would need up to [\d.]+ MiB .*, more than [\d.]+ MiB\. .*pd.LSMR\(pd.BlockFilter\(\)\)",
    ):
        pd.SparseQR(max_bytes=need - 1)(system)
    assert bool(pd.SparseQR(max_bytes=need)(system).success)
    for bad in (0, -1, True, "8e9", float("nan")):
        with pytest.raises(ValueError, match="max_bytes"):
            pd.SparseQR(max_bytes=bad)


@pytest.mark.parametrize("inplace", [True, False], ids=["inplace", "wrappers"])
@pytest.mark.parametrize("rows, width, gap", [(300, 150, False), (300, 150, True), (80, 150, False)])
def test_staircase_qr_is_an_orthogonal_triangularisation(rows, width, gap, inplace):
    """The panel QR of a front whose rows are sorted by their leading column: the
    result is [A b] transformed by an orthogonal matrix (same Gram matrix), zero
    below its staircase, with the residual of b in the rows after R; also with
    columns no row starts at (`gap`) and with fewer rows than columns. Both
    LAPACK paths: in place on the front's memory, and SciPy's copying wrappers."""
    from pdedsl.solve.sparse_qr import _staircase_qr

    rng = np.random.default_rng(3)
    lead = np.sort(rng.integers(0, width, rows))
    if gap:
        lead = np.where((lead >= 40) & (lead < 110), 110, lead)  # no row starts in 40..109
    a = rng.standard_normal((rows, width + 1))
    a[:, :width][np.arange(width)[None, :] < lead[:, None]] = 0.0
    out = np.asfortranarray(np.concatenate([a, np.zeros((rows, 3))], axis=1))
    done = _staircase_qr(out, lead, width, panel=32, inplace=inplace)
    t = out[:, : width + 1]
    np.testing.assert_allclose(t.T @ t, a.T @ a, atol=1e-10 * np.abs(a.T @ a).max())
    # R's rows are zero before their own index; the rest is zero in A's columns
    assert np.all(np.tril(t[:done, :width], -1) == 0)
    assert np.all(t[done:, :width] == 0)
    assert done <= min(rows, width)
    # the rows after R hold residual that no coefficients can reduce; where every
    # column has a row starting at or before it, all of the least-squares residual
    want = np.linalg.norm(
        a[:, width] - a[:, :width] @ np.linalg.lstsq(a[:, :width], a[:, width], rcond=None)[0]
    )
    assert np.linalg.norm(t[done:, width]) <= want * (1 + 1e-8)
    if rows > width and not gap:
        assert done == width
        assert np.linalg.norm(t[done:, width]) == pytest.approx(want, rel=1e-8)


def test_linear_system_is_what_solve_assembles():
    """`pd.linear_system`: the system `pd.solve` factorises (same shape and answer),
    for asking `pd.Auto` and `SparseQR.estimate` before solving; linear problems only."""
    problem, model, _, exact = poisson_system(
        lambda d: pd.Grid(d, (4, 4), 2.0), pd.RandomFeatures(10), (20, 20)
    )
    system = pd.linear_system(problem, model, points=(20, 20))
    sol = pd.solve(problem, model, points=(20, 20), solver=pd.SparseQR())
    assert system.shape == (sol.info["points"], sol.info["unknowns"])
    coefficients = np.asarray(pd.SparseQR()(system).coefficients)
    np.testing.assert_allclose(coefficients, np.asarray(sol.coefficients), rtol=0, atol=1e-12)
    assert isinstance(pd.Auto(dense_unknowns=10).choose(system, model), pd.SparseQR)
    assert pd.SparseQR().estimate(system)["fronts"] >= 1
    # the corner functions pd.solve adds on an L-shape are in it too
    ell = problem.domain - pd.Box([x, y], [0.5, 0.5], [1, 1])
    lp = pd.Problem(problem.equation, domain=ell, conditions=problem.conditions)
    lm = pd.FBPINN(pd.Grid(ell, (4, 4), 2.0), pd.Polynomial(3))
    enriched = pd.solve(lp, lm, points=(24, 24))
    assert pd.linear_system(lp, lm, points=(24, 24)).shape[1] == enriched.info["unknowns"] > lm.num_unknowns
    assert pd.linear_system(lp, lm, points=(24, 24), corners=False).shape[1] == lm.num_unknowns
    u = pd.Function("u")(x, y)
    burgers = pd.Problem(
        D(u, x, 2) + u * D(u, x) == 1, domain=problem.domain, conditions=[u.on(pd.boundary) == 0]
    )
    with pytest.raises(pd.NonlinearError, match="linear problems only"):
        pd.linear_system(burgers, model)
