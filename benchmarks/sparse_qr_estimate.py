"""`pd.SparseQR().estimate` against what the factorisation really takes.

Poisson on the unit cube (`demos.poisson_3d`) with tanh random features on one
level of subdomains. For each case: the estimate (from the structure alone, and
its own time), the factorisation's time (untraced) and, from a second run, its
peak memory as `tracemalloc` measures it (NumPy's allocations, M's blocks
excluded, as in the estimate), and the flop rate by the estimate's count. The larger cases (`--large`) are estimated
only: that is what `pd.Auto()` reads to decide whether the QR fits `qr_bytes`.
Not part of `run_all.py`.

    python benchmarks/sparse_qr_estimate.py [--large]
"""

import sys
import time
import tracemalloc

import numpy as np

import pdedsl as pd
from pdedsl import demos
from pdedsl.assemble import assemble
from pdedsl.solve import collocation
from pdedsl.solve.sparse import HostBlocks, column_norms

# (subdomains per axis, features, points per axis)
MEASURED = [(4, 40, 20), (3, 200, 26), (8, 20, 26), (12, 16, 40)]
ESTIMATED = [(14, 12, 44), (16, 12, 48), (20, 8, 56), (10, 40, 40), (5, 200, 40), (6, 150, 40)]


def _system(side, features, points):
    problem, _, _, _ = demos.poisson_3d()
    model = pd.FBPINN(pd.Grid(problem.domain, (side,) * 3, 2.0), pd.RandomFeatures(features))
    return assemble(model, collocation(problem, model, points=(points,) * 3))


def main():
    sparse_qr = sys.modules["pdedsl.solve.sparse_qr"]  # the module (pd.solve is a function)
    print(
        "| 3D, subdomains x tanh features (unknowns, points) | estimated peak | measured peak | estimated flops "
        "| factorisation | GFlop/s by the estimate | estimate's time |"
    )
    print("|---|---|---|---|---|---|---|")
    cases = MEASURED + (ESTIMATED if "--large" in sys.argv else [])
    for side, features, points in cases:
        system = _system(side, features, points)
        t0 = time.perf_counter()
        est = pd.SparseQR().estimate(system)
        t_est = time.perf_counter() - t0
        label = f"{side}^3 x {features} ({system.shape[1]:,}, {points}^3)"
        if (side, features, points) not in MEASURED:
            print(
                f"| {label} | {est['peak_bytes'] / 1e9:.2f} GB | - | {est['flops']:.2g} | - | - | {t_est:.2f} s |"
            )
            continue
        blocks = HostBlocks.of(system)
        j, k = system.num_subdomains, system.num_features
        norms = column_norms(system, blocks)
        scale = np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 0.0)
        rhs = np.asarray(system.rhs)
        t0 = time.perf_counter()
        sparse_qr._factor_solve(blocks, rhs, scale, j, k, 1e-12)
        seconds = time.perf_counter() - t0
        tracemalloc.start()  # a second run for the memory: tracing slows it
        sparse_qr._factor_solve(blocks, rhs, scale, j, k, 1e-12)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(
            f"| {label} | {est['peak_bytes'] / 1e9:.2f} GB | {peak / 1e9:.2f} GB | {est['flops']:.2g} "
            f"| {seconds:.2f} s | {est['flops'] / seconds / 1e9:.0f} | {t_est:.2f} s |",
            flush=True,
        )


if __name__ == "__main__":
    main()
