"""Burgers' equation u_t + u u_x = nu u_xx, nu = 0.01/pi, x in [-1, 1], t in [0, 1],
u(x, 0) = -sin(pi x), u(+-1, t) = 0 (benchmark `burgers`), solved in space-time by
Gauss-Newton, against the Cole-Hopf reference.

The solution steepens into a front of width ~1e-2 at x = 0 from t ~ 0.3. The
subdomains (and collocation points) are graded towards x = 0 by a sinh map
(`--stretch`; 0 gives a uniform grid, which resolves the front poorly).

python examples/burgers.py                                  # 40 x 10, degree 6: rel_l2 ~ 2e-5
python examples/burgers.py --subdomains 30 10 --degree 5    # faster: rel_l2 ~ 5e-4
"""

import argparse
import time

import numpy as np

import pdedsl as pd
from pdedsl.demos import burgers

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--subdomains", type=int, nargs=2, default=[40, 10], metavar=("NX", "NT"))
parser.add_argument("--degree", type=int, default=6)
parser.add_argument("--points", type=int, nargs=2, default=None, metavar=("PX", "PT"))
parser.add_argument("--stretch", type=float, default=4.0, help="grading towards x = 0 (0: uniform)")
args = parser.parse_args()
start = time.perf_counter()

problem, model, points, exact = burgers(
    subdomains=tuple(args.subdomains), degree=args.degree, points=tuple(args.points)
)
sol = pd.solve(
    problem, model, points=points, solver=pd.GaussNewton(linear_solver=pd.SparseNormal(), max_steps=30)
)
test = problem.domain.sample((201, 101), "grid")
ref = exact(test)
err = np.asarray(sol(test)) - ref
rel_l2 = np.linalg.norm(err) / np.linalg.norm(ref)
print(sol.report())
print(f"max error {np.abs(err).max():.3e}")
print(f"RESULT rel_l2={rel_l2:.3e} wall_s={time.perf_counter() - start:.2f}")
