"""The multifrontal Cholesky factorisation `SparseNormal` uses (`pdedsl/solve/cholesky.py`)."""

import importlib
import sys

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import dense_answer, poisson_3d_system, poisson_system

import pdedsl as pd

cholesky = importlib.import_module("pdedsl.solve.cholesky")
sparse = importlib.import_module("pdedsl.solve.sparse")
sparse_qr = sys.modules["pdedsl.solve.sparse_qr"]  # the module, not pd.SparseQR

SYSTEMS = {
    "grid": lambda: poisson_system(lambda d: pd.Grid(d, (6, 5), 2.0), pd.Polynomial(4), (24, 24))[2],
    # several levels: fronts with many members, updates over many runs of their parents
    "levels": lambda: poisson_system(lambda d: pd.Multilevel(d, levels=4), pd.Polynomial(2), (40, 40))[2],
    "3d": lambda: poisson_3d_system(3, 12, 12),
}


def _normal(system, shift):
    """The column scaling, its normal pairs and the dense shifted normal matrix."""
    blocks = sparse.HostBlocks.of(system)
    cn = sparse.column_norms(system, blocks)
    scale = np.where(cn > 0, 1 / np.where(cn > 0, cn, 1), 0)
    pairs = sparse._normal_pairs(system, scale, blocks=blocks)
    m = np.asarray(system.dense()) * scale
    return blocks, pairs, m.T @ m + shift * np.eye(m.shape[1])


@pytest.mark.parametrize("name", sorted(SYSTEMS))
def test_multifrontal_cholesky_factors_the_normal_matrix(name, monkeypatch):
    """P L D^2 L^T P^T is the shifted normal matrix (formed densely here), L unit
    lower triangular; `solve` applies its inverse, by SuperLU's triangular solve and
    by SciPy's public `spsolve_triangular` (the way taken where the first is missing)."""
    system = SYSTEMS[name]()
    shift = 1e-8
    blocks, pairs, a = _normal(system, shift)
    before = pairs[1].copy()
    factor, how = cholesky.factorise(pairs, sparse_qr._plan(blocks.key, system.num_subdomains), shift)
    assert factor is not None, how
    np.testing.assert_array_equal(pairs[1], before)  # the blocks are not modified
    lower = factor.lower.toarray()
    np.testing.assert_array_equal(np.diag(lower), 1.0)
    np.testing.assert_array_equal(np.triu(lower, 1), 0.0)
    p = factor.perm
    rebuilt = (lower * factor.d2) @ lower.T
    np.testing.assert_allclose(rebuilt, a[np.ix_(p, p)], atol=1e-12 * np.abs(a).max())
    assert f"{factor.fronts} fronts" in how and f"nnz(L)={factor.lower.nnz}" in how
    b = np.random.default_rng(0).standard_normal(a.shape[0])
    want = np.linalg.solve(a, b)
    tol = 1e-12 * np.linalg.cond(a) * np.linalg.norm(want)
    assert np.linalg.norm(factor.solve(b) - want) <= tol
    monkeypatch.setattr(cholesky, "_gstrs", lambda: None)
    assert np.linalg.norm(factor.solve(b) - want) <= tol


def test_multifrontal_cholesky_reports_a_matrix_that_is_not_positive_definite():
    system = SYSTEMS["grid"]()
    blocks, pairs, _ = _normal(system, 0.0)
    factor, how = cholesky.factorise(pairs, sparse_qr._plan(blocks.key, system.num_subdomains), -10.0)
    assert factor is None and "not positive definite" in how


@pytest.mark.parametrize("runs", [1, 3, 20])
def test_extend_add_sums_the_lower_triangle_in_place(runs):
    """A child's update goes to its subdomains' places in the parent's front, on and
    below the diagonal, whether its subdomains form a few runs of the parent's
    (slices) or many (gathered rows)."""
    k, parent = 3, 40
    rng = np.random.default_rng(runs)
    if runs == 1:
        slots = np.arange(5, 17)
    else:  # `runs` runs of consecutive slots
        slots = np.sort(rng.choice(parent, 2 * runs, replace=False))
        slots = np.unique(np.concatenate([slots, slots + 1]))
        slots = slots[slots < parent]
    width = slots.size * k
    update = rng.standard_normal((width, width))
    update = np.asfortranarray(update + update.T)
    front = np.asfortranarray(rng.standard_normal((parent * k, parent * k)))
    want = front.copy()
    at = (slots[:, None] * k + np.arange(k)).ravel()
    want[np.ix_(at, at)] += update
    cholesky._extend_add(front, update, slots, k)
    np.testing.assert_array_equal(np.tril(front), np.tril(want))


def test_sparse_normal_multifrontal_is_superlus_solution():
    """`SparseNormal()` (multifrontal) and `SparseNormal(factorisation="superlu")`
    give the dense least-squares solution on a well-conditioned Legendre grid; the
    first says so in its message. A bad `factorisation` is refused."""
    system = SYSTEMS["grid"]()
    want, res = dense_answer(system)
    for fac, words in (("multifrontal", "multifrontal Cholesky"), ("superlu", "SuperLU")):
        result = pd.SparseNormal(factorisation=fac, dense_fraction=2.0)(system)
        assert words in result.message
        got = np.asarray(result.coefficients).ravel()
        np.testing.assert_allclose(got, want, atol=1e-8 * np.abs(want).max())
        assert float(result.residual_norm) == pytest.approx(res, rel=1e-8)
    with pytest.raises(ValueError, match="factorisation"):
        pd.SparseNormal(factorisation="cholmod")


def test_sparse_normal_falls_back_to_superlu(monkeypatch):
    """Where the multifrontal Cholesky finds the matrix not positive definite, SuperLU
    factorises it (its message says so); a row listing one subdomain twice (the
    normal matrix then comes whole, not as pairs) goes to SuperLU directly."""
    system = SYSTEMS["grid"]()
    want, _ = dense_answer(system)
    monkeypatch.setattr(cholesky, "factorise", lambda *a: (None, "not positive definite to rounding"))
    result = pd.SparseNormal(dense_fraction=2.0)(system)
    assert "SuperLU" in result.message and "found the matrix not positive definite" in result.message
    np.testing.assert_allclose(np.asarray(result.coefficients).ravel(), want, atol=1e-8 * np.abs(want).max())
    monkeypatch.undo()
    index = np.asarray(system.index).copy()
    row = int(np.flatnonzero(np.all(np.any(np.asarray(system.values)[:, :2] != 0, axis=-1), axis=1))[0])
    index[row, 1] = index[row, 0]  # (a row whose first two blocks are not padding)
    dup = eqx.tree_at(lambda s: s.index, system, jnp.asarray(index))
    want, _ = dense_answer(dup)
    result = pd.SparseNormal(dense_fraction=2.0)(dup)
    assert "SuperLU" in result.message
    np.testing.assert_allclose(np.asarray(result.coefficients).ravel(), want, atol=1e-8 * np.abs(want).max())


@pytest.mark.parametrize("name", sorted(SYSTEMS))
def test_sparse_normal_estimate_bounds_the_solve(name):
    """`SparseNormal().estimate` from the structure alone: the fronts, widest front
    and factor entries the factorisation reports, and a peak memory that bounds the
    one `tracemalloc` measures for the whole solve without being loose by more than
    3 times (measured 1.9 to 2.3 on cases like these)."""
    import re
    import tracemalloc

    system = SYSTEMS[name]()
    est = pd.SparseNormal().estimate(system)
    solver = pd.SparseNormal(dense_fraction=2.0)
    solver(system)  # (a first call loads what stays loaded)
    tracemalloc.start()
    result = solver(system)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    fronts, widest, entries = map(
        int,
        re.search(
            r"\((\d+) fronts, the widest over (\d+) columns; nnz\(L\)=(\d+)\)", result.message
        ).groups(),
    )
    assert (est["fronts"], est["widest"], est["l_entries"]) == (fronts, widest, entries)
    assert peak <= est["peak_bytes"] <= 3 * peak
    assert est["flops"] > 0


def test_sparse_normal_refuses_what_would_not_fit_before_factorising():
    system = SYSTEMS["grid"]()
    need = pd.SparseNormal().estimate(system)["peak_bytes"]
    with pytest.raises(
        MemoryError, match=r"SparseNormal would need up to [\d.]+ MiB .*, more than [\d.]+ MiB\."
    ):
        pd.SparseNormal(max_bytes=need - 1, dense_bytes=0)(system)
    assert bool(pd.SparseNormal(max_bytes=need, dense_bytes=0)(system).success)
    # SuperLU's fill is not estimated: no check
    assert bool(pd.SparseNormal(max_bytes=1, factorisation="superlu")(system).success)
    for bad in (0, -1, True, "8e9"):
        with pytest.raises(ValueError, match="max_bytes"):
            pd.SparseNormal(max_bytes=bad)


def test_auto_keeps_the_factorisation_within_normal_bytes(monkeypatch):
    """Where `SparseNormal`'s estimated memory exceeds `normal_bytes`, Auto picks the
    iterative solver instead (the two-level CG on a grid of polynomials, LSMR
    otherwise) and does not fall back to it."""
    auto_module = importlib.import_module("pdedsl.solve.auto")
    monkeypatch.setattr(auto_module, "_CHECKED", 0)  # these small systems are checked too
    problem, model, system, _ = poisson_system(lambda d: pd.Grid(d, (6, 5), 2.0), pd.Polynomial(4), (24, 24))
    roomy = pd.Auto(dense_unknowns=10)
    assert isinstance(roomy.choose(system, model), pd.SparseNormal)
    tight = pd.Auto(dense_unknowns=10, normal_bytes=1)
    chosen = tight.choose(system, model)
    assert isinstance(chosen, pd.CGNormal) and isinstance(chosen.preconditioner, pd.TwoLevel)
    assert isinstance(tight.choose(system), pd.LSMR)
    assert isinstance(roomy.fallback(system, chosen, model), pd.SparseNormal)
    assert eqx.tree_at(lambda a: a.qr_bytes, tight, 1).fallback(system, chosen, model) is None
    # nested B-spline levels in 2D: the spline frame's CG where the factorisation does not fit
    nested = pd.FBPINN(pd.Multilevel(problem.domain, levels=2, bspline=3), pd.Polynomial(2))
    system = pd.linear_system(problem, nested, points=(12, 12))
    assert isinstance(roomy.choose(system, nested), pd.SparseNormal)
    chosen = tight.choose(system, nested)
    assert isinstance(chosen, pd.CGNormal) and isinstance(chosen.preconditioner, pd.SplineFrame)
