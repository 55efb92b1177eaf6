"""Benchmark `windows`: B-spline against cosine windows, at equal unknowns.

The `laplace-multiscale` problem (Laplacian(u) = f on [0,1]^2, zero Dirichlet,
u = (1/4) sum_i sin(w_i pi x) sin(w_i pi y), w in {2,4,8,16}), solved by the sparse
normal equations on 160^2 points with Legendre polynomials of degree 2, 4 and 6.
Each degree is run on one grid with `pd.BSpline()` windows (cubic, overlap 4: the
grid's own B-splines) and `pd.Cosine()` windows at overlap 2 and 3, so each
comparison has the same number of unknowns. With cubic B-spline windows,
windows x polynomials of degree p are piecewise polynomials of degree p + 3. The
price is 16 subdomains per point instead of 4 (overlap 2) or 9 (overlap 3), so
more nonzeros per row. Warm times are reported (best of 2).

    python benchmarks/windows.py [--json PATH] [--quick]
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402
import laplace_multiscale  # noqa: E402

import pdedsl as pd  # noqa: E402

NAME = "windows"


def run(quick=False):
    problem, exact, domain = laplace_multiscale.setup()
    test = domain.sample((200, 200))
    points = (96, 96) if quick else (160, 160)
    configs = [(17, 2)] if quick else [(33, 2), (25, 4), (17, 6)]
    records = []
    for n, degree in configs:
        for wname, window, overlap in [
            ("B-spline (cubic)", pd.BSpline(), 4.0),
            ("cosine", pd.Cosine(), 2.0),
            ("cosine", pd.Cosine(), 3.0),
        ]:
            model = pd.FBPINN(pd.Grid(domain, n, overlap), pd.Polynomial(degree), window=window)
            label = f"{wname} windows, overlap {overlap:g} [{n}x{n} subdomains, Legendre deg {degree}]"
            records.append(
                common.pdedsl_run(
                    NAME, label, problem, model, pd.SparseNormal(), points, exact, test, repeats=2
                )
            )
    return records


if __name__ == "__main__":
    common.main(NAME, run, __doc__)
