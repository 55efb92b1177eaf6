"""Saving and loading solutions: bit-identical predictions, clear errors for bad files."""

import json
import zipfile

import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import pdedsl as pd
from pdedsl import D, demos


@pytest.fixture(scope="module")
def solutions():
    p1, m1, pts1, _ = demos.oscillator(w0=20.0)
    x, y = pd.Symbol("x"), pd.Symbol("y")
    u = pd.Function("u")(x, y)
    k = pd.Parameter("k", 2.0)
    p2 = pd.Problem(
        D(u, x, 2) + D(u, y, 2) - k * u == sp.sin(x * y),
        domain=pd.Box([x, y], [0, 0], [1, 2]),
        conditions=[u.on(pd.boundary) == 0],
    )
    m2 = pd.FBPINN(pd.Grid(p2.domain, (2, 3), 2.0), pd.RandomFeatures(10, "sin"), window=pd.Bump())
    return [pd.solve(p1, m1, points=pts1), pd.solve(p2, m2, points=(20, 30))]


@pytest.mark.parametrize("which", [0, 1], ids=["oscillator-1d", "helmholtz-like-2d"])
def test_round_trip_is_bit_identical(tmp_path, solutions, which):
    sol = solutions[which]
    path = tmp_path / "sol.pdedsl"
    sol.save(path)
    back = pd.load(path)
    pts = sol.problem.domain.sample(500, "uniform", seed=1)
    assert np.array_equal(np.asarray(sol(pts)), np.asarray(back(pts)))
    c = sol.problem.coords[0]
    assert np.array_equal(np.asarray(D(sol, c)(pts)), np.asarray(D(back, c)(pts)))
    assert np.array_equal(np.asarray(sol.coefficients), np.asarray(back.coefficients))
    assert back.info == sol.info
    assert str(back.problem.equation) == str(sol.problem.equation)


def _rewrite(src, dst, header=None, payload=None):
    with zipfile.ZipFile(src) as z:
        h, p = json.loads(z.read("header.json")), z.read("payload.pkl")
    with zipfile.ZipFile(dst, "w") as z:
        z.writestr("header.json", json.dumps(header(h) if header else h))
        z.writestr("payload.pkl", payload(p) if payload else p)


def test_bad_files_give_clear_errors(tmp_path, solutions):
    good = tmp_path / "good.pdedsl"
    solutions[0].save(good)
    corrupted = tmp_path / "corrupted.pdedsl"
    _rewrite(good, corrupted, payload=lambda p: p[:100] + bytes([p[100] ^ 0xFF]) + p[101:])
    with pytest.raises(pd.SolutionFileError, match="corrupted"):
        pd.load(corrupted)
    truncated = tmp_path / "truncated.pdedsl"
    truncated.write_bytes(good.read_bytes()[:500])
    with pytest.raises(pd.SolutionFileError, match="not a pdedsl solution file"):
        pd.load(truncated)
    newer = tmp_path / "newer.pdedsl"
    _rewrite(good, newer, header=lambda h: {**h, "format_version": 99})
    with pytest.raises(pd.SolutionFileError, match="format 99"):
        pd.load(newer)
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("header.json", json.dumps({"format": "something-else"}))
        z.writestr("payload.pkl", b"")
    with pytest.raises(pd.SolutionFileError, match="something-else"):
        pd.load(other)
    with pytest.raises(FileNotFoundError):
        pd.load(tmp_path / "missing.pdedsl")


def test_unpicklable_solution_is_refused_at_save(tmp_path):
    problem, _, _, _ = demos.oscillator(w0=5.0)
    model = pd.FBPINN(
        pd.Grid(problem.domain, 3, 2.0), pd.RandomFeatures(6, activation=lambda z: jnp.tanh(2 * z))
    )
    sol = pd.solve(problem, model, points=60)
    with pytest.raises(TypeError, match="cannot be saved"):
        sol.save(tmp_path / "x.pdedsl")


def test_a_library_activation_given_as_a_function_saves_by_name(tmp_path):
    """jnp.tanh is a JAX function object that pickle refuses; it is stored as "tanh"."""
    problem, _, _, _ = demos.oscillator(w0=5.0)
    basis = pd.RandomFeatures(6, activation=jnp.tanh)
    assert basis.activation == "tanh" and pd.MLP(activation=jnp.sin).activation == "sin"
    sol = pd.solve(problem, pd.FBPINN(pd.Grid(problem.domain, 3, 2.0), basis), points=60)
    same = pd.solve(problem, pd.FBPINN(pd.Grid(problem.domain, 3, 2.0), pd.RandomFeatures(6)), points=60)
    np.testing.assert_array_equal(np.asarray(sol.coefficients), np.asarray(same.coefficients))
    sol.save(tmp_path / "t.pdedsl")
    t = np.linspace(0, 1, 7)
    np.testing.assert_array_equal(np.asarray(pd.load(tmp_path / "t.pdedsl")(t)), np.asarray(sol(t)))
