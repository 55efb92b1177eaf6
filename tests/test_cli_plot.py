"""`pdedsl demo` and `sol.plot()` produce the figures they promise."""

import subprocess
import sys

import numpy as np
import pytest
import sympy as sp

import pdedsl as pd
from pdedsl import D, demos
from pdedsl.plot import plot_convergence, plot_decomposition, plot_slices, plot_snapshots
from pdedsl.solve import progress

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
@pytest.mark.parametrize("name,tol", [("oscillator", 1e-6), ("poisson", 1e-6), ("poisson-3d", 1e-4)])
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


def test_demo_names_are_the_demos():
    from pdedsl import cli

    assert cli.DEMO_NAMES == list(demos.DEMOS)


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
    # a file name in the exact solution's place: a plain error, not sympy's parse error
    with pytest.raises(TypeError, match=r"sol.plot: the first argument is the exact solution.*path='u.png'"):
        sol.plot("u.png")
    with pytest.raises(TypeError, match="file name"):
        sol.plot(tmp_path / "u.png")


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


def test_progress_only_when_asked_or_in_a_terminal(capfd, monkeypatch):
    problem, _, _, _ = demos.oscillator(w0=20.0)
    model = pd.FBPINN(pd.Grid(problem.domain, 6, 2.0), pd.Polynomial(10))
    solver = pd.CGNormal(pd.BlockFilter())
    pd.solve(problem, model, points=200, solver=solver)  # stderr is not a terminal here
    assert capfd.readouterr().err == ""
    pd.solve(problem, model, points=200, solver=solver, progress=True)
    err = capfd.readouterr().err
    assert "assembling 202 rows x 66 unknowns" in err and "solving with CGNormal(BlockFilter)" in err
    assert "\r" not in err  # not a terminal: plain lines
    pd.solve(problem, model, points=200, solver=solver, progress=False)
    assert capfd.readouterr().err == ""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # a terminal: on by default
    pd.solve(problem, model, points=200, solver=solver)
    err = capfd.readouterr().err
    assert "\rpdedsl" not in err and "\r  CG iteration" in err and "solved in" in err
    pd.solve(problem, model, points=200, solver=solver, progress=False)
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize(
    "solver,label,points",
    [
        (pd.LSMR(pd.ColumnScaling()), "LSMR", 200),
        (pd.CGNormal(pd.BlockFilter()), "CG", 200),
        (pd.GMRES(pd.BlockFilter(rtol=0.0), restart=20), "GMRES", 64),  # 64 + 2 rows = 66 unknowns
    ],
)
def test_iterative_solvers_report_iterations_and_residual(capfd, solver, label, points):
    problem, _, _, _ = demos.oscillator(w0=20.0)
    model = pd.FBPINN(pd.Grid(problem.domain, 6, 2.0), pd.Polynomial(10))
    quiet = pd.solve(problem, model, points=points, solver=solver, throw=False)
    assert capfd.readouterr().err == ""
    sol = pd.solve(problem, model, points=points, solver=solver, progress=True, throw=False)
    lines = [ln for ln in capfd.readouterr().err.splitlines() if f"{label} iteration" in ln]
    hist = sol.info["history"]
    assert len(hist) == sol.info["iterations"] + 1 and hist[0] == 1.0
    np.testing.assert_array_equal(hist, quiet.info["history"])  # progress changes nothing
    counts = [int(ln.split()[2]) for ln in lines]
    # running counts from inside the loop (every progress.EVERY iterations, at most
    # every progress.INTERVAL s), then the final count and residual, as recorded
    assert all(c % progress.EVERY == 0 for c in counts[:-1]) and counts == sorted(counts)
    assert lines[-1].split()[4] == f"{hist[-1]:.3e}"
    if label != "GMRES":  # GMRES counts restart cycles in info, inner iterations in the line
        assert counts[-1] == sol.info["iterations"]
    if sol.info["iterations"] >= progress.EVERY:
        assert counts[0] == progress.EVERY  # the first update is never held back
    ax = plot_convergence(sol).axes[0]
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), hist)
    assert ax.get_xlabel() == ("restart cycle" if label == "GMRES" else "iteration")


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


def test_cli_version_and_missing_output_folders(tmp_path, capsys):
    from pdedsl import cli

    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"pdedsl {pd.__version__}"
    # refused before the run, not after it (bench wrote its JSON only at the end)
    missing = tmp_path / "no" / "such"
    with pytest.raises(SystemExit, match=r"pdedsl bench: the folder of --json .* does not exist"):
        cli.main(["bench", "oscillator", "--json", str(missing / "r.json")])
    with pytest.raises(SystemExit, match=r"pdedsl demo: the folder of --output .* does not exist"):
        cli.main(["demo", "--output", str(missing / "d.png")])


def _heat_2p1d():
    """u_t = (u_xx + u_yy) / 10 with a manufactured solution, on [0, 1]^2 x [0, 1]."""
    x, y, t = pd.Symbol("x"), pd.Symbol("y"), pd.Symbol("t")
    u = pd.Function("u")(x, y, t)
    exact = sp.exp(-t) * sp.sin(sp.pi * x) * sp.sin(sp.pi * y)
    f = sp.diff(exact, t) - (sp.diff(exact, x, 2) + sp.diff(exact, y, 2)) / 10
    walls = [u.at(x=0) == 0, u.at(x=1) == 0, u.at(y=0) == 0, u.at(y=1) == 0]
    problem = pd.Problem(
        D(u, t) - (D(u, x, 2) + D(u, y, 2)) / 10 == f,
        domain=pd.Box([x, y, t], [0, 0, 0], [1, 1, 1]),
        conditions=[u.at(t=0) == exact.subs(t, 0), *walls],
    )
    sol = pd.solve(problem, pd.FBPINN(pd.Grid(problem.domain, 1, 2.0), pd.Polynomial(7)), points=(9, 9, 9))
    return sol, exact, (x, y, t)


def _mesh_values(ax):
    (mesh,) = ax.collections
    return np.ma.getdata(mesh.get_array()).reshape(-1)


def test_snapshots_of_a_2p1d_solution_show_the_field_and_error_per_time(tmp_path):
    sol, exact, (x, y, t) = _heat_2p1d()
    assert sol.errors(exact)["rel_l2"] < 0.05  # a solve worth drawing
    fig = sol.plot(exact=exact, n=12, path=tmp_path / "s.png")  # t is found by its name
    assert (tmp_path / "s.png").read_bytes()[:8] == PNG
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(fig.axes) == 10 and len(panels) == 8  # 4 fields, 4 error maps, 2 colour bars
    assert [ax.get_title() for ax in panels[:4]] == ["t = 0", "t = 0.3333", "t = 0.6667", "t = 1"]
    g = np.linspace(0, 1, 12)
    X, Y = np.meshgrid(g, g, indexing="ij")
    for k, tk in enumerate(np.linspace(0, 1, 4)):
        pts = np.stack([X.ravel(), Y.ravel(), np.full(X.size, tk)], axis=-1)
        u = np.asarray(sol(pts))
        np.testing.assert_array_equal(_mesh_values(panels[k]), u)
        ref = np.exp(-tk) * np.sin(np.pi * X.ravel()) * np.sin(np.pi * Y.ravel())
        np.testing.assert_allclose(_mesh_values(panels[4 + k]), np.log10(np.maximum(np.abs(u - ref), 1e-300)))
        rel = np.linalg.norm(u - ref) / np.linalg.norm(ref)
        assert panels[4 + k].get_title().endswith(f"rel. L2 {rel:.1e}")
    # no exact solution: one row; chosen times; the time coordinate by name
    fig = plot_snapshots(sol, times=[0.5, 1.0], time="t", n=6)
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == ["t = 0.5", "t = 1"]
    with pytest.raises(ValueError, match=r"times must be values of t in \[0.0, 1.0\]"):
        plot_snapshots(sol, times=[2.0])
    with pytest.raises(ValueError, match="time=s is not a coordinate"):
        plot_snapshots(sol, time="s")


def test_slices_draw_the_solution_along_lines():
    sol, exact, (x, y, t) = _heat_2p1d()
    fig = plot_slices(sol, exact=exact, along=x, at={y: 0.5, t: [0.0, 0.5]}, n=50)
    top, bottom = fig.axes
    lines = top.get_lines()
    assert len(lines) == 4 and len(bottom.get_lines()) == 2  # solution + exact per slice; errors
    s = np.linspace(0, 1, 50)
    for k, tk in enumerate([0.0, 0.5]):
        pts = np.stack([s, np.full(50, 0.5), np.full(50, tk)], axis=-1)
        np.testing.assert_array_equal(lines[2 * k].get_ydata(), np.asarray(sol(pts)))
        np.testing.assert_allclose(lines[2 * k + 1].get_ydata(), np.exp(-tk) * np.sin(np.pi * s), atol=1e-12)
        assert lines[2 * k].get_label() == f"y=0.5, t={tk:.3g}"
    with pytest.raises(ValueError, match="several values for one coordinate only"):
        plot_slices(sol, at={y: [0.1, 0.2], t: [0.0, 0.5]})
    with pytest.raises(ValueError, match="the coordinate the slices run along"):
        plot_slices(sol, along=x, at={x: 0.5})


def test_run_and_bench_pass_quiet_and_progress_to_every_solve(monkeypatch, tmp_path):
    import runpy

    from pdedsl import cli

    seen = []
    monkeypatch.setattr(runpy, "run_path", lambda *a, **k: seen.append(progress.enabled(None)))
    script = tmp_path / "s.py"
    script.write_text("")
    for flags, expected in (([], False), (["--quiet"], False), (["--progress"], True)):
        monkeypatch.setenv("PDEDSL_PROGRESS", "")  # restored after the test
        cli.main(["run", *flags, str(script)])
        cli.main(["bench", "oscillator", "--quick", *flags])
        assert seen[-2:] == [expected, expected]  # stderr is not a terminal here
    monkeypatch.setenv("PDEDSL_PROGRESS", "")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    cli.main(["run", str(script)])
    cli.main(["run", "--quiet", str(script)])
    assert seen[-2:] == [True, False]
    with pytest.raises(SystemExit):
        cli.main(["run", "--quiet", "--progress", str(script)])


def test_bench_prints_one_line_per_method_only_when_shown(monkeypatch, capfd):
    import pathlib

    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).resolve().parent.parent / "benchmarks"))
    import common

    monkeypatch.setenv("PDEDSL_PROGRESS", "0")
    common.record("p", "m", rel_l2=1.5e-3, wall_s=2.0)
    assert capfd.readouterr().err == ""
    monkeypatch.setenv("PDEDSL_PROGRESS", "1")
    common.record("p", "m", rel_l2=1.5e-3, wall_s=2.0)
    assert capfd.readouterr().err == "bench p: m: rel_l2 1.50e-03, wall 2.00 s\n"


def test_demo_progress_only_in_a_terminal_or_when_asked(capfd, tmp_path, monkeypatch):
    from pdedsl import cli

    monkeypatch.setenv("PDEDSL_PROGRESS", "")
    png = str(tmp_path / "d.png")
    cli.main(["demo", "--output", png])
    out = capfd.readouterr()
    assert out.err == "" and out.out.splitlines()[-1].startswith("RESULT rel_l2=")
    cli.main(["demo", "--output", png, "--json", "--progress"])
    out = capfd.readouterr()
    assert "pdedsl: assembling 722 rows x 240 unknowns" in out.err and "pdedsl: solved in" in out.err
    assert len(out.out.splitlines()) == 1 and out.out.startswith("{")  # JSON alone on stdout
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    cli.main(["demo", "--output", png, "--quiet"])
    out = capfd.readouterr()
    assert out.err == "" and out.out.startswith("RESULT rel_l2=")
