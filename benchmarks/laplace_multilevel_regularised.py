"""Benchmark `laplace-multilevel-regularised`: the `laplace-multilevel` problem and
7-level ansatz (5,461 subdomains, overlap 3.0, K = 6, 320^2 points), solved by the
sparse factorisation of the column-scaled normal equations with a Tikhonov term
`regularisation * I` and no refinement towards the unregularised solution
(`pd.SparseNormal(regularisation=..., refine=0)`).

Why: the multilevel ansatz is redundant (each level nearly reproduces the next),
so its exact least-squares solution leans on near-null combinations with large
coefficients that cancel at the collocation points but not between them. The
default `SparseNormal()` (regularisation 1e-12, then 5 CG refinement steps) reaches
rel_l2 0.60 here (a row below; 0.43 with the 3 plain refinement steps of before 2026-12); these rows show what damping the near-null
directions gives instead. The strengths 1e-4 and 1e-3 are a scan, judged against the exact
solution: a user without one would pick the strength on held-out points.

Two more rows: the default `SparseNormal()` on that ansatz, and on the exactly
nested levels of `pd.Multilevel(domain, levels=7, bspline=3)` (cubic B-spline
windows, 6,286 subdomains, 37,716 unknowns; docs/solving.md, "Nested levels"), whose
exact least-squares solution is accurate: there the redundancy is an exact null
space, which the regularisation 1e-12 handles, instead of a near-null continuum.

Each row is one cold run (the factorisation runs on the host; compilation is a
small part of it), in its own section because each takes 30 s and 4 GB (the cosine
levels) or 100 s and 8 GB (the nested levels):

    python benchmarks/laplace_multilevel_regularised.py [--json PATH]
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402
import laplace_multilevel  # noqa: E402

import pdedsl as pd  # noqa: E402


def run(quick=False):
    levels, points = (4, 40) if quick else (7, 320)
    problem, exact, domain = laplace_multilevel.setup(levels)
    test = domain.sample((200, 200))
    records = []
    rows = [("quadratic", pd.Polynomial(2), 1e-4), ("quadratic", pd.Polynomial(2), 1e-3)]
    rows.append(("tanh K=6", pd.RandomFeatures(6), 1e-4))
    cosine = lambda basis: pd.FBPINN(
        pd.Multilevel(domain, levels=levels, overlap=laplace_multilevel.OVERLAP), basis
    )
    runs = [
        (
            f"SparseNormal(regularisation={lam:g}, refine=0) [{levels} levels, {bname}]",
            cosine(basis),
            pd.SparseNormal(regularisation=lam, refine=0),
        )
        for bname, basis, lam in rows
    ]
    runs.append((f"SparseNormal() [{levels} levels, quadratic]", cosine(pd.Polynomial(2)), pd.SparseNormal()))
    nested = pd.FBPINN(pd.Multilevel(domain, levels=levels, bspline=3), pd.Polynomial(2))
    runs.append(
        (
            f"SparseNormal() [{levels} nested B-spline levels, {nested.num_subdomains} subdomains, quadratic]",
            nested,
            pd.SparseNormal(),
        )
    )
    for label, model, solver in runs:
        records.append(
            common.pdedsl_run(
                "laplace-multilevel-regularised",
                label,
                problem,
                model,
                solver,
                (points, points),
                exact,
                test,
                repeats=0,
            )
        )
    return records


if __name__ == "__main__":
    common.main("laplace-multilevel-regularised", run, __doc__)
