"""Solvers and `pd.solve`."""

from .auto import Auto as Auto
from .base import AbstractSolver as AbstractSolver, SolverResult as SolverResult
from .dense import DenseLeastSquares as DenseLeastSquares
from .frame import SplineFrame as SplineFrame
from .iterative import (
    GMRES as GMRES,
    LSMR as LSMR,
    CGNormal as CGNormal,
    LineaxSolver as LineaxSolver,
    as_solver as as_solver,
)
from .marching import TimeMarching as TimeMarching
from .nonlinear import (
    AbstractNonlinearSolver as AbstractNonlinearSolver,
    GaussNewton as GaussNewton,
    LevenbergMarquardt as LevenbergMarquardt,
    VariableProjection as VariableProjection,
)
from .preconditioners import (
    AbstractPreconditioner as AbstractPreconditioner,
    AdditiveSchwarz as AdditiveSchwarz,
    BlockFilter as BlockFilter,
    BoxSchwarz as BoxSchwarz,
    ColumnScaling as ColumnScaling,
    Identity as Identity,
    MultiplicativeSchwarz as MultiplicativeSchwarz,
    TwoLevel as TwoLevel,
)
from .solve import (
    CancellationWarning as CancellationWarning,
    CornerWarning as CornerWarning,
    OverdeterminedWarning as OverdeterminedWarning,
    ResidualWarning as ResidualWarning,
    SolveError as SolveError,
    UnderdeterminedWarning as UnderdeterminedWarning,
    collocation as collocation,
    linear_system as linear_system,
    solve as solve,
)
from .sparse import SparseNormal as SparseNormal
from .sparse_qr import SparseQR as SparseQR
from .train import LBFGS as LBFGS, train as train
