"""The `pdedsl` command: `pdedsl demo [NAME]`, `pdedsl run SCRIPT.py`,
`pdedsl bench NAME [--json PATH] [--quick]`.

Progress goes to stderr when it is a terminal and nowhere when it is piped;
`--quiet` silences it and `--progress` forces it (for `run` and `bench` through
the environment variable PDEDSL_PROGRESS, which every pdedsl solve reads).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import runpy
import sys

BENCHMARKS = {
    "oscillator": "oscillator.py",
    "oscillator-solvers": "oscillator_solvers.py",
    "oscillator-weak": "oscillator_weak.py",
    "laplace-multiscale": "laplace_multiscale.py",
    "laplace-multilevel": "laplace_multilevel.py",
    "laplace-multilevel-regularised": "laplace_multilevel_regularised.py",
    "scaling": "scaling.py",
    "heat-marching": "heat_marching.py",
    "burgers": "burgers.py",
    "helmholtz-lshape": "helmholtz_lshape.py",
    "poisson-fem": "poisson_fem.py",
    "layered-medium": "layered_medium.py",
    "lshape-singular": "lshape_singular.py",
    "lshape-heat": "lshape_heat.py",
    "time-to-accuracy": "time_to_accuracy.py",
    "wave-2p1d": "wave_2p1d.py",
    "poisson-3d-large": "poisson_3d_large.py",
    "wave-2p1d-large": "wave_2p1d_large.py",
    "preconditioner-scaling": "preconditioner_scaling.py",
    "windows": "windows.py",
    "parameter-sweep": "parameter_sweep.py",
}


def benchmarks_dir() -> pathlib.Path:
    here = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"
    if not here.is_dir():
        raise SystemExit(
            "pdedsl bench: the benchmarks live in the source tree (benchmarks/); install pdedsl "
            "from a checkout with `pip install -e .` to run them."
        )
    return here


# the keys of pdedsl.demos.DEMOS, listed here so that `pdedsl --help` needs no JAX import
DEMO_NAMES = ["oscillator", "poisson", "poisson-3d"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="pdedsl", description="pdedsl command line.")
    parser.add_argument("--version", action="version", version=f"pdedsl {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="solve a named example and save a PNG of solution and error")
    demo.add_argument("name", nargs="?", default="oscillator", choices=DEMO_NAMES)
    demo.add_argument("--output", metavar="PATH", help="PNG to write (default: pdedsl-demo-NAME.png)")
    _progress_flags(demo, "print only the RESULT line, no progress")
    demo.add_argument("--json", action="store_true", help="print the result as one JSON object instead")
    run = sub.add_parser("run", help="run a user problem file (a Python script)")
    _progress_flags(run, "no progress lines from pdedsl (the script's own output is its own)")
    run.add_argument("script", help="path to a .py file")
    run.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script")
    bench = sub.add_parser("bench", help="run one benchmark (see benchmarks/ and BENCHMARKS.md)")
    bench.add_argument("name", choices=sorted(BENCHMARKS), help="benchmark to run")
    bench.add_argument("--json", metavar="PATH", help="write one JSON object per method to PATH")
    bench.add_argument("--quick", action="store_true", help="smaller sizes (a smoke test)")
    _progress_flags(bench, "no progress lines (the result table is still printed)")
    args = parser.parse_args(argv)
    # an output whose folder is missing would fail only after the whole run
    out = args.output if args.command == "demo" else args.json if args.command == "bench" else None
    if out and not pathlib.Path(out).resolve().parent.is_dir():
        flag = "--output" if args.command == "demo" else "--json"
        raise SystemExit(f"pdedsl {args.command}: the folder of {flag} {out} does not exist.")
    if args.command in ("run", "bench") and (args.quiet or args.progress):
        os.environ["PDEDSL_PROGRESS"] = "1" if args.progress else "0"
    if args.command == "demo":
        return _demo(args)
    if args.command == "run":
        script = pathlib.Path(args.script)
        if not script.is_file():
            raise SystemExit(f"pdedsl run: no such file: {script}")
        sys.argv = [str(script), *args.args]
        runpy.run_path(str(script), run_name="__main__")
        return 0
    if args.command == "bench":
        script = benchmarks_dir() / BENCHMARKS[args.name]
        sys.argv = (
            [str(script)] + (["--json", args.json] if args.json else []) + (["--quick"] if args.quick else [])
        )
        runpy.run_path(str(script), run_name="__main__")
    return 0


def _version() -> str:
    from . import __version__

    return __version__


def _progress_flags(parser, quiet_help):
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quiet", action="store_true", help=quiet_help)
    group.add_argument(
        "--progress", action="store_true", help="show progress on stderr even when it is not a terminal"
    )


def _demo(args) -> int:
    import time

    from . import demos
    from .solve import solve

    start = time.perf_counter()
    problem, model, points, exact = demos.DEMOS[args.name]()
    show = True if args.progress else False if (args.quiet or args.json) else None
    sol = solve(problem, model, points=points, progress=show)
    err = sol.errors(exact)
    path = args.output or f"pdedsl-demo-{args.name}.png"
    from .plot import _time_coord, plot_slices

    if problem.dim == 3 and _time_coord(problem, None, required=False) is None:
        plot_slices(sol, exact=exact, path=path)  # lines through the cube: plot() draws 1D and 2D
    else:
        sol.plot(exact=exact, path=path)
    wall = time.perf_counter() - start
    if args.json:
        import json

        keys = ("solver", "unknowns", "iterations", "assemble_s", "solve_s")
        out = {"demo": args.name, "png": str(path), **{k: sol.info[k] for k in keys}}
        out.update(rows=sol.info["points"], test_points=err.pop("points"), **err, wall_s=wall)
        print(json.dumps(out))
        return 0
    if not args.quiet:
        print(problem)
        print(sol.report())
        print(f"wrote {path}")
    print(f"RESULT rel_l2={err['rel_l2']:.6e} wall_s={wall:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
