"""`pdedsl demo` and `sol.plot()` produce the figures they promise."""

import subprocess
import sys

import numpy as np
import pytest
import sympy as sp

import pdedsl as pd
from pdedsl import D, demos
from pdedsl.plot import plot_convergence, plot_decomposition

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
@pytest.mark.parametrize("name,tol", [("oscillator", 1e-6), ("poisson", 1e-6)])
def test_demo_writes_png_and_result(tmp_path, name, tol):
    path = tmp_path / "demo.png"
    out = subprocess.run(
        [sys.executable, "-m", "pdedsl.cli", "demo", name, "--output", str(path), "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("RESULT rel_l2=")
    assert float(last.split()[1].split("=")[1]) <= tol
    assert path.read_bytes()[:8] == PNG and path.stat().st_size > 20_000


def _figure_data(fig):
    return [line.get_ydata() for ax in fig.axes for line in ax.get_lines()]


def test_plot_1d_draws_solution_exact_and_error(tmp_path):
    x = pd.Symbol("x")
    u = pd.Function("u")(x)
    exact = sp.sin(3 * x)
    problem = pd.Problem(
        D(u, x, 2) == -9 * sp.sin(3 * x),
        domain=pd.Interval(x, 0, 1),
        conditions=[u.at(x=0) == 0, u.at(x=1) == sp.sin(3)],
    )
    sol = pd.solve(problem, pd.FBPINN(pd.Grid(problem.domain, 3, 2.0), pd.Polynomial(8)))
    fig = sol.plot(exact=exact, path=tmp_path / "p.png", n=101)
    exact_line, sol_line, err_line = _figure_data(fig)
    xs = np.linspace(0, 1, 101)
    np.testing.assert_allclose(exact_line, np.sin(3 * xs), atol=1e-12)
    np.testing.assert_allclose(sol_line, np.sin(3 * xs), atol=1e-6)
    assert np.max(err_line) < 1e-6
    assert (tmp_path / "p.png").read_bytes()[:8] == PNG


def test_plot_2d_and_3d():
    x, y, z = pd.Symbol("x"), pd.Symbol("y"), pd.Symbol("z")
    u = pd.Function("u")(x, y)
    problem = pd.Problem(
        D(u, x, 2) + D(u, y, 2) == 0,
        domain=pd.Box([x, y], [0, 0], [1, 1]),
        conditions=[u.on(pd.boundary) == x],
    )
    sol = pd.solve(problem, pd.FBPINN(pd.Grid(problem.domain, 2, 2.0), pd.Polynomial(3)))
    fig = sol.plot(exact=x, n=30)
    assert len(fig.axes) == 4  # two panels, two colour bars
    w = pd.Function("w")(x, y, z)
    p3 = pd.Problem(w == 1, domain=pd.Box([x, y, z], [0, 0, 0], [1, 1, 1]))
    sol3 = pd.solve(p3, pd.FBPINN(pd.Grid(p3.domain, 1, 2.0), pd.Polynomial(0)), points=8)
    with pytest.raises(NotImplementedError, match="1D and 2D"):
        sol3.plot()


def test_convergence_history_and_its_plot():
    problem, _, _, _ = demos.oscillator(w0=20.0)
    model = pd.FBPINN(pd.Grid(problem.domain, 6, 2.0), pd.Polynomial(8))
    sol = pd.solve(problem, model, points=200, solver=pd.CGNormal(pd.AdditiveSchwarz()))
    hist = sol.info["history"]
    assert len(hist) == sol.info["iterations"] + 1 and hist[0] == 1.0
    assert hist.min() <= 1e-10  # the CG tolerance, relative to the start
    (line,) = plot_convergence(sol).axes[0].get_lines()
    np.testing.assert_array_equal(line.get_ydata(), hist)
    dense = pd.solve(problem, model, points=200, solver=pd.DenseLeastSquares())
    with pytest.raises(ValueError, match="no convergence history"):
        plot_convergence(dense)


def test_decomposition_plot_shows_a_partition_of_unity():
    t = pd.Symbol("t")
    model = pd.FBPINN(pd.Grid(pd.Interval(t, 0, 1), 6, 2.9), pd.Polynomial(3))
    lines = plot_decomposition(model, n=300).axes[0].get_lines()
    assert len(lines) == 7  # six windows and their sum
    np.testing.assert_allclose(lines[-1].get_ydata(), 1.0, atol=1e-12)
    x, y = pd.Symbol("x"), pd.Symbol("y")
    ml = pd.FBPINN(pd.Multilevel(pd.Box([x, y], [0, 0], [1, 1]), levels=3), pd.Polynomial(2))
    ax = plot_decomposition(ml).axes[0]
    assert [len(line.get_xdata()) for line in ax.get_lines()] == [1, 4, 16]


def test_run_command_runs_a_script(tmp_path):
    script = tmp_path / "mine.py"
    script.write_text("import sys\nprint('ARGS', sys.argv[1:])\n")
    out = subprocess.run(
        [sys.executable, "-m", "pdedsl.cli", "run", str(script), "a", "--b"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "ARGS ['a', '--b']" in out.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "pdedsl.cli", "run", str(tmp_path / "none.py")], capture_output=True, text=True
    )
    assert bad.returncode != 0 and "no such file" in bad.stderr


def test_progress_only_when_asked_or_in_a_terminal(capfd):
    problem, _, _, _ = demos.oscillator(w0=20.0)
    model = pd.FBPINN(pd.Grid(problem.domain, 6, 2.0), pd.Polynomial(10))
    solver = pd.CGNormal(pd.BlockFilter())
    pd.solve(problem, model, points=200, solver=solver)  # stderr is not a terminal here
    assert capfd.readouterr().err == ""
    sol = pd.solve(problem, model, points=200, solver=solver, progress=True)
    err = capfd.readouterr().err
    assert "assembling 202 rows x 66 unknowns" in err and "solving with CGNormal(BlockFilter)" in err
    assert sol.info["iterations"] >= 100 and "CG iteration    100" in err
    pd.solve(problem, model, points=200, solver=solver, progress=False)
    assert capfd.readouterr().err == ""


def test_demo_json(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "pdedsl.cli", "demo", "--json", "--output", str(tmp_path / "d.png")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    import json

    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["demo"] == "oscillator" and r["rel_l2"] <= 1e-6
    assert r["unknowns"] == 240 and r["rows"] == 722 and r["test_points"] == 2000
