"""Benchmark `scaling`: assembly time, one matrix-vector product and peak memory
as the number of subdomains J grows (2D, K = 6 quadratic polynomials, 16 points
per subdomain, overlap 2). Each size runs in a fresh process, so that its peak
RSS is its own. Reports the fitted log-log slopes.

    python benchmarks/scaling.py [--json PATH] [--quick]
"""

import json
import pathlib
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

CHILD = r"""
import json, sys, time
import jax, jax.numpy as jnp
import pdedsl as pd
from pdedsl import D
from pdedsl.assemble import assemble
from pdedsl.solve import collocation
side = int(sys.argv[1])
x, y = pd.Symbol("x"), pd.Symbol("y")
u = pd.Function("u")(x, y)
dom = pd.Box([x, y], [0, 0], [1, 1])
problem = pd.Problem(D(u, x, 2) + D(u, y, 2) == 1, domain=dom, conditions=[u.on(pd.boundary) == 0])
model = pd.FBPINN(pd.Grid(dom, side, 2.0), pd.Polynomial(2))
blocks = collocation(problem, model, points=(4 * side, 4 * side))
s = assemble(model, blocks); s.values.block_until_ready()
t0 = time.perf_counter(); s = assemble(model, blocks); s.values.block_until_ready(); t_asm = time.perf_counter() - t0
mv = jax.jit(lambda s, a: s.mv(a))
a = jnp.ones((s.num_subdomains, s.num_features))
mv(s, a).block_until_ready()
t0 = time.perf_counter()
for _ in range(5): r = mv(s, a).block_until_ready()
t_mv = (time.perf_counter() - t0) / 5
import resource
print(json.dumps({"J": model.num_subdomains, "rows": int(s.rhs.shape[0]), "unknowns": model.num_unknowns,
  "assemble_s": t_asm, "matvec_s": t_mv, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


BASELINE = r"""
import resource, jax.numpy as jnp, pdedsl
jnp.ones(3).block_until_ready()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def run(quick=False):
    sides = [10, 32] if quick else [10, 32, 100, 316]
    base = subprocess.run([sys.executable, "-c", BASELINE], capture_output=True, text=True, timeout=300)
    baseline_mb = float(base.stdout.strip().splitlines()[-1])
    rows = []
    for side in sides:
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(side)], capture_output=True, text=True, timeout=1800
        )
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-2000:])
        r = json.loads(out.stdout.strip().splitlines()[-1])
        r["process_s"] = time.perf_counter() - t0
        rows.append(r)
    records = []
    for r in rows:
        rec = common.record(
            "scaling",
            f"J={r['J']}: assemble + one matvec (matvec {r['matvec_s'] * 1e3:.2f} ms)",
            wall_s=r["process_s"],
            assemble_s=r["assemble_s"],
            unknowns=r["unknowns"],
            points=r["rows"],
        )
        rec["peak_rss_mb"] = round(r["peak_rss_mb"], 1)
        rec["note"] = f"matvec_s={r['matvec_s']:.3e}"
        records.append(rec)
    if len(rows) >= 2:
        j = np.log([r["J"] for r in rows])
        slopes = {}
        for key in ("assemble_s", "matvec_s", "peak_rss_mb"):
            vals = np.array([r[key] for r in rows], dtype=float)
            if key == "peak_rss_mb":  # memory above a bare `import pdedsl` process
                vals = np.maximum(vals - baseline_mb, 1.0)
            slopes[key] = float(np.polyfit(j, np.log(vals), 1)[0])
        rec = common.record("scaling", "fitted log-log slope vs J")
        rec["peak_rss_mb"] = None
        rec["note"] = (
            ", ".join(f"{k}: {v:.2f}" for k, v in slopes.items()) + f" (baseline RSS {baseline_mb:.0f} MB)"
        )
        records.append(rec)
    return records


if __name__ == "__main__":
    common.main("scaling", run, __doc__)
