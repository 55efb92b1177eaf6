"""Why iterative solvers struggle on multilevel ansatzes: the spectrum of the
block-Jacobi-preconditioned normal matrix of `laplace-multilevel` at 5 levels
(341 subdomains, 2,046 unknowns; the 7-level problem's 5 points per finest
subdomain and axis, 80^2 points), dense, for overlap 2.0 and 3.0.

For each decade of eigenvalues it prints how many there are, the norm of the
right-hand side's component on them (what CG must resolve to reach a small
normal residual) and of the solution's (how much the coefficients depend on
them). It then runs CG with block Jacobi, and with the same block Jacobi plus an
exact solve on all coarse levels together (balancing form, as in `TwoLevel`), to
rtol 1e-6 on the normal residual, and prints the error of the exact
least-squares solution and of 50 CG iterations. Last, for a few strengths of a
Tikhonov term that damps each subdomain's own block, the error of the damped
solution and CG's iterations on it. Then the same damping study with 6 tanh
features per subdomain instead of quadratics (overlap 3.0), next to the exact
least-squares solution and undamped block-Jacobi CG stopped at 50, 200 and 1,000
iterations. Not part of `run_all.py`; about three minutes:

    python benchmarks/multilevel_spectrum.py
"""

import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import laplace_multilevel  # noqa: E402

import pdedsl as pd  # noqa: E402
from pdedsl.solve import collocation  # noqa: E402
from pdedsl.solve.sparse import to_scipy  # noqa: E402

LEVELS, POINTS = 5, 80


def system_matrix(overlap, basis=None):
    problem, exact, domain = laplace_multilevel.setup(LEVELS)
    basis = pd.Polynomial(2) if basis is None else basis
    model = pd.FBPINN(pd.Multilevel(domain, levels=LEVELS, overlap=overlap), basis)
    system = pd.assemble(model, collocation(problem, model, (POINTS, POINTS)), row_scaling="auto")
    levels = np.repeat(np.asarray(system.levels), system.num_features)
    return (
        to_scipy(system).toarray(),
        np.asarray(system.rhs),
        system.num_features,
        levels,
        (problem, model, exact),
    )


def block_inverse(a, k, power):
    out = np.zeros_like(a)
    for s in range(0, a.shape[0], k):
        lam, vec = np.linalg.eigh(a[s : s + k, s : s + k])
        keep = lam > lam[-1] * 1e-12
        out[s : s + k, s : s + k] = (vec[:, keep] * lam[keep] ** power) @ vec[:, keep].T
    return out


def pcg(a, b, prec, rtol=1e-6, cap=5000, on_step=None):
    x, r = np.zeros_like(b), b.copy()
    z = prec(r)
    p, rz, nb = z.copy(), r @ z, np.linalg.norm(b)
    for it in range(1, cap + 1):
        q = a @ p
        alpha = rz / (p @ q)
        x += alpha * p
        r -= alpha * q
        if on_step is not None:
            on_step(it, x)
        if np.linalg.norm(r) < rtol * nb:
            return it
        z = prec(r)
        rz, old = r @ z, rz
        p = z + rz / old * p
    return cap


def study(overlap):
    m, h, k, levels, (problem, model, exact) = system_matrix(overlap)
    a, b = m.T @ m, m.T @ h
    s = block_inverse(a, k, -0.5)
    lam, vec = np.linalg.eigh(s @ a @ s)
    coef = vec.T @ (s @ b)
    optimum = np.linalg.lstsq(m, h, rcond=1e-13)[0]
    print(
        f"\noverlap {overlap}: {a.shape[0]} unknowns, {m.shape[0]} rows; least-squares residual "
        f"{np.linalg.norm(m @ optimum - h) / np.linalg.norm(h):.3f} of ||h||"
    )
    print("| eigenvalues | count | rhs component | solution component |\n|---|---|---|---|")
    edges = [10.0, 1.0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-6, 1e-9, 1e-13, 0.0]
    for hi, lo in zip(edges[:-1], edges[1:]):
        sel = (lam >= lo) & (lam < hi)
        sol = coef[sel] / np.where(lam[sel] > 1e-13, lam[sel], np.inf)
        print(
            f"| [{lo:.0e}, {hi:.0e}) | {sel.sum()} | {np.linalg.norm(coef[sel]):.1e} | "
            f"{np.linalg.norm(sol):.1e} |"
        )
    bj = block_inverse(a, k, -1.0)
    print(f"CG + block Jacobi: {pcg(a, b, lambda r: bj @ r)} iterations")
    coarse = levels < levels.max()
    ac = a[np.ix_(coarse, coarse)]
    lam_c, vec_c = np.linalg.eigh(ac)
    keep = lam_c > lam_c[-1] * 1e-13
    inv_c = (vec_c[:, keep] / lam_c[keep]) @ vec_c[:, keep].T

    def balancing(r):
        yc = np.zeros_like(r)
        yc[coarse] = inv_c @ r[coarse]
        t = bj @ (r - a @ yc)
        tc = np.zeros_like(r)
        tc[coarse] = inv_c @ (a @ t)[coarse]
        return yc + t - tc

    print(
        f"CG + block Jacobi + exact solve on all {coarse.sum()} coarse-level unknowns: "
        f"{pcg(a, b, balancing)} iterations"
    )
    for name, solver in [
        ("exact least squares (dense QR)", pd.DenseLeastSquares()),
        ("CG + block Jacobi, stopped after 50 iterations", pd.CGNormal(pd.BlockFilter(), max_steps=50)),
    ]:
        sol = pd.solve(problem, model, points=(POINTS, POINTS), solver=solver, throw=False)
        print(f"rel_l2 of the {name}: {sol.errors(exact, n=40_000)['rel_l2']:.3f}")
    damped(a, b, k, bj, (problem, model, exact))


def damped(a, b, k, bj, setup):
    """Tikhonov damping of each subdomain's own block: min ||M c - h||^2 + lam2 sum_j
    ||M_j c_j||^2, i.e. (A + lam2 D) c = M^T h with D the block diagonal of A. In the
    block-Jacobi-scaled variables the damping adds lam2 to every eigenvalue, so it
    bounds CG's condition number by about (largest eigenvalue) / lam2; it also
    penalises the large cancelling coefficients of the near-null directions."""
    problem, model, exact = setup
    blocks = np.zeros_like(a)
    for s in range(0, a.shape[0], k):
        blocks[s : s + k, s : s + k] = a[s : s + k, s : s + k]
    print("| lam2 | rel_l2 of the damped solution | CG + block Jacobi iterations to 1e-6 |\n|---|---|---|")
    for lam2 in (1e-4, 1e-3, 1e-2, 1e-1):
        damped_a = a + lam2 * blocks
        c = np.linalg.solve(damped_a, b).reshape(model.num_subdomains, model.num_features)
        sol = pd.Solution(problem, model, c, {})
        its = pcg(damped_a, b, lambda r, s=1.0 / (1.0 + lam2): s * (bj @ r))
        print(f"| {lam2:g} | {sol.errors(exact, n=40_000)['rel_l2']:.4f} | {its} |")


def tanh_study():
    """The damping study with 6 tanh features per subdomain (overlap 3.0)."""
    m, h, k, _, (problem, model, exact) = system_matrix(3.0, pd.RandomFeatures(6))
    a, b = m.T @ m, m.T @ h
    bj = block_inverse(a, k, -1.0)

    def rel_l2(c):
        sol = pd.Solution(problem, model, c.reshape(model.num_subdomains, k), {})
        return sol.errors(exact, n=40_000)["rel_l2"]

    optimum = np.linalg.lstsq(m, h, rcond=1e-14)[0]
    print(f"\n6 tanh features, overlap 3.0: exact least squares rel_l2 {rel_l2(optimum):.4f}")
    stops = (50, 200, 1000)
    iterates = {}
    pcg(
        a,
        b,
        lambda r: bj @ r,
        rtol=0.0,
        cap=stops[-1],
        on_step=lambda it, x: iterates.update({it: x.copy()}) if it in stops else None,
    )
    for steps in stops:
        print(f"block-Jacobi CG stopped after {steps} iterations: rel_l2 {rel_l2(iterates[steps]):.4f}")
    damped(a, b, k, bj, (problem, model, exact))


if __name__ == "__main__":
    for overlap in (2.0, 3.0):
        study(overlap)
    tanh_study()
