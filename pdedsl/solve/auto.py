"""The automatic solver choice."""

from __future__ import annotations

import dataclasses
import time

from ..ansatz import BSpline, Grid, Multilevel, Polynomial, RandomFeatures
from ..assemble import LinearSystem
from ..geometry import Box
from .base import AbstractSolver, SolverResult, check_count
from .dense import DenseLeastSquares
from .frame import SplineFrame
from .iterative import LSMR, CGNormal
from .preconditioners import BlockFilter, BoxSchwarz, TwoLevel
from .sparse import SparseNormal
from .sparse_qr import SparseQR, memory_limit


class Auto(AbstractSolver):
    """Pick a solver from the system's size, dimension and basis (the default of
    `pd.solve`).

    - up to `dense_unknowns` unknowns (and a dense matrix under `dense_bytes`):
      `DenseLeastSquares()` — exact, and its truncated SVD (the minimum-norm
      solution) is robust to columns that are dependent to rounding, as random
      features on several levels can be (cond(M) ~ 1e16). For polynomial
      bases on a one-level grid only up to `dense_unknowns_polynomial`: there the
      factorisation below is as accurate and the dense SVD's cost (cubic) shows
      early. Measured with `python benchmarks/auto_dense.py` (2D Poisson, warm,
      2 cores): Legendre degree 7 on 9^2 subdomains (2,916 unknowns) dense 18.6 s
      against 0.54 s (rel_l2 4.2e-9 and 1.1e-8); degree 6 on 8^2 (1,792) 4.3 s
      against 0.22 s (2.1e-7 both); degree 5 on 7^2 (1,029) 0.75 s against 0.09 s
      (5.4e-6 both). The same for random features in 1D to 3D, on one level or
      several, whose sparse choice is `SparseQR()` (below): it is as accurate as
      the dense solve, and faster (the same script, warm: 150 tanh features on
      3^2 subdomains, 1,350 unknowns, rel_l2 7.0e-11 in 0.59 s against 4.1e-10
      in 0.88 s; 40 on 8^2, 2,560 unknowns, 1.6e-7 in 0.67 s against 1.6e-7 in
      8.9 s; measured separately, in 3D 40 on 4^3, 2,560 unknowns, 5.6e-4 in
      0.60 s against 12.7 s, and 5 levels of the laplace-multilevel tanh ansatz,
      2,046 unknowns, 2.87e-2 in 0.5 s against 4.9 s). `SparseNormal()` is not
      as accurate: it reaches only 3.8e-6 on the first;
    - otherwise `SparseNormal()` — a sparse direct solve of the column-scaled,
      regularised normal equations, exact and the fastest method on mid-sized
      systems (`benchmarks/RESULTS.md`): on laplace-multiscale (11,520 unknowns)
      it reaches rel_l2 6.7e-6 in 0.77 s warm (1.5 s with SuperLU before
      2026-12-05's multifrontal Cholesky), against 9.2 s for CG + additive
      Schwarz (186 iterations, same error) and 31 s for LSMR + block filter
      (3,000 iterations without meeting its tolerance) — always in one dimension,
      in two up to `sparse_unknowns_2d` unknowns, and in three or more up to
      `sparse_unknowns_3d`;
    - beyond that, for polynomial bases on a one-level grid (in 2D: over a box
      domain): CG on the normal
      equations with `TwoLevel(local=BoxSchwarz())` to `rtol=1e-7`, whose cost
      grows linearly where the factorisation's grows faster. Measured with
      `python benchmarks/auto_choice.py CASE` (cold, 2 cores, each solve in its
      own process; Poisson on a grid of subdomains):

      | case | SparseNormal | two-level CG |
      |---|---|---|
      | 2D, 16^2 x degree 8 (11,520 unknowns; laplace-multiscale) | 4.7 s, 1.0 GB, rel_l2 6.7e-6 | 20.6 s, 0.9 GB, 6.7e-6 |
      | 2D, 96^2 x degree 2 (55,296) | 5.0 s, 1.2 GB | 10.2 s, 1.0 GB |
      | 2D, 128^2 x degree 2 (98,304) | 8.3 s, 2.0 GB | 14.0 s, 1.3 GB |
      | 2D, 256^2 x degree 2 (393,216) | 55 s, 8.1 GB | 40 s, 2.7 GB |
      | 2D, 32^2 x degree 6 (28,672) | 7.0 s, 1.5 GB, rel_l2 2.2e-13 | 23.3 s, 0.9 GB, 1.5e-9 |
      | 2D, 48^2 x degree 6 (64,512) | 16.2 s, 3.2 GB, 1.2e-14 | 46 s, 1.4 GB, 3.8e-9 |
      | 3D, 8^3 x degree 4 (17,920) | 21.4 s, 2.4 GB | 21.4 s, 1.0 GB |

      (the same rel_l2 where only one is given; SparseNormal by SuperLU with its
      symmetric ordering). With the multifrontal Cholesky of 2026-12-05 the
      factorisation won every case up to the sizes of today's limits (cold, own
      process each, `auto_choice.py --one CASE SOLVER`; the CG numbers are those
      of the deflated `TwoLevel` runs, docs/solving.md): 2D 128^2 x degree 2
      (98,304) 7.7 s, 1.1 GB against 11.0 s, 1.2 GB; 256^2 x degree 2 (393,216)
      27.5 s, 3.7 GB against 38.6 s, 3.2 GB; 48^2 x degree 6 (64,512) 11.8 s,
      1.7 GB against 29.6 s; 3D 8^3 x degree 4 (17,920) 9.5 s, 1.7 GB against
      14.2 s, 1.0 GB; 10^3 (35,000, 46^3 points) 20.8 s, 3.4 GB against 37.7 s,
      1.3 GB (284 iterations); 12^3 (60,480, 56^3) 47.2 s, 5.7 GB against 77.3 s,
      1.8 GB (444 iterations); wave-2p1d-large 12 x 12 x 4 (20,160) 10.8 s, 2.0 GB
      against 27.6 s, 1.4 GB and 16 x 16 x 6 (53,760) 36.9 s, 5.7 GB against 66 s,
      2.3 GB. Hence `sparse_unknowns_2d` = 400,000 and `sparse_unknowns_3d` =
      64,000 (100,000 and 12,000 before), and above 20,000 unknowns the
      factorisation is chosen only where its estimated memory
      (`SparseNormal.estimate`, an upper bound: 6.75 GiB for the 12^3 case)
      fits `normal_bytes` (8 GiB) and the machine. The older measurements, with
      SuperLU: So in 2D the factorisation is faster in every case up to 98,304
      unknowns and slower, with 3x the memory, at 393,216; in 3D the two tie at
      17,920, where the CG needs less memory (with `TwoLevel`'s deflated form, a
      later run: 13.0 s against 21.1 s, and at 98,304 in 2D 11.0 s against 12.5 s,
      a near tie given the 10-40% run-to-run variation of cold runs here). At 16^3 subdomains of degree 4
      in 3D (143,360 unknowns) the CG takes 182 iterations and 3.0 GB to rtol
      1e-6 (`poisson-3d-large`). Below the 3D threshold the factorisation wins:
      at 10,752 unknowns (wave-2p1d, 3D space-time, degree 5) it took 9.5 s
      against 76 s for CG + additive Schwarz. Above it, on the same wave problem
      at degree 4 (cold, own process each; the CG rows are `wave-2p1d-large`'s):
      12 x 12 x 4 subdomains (20,160 unknowns) SparseNormal 23.8 s, 2.8 GB
      against 27.6 s, 1.4 GB for the two-level CG; 16 x 16 x 6 (53,760) 125 s,
      9.2 GB against 66 s, 2.3 GB (all rel_l2 1.4e-3 and 1.3e-4). Random
      features, multilevel decompositions, cut domains, `pd.BSpline()` windows and systems without
      their model keep the factorisation in 2D (`SparseQR()` for random features,
      below; `SparseNormal()` otherwise);
      in 3D they get `LSMR(BlockFilter())`. (With B-spline windows, 65^2
      quadratics on the `laplace-multilevel` problem, the two-level CG stopped at
      1,000 iterations without converging; the factorisation takes 7.4 s.) On a cut
      domain (an L-shape: 12^2 subdomains of degree 8, 5,355 unknowns) the
      two-level CG stalls at rel_l2 3.4e-3 where the factorisation reaches 6.6e-4.
    - random features (`pd.RandomFeatures`), on one level or several, in 1D to 3D
      where `SparseNormal()` would be chosen: `SparseQR()`, a sparse QR of M
      itself. Their near-dependent columns cost the normal equations half their
      digits: on 16^2 subdomains x 40 tanh features of the laplace-multiscale
      problem (10,240 unknowns, 200^2 points; `python benchmarks/sparse_qr.py`,
      warm, 2026-12-05 after SparseNormal's multifrontal Cholesky) rel_l2 5.6e-4
      in 1.19 s against 1.1e-3 in 0.74 s, on 16^2 x 80 (20,480) 2.4e-7 in 7.0 s
      against 9.6e-6 in 2.8 s; in 3D on 3^3 x 200 (5,400) 7.2e-8 in 6.2 s against
      7.3e-7 in 4.0 s; on 20 subdomains x 12 tanh features of the oscillator
      8.9e-9 against 7.3e-6. Where the ansatz, not the solve, limits the error
      (32^2 x 20, 48^2 x 12, 8^3 x 20) both give the same error and the QR takes
      1.6 to 2 times as long: the price of an answer that keeps its digits where
      the features are many (the two took about the same time while SparseNormal
      used SuperLU). In 3D also past the
      factorisation's 3D limit (`sparse_unknowns_3d`): LSMR with block
      Jacobi does not converge where features are many (3^3 x 200 tanh, 5,400
      unknowns: 5,000 iterations, 434 s, rel_l2 2.6e-5 against the QR's 7.2e-8),
      and on 4^3 x 200 (12,800 unknowns, 34^3 points, cold, measured separately)
      the QR takes 44 s and 2.1 GB for 4.3e-8 (`SparseNormal()` 32 s, 3.7 GB,
      2.0e-7); where few features limit the error it converges faster (12^3 x 16,
      27,648 unknowns: 496 iterations, 10.7 s, 0.6 GB against the QR's 23.8 s,
      1.6 GB, both rel_l2 0.37; 14^3 x 12, 32,928 unknowns: 779 iterations,
      13.7 s against 19.0 s, both 0.80), but the QR's answer does not depend on
      convergence, and from a few dozen features on the QR is 7 to 80 times
      faster (`python benchmarks/random_features_3d.py`, cold: 6^3 x 40, 8,640
      unknowns, 30^3 points: LSMR 2,128 iterations in
      31.2 s against 4.2 s, both 6.7e-4; 5^3 x 80, 10,000 unknowns: LSMR not
      converged after 3,000 iterations, 105 s, against 11.7 s, both 7.2e-5). So
      3D random features get the QR at any size where it fits in memory (below),
      or up to `random_unknowns_3d` where that is set. On the 7 levels of the
      laplace-multilevel tanh ansatz (32,766 unknowns, cold, `--multilevel`) the
      QR took 13.5 s and a 2.5 GB process against SuperLU's 20.3 s and 3.9 GB, and
      the multifrontal SparseNormal 13.7 s and 2.35 GB (rel_l2 3.7e-2 against
      3.1e-2: the ansatz limits both). Past
      `sparse_unknowns_2d` (2D) or `sparse_unknowns_3d` (3D) the QR is chosen only
      where `SparseQR.estimate`'s bound on its memory fits `qr_bytes` (8 GiB, and
      the machine's memory); `LSMR(BlockFilter())` otherwise. (In 3D, 5^3 x 200
      tanh features, 25,000 unknowns, 40^3 points, are estimated at 6.8 GB; 10^3 x
      40, 40,000 unknowns, at 4.4 GB; `python benchmarks/sparse_qr_estimate.py
      --large`.)
    - when an iterative choice fails, `pd.solve` solves again with `SparseNormal()`
      up to `fallback_unknowns_2d` / `_3d` unknowns, and past them with `SparseQR()`
      where its estimated memory fits `qr_bytes` (`fallback`).
    - nested B-spline levels in 2D (`pd.Multilevel(..., bspline=p)` with a
      polynomial basis) above `frame_unknowns_2d`, or where SparseNormal's estimate
      does not fit `normal_bytes`: CG with `SplineFrame()` to `rtol=1e-7`. On
      `laplace-multilevel` (`python benchmarks/auto_choice.py nested-7`, cold,
      2026-12-06), 7 levels (37,716 unknowns): SparseNormal 30.2 s, 4.5 GB (its
      estimate 4.5 GiB) against 29.0 s, 2.37 GB (62 iterations; 49.0 s and 2.7 GB
      before the frame's build, its deflation step and the products' chunks were
      made cheaper), both at rel_l2 3.95e-3; with SuperLU SparseNormal had taken
      102 s and 7.6 GB, and `frame_unknowns_2d` was 20,000 (6 levels, 10,782
      unknowns: SparseNormal 27.8 s, 2.5 GB, with SuperLU, against 39.6 s, 1.9 GB).
      8 levels (140,682 unknowns, 640^2 points, `nested-8`): the frame 92.9 s,
      7.33 GB, 71 iterations, rel_l2 3.77e-3 (124 s earlier the same day), where
      SparseNormal's estimate is 23.8 GB (more than a 24 GB machine has); so the
      frame takes over above 40,000 unknowns.
    """

    dense_unknowns: int = 3000
    dense_unknowns_polynomial: int = 1000
    dense_bytes: int = 2 * 2**30
    sparse_unknowns_2d: int = 400_000
    sparse_unknowns_3d: int = 64_000
    random_unknowns_3d: int | None = None  # None: the QR wherever it fits qr_bytes
    frame_unknowns_2d: int = 40_000
    # where an iterative choice fails, `pd.solve` solves again with SparseNormal() up
    # to these sizes, where its estimated memory fits normal_bytes (256^2 quadratics
    # in 2D, 393,216 unknowns, took 3.7 GB; 12^3 of degree 4 in 3D, 60,480, 5.7 GB)
    fallback_unknowns_2d: int = 400_000
    fallback_unknowns_3d: int = 100_000
    # SparseNormal (above `_CHECKED` unknowns) and SparseQR (random features; a
    # fallback) only while their estimated peak memory (`estimate(system)`, an upper
    # bound) is below these, and below the machine's memory
    normal_bytes: int = 8 * 2**30
    qr_bytes: int = 8 * 2**30
    max_steps: int = 5000  # of the iterative choices

    def __check_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_bytes"):  # a size in bytes: any number, 4e9 as well as 4 * 2**30
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                    raise ValueError(f"Auto({f.name}=...) must be a number of bytes >= 0, got {value!r}.")
            elif not (f.name == "random_unknowns_3d" and value is None):
                check_count("Auto", f.name, value, 1 if f.name == "max_steps" else 0)

    def choose(self, system: LinearSystem, model=None) -> AbstractSolver:
        """The solver for `system`; `model` (the ansatz it was assembled from) lets
        it pick a coarse-space preconditioner for large 2D and 3D systems."""
        n, m = system.shape
        polynomial_grid = (
            model is not None
            and isinstance(model.basis, Polynomial)
            and isinstance(model.decomposition, Grid)
            # B-spline windows: the two-level CG did not converge in 1,000 iterations
            # on 65^2 of them with quadratics, where SparseNormal takes 7.4 s
            and not isinstance(model.window, BSpline)
        )
        # a grid cut at interfaces (pd.Cut) is still a grid of polynomial patches for
        # the dense-or-sparse choice (layered-medium, 6^2 subdomains of degree 6, 1,176
        # unknowns: SVD 0.79 s, SparseNormal 0.065 s, both rel_l2 3.1e-6); the coarse-space
        # choices below stay with plain grids
        cut_grid = (
            model is not None
            and isinstance(model.basis, Polynomial)
            and isinstance(getattr(model.decomposition, "base", None), Grid)
            and not isinstance(model.window, BSpline)
        )
        dim = _dimension(system)
        # random features (on one level or several) in 1D to 3D: the QR of M
        # (SparseQR), not the normal equations, whose squared condition number costs
        # them half their digits; as accurate as the dense solve and faster from a few
        # hundred unknowns
        random = model is not None and isinstance(model.basis, RandomFeatures) and dim <= 3
        early = polynomial_grid or cut_grid or random
        dense = self.dense_unknowns_polynomial if early else self.dense_unknowns
        if m <= min(dense, self.dense_unknowns) and n * m * 8 <= self.dense_bytes:
            return DenseLeastSquares()
        # in 2D only on a box: on cut domains (subdomains partly outside, e.g. an L) the
        # CG's accuracy stalls short of the factorisation's (helmholtz-lshape, 12^2
        # subdomains of degree 8: rel_l2 3.4e-3 at rtol 1e-7, no progress past it, vs 6.6e-4)
        on_box = polynomial_grid and isinstance(model.decomposition.domain, Box)
        nested = (
            model is not None
            and isinstance(model.basis, Polynomial)
            and isinstance(model.decomposition, Multilevel)
            and model.decomposition.bspline is not None
            and not model.decomposition.periodic_axes
        )
        if nested and dim == 2 and m > self.frame_unknowns_2d:
            return CGNormal(SplineFrame(), rtol=1e-7, max_steps=self.max_steps)
        if random:
            # at any size while the factorisation's memory, estimated from the
            # structure, fits (in 3D only up to random_unknowns_3d, where that is set:
            # LSMR is up to 2x faster where few features limit the error, 7-80x slower
            # or fails where they are many)
            limit = self.random_unknowns_3d
            # (small systems within the sparse limits are not checked)
            sparse = self.sparse_unknowns_2d if dim <= 2 else self.sparse_unknowns_3d
            unchecked = dim == 1 or m <= min(_CHECKED, sparse)
            if (dim <= 2 or limit is None or m <= limit) and (unchecked or self._qr_fits(system)):
                return SparseQR()
            return LSMR(BlockFilter(), max_steps=self.max_steps)
        within = dim == 1 or (dim == 2 and (m <= self.sparse_unknowns_2d or not on_box))
        if within or (dim >= 3 and m <= self.sparse_unknowns_3d):
            if m <= _CHECKED or self._normal_fits(system):
                return SparseNormal()
        if polynomial_grid:
            return CGNormal(TwoLevel(local=BoxSchwarz()), rtol=1e-7, max_steps=self.max_steps)
        if nested and dim == 2:  # (the factorisation would not fit in normal_bytes)
            return CGNormal(SplineFrame(), rtol=1e-7, max_steps=self.max_steps)
        return LSMR(BlockFilter(), max_steps=self.max_steps)

    def fallback(self, system: LinearSystem, chosen: AbstractSolver, model=None) -> AbstractSolver | None:
        """What to solve `system` with when `chosen` (this Auto's choice) failed: after
        an iterative solver, `SparseNormal()` where its factorisation should fit in
        memory (`fallback_unknowns_2d` / `_3d`), else `SparseQR()` where its estimated
        memory does (`qr_bytes`); for random features (`model`, the ansatz) the QR
        first, whose answer is the more accurate. None otherwise."""
        if isinstance(chosen, (DenseLeastSquares, SparseNormal, SparseQR)):
            return None
        dim = _dimension(system)
        limit = self.fallback_unknowns_2d if dim <= 2 else self.fallback_unknowns_3d
        normal = system.shape[1] <= limit and self._normal_fits(system)
        # 3D, 4^3 x 200 tanh (12,800 unknowns, 34^3 points), after LSMR stopped at 300
        # iterations (72 s): SparseNormal gave rel_l2 2.0e-7 in 31 s more (a 3.7 GB
        # process), the QR 4.3e-8 in 41 s more (2.0 GB; cold, each in its own process)
        if model is not None and isinstance(model.basis, RandomFeatures) and self._qr_fits(system):
            return SparseQR()
        if normal:
            return SparseNormal()
        return SparseQR() if self._qr_fits(system) else None

    def _qr_fits(self, system: LinearSystem) -> bool:
        """Whether `SparseQR`'s estimated peak memory fits `qr_bytes` (and the
        machine's memory)."""
        return SparseQR().estimate(system)["peak_bytes"] <= _budget(self.qr_bytes)

    def _normal_fits(self, system: LinearSystem) -> bool:
        """Whether `SparseNormal`'s estimated peak memory fits `normal_bytes` (and the
        machine's memory)."""
        return SparseNormal().estimate(system)["peak_bytes"] <= _budget(self.normal_bytes)

    def run(self, chosen: AbstractSolver, system: LinearSystem, say=None, model=None):
        """Solve `system` with `chosen` (this Auto's choice, bound to its model where
        needed) and, if that fails, with `fallback`'s solver (`model`: the ansatz, for
        `fallback`). Returns the solver that produced the result, the result, and the
        failed attempt (its solver, message, iterations and seconds) or None."""
        t0 = time.perf_counter()
        result = chosen(system)
        backup = None if bool(result.success) else self.fallback(system, chosen, model)
        if backup is None:
            return chosen, result, None
        failed = {
            "solver": chosen.name,
            "message": result.message,
            "iterations": None if result.iterations is None else int(result.iterations),
            "seconds": time.perf_counter() - t0,
        }
        if say is not None:
            say(f"pdedsl: {chosen.name} did not converge; solving again with {backup.name}")
        return backup, backup(system), failed

    def __call__(self, system: LinearSystem) -> SolverResult:
        return self.run(self.choose(system), system)[1]


# systems up to this many unknowns get the factorisations without their memory
# estimate (the plan it needs takes a few hundredths of a second here)
_CHECKED = 20_000


def _budget(nbytes: int) -> int:
    machine = memory_limit()
    return nbytes if machine is None else min(nbytes, machine)


def _dimension(system: LinearSystem) -> int:
    """The system's spatial dimension (1 when it carries no subdomain centres)."""
    return 1 if system.centres is None else int(system.centres.shape[-1])
