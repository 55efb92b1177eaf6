"""Solvers and `pd.solve`."""

from .base import AbstractSolver as AbstractSolver, SolverResult as SolverResult
from .dense import DenseLeastSquares as DenseLeastSquares
from .solve import SolveError as SolveError, collocation as collocation, solve as solve
