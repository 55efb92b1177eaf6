"""Benchmark `lshape-heat`: the heat equation u_t = Laplacian(u) on the L-shaped plate
[0,1]^2 minus [0.5,1]^2, t in [0, 1/2], with the corner singularity growing in time:
u = (1 + t) r^(2/3) sin(2 theta / 3) + sin(2x) e^(y - t), (r, theta) polar around the
re-entrant corner (0.5, 0.5), theta measured from the edge x = 0.5 through the plate;
f = r^(2/3) sin(2 theta / 3) + 2 sin(2x) e^(y - t) (the singular part is harmonic),
Dirichlet data u on the six walls, u(t = 0) given.

pdedsl solves it in space-time (the L x [0, 1/2] prism, whose re-entrant edge runs
along t): globally, and time-marched slab by slab. It adds the edge's singular
functions times Legendre polynomials in t to the features of the subdomains along
the edge (automatic); rows "corners=False" show the fit without them, which converges
to another function. The classical reference, in the same process: scikit-fem P2 in
space (uniform meshes of the L), Crank-Nicolson in time (one sparse LU of
M + dt/2 K, then one triangular solve pair per step; the load is M times the P2
interpolant of f). Errors on 61 x 61 points of the
L (those inside) at 11 times.

    python benchmarks/lshape_heat.py [--json PATH] [--quick]
"""

import pathlib
import sys
import time

import numpy as np
import sympy as sp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

import pdedsl as pd  # noqa: E402
from pdedsl import D  # noqa: E402
from pdedsl.lower import compile_scalar  # noqa: E402

NAME = "lshape-heat"
T_END = 0.5
TEST_TIMES = np.linspace(0.0, T_END, 11)


def setup():
    x, y, t = pd.Symbol("x"), pd.Symbol("y"), pd.Symbol("t")
    u = pd.Function("u")(x, y, t)
    X, Y = x - sp.Rational(1, 2), y - sp.Rational(1, 2)
    phi = sp.atan2(-X, Y)
    theta = sp.Piecewise((phi, phi >= 0), (phi + 2 * sp.pi, True))
    singular = (X**2 + Y**2) ** sp.Rational(1, 3) * sp.sin(2 * theta / 3)
    smooth = sp.sin(2 * x) * sp.exp(y - t)
    exact = (1 + t) * singular + smooth
    f = singular + 2 * smooth
    plate = pd.Box([x, y, t], [0, 0, 0], [1, 1, T_END]) - pd.Box([x, y, t], [0.5, 0.5, 0], [1, 1, T_END])
    walls = [u.on(face) == exact for face in plate.faces if face.axis != 2]
    problem = pd.Problem(
        D(u, t) - D(u, x, 2) - D(u, y, 2) == f,
        domain=plate,
        conditions=[u.at(t=0) == exact.subs(t, 0), *walls],
    )
    return problem, exact, f, (x, y, t)


def test_points():
    """(61^2 points of the L) x 11 times, as (N, 3) with t varying slowest."""
    g = np.linspace(0.0, 1.0, 61)
    X, Y = np.meshgrid(g, g, indexing="ij")
    xy = np.c_[X.ravel(), Y.ravel()]
    xy = xy[~((xy[:, 0] > 0.5) & (xy[:, 1] > 0.5))]
    return xy, np.concatenate([np.c_[xy, np.full(len(xy), tk)] for tk in TEST_TIMES])


def fem_crank_nicolson(exact, f, coords, n, steps_per_test, xy):
    """P2 on the uniform mesh of the L with n cells per unit length, Crank-Nicolson with
    dt = (T / 10) / steps_per_test. Returns (values at xy for each test time, info)."""
    import scipy.sparse.linalg as spla
    import skfem as fem
    from skfem.helpers import dot, grad

    t0 = time.perf_counter()
    g = np.linspace(0.0, 1.0, n + 1)
    square = fem.MeshTri.init_tensor(g, g)
    centre = square.p[:, square.t].mean(axis=1)
    mesh = square.remove_elements(np.flatnonzero((centre[0] > 0.5) & (centre[1] > 0.5)))
    basis = fem.Basis(mesh, fem.ElementTriP2())

    @fem.BilinearForm
    def stiffness(u, v, _):
        return dot(grad(u), grad(v))

    @fem.BilinearForm
    def mass(u, v, _):
        return u * v

    # the data as NumPy functions (what a scikit-fem user writes; no JIT per shape)
    u_exact = sp.lambdify(coords, exact, "numpy")
    f_fn = sp.lambdify(coords, f, "numpy")

    def at(fn, pts, tk):
        return np.broadcast_to(fn(pts[:, 0], pts[:, 1], tk), (len(pts),)).astype(float)

    K, M = stiffness.assemble(basis), mass.assemble(basis)
    dt = T_END / (len(TEST_TIMES) - 1) / steps_per_test
    boundary = basis.get_dofs().all()
    inner = np.setdiff1d(np.arange(basis.N), boundary)
    A = (M + 0.5 * dt * K).tocsr()
    B = (M - 0.5 * dt * K).tocsr()
    lu = spla.splu(A[inner][:, inner].tocsc())
    A_ib = A[inner][:, boundary]
    locs = basis.doflocs.T
    probes = basis.probes(xy.T)
    setup_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    u = at(u_exact, locs, 0.0)
    # the load M f_h, f_h the P2 interpolant of f (the usual cheap choice; assembling
    # (f, v) by quadrature every step gave the same errors at ten times the cost)
    F = M @ at(f_fn, locs, 0.0)
    out = [probes @ u]
    for k in range(1, (len(TEST_TIMES) - 1) * steps_per_test + 1):
        tk = k * dt
        F_next = M @ at(f_fn, locs, tk)
        rhs = B @ u + 0.5 * dt * (F + F_next)
        ub = at(u_exact, locs[boundary], tk)
        u = np.empty_like(u)
        u[boundary] = ub
        u[inner] = lu.solve(rhs[inner] - A_ib @ ub)
        F = F_next
        if k % steps_per_test == 0:
            out.append(probes @ u)
    solve_s = time.perf_counter() - t1
    info = dict(setup_s=setup_s, solve_s=solve_s, dofs=basis.N, steps=(len(TEST_TIMES) - 1) * steps_per_test)
    return np.concatenate(out), info


def fem_run(exact, f, coords, n, steps_per_test, xy, ref):
    fem_crank_nicolson(exact, f, coords, 4, 1, xy)  # warm up (imports, first assemblies)
    t0 = time.perf_counter()
    values, info = fem_crank_nicolson(exact, f, coords, n, steps_per_test, xy)
    wall = time.perf_counter() - t0
    dt = T_END / info["steps"]
    rec = common.record(
        NAME,
        f"FEM P2 h=1/{n} + Crank-Nicolson dt=1/{round(1 / dt)}",
        **common.errors(values, ref),
        wall_s=wall,
        assemble_s=info["setup_s"],
        solve_s=info["solve_s"],
        iterations=info["steps"],
        unknowns=info["dofs"],
    )
    rec["note"] = f"scikit-fem, {info['steps']} time steps (iterations), one sparse LU"
    return rec


# (subdomains along x, y, t; degree; points along x, y, t; corners; time-marching active slabs)
PDEDSL = [
    ((4, 4, 2), 5, (24, 24, 12), None, None),
    ((4, 4, 2), 5, (24, 24, 12), False, None),
    ((6, 6, 2), 5, (48, 48, 12), None, None),
    ((8, 8, 2), 5, (80, 80, 16), None, None),
    ((8, 8, 2), 5, (80, 80, 16), False, None),
    ((6, 6, 4), 5, (48, 48, 32), None, 2),
]
FEM = [(32, 2), (64, 4), (128, 8), (256, 16)]
QUICK_PDEDSL = [((2, 2, 2), 3, (12, 12, 8), None, None), ((2, 2, 2), 3, (12, 12, 8), False, None)]
QUICK_FEM = [(8, 1)]


def run(quick=False):
    problem, exact, f, coords = setup()
    xy, pts = test_points()
    ref = np.asarray(compile_scalar(exact, coords)(pts))
    records = []
    for shape, degree, points, corners, active in QUICK_PDEDSL if quick else PDEDSL:
        model = pd.FBPINN(pd.Grid(problem.domain, shape, 2.0), pd.Polynomial(degree))
        how = "with edge functions" if corners is None else "corners=False"
        schedule = None if active is None else pd.TimeMarching(coords[2], active=active)
        way = "space-time" if active is None else f"time-marched, {active} slabs active"
        label = (
            f"pdedsl {way} [{'x'.join(map(str, shape))} grid on the L x [0, 1/2], deg {degree}, "
            f"{'x'.join(map(str, points))} pts, {how}]"
        )
        records.append(
            common.pdedsl_run(
                NAME, label, problem, model, None, points, exact, pts, schedule=schedule, corners=corners
            )
        )
    for n, steps in QUICK_FEM if quick else FEM:
        records.append(fem_run(exact, f, coords, n, steps, xy, ref))
    return records


if __name__ == "__main__":
    common.main(NAME, run, __doc__)
