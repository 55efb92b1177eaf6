"""pdedsl: write a differential equation symbolically, solve it with a domain-decomposed
physics-informed ansatz trained by linear algebra."""

import importlib.metadata as _metadata

import jax as _jax
import scipy.linalg as _scipy_linalg  # noqa: F401  (load SciPy's BLAS now, so that the limit below covers it)
import threadpoolctl as _threadpoolctl

# XLA's CPU LAPACK kernels (SVD, QR, eigh) call SciPy's OpenBLAS from inside XLA's
# own thread pool; letting OpenBLAS start threads of its own oversubscribes the
# cores (measured: a 722 x 160 SVD went from 7 ms to 3 s on 2 cores).
_threadpoolctl.threadpool_limits(limits=1, user_api="blas")

# The least-squares systems are ill-conditioned (cond(M) ~ 1e16 for random
# features): float64 is the default for the whole library.
_jax.config.update("jax_enable_x64", True)

from .ansatz import (  # noqa: E402
    FBPINN as FBPINN,
    MLP as MLP,
    PINN as PINN,
    AbstractBasis as AbstractBasis,
    AbstractDecomposition as AbstractDecomposition,
    AbstractWindow as AbstractWindow,
    BSpline as BSpline,
    Bump as Bump,
    Cosine as Cosine,
    Cut as Cut,
    Grid as Grid,
    Multilevel as Multilevel,
    PeriodicInput as PeriodicInput,
    Polynomial as Polynomial,
    RandomFeatures as RandomFeatures,
)
from .assemble import LinearSystem as LinearSystem, assemble as assemble  # noqa: E402
from .geometry import Box as Box, Difference as Difference, Interval as Interval  # noqa: E402
from .io import SolutionFileError as SolutionFileError, load as load  # noqa: E402
from .lower import NonlinearError as NonlinearError  # noqa: E402
from .problem import Problem as Problem  # noqa: E402
from .reference import (  # noqa: E402
    FiniteDifferenceSolution as FiniteDifferenceSolution,
    FiniteElementSolution as FiniteElementSolution,
    finite_differences as finite_differences,
    finite_elements as finite_elements,
)
from .solution import Solution as Solution  # noqa: E402
from .solve import (  # noqa: E402
    GMRES as GMRES,
    LBFGS as LBFGS,
    LSMR as LSMR,
    AbstractNonlinearSolver as AbstractNonlinearSolver,
    AbstractPreconditioner as AbstractPreconditioner,
    AbstractSolver as AbstractSolver,
    AdditiveSchwarz as AdditiveSchwarz,
    Auto as Auto,
    BlockFilter as BlockFilter,
    BoxSchwarz as BoxSchwarz,
    CancellationWarning as CancellationWarning,
    CGNormal as CGNormal,
    ColumnScaling as ColumnScaling,
    CornerWarning as CornerWarning,
    DenseLeastSquares as DenseLeastSquares,
    GaussNewton as GaussNewton,
    Identity as Identity,
    LevenbergMarquardt as LevenbergMarquardt,
    MultiplicativeSchwarz as MultiplicativeSchwarz,
    OverdeterminedWarning as OverdeterminedWarning,
    ResidualWarning as ResidualWarning,
    SolveError as SolveError,
    SparseNormal as SparseNormal,
    SparseQR as SparseQR,
    SplineFrame as SplineFrame,
    TimeMarching as TimeMarching,
    TwoLevel as TwoLevel,
    UnderdeterminedWarning as UnderdeterminedWarning,
    VariableProjection as VariableProjection,
    linear_system as linear_system,
    solve as solve,
    train as train,
)
from .symbolic import (  # noqa: E402
    D as D,
    Dn as Dn,
    Function as Function,
    Parameter as Parameter,
    Symbol as Symbol,
    boundary as boundary,
)
from .symbolic.functions import (  # noqa: E402
    Abs as Abs,
    acos as acos,
    asin as asin,
    atan as atan,
    cos as cos,
    cosh as cosh,
    exp as exp,
    log as log,
    sin as sin,
    sinh as sinh,
    sqrt as sqrt,
    tan as tan,
    tanh as tanh,
)

try:
    __version__ = _metadata.version("pdedsl")
except _metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+unknown"
