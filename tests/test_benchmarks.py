"""The benchmark command runs and writes the JSON fields of BENCHMARKS.md."""

import json
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
