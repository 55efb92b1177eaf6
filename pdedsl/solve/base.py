"""The solver extension point and the result every solver returns."""

from __future__ import annotations

import abc

import equinox as eqx
from jaxtyping import Array, Float

from ..assemble import LinearSystem


class SolverResult(eqx.Module):
    """Coefficients (J, K) plus what the solver knows about how it went."""

    coefficients: Float[Array, "J K"]
    residual_norm: Float[Array, ""]
    iterations: Array | None = None
    rank: Array | None = None
    condition_number: Array | None = None
    filtered: Array | int | None = None
    history: Array | None = None
    setup_s: float | None = eqx.field(static=True, default=None)
    success: Array | bool = True
    message: str = eqx.field(static=True, default="")
    # the iteration stopped because a quantity that must be positive was not (CG: the
    # preconditioned residual r^T P r < 0, a preconditioner that is not positive
    # definite in floating point)
    breakdown: Array | bool = False
    # an iterative solver's own convergence measure at the iterate it returns (the
    # quantity its `rtol` bounds; `stop_rule` says what it is), None for direct solvers
    stop_measure: Array | None = None
    stop_rule: str = eqx.field(static=True, default="")


class AbstractSolver(eqx.Module):
    """Solves the least-squares problem min ||M a - b|| for a `LinearSystem`.

    `__call__` runs eagerly: solvers jit their own hot paths (so that host-side
    work, such as a scipy factorisation, can sit in between).
    """

    @abc.abstractmethod
    def __call__(self, system: LinearSystem) -> SolverResult:
        """Return the least-squares coefficients."""

    @property
    def traceable(self) -> bool:
        """Whether `traced` can run this solver inside a jitted (e.g. sharded) computation."""
        return False

    def traced(self, system: LinearSystem) -> SolverResult:
        """The solve as a pure JAX function (no host work, no timing), for use inside
        `jit`: Gauss-Newton's linear solves on sharded systems go through it."""
        raise NotImplementedError(
            f"{self.name} runs on the host and cannot be called inside a jitted computation; "
            "use pd.LSMR() or pd.CGNormal() (with a jittable preconditioner)."
        )

    @property
    def name(self) -> str:
        return type(self).__name__
