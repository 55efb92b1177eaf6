"""The automatic solver choice."""

from __future__ import annotations

from ..assemble import LinearSystem
from .base import AbstractSolver, SolverResult
from .dense import DenseLeastSquares
from .sparse import SparseNormal


class Auto(AbstractSolver):
    """Pick a solver from the system's size (the default of `pd.solve`).

    - up to `dense_unknowns` unknowns (and a dense matrix under `dense_bytes`):
      `DenseLeastSquares()` — exact, and the only choice that is robust to the
      near-dependent columns of random features (cond(M) ~ 1e16);
    - otherwise `SparseNormal()` — a sparse direct solve of the column-scaled,
      regularised normal equations, the fastest method in our benchmarks
      (`benchmarks/RESULTS.md`): on laplace-multiscale (11,520 unknowns) it reaches
      rel_l2 6.7e-6 in 5.7 s warm, against 10.3 s for CG + additive Schwarz
      (186 iterations, same error) and 55 s for LSMR + block filter (3,000
      iterations without meeting its tolerance).

    The iterative solvers (`LSMR`, `CGNormal`, `GMRES`) are not chosen
    automatically yet; they are the route beyond what a sparse factorisation fits.
    """

    dense_unknowns: int = 3000
    dense_bytes: int = 2 * 2**30

    def choose(self, system: LinearSystem) -> AbstractSolver:
        n, m = system.shape
        if m <= self.dense_unknowns and n * m * 8 <= self.dense_bytes:
            return DenseLeastSquares()
        return SparseNormal()

    def __call__(self, system: LinearSystem) -> SolverResult:
        return self.choose(system)(system)
