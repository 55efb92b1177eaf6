"""Assembly of the block-sparse least-squares system, checked against a dense truth
built independently: the full ansatz over all subdomains (no cover), differentiated
by JAX, with the operator written out by hand."""

import dataclasses
import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import pdedsl as pd
from pdedsl import D, Dn
from pdedsl.assemble import LinearSystem, assemble, chunks
from pdedsl.assemble.system import PRODUCT_CHUNK_BYTES, product_chunk_rows
from pdedsl.solve import collocation

x, y = pd.Symbol("x"), pd.Symbol("y")


# -- the two problems ---------------------------------------------------------------------


def problem_1d():
    """u'' + x u = sin(3x) + 1 on [0, 1]; u(0) = 1; u'(1) = 2."""
    u = pd.Function("u")(x)
    domain = pd.Interval(x, 0, 1)
    problem = pd.Problem(
        D(u, x, 2) + x * u == sp.sin(3 * x) + 1,
        domain=domain,
        conditions=[u.at(x=0) == 1, D(u, x).at(x=1) == 2],
    )
    model = pd.FBPINN(pd.Grid(domain, 4, 2.9), pd.RandomFeatures(5, "tanh"), seed=7)

    def rows(g, pts):
        """Hand-written operator rows (unscaled) and rhs for each block."""
        x_ = pts[:, 0]
        return {
            "equation": (g["xx"] + x_[:, None] * g["0"], np.sin(3 * x_) + 1),
            "condition 0": (g["0"], np.ones_like(x_)),
            "condition 1": (g["x"], 2 * np.ones_like(x_)),
        }

    return problem, model, 20, rows


def problem_2d():
    """u_xx + u_yy + 3 u_x = x + y^2 on [0, 2] x [0, 1], with Dirichlet on x = 0 and y = 0,
    Neumann on x = 2 and Robin on y = 1."""
    u = pd.Function("u")(x, y)
    domain = pd.Box([x, y], [0, 0], [2, 1])
    problem = pd.Problem(
        D(u, x, 2) + D(u, y, 2) + 3 * D(u, x) == x + y**2,
        domain=domain,
        conditions=[
            u.at(x=0) == sp.sin(y),
            u.at(y=0) == x,
            Dn(u).at(x=2) == 1,
            (Dn(u) + 2 * u).at(y=1) == x * y,
        ],
    )
    model = pd.FBPINN(pd.Grid(domain, (3, 2), 2.0), pd.Polynomial(2), window=pd.Cosine(power=3))

    def rows(g, pts):
        x_, y_ = pts[:, 0], pts[:, 1]
        return {
            "equation": (g["xx"] + g["yy"] + 3 * g["x"], x_ + y_**2),
            "condition 0": (g["0"], np.sin(y_)),
            "condition 1": (g["0"], x_),
            "condition 2": (g["x"], np.ones_like(x_)),  # outward normal +x
            "condition 3": (g["y"] + 2 * g["0"], x_ * y_),  # outward normal +y
        }

    return problem, model, (6, 5), rows


PROBLEMS = {"1d": problem_1d, "2d": problem_2d}


def full_ansatz(model):
    """x -> (J*K,) all windowed basis functions, using every subdomain (no cover)."""
    dec = model.decomposition

    def f(p):
        s = (p[None, :] - dec.centres) / dec.half_widths
        raw = jax.vmap(model.window)(s)
        w = raw / jnp.sum(raw)
        feats = jax.vmap(model.basis.features)(model.params, s)
        return (w[:, None] * feats).reshape(-1)

    return f


@eqx.filter_jit
def truth_values(model, pts):
    """Values and first/second derivatives of all windowed basis functions: (N, J*K) each."""
    f = full_ansatz(model)
    val = jax.vmap(f)(pts)
    jac = jax.vmap(jax.jacfwd(f))(pts)  # (N, JK, d)
    hes = jax.vmap(jax.jacfwd(jax.jacfwd(f)))(pts)  # (N, JK, d, d)
    g = {"0": val, "x": jac[..., 0], "xx": hes[..., 0, 0]}
    if model.dim == 2:
        g.update({"y": jac[..., 1], "yy": hes[..., 1, 1], "xy": hes[..., 0, 1]})
    return g


@functools.cache
def built(name):
    """(problem, model, blocks, scaled system, unscaled system, expected rows, expected rhs, points)."""
    problem, model, points, rows = PROBLEMS[name]()
    blocks = collocation(problem, model, points=points)
    scaled = assemble(model, blocks)
    unscaled = assemble(model, blocks, row_scaling=False)
    pts_all = np.concatenate([np.asarray(p) for _, _, p in blocks])
    g_all = {k: np.asarray(v) for k, v in truth_values(model, jnp.asarray(pts_all)).items()}
    mats, rhss, start = [], [], 0
    for block_name, _, pts in blocks:
        stop = start + len(pts)
        g = {k: v[start:stop] for k, v in g_all.items()}
        m, r = rows(g, pts_all[start:stop])[block_name]
        mats.append(m)
        rhss.append(r)
        start = stop
    return (problem, model, blocks, scaled, unscaled, np.concatenate(mats), np.concatenate(rhss), pts_all)


@pytest.fixture(params=["1d", "2d"])
def case(request):
    return built(request.param)


# -- tests ----------------------------------------------------------------------------------


def test_shapes(case):
    problem, model, blocks, system, _, _, _, _ = case
    n = sum(len(p) for _, _, p in blocks)
    P, K, J = model.decomposition.max_cover, model.num_features, model.num_subdomains
    assert system.values.shape == (n, P, K)
    assert system.index.shape == (n, P)
    assert system.rhs.shape == system.row_scale.shape == (n,)
    assert system.shape == (n, J * K)
    assert system.num_features == K and system.num_subdomains == J
    assert system.dense().shape == (n, J * K)
    assert system.values.dtype == jnp.float64


def test_block_sizes(case):
    problem, model, blocks, system, _, _, _, _ = case
    names = [b[0] for b in blocks]
    assert names[0] == "equation" and len(names) == 1 + len(problem.lowered_conditions)
    if model.dim == 1:
        assert [len(b[2]) for b in blocks] == [20, 1, 1]
    else:
        # Equation on the (6, 5) grid; conditions on faces at the grid's resolution.
        assert [len(b[2]) for b in blocks] == [30, 5, 6, 5, 6]


def test_groups_cover_rows_in_order(case):
    _, _, blocks, system, _, _, _, _ = case
    groups = system.groups
    assert [g[0] for g in groups] == [b[0] for b in blocks]
    start = 0
    for (_, a, b), (_, _, pts) in zip(groups, blocks):
        assert a == start and b - a == len(pts)
        start = b
    assert start == system.shape[0]


def test_unscaled_matrix_and_rhs_match_truth(case):
    _, _, _, _, unscaled, mat, rhs, _ = case
    np.testing.assert_array_equal(unscaled.row_scale, 1.0)
    dense = np.asarray(unscaled.dense())
    scale = np.abs(mat).max(axis=1, keepdims=True)
    np.testing.assert_allclose(dense / scale, mat / scale, rtol=0, atol=1e-10)
    np.testing.assert_allclose(unscaled.rhs, rhs, rtol=1e-13, atol=1e-13)
    # Unscaled rows are not unit rows (the equation rows carry 1/h^2 factors).
    norms = np.linalg.norm(dense, axis=1)
    assert np.abs(norms - 1).max() > 0.1


def test_row_scaling_gives_unit_rows(case):
    _, _, _, scaled, unscaled, mat, rhs, _ = case
    dense = np.asarray(scaled.dense())
    np.testing.assert_allclose(np.linalg.norm(dense, axis=1), 1.0, rtol=1e-12)
    # row_scale is the reciprocal norm of the unscaled row, and undoes the scaling.
    np.testing.assert_allclose(scaled.row_scale, 1 / np.linalg.norm(mat, axis=1), rtol=1e-9)
    np.testing.assert_allclose(scaled.rhs / scaled.row_scale, rhs, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(
        dense / np.asarray(scaled.row_scale)[:, None], np.asarray(unscaled.dense()), rtol=1e-12, atol=1e-12
    )
    np.testing.assert_array_equal(scaled.index, unscaled.index)


def test_mv_rmv_match_dense(case, getkey):
    _, _, _, scaled, unscaled, _, _, _ = case
    for system in (scaled, unscaled):
        n, jk = system.shape
        J, K = system.num_subdomains, system.num_features
        dense = np.asarray(system.dense())
        a = jax.random.normal(getkey(), (J, K))
        r = jax.random.normal(getkey(), (n,))
        np.testing.assert_allclose(system.mv(a), dense @ np.asarray(a).ravel(), rtol=1e-12, atol=1e-10)
        np.testing.assert_allclose(
            system.rmv(r), (dense.T @ np.asarray(r)).reshape(J, K), rtol=1e-12, atol=1e-10
        )
        lhs = float(jnp.vdot(system.mv(a), r))
        rhs = float(jnp.vdot(a, system.rmv(r)))
        assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-10)
        # mv is linear and rmv is its transpose on a basis vector.
        e = jnp.zeros((J, K)).at[J - 1, K - 1].set(1.0)
        np.testing.assert_allclose(system.mv(e), dense[:, -1], rtol=1e-12, atol=1e-12)


def test_product_chunks_hold_a_fixed_number_of_bytes():
    """Chunk rows are the power of two nearest to PRODUCT_CHUNK_BYTES of values,
    clamped to [256, 16384] rows."""
    for p, k in [(8, 35), (112, 6), (4, 28), (4, 45), (1, 1), (500, 500)]:
        rows = product_chunk_rows(p, k)
        assert rows & (rows - 1) == 0 and 256 <= rows <= 16384
        if 256 < rows < 16384:
            assert 2**-0.5 <= rows * p * k * 8 / PRODUCT_CHUNK_BYTES <= 2**0.5
    assert product_chunk_rows(1, 1) == 16384 and product_chunk_rows(500, 500) == 256
    assert product_chunk_rows(112, 6) == 1024 and product_chunk_rows(8, 35) == 2048
    assert product_chunk_rows(8, 35, itemsize=4) == 4096


@pytest.mark.parametrize("n, chunk", [(1, 4), (12, 4), (13, 4), (17, 16), (16896, 16384), (50, 7), (5, 100)])
def test_row_chunks_cover_every_row_once(n, chunk):
    """Chunks are evenly sized (the last overlaps the one before by fewer rows than
    there are chunks); fill_rows writes every row, sum_rows counts every row once."""
    steps, size = chunks._steps(n, chunk)
    assert size <= chunk and steps == -(-n // chunk) and 0 <= steps * size - n < steps
    a = jnp.arange(1.0, n + 1.0) ** 2
    (out,) = jax.jit(
        lambda a: chunks.fill_rows((jnp.zeros(n),), lambda lo, c: (2 * chunks.rows(a, lo, c),), n, chunk)
    )(a)
    np.testing.assert_array_equal(out, 2 * a)
    total = jax.jit(
        lambda a: chunks.sum_rows(
            jnp.zeros(()), lambda lo, c, w: jnp.sum(chunks.rows(a, lo, c) * w), n, chunk
        )
    )(a)
    assert float(total) == float(jnp.sum(a))


def test_chunked_products_match_dense(case, getkey):
    """Products over row chunks (the default for assembled systems; here chunks of at
    most 7 rows, evenly sized, which divide neither system's row count, so the last
    chunk overlaps the one before) equal the dense products, under JIT too."""
    _, _, _, system, _, _, _, _ = case
    _, p, k = system.values.shape
    assert system.chunk_rows == product_chunk_rows(p, k) > 0
    chunked = dataclasses.replace(system, chunk_rows=7)
    n, _ = system.shape
    steps, size = chunks._steps(n, 7)
    assert steps * size > n and chunked._chunked()
    J, K = system.num_subdomains, system.num_features
    dense = np.asarray(system.dense())
    a = jax.random.normal(getkey(), (J, K))
    r = jax.random.normal(getkey(), (n,))
    for s in (chunked, jax.jit(lambda s: s)(chunked)):
        np.testing.assert_allclose(s.mv(a), dense @ np.asarray(a).ravel(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(s.rmv(r), (dense.T @ np.asarray(r)).reshape(J, K), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(
            s.rmv_squares(), (dense**2).sum(axis=0).reshape(J, K), rtol=1e-12, atol=1e-14
        )
    mv = jax.jit(lambda s, a: s.mv(a))(chunked, a)
    np.testing.assert_allclose(mv, dense @ np.asarray(a).ravel(), rtol=1e-12, atol=1e-12)
    rmv = jax.jit(lambda s, r: s.rmv(r))(chunked, r)
    np.testing.assert_allclose(rmv, (dense.T @ np.asarray(r)).reshape(J, K), rtol=1e-12, atol=1e-12)


def test_mv_jits(case):
    _, _, _, system, _, _, _, _ = case
    a = jnp.ones((system.num_subdomains, system.num_features))
    np.testing.assert_allclose(jax.jit(lambda s, a: s.mv(a))(system, a), system.mv(a), rtol=1e-14)


def test_dense_sparsity_follows_cover(case):
    _, model, _, system, _, _, _, pts = case
    dense = np.asarray(system.dense())
    J, K = system.num_subdomains, system.num_features
    c = np.asarray(model.decomposition.centres)
    hw = np.asarray(model.decomposition.half_widths)
    covers = np.all(np.abs(pts[:, None, :] - c[None]) < hw[None], axis=-1)  # (N, J)
    blocks = np.abs(dense).reshape(-1, J, K).max(axis=-1)  # (N, J)
    assert np.all(blocks[~covers] == 0.0)
    # A covering subdomain contributes (its window is positive at the point).
    assert np.all(blocks[covers] > 0)
    assert (~covers).any()  # the test has teeth: some pairs do not interact
    # Padding slots are zero and point at valid subdomains.
    idx = np.asarray(system.index)
    assert np.all((idx >= 0) & (idx < J))
    for i in range(len(pts)):
        real = idx[i][np.any(np.asarray(system.values[i]) != 0, axis=-1)]
        assert len(set(real.tolist())) == len(real)


def test_hand_built_system():
    """LinearSystem's products and dense form on a tiny hand-made block structure."""
    rng = np.random.default_rng(0)
    index = np.array([[0, 2], [1, 2], [2, 0], [1, 0]])
    values = rng.normal(size=(4, 2, 3))
    system = LinearSystem(
        values=jnp.asarray(values),
        index=jnp.asarray(index),
        rhs=jnp.zeros(4),
        row_scale=jnp.ones(4),
        num_subdomains=3,
        groups=(("all", 0, 4),),
    )
    dense = np.zeros((4, 9))
    for i in range(4):
        for p in range(2):
            dense[i, 3 * index[i, p] : 3 * index[i, p] + 3] += values[i, p]
    np.testing.assert_allclose(system.dense(), dense, rtol=1e-15)
    a = rng.normal(size=(3, 3))
    r = rng.normal(size=4)
    np.testing.assert_allclose(system.mv(jnp.asarray(a)), dense @ a.ravel(), rtol=1e-13)
    np.testing.assert_allclose(system.rmv(jnp.asarray(r)), (dense.T @ r).reshape(3, 3), rtol=1e-13)
    assert system.shape == (4, 9)


def test_zero_row_is_left_unscaled():
    """A row without entries (a point no subdomain covers) keeps scale 1 and its rhs,
    instead of dividing by zero; the other rows are scaled as usual."""
    problem, model, _, _ = problem_1d()
    _, form, _ = collocation(problem, model, points=5)[1]  # u = 1 at a point
    system = assemble(model, [("points", form, np.array([[0.0], [5.0], [1.0]]))])
    np.testing.assert_array_equal(np.asarray(system.values[1]), 0.0)
    assert float(system.row_scale[1]) == 1.0 and float(system.rhs[1]) == 1.0
    norms = np.linalg.norm(np.asarray(system.dense()), axis=1)
    np.testing.assert_allclose(norms, [1.0, 0.0, 1.0], rtol=1e-12)
    assert np.all(np.isfinite(system.rhs))


def test_chunked_rows_equal_unchunked(monkeypatch):
    """Rows assembled chunk by chunk (with a padded last chunk) are the rows
    assembled in one go."""
    import importlib

    asm = importlib.import_module("pdedsl.assemble.assemble")
    x, y = pd.Symbol("x"), pd.Symbol("y")
    u = pd.Function("u")(x, y)
    problem = pd.Problem(D(u, x, 2) + x * D(u, y) == sp.sin(x * y), pd.Box([x, y], [0, 0], [1, 1]))
    model = pd.FBPINN(pd.Grid(problem.domain, (3, 2), 2.0), pd.Polynomial(3))
    points = problem.domain.sample((9, 7))  # 63 points: chunks of 10 leave a padded last chunk
    form = problem.equation_form.compile()
    whole = asm._rows_impl(model, form, points)
    monkeypatch.setattr(asm, "_CHUNK_ROWS", 10)
    chunked = asm._rows_impl(model, form, points)
    assert np.array_equal(np.asarray(whole[0]), np.asarray(chunked[0]))  # subdomain indices
    for a, b in zip(whole[1:], chunked[1:]):  # values, rhs: equal up to vectorised rounding
        assert a.shape == b.shape
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=0, atol=1e-13 * float(np.abs(a).max()))


@pytest.mark.parametrize("faces", ["boundary", "different"])
def test_assembly_in_chunks_matches_blockwise_rows(monkeypatch, faces):
    """The single-buffer assembly (chunks written in place, the last chunk of each
    block moved back to end at the block's end) gives the rows of each block, row
    scaled, in block order. Consecutive blocks with the same derivatives share one
    loop (one chunk can hold rows of two of them): with a different right-hand side
    on each face ("different"), a row given another block's form would show."""
    import importlib

    asm = importlib.import_module("pdedsl.assemble.assemble")
    x, y = pd.Symbol("x"), pd.Symbol("y")
    u = pd.Function("u")(x, y)
    domain = pd.Box([x, y], [0, 0], [1, 2])
    if faces == "boundary":
        conditions = [u.on(pd.boundary) == sp.exp(x)]
    else:  # three Dirichlet faces in one loop, then a Neumann face and a Robin face
        conditions = [
            u.at(x=0) == sp.sin(y),
            u.at(x=1) == y**2,
            u.at(y=0) == 3 + x,
            D(u, y).at(y=2) == x,
            (2 * u + D(u, x)).at(y=2) == 1 - x,
        ]
    problem = pd.Problem(D(u, x, 2) + (1 + x) * D(u, y) == sp.cos(x * y) + 0.25, domain, conditions)
    model = pd.FBPINN(pd.Grid(domain, (3, 2), 2.0), pd.Polynomial(3))
    monkeypatch.setattr(asm, "_CHUNK_ROWS", 10)  # 63 equation rows: 6 full chunks and an overlapping 7th
    blocks = collocation(problem, model, (9, 7), condition_points=23)  # 23 rows: 2 chunks, overlapping
    system = assemble(model, blocks)
    assert [g[0] for g in system.groups] == [name for name, _, _ in blocks]
    for (_, form, points), (_, lo, hi) in zip(blocks, system.groups):
        index, values, rhs = asm._rows_impl(model, form, jnp.asarray(points))
        norms = np.sqrt(np.sum(np.asarray(values) ** 2, axis=(1, 2)))
        assert hi - lo == len(points)
        assert np.array_equal(np.asarray(system.index[lo:hi]), np.asarray(index))
        np.testing.assert_allclose(np.asarray(system.row_scale[lo:hi]), 1 / norms, rtol=1e-12)
        np.testing.assert_allclose(
            np.asarray(system.values[lo:hi]), np.asarray(values) / norms[:, None, None], rtol=0, atol=1e-13
        )
        np.testing.assert_allclose(np.asarray(system.rhs[lo:hi]), np.asarray(rhs) / norms, rtol=1e-12)


def test_assembly_learns_the_rows_layout_when_its_expectation_misses(monkeypatch):
    """The assembly writes rows into buffers of an expected layout (default int and
    float types) without tracing a row first; rows of another layout are caught while
    tracing and the buffers made to fit them, so the system is the same either way."""
    import importlib

    asm = importlib.import_module("pdedsl.assemble.assemble")
    x, y = pd.Symbol("x"), pd.Symbol("y")
    u = pd.Function("u")(x, y)
    problem = pd.Problem(
        D(u, x, 2) + D(u, y, 2) == sp.sin(x), pd.Box([x, y], [0, 0], [1, 1]), [u.on(pd.boundary) == x]
    )
    model = pd.FBPINN(pd.Grid(problem.domain, (3, 3), 2.0), pd.Polynomial(4))
    blocks = collocation(problem, model, (12, 12))
    expected = assemble(model, blocks)
    missed = []

    def wrong(model, width):  # a float32 index and one feature too many: both must be caught
        missed.append(width)
        return (
            ((width,), jnp.float32),
            ((width, model.num_features + 1), jnp.float64),
            ((), float),
            ((), float),
        )

    monkeypatch.setattr(asm, "_expected_layout", wrong)
    jax.clear_caches()
    system = assemble(model, blocks)
    assert missed  # the wrong layout was tried
    for name in ("index", "values", "rhs", "row_scale"):
        a, b = getattr(expected, name), getattr(system, name)
        assert a.dtype == b.dtype and a.shape == b.shape, name
        assert np.array_equal(np.asarray(a), np.asarray(b)), name
