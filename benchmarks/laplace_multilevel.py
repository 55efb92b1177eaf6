"""Benchmark `laplace-multilevel`: Laplacian(u) = f on [0,1]^2, zero Dirichlet,
u = (1/6) sum_{i=1..6} sin(2^i pi x) sin(2^i pi y); 7 levels (1 + 4 + ... + 4096 =
5,461 subdomains), K = 6 (quadratic polynomials, or 6 tanh features), 320^2 points.

Reports the iterations of each preconditioned iterative solver (capped at
`max_steps`), the error reached (also after only 50 block-Jacobi CG iterations)
and, for comparison, the finest level alone (64 x 64 subdomains) with the
two-level preconditioner (boxes of 4 x 4 subdomains inside), for both bases.

Last, the same 7 levels exactly nested (`pd.Multilevel(domain, levels=7,
bspline=3)`: cubic B-spline windows, 2^l + 3 per axis on level l, 6,286
subdomains): CG stopped after 25 to 100 iterations, and their finest level
alone (the same space) after 50; and CG run to convergence with `pd.SplineFrame()`
(the levels' B-splines as a multilevel frame) on both.

The levels overlap 3.0 (each window spans three subdomain spacings per axis):
with overlap 2.0 the windowed quadratics cannot fit this solution (the exact
least-squares solution has rel_l2 0.47 at 5 levels against 0.04 with 3.0; see
docs/solving.md, "Multilevel decompositions").

    python benchmarks/laplace_multilevel.py [--json PATH]
"""

import pathlib
import sys

import sympy as sp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

import pdedsl as pd  # noqa: E402
from pdedsl import D  # noqa: E402

OVERLAP = 3.0


def setup(levels):
    """The problem for `levels` levels (frequencies 2^1 .. 2^(levels-1)): (problem, exact, domain)."""
    x, y = pd.Symbol("x"), pd.Symbol("y")
    u = pd.Function("u")(x, y)
    ws = [2**i for i in range(1, levels)]
    exact = sum(sp.sin(w * sp.pi * x) * sp.sin(w * sp.pi * y) for w in ws) / len(ws)
    f = sp.diff(exact, x, 2) + sp.diff(exact, y, 2)
    domain = pd.Box([x, y], [0, 0], [1, 1])
    problem = pd.Problem(D(u, x, 2) + D(u, y, 2) == f, domain=domain, conditions=[u.on(pd.boundary) == 0])
    return problem, exact, domain


def run(quick=False):
    levels, points, cap = (4, 64, 500) if quick else (7, 320, 1000)
    problem, exact, domain = setup(levels)
    test = domain.sample((200, 200))
    records = []

    def one(label, model, solver):
        records.append(
            common.pdedsl_run(
                "laplace-multilevel", label, problem, model, solver, (points, points), exact, test
            )
        )

    for bname, basis in [("quadratic", pd.Polynomial(2)), ("tanh K=6", pd.RandomFeatures(6))]:
        model = pd.FBPINN(pd.Multilevel(domain, levels=levels, overlap=OVERLAP), basis)
        for name, solver in [
            (
                "CG-normal + additive Schwarz (per-level patches)",
                pd.CGNormal(pd.AdditiveSchwarz(), rtol=1e-6, max_steps=cap),
            ),
            ("CG-normal + block Jacobi", pd.CGNormal(pd.BlockFilter(), rtol=1e-6, max_steps=cap)),
            (
                "CG-normal + block Jacobi, stopped after 50 iterations",
                pd.CGNormal(pd.BlockFilter(), rtol=1e-6, max_steps=50),
            ),
            ("LSMR + block filter", pd.LSMR(pd.BlockFilter(), rtol=1e-8, max_steps=cap)),
        ]:
            one(f"{name} [{levels} levels, {bname}]", model, solver)
    # the finest level alone, with the coarse space in the preconditioner instead of the ansatz
    finest = 2 ** (levels - 1)
    for bname, basis in [("quadratic", pd.Polynomial(2)), ("tanh K=6", pd.RandomFeatures(6))]:
        model = pd.FBPINN(pd.Grid(domain, finest, OVERLAP), basis)
        solver = pd.CGNormal(pd.TwoLevel(local=pd.BoxSchwarz()), rtol=1e-6, max_steps=cap)
        one(
            f"CG-normal + two-level (box Schwarz, boxes of 4) [finest level alone: {finest}x{finest}, {bname}]",
            model,
            solver,
        )
    # exactly nested levels (docs/solving.md): cubic B-spline windows on 2^l cells per
    # axis, 2^l + 3 of them per level, so each coarse window x quadratic lies in the
    # next level's span; CG stopped after a fixed number of iterations (block-Jacobi CG
    # run for 3,000 iterations reaches rel_l2 3.95e-3 at 7 levels, docs/solving.md)
    nested = pd.FBPINN(pd.Multilevel(domain, levels=levels, bspline=3), pd.Polynomial(2))
    tag = f"[{levels} nested B-spline levels, {nested.num_subdomains} subdomains, quadratic]"
    for name, pre, steps in [
        ("CG-normal + additive Schwarz (per-level patches)", pd.AdditiveSchwarz(), 25),
        ("CG-normal + additive Schwarz (per-level patches)", pd.AdditiveSchwarz(), 50),
        ("CG-normal + block Jacobi", pd.BlockFilter(), 50),
        ("CG-normal + block Jacobi", pd.BlockFilter(), 100),
    ]:
        one(
            f"{name}, stopped after {steps} iterations {tag}",
            nested,
            pd.CGNormal(pre, rtol=1e-6, max_steps=steps),
        )
    # the levels' own B-splines as a multilevel frame (pd.SplineFrame): CG converges;
    # by default with the finest level's boundary B-splines solved exactly (balancing)
    for name, pre in [
        ("CG-normal + spline frame, additive (boundary=0)", pd.SplineFrame(boundary=0)),
        ("CG-normal + spline frame (default: boundary cells' B-splines exact)", pd.SplineFrame()),
    ]:
        one(f"{name} {tag}", nested, pd.CGNormal(pre, rtol=1e-6, max_steps=cap))
    # the same space without its coarse levels
    alone = pd.FBPINN(pd.Multilevel(domain, subdomains=[finest], bspline=3), pd.Polynomial(2))
    one(
        f"CG-normal + spline frame (default) [finest B-spline level alone: "
        f"{finest}x{finest} cells, {alone.num_subdomains} subdomains, quadratic]",
        alone,
        pd.CGNormal(pd.SplineFrame(), rtol=1e-6, max_steps=cap),
    )
    one(
        f"CG-normal + additive Schwarz, stopped after 50 iterations [finest B-spline level alone: "
        f"{finest}x{finest} cells, {alone.num_subdomains} subdomains, quadratic]",
        alone,
        pd.CGNormal(pd.AdditiveSchwarz(), rtol=1e-6, max_steps=50),
    )
    return records


if __name__ == "__main__":
    common.main("laplace-multilevel", run, __doc__)
