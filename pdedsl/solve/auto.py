"""The automatic solver choice."""

from __future__ import annotations

from ..ansatz import Grid, Polynomial
from ..assemble import LinearSystem
from .base import AbstractSolver, SolverResult
from .dense import DenseLeastSquares
from .iterative import LSMR, CGNormal
from .preconditioners import BlockFilter, BoxSchwarz, TwoLevel
from .sparse import SparseNormal


class Auto(AbstractSolver):
    """Pick a solver from the system's size, dimension and basis (the default of
    `pd.solve`).

    - up to `dense_unknowns` unknowns (and a dense matrix under `dense_bytes`):
      `DenseLeastSquares()` — exact, and the only choice that is robust to the
      near-dependent columns of random features (cond(M) ~ 1e16);
    - otherwise, up to `sparse_unknowns_3d` unknowns in three or more dimensions
      (no limit in one or two, where it stays affordable and exact: at 98,304
      unknowns of degree 2 in 2D it takes 17 s, the two-level CG 11 s; at
      28,672 of degree 6, 26 s against the CG's 43 s, whose rtol 1e-7 also
      costs accuracy, 8.6e-10 vs 2.2e-13): `SparseNormal()` — a sparse direct solve of the
      column-scaled, regularised normal equations, the fastest method in our 2D
      benchmarks (`benchmarks/RESULTS.md`): on laplace-multiscale (11,520
      unknowns) it reaches rel_l2 6.7e-6 in 5.7 s warm, against 10.3 s for CG +
      additive Schwarz (186 iterations, same error) and 55 s for LSMR + block
      filter (3,000 iterations without meeting its tolerance);
    - beyond that (3D grids, where the factorisation's fill grows like the square
      of the unknowns): CG on the normal equations with
      `TwoLevel(local=BoxSchwarz())`, to `rtol=1e-7`, for polynomial bases on a
      one-level grid; `LSMR(BlockFilter())` otherwise (random features, multilevel
      decompositions, or a system without its model). On 3D Poisson with 8^3
      subdomains of degree 4 (17,920 unknowns; `python benchmarks/auto_choice.py`)
      both reach rel_l2 1.94e-5: the factorisation in 85 s with a 4.2 GB peak,
      the two-level CG in 85 iterations, 21.4 s and 1.0 GB (cold, 2 cores). At
      16^3 (143,360 unknowns) the CG takes 181 iterations and 3.1 GB to rtol
      1e-6 (`poisson-3d-large`); the factorisation was not tried there (with fill
      growing like the square of the unknowns, about 64 x 4.2 GB). Below the
      threshold the factorisation wins: at 10,752 unknowns (wave-2p1d, 3D
      space-time, degree 5) it took 34 s against 147 s for CG + additive Schwarz.
    """

    dense_unknowns: int = 3000
    dense_bytes: int = 2 * 2**30
    sparse_unknowns_3d: int = 12_000

    def choose(self, system: LinearSystem, model=None) -> AbstractSolver:
        """The solver for `system`; `model` (the ansatz it was assembled from) lets
        it pick a coarse-space preconditioner for large 3D systems."""
        n, m = system.shape
        if m <= self.dense_unknowns and n * m * 8 <= self.dense_bytes:
            return DenseLeastSquares()
        dim = 1 if system.centres is None else int(system.centres.shape[-1])
        if dim <= 2 or m <= self.sparse_unknowns_3d:
            return SparseNormal()
        return _iterative(model)

    def __call__(self, system: LinearSystem) -> SolverResult:
        return self.choose(system)(system)


def _iterative(model) -> AbstractSolver:
    if model is not None and isinstance(model.basis, Polynomial) and isinstance(model.decomposition, Grid):
        return CGNormal(TwoLevel(local=BoxSchwarz()), rtol=1e-7, max_steps=5000)
    return LSMR(BlockFilter())
