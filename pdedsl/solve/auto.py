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
      regularised normal equations, the fastest and most accurate method in our
      benchmarks (`benchmarks/RESULTS.md`): laplace-multiscale with 11,520
      unknowns in a few seconds where LSMR/CG need thousands of iterations.

    The iterative solvers (`LSMR`, `CGNormal`, `GMRES`) are never chosen
    automatically yet: on these problems they need thousands of iterations
    (see the oscillator-solvers and laplace-multilevel benchmarks).
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
