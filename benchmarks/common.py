"""Shared benchmark plumbing: warm timing, error measures, JSON records, tables.

Every record has the fields of BENCHMARKS.md; unknown values are None, never invented.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time

import numpy as np

FIELDS = (
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
)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def record(problem: str, method: str, **values) -> dict:
    unknown = set(values) - set(FIELDS) - {"note"}
    if unknown:
        raise KeyError(f"unknown benchmark fields {unknown}")
    out = {k: None for k in FIELDS}
    out.update(problem=problem, method=method, peak_rss_mb=round(peak_rss_mb(), 1))
    # NumPy / JAX scalars (an iteration count from a jitted loop) as plain numbers, for JSON
    out.update({k: v.item() if hasattr(v, "item") and np.ndim(v) == 0 else v for k, v in values.items()})
    from pdedsl.solve import progress

    if progress.enabled(None):  # a terminal (or --progress): one line per method as it finishes
        progress.say(
            f"bench {problem}: {method}: rel_l2 {fmt(out['rel_l2'])}, wall {fmt(out['wall_s'], '.2f')} s"
        )
    return out


def errors(u, ref) -> dict:
    u, ref = np.asarray(u), np.asarray(ref)
    err = u - ref
    return {
        "rel_l2": float(np.linalg.norm(err) / np.linalg.norm(ref)),
        "norm_l1": float(np.mean(np.abs(err)) / np.std(ref)),
        "max_err": float(np.max(np.abs(err))),
    }


def pdedsl_run(
    problem_name,
    method,
    problem,
    model,
    solver,
    points,
    exact,
    test_points,
    repeats=1,
    schedule=None,
    corners=None,
):
    """Solve cold once (JIT compilation), then warm `repeats` times; report the best warm run.
    `repeats=0` reports the cold run itself (for solves of minutes on the host, where
    compilation is a small part): its `compile_s` is then unknown (null).

    With a `schedule` (time marching), `unknowns` is the size of the largest system solved.
    """
    import pdedsl as pd

    kw = dict(points=points, solver=solver, throw=False, schedule=schedule, corners=corners)
    t0 = time.perf_counter()
    sol = pd.solve(problem, model, **kw)
    cold = time.perf_counter() - t0
    best = (cold, sol) if repeats == 0 else None
    for _ in range(repeats):
        t0 = time.perf_counter()
        sol = pd.solve(problem, model, **kw)
        warm = time.perf_counter() - t0
        if best is None or warm < best[0]:
            best = (warm, sol)
    warm, sol = best
    from pdedsl.lower import compile_scalar

    ref = np.asarray(compile_scalar(exact, problem.coords)(test_points))
    rec = record(
        problem_name,
        method,
        **errors(sol(test_points), ref),
        wall_s=warm,
        assemble_s=sol.info["assemble_s"],
        solve_s=sol.info["solve_s"],
        compile_s=None if repeats == 0 else max(cold - warm, 0.0),
        iterations=sol.info["iterations"],
        unknowns=sol.info["unknowns"],
        points=sol.info["points"],
    )
    rec["note"] = "" if sol.info["success"] else "did not meet its tolerance"
    if repeats == 0:
        rec["note"] = ("one cold run, compilation included; " + rec["note"]).rstrip("; ")
    stages = sol.info.get("stages")
    if stages:
        rec["unknowns"] = max(s["unknowns"] for s in stages)
        rows = [s["rows"] for s in stages]
        rec["note"] = (
            f"{len(stages)} stages of at most {rec['unknowns']} unknowns (of {sol.info['unknowns']}), "
            f"{min(rows)}-{max(rows)} rows each (with consistency rows); " + rec["note"]
        ).rstrip("; ")
    return rec


def iterative(name: str, rtol: float, max_steps: int):
    """The matrix-free solvers the large benchmarks compare, by name ("lsmr",
    "cg-block", "cg-box", "cg-twolevel-box"): (label, solver)."""
    import pdedsl as pd

    if name == "lsmr":
        return "LSMR(BlockFilter)", pd.LSMR(rtol=rtol, max_steps=max_steps)
    pre = {
        "cg-block": ("CG(BlockFilter)", pd.BlockFilter()),
        "cg-box": ("CG(BoxSchwarz)", pd.BoxSchwarz()),
        "cg-twolevel-box": ("CG(TwoLevel(BoxSchwarz))", pd.TwoLevel(local=pd.BoxSchwarz())),
    }
    label, preconditioner = pre[name]
    return label, pd.CGNormal(preconditioner, rtol=rtol, max_steps=max_steps)


def isolated(script: str, args: list[str]) -> dict:
    """Run `python SCRIPT --one ARGS...` in a fresh process (so that its peak memory is
    its own) and return the record it prints as its last line of JSON."""
    import subprocess

    out = subprocess.run(
        [sys.executable, script, "--one", *args], capture_output=True, text=True, timeout=7200
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    rec = json.loads(out.stdout.strip().splitlines()[-1])
    its = f", {rec['iterations']} iterations" if rec.get("iterations") is not None else ""
    print(
        f"  {rec['method']}: rel_l2 {rec['rel_l2']:.2e}, {rec['wall_s']:.1f} s{its}, "
        f"peak {rec['peak_rss_mb']:.0f} MB",
        flush=True,
    )
    return rec


def fmt(v, spec=".2e"):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, (int, np.integer)):
        return str(v)
    return format(v, spec)


def table(records, title="") -> str:
    cols = [
        "method",
        "rel_l2",
        "norm_l1",
        "iterations",
        "wall_s",
        "assemble_s",
        "solve_s",
        "compile_s",
        "unknowns",
        "points",
        "peak_rss_mb",
        "note",
    ]
    lines = [f"### {title}", ""] if title else []
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "---|" * len(cols))
    for r in records:
        row = []
        for c in cols:
            v = r.get(c)
            spec = ".3f" if c.endswith("_s") else (".0f" if c == "peak_rss_mb" else ".2e")
            row.append(fmt(v, spec))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import os

    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def main(name: str, run, description: str = ""):
    """Command-line entry of one benchmark: prints a table, optionally writes JSON lines."""
    parser = argparse.ArgumentParser(prog=f"pdedsl bench {name}", description=description)
    parser.add_argument("--json", metavar="PATH", help="write one JSON object per method to PATH")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke test")
    args = parser.parse_args(sys.argv[1:])
    start = time.perf_counter()
    records = run(quick=args.quick)
    print(table(records, f"{name} ({machine()})"))
    print(f"\nwhole process: {time.perf_counter() - start:.1f} s, peak RSS {peak_rss_mb():.0f} MB")
    if args.json:
        with open(args.json, "w") as f:
            for r in records:
                f.write(json.dumps({k: r.get(k) for k in (*FIELDS, "note")}) + "\n")
    return records
