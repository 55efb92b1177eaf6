"""Assembly speed: the rows of the Laplacian (`pdedsl.ansatz.model.evaluate`, the
windowed features' second derivatives at every point and covering subdomain) by
the Leibniz rule with closed-form feature derivatives (the default) against nested
forward-mode JVPs through the windowed features (the path of models with corner
functions, and every model's before 2026-12-05), in the same process, warm (best
of 9, alternating). Prints the table of docs/ansatz.md ("Custom bases"). Not part of
`run_all.py`; about a minute on 2 cores.

    python benchmarks/assembly.py
"""

import time

import jax

import pdedsl as pd
from pdedsl.ansatz.model import evaluate

x, y, z = pd.Symbol("x"), pd.Symbol("y"), pd.Symbol("z")
SQUARE = pd.Box([x, y], [0, 0], [1, 1])
CUBE = pd.Box([x, y, z], [0, 0, 0], [1, 1, 1])

# (label, domain, subdomains per axis, overlap, basis, points per axis)
CASES = [
    ("2D, 100^2 x 6 tanh features, overlap 2.0", SQUARE, 100, 2.0, pd.RandomFeatures(6), 400),
    ("2D, 64^2 x quadratics, overlap 2.0", SQUARE, 64, 2.0, pd.Polynomial(2), 320),
    ("2D, 32^2 x degree 4, overlap 2.0", SQUARE, 32, 2.0, pd.Polynomial(4), 200),
    ("2D, 16^2 x degree 8, overlap 2.0", SQUARE, 16, 2.0, pd.Polynomial(8), 200),
    ("2D, 16^2 x degree 8, overlap 2.9", SQUARE, 16, 2.9, pd.Polynomial(8), 200),
    ("3D, 4^3 x degree 6, overlap 2.9", CUBE, 4, 2.9, pd.Polynomial(6), 28),
]


def best_of(functions, points, repeats=9):
    """Best time of each function over `repeats` rounds, the functions alternating
    within a round (so that a slow spell of the machine hits both)."""
    for f in functions:
        jax.block_until_ready(f(points))
    times = [[] for _ in functions]
    for _ in range(repeats):
        for f, record in zip(functions, times):
            start = time.perf_counter()
            jax.block_until_ready(f(points))
            record.append(time.perf_counter() - start)
    return [min(record) for record in times]


def main():
    print("| model | points | subdomains per point x features | Leibniz rule (s) | nested JVPs (s) | ratio |")
    print("|---|---|---|---|---|---|")
    for label, domain, n, overlap, basis, m in CASES:
        model = pd.FBPINN(pd.Grid(domain, n, overlap), basis)
        dim = domain.dim
        points = jax.numpy.asarray(domain.sample((m,) * dim))
        laplacian = [tuple(2 * (i == axis) for i in range(dim)) for axis in range(dim)]
        times = best_of(
            [
                jax.jit(lambda p, m=model, mis=laplacian, nested=nested: evaluate(m, p, mis, _nested=nested))
                for nested in (False, True)
            ],
            points,
        )
        print(
            f"| {label} | {m}^{dim} | {model.decomposition.max_cover} x {model.num_features} "
            f"| {times[0]:.3f} | {times[1]:.3f} | {times[1] / times[0]:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
