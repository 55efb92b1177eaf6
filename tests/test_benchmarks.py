"""The benchmark command runs and writes the JSON fields of BENCHMARKS.md."""

import json
import pathlib
import subprocess
import sys

import pytest

FIELDS = {
    "problem",
    "method",
    "rel_l2",
    "norm_l1",
    "max_err",
    "wall_s",
    "assemble_s",
    "solve_s",
    "compile_s",
    "iterations",
    "unknowns",
    "points",
    "peak_rss_mb",
}


@pytest.mark.slow
def test_bench_command_writes_json(tmp_path):
    path = tmp_path / "out.jsonl"
    out = subprocess.run(
        [sys.executable, "-m", "pdedsl.cli", "bench", "oscillator-solvers", "--quick", "--json", str(path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) >= 8
    for r in records:
        assert FIELDS <= set(r)
        assert r["problem"] == "oscillator-solvers"
    dense = next(r for r in records if r["method"].startswith("dense SVD"))
    assert dense["rel_l2"] < 1e-3 and dense["iterations"] is None and dense["unknowns"] == 160
    assert "| method |" in out.stdout


def test_bench_rejects_unknown_names():
    out = subprocess.run(
        [sys.executable, "-m", "pdedsl.cli", "bench", "nope"], capture_output=True, text=True
    )
    assert out.returncode != 0 and "invalid choice" in out.stderr


BENCH = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture
def bench_modules(monkeypatch):
    """The benchmark scripts as modules, run in this process (their JIT caches are shared)."""
    monkeypatch.syspath_prepend(str(BENCH))
    import helmholtz_lshape
    import poisson_fem
    import time_to_accuracy

    return helmholtz_lshape, poisson_fem, time_to_accuracy


def test_new_benchmarks_are_registered():
    from pdedsl.cli import BENCHMARKS

    run_all = (BENCH / "run_all.py").read_text()
    for name in (
        "helmholtz-lshape",
        "poisson-fem",
        "time-to-accuracy",
        "preconditioner-scaling",
        "laplace-multilevel-regularised",
        "windows",
        "layered-medium",
        "lshape-singular",
        "lshape-heat",
        "oscillator-weak",
        "parameter-sweep",
    ):
        assert (BENCH / BENCHMARKS[name]).is_file()
        assert f'"{name}"' in run_all  # part of the suite that regenerates RESULTS.md


def test_preconditioner_scaling_quick(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import preconditioner_scaling

    records = preconditioner_scaling.run(quick=True)
    _check(records)
    its = {r["method"]: r["iterations"] for r in records}
    side8 = {m.split(" [")[0]: n for m, n in its.items() if "[8^2" in m}
    assert side8["CG + two-level (block Jacobi)"] < side8["CG + block Jacobi"]
    rel = {r["rel_l2"] for r in records if "[8^2" in r["method"]}
    assert max(rel) - min(rel) < 1e-6  # every method reaches the same least-squares solution


def test_sparse_normal_quick(monkeypatch):
    """Both factorisations of `SparseNormal` reach the same solution."""
    monkeypatch.syspath_prepend(str(BENCH))
    import sparse_normal

    records = sparse_normal.run(quick=True)
    _check(records)
    assert [r["method"].split(" [")[0] for r in records] == ["multifrontal", "superlu"]
    a, b = (r["rel_l2"] for r in records)
    assert abs(a - b) <= 1e-6 * b


def test_windows_quick(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import windows

    records = windows.run(quick=True)
    _check(records)
    err = {r["method"].split(" [")[0]: r["rel_l2"] for r in records}
    bspline = err["B-spline (cubic) windows, overlap 4"]
    # the same unknowns (17 x 17 subdomains of quadratics): the B-spline windows win
    # (measured 7.1e-3 against 0.29 and 1.4e-2; the gap widens with resolution)
    assert bspline < err["cosine windows, overlap 2"] / 10
    assert bspline < 0.75 * err["cosine windows, overlap 3"]


def test_oscillator_weak_quick(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import oscillator_weak

    records = oscillator_weak.run(quick=True)
    _check(records)
    err = {r["method"]: r["rel_l2"] for r in records}
    assert len(err) == 9  # w0 = 20: six pdedsl rows, three classical
    w0, j = 20, 10  # quick: the first size only (the full run goes to w0 = 320)
    # measured 6.6e-10 (one level) and 7.4e-9 (three levels), exact least squares
    assert err[f"w0={w0}: pdedsl 1 level ({j}) x 12 tanh, exact least squares"] < 1e-8
    assert err[f"w0={w0}: pdedsl 3 levels (1 + {j // 2} + {j}) x 12 tanh, exact least squares"] < 1e-7
    assert err[f"w0={w0}: pdedsl 1 level ({j}) x Legendre deg 11"] < 1e-9  # 1.4e-11
    assert err[f"w0={w0}: matrix-exponential propagator"] < 1e-12  # 4e-14
    assert err[f"w0={w0}: scipy solve_ivp DOP853, rtol 1e-11"] < 1e-9  # 5e-12


def _check(records):
    for r in records:
        assert FIELDS <= set(r)
        assert r["rel_l2"] is not None and r["wall_s"] > 0
    json.dumps(records)  # every field is serialisable


@pytest.mark.slow
def test_helmholtz_lshape_and_poisson_fem_quick(bench_modules):
    helmholtz_lshape, poisson_fem, _ = bench_modules
    records = helmholtz_lshape.run(quick=True)
    _check(records)
    assert {r["problem"] for r in records} == {"helmholtz-lshape"}
    methods = [r["method"] for r in records]
    assert any(m.startswith("pdedsl") for m in methods)
    assert any(m.startswith("FEM P1") for m in methods) and any(m.startswith("FEM P2") for m in methods)
    records = poisson_fem.run(quick=True)
    _check(records)
    assert {r["problem"] for r in records} == {"poisson-fem-1d", "poisson-fem-2d", "poisson-fem-3d"}
    p2 = [r for r in records if r["method"].startswith("FEM P2")]
    assert len(p2) == 3 and all(r["unknowns"] > 0 for r in p2)


def test_layered_medium_quick(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import layered_medium

    records = layered_medium.run(quick=True)
    _check(records)
    assert {r["problem"] for r in records} == {"layered-medium-k10", "layered-medium-k1000"}
    pdedsl = [r for r in records if "pdedsl" in r["method"]]
    assert len(pdedsl) == 2 and all(r["rel_l2"] < 2e-3 for r in pdedsl)  # measured 4.8e-4, 4.1e-4
    assert sum("FEM P2" in r["method"] for r in records) == 2


def test_lshape_singular_quick(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import lshape_singular

    records = lshape_singular.run(quick=True)
    _check(records)
    with_corners, without = (r for r in records if "pdedsl" in r["method"])
    assert "with corner functions" in with_corners["method"] and "corners=False" in without["method"]
    # measured 6.5e-6 with the corner functions, 5.0e-3 without (FEM P2 h=1/16: 4.2e-4)
    assert with_corners["rel_l2"] < 1e-4 and without["rel_l2"] > 1e-3


def test_lshape_heat_quick(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import lshape_heat

    records = lshape_heat.run(quick=True)
    _check(records)
    with_edge, without = (r for r in records if "pdedsl" in r["method"])
    assert "with edge functions" in with_edge["method"] and "corners=False" in without["method"]
    # measured 8.5e-4 with the edge functions, 1.6e-2 without (FEM P2 h=1/8, CN: 1.6e-3)
    assert with_edge["rel_l2"] < 4e-3 and without["rel_l2"] > 8e-3
    (fem,) = (r for r in records if "FEM P2" in r["method"])
    assert fem["rel_l2"] < 5e-3 and fem["iterations"] == 10


@pytest.mark.slow
def test_time_to_accuracy_quick_writes_figures_and_table(bench_modules, tmp_path):
    *_, time_to_accuracy = bench_modules
    records = time_to_accuracy.run(quick=True, out_dir=tmp_path)
    _check(records)
    assert {r["family"] for r in records} >= {"FEM P1 (scikit-fem)", "FEM P2 (scikit-fem)"}
    assert any(r["family"].startswith("pdedsl") for r in records)
    for name in ("poisson-fem-2d", "laplace-multiscale"):
        assert (tmp_path / f"time-to-accuracy-{name}.png").stat().st_size > 10_000
    page = (tmp_path / "time-to-accuracy.md").read_text()
    assert "| method | time to 1e-04 | time to 1e-06 | time to 1e-08 |" in page
    assert "#### poisson-fem-2d" in page and "#### laplace-multiscale" in page
    assert "ratio pdedsl / FEM-P2" in page


@pytest.mark.slow
def test_wave_benchmark_quick(tmp_path):
    path = tmp_path / "wave.jsonl"
    out = subprocess.run(
        [sys.executable, "-m", "pdedsl.cli", "bench", "wave-2p1d", "--quick", "--json", str(path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "the reference's error is about" in out.stdout
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for r in records:
        assert FIELDS <= set(r) and r["problem"] == "wave-2p1d"
    ref = records[0]
    assert ref["method"].startswith("reference") and ref["rel_l2"] is None and ref["unknowns"] > 0
    fd = {r["method"].split(",")[0]: r for r in records if r["method"].startswith("finite differences")}
    # on the same grid, the fourth-order solve is the more accurate one
    assert fd["finite differences order 4"]["rel_l2"] < fd["finite differences order 2"]["rel_l2"] / 3
    assert any(r["method"].startswith("pdedsl") and r["rel_l2"] is not None for r in records)


def test_multilevel_frame_study(monkeypatch):
    """The study behind docs/solving.md's multilevel-frame table: the windows x
    quadratics of a level span exactly the three tensor spline spaces, and CG with
    all levels' B-splines converges (in about as many iterations as the finest
    level's B-splines alone at 4 levels; it is at 6 and 7 levels that it wins)."""
    monkeypatch.syspath_prepend(str(BENCH))
    import multilevel_frame as mf

    for cells, rank_wq, n_wq, rank_frame, n_frame, rank_both in mf.span_check():
        assert rank_wq == rank_frame == rank_both, cells
        assert rank_wq < min(n_wq, n_frame)  # both redundant
    a, b = mf.system(4, mf.K6, "all levels")
    assert 60 <= mf.cgls(a, b) <= 100  # 81 when measured
    a, b = mf.system(4, mf.K9, "all levels", dirichlet=True)
    assert 40 <= mf.cgls(a, b) <= 70  # 56 when measured
