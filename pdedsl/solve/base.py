"""The solver extension point and the result every solver returns."""

from __future__ import annotations

import abc

import equinox as eqx
import numpy as np
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
    # what `condition_number` is (exact, or which solver's estimate of which matrix)
    condition_rule: str = eqx.field(static=True, default="")
    # CG's step lengths and direction updates (alpha_k, beta_k), from which the host
    # estimates the condition number of the preconditioned normal matrix; None elsewhere
    lanczos: tuple | None = None


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


# --- argument checks shared by the solvers and preconditioners ------------------
def _number(value) -> float | None:
    """`value` as a float if it is a real number (not a bool); None where float() refuses it."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def check_tolerance(owner: str, name: str, value, *, upper: float = 1.0) -> None:
    """A relative tolerance: a finite number with 0 <= value < upper."""
    v = _number(value)
    if v is None or not (0.0 <= v < upper):
        bound = "1" if upper == 1.0 else f"{upper:g}"
        raise ValueError(f"{owner}({name}=...) must be a number with 0 <= {name} < {bound}, got {value!r}.")


def check_count(owner: str, name: str, value, minimum: int = 1) -> None:
    """A whole number of steps (an int, not a bool) of at least `minimum`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{owner}({name}=...) must be an int >= {minimum}, got {value!r}.")


def check_nonnegative(owner: str, name: str, value) -> None:
    """An absolute tolerance or a weight: a finite number >= 0."""
    v = _number(value)
    if v is None or not (0.0 <= v < float("inf")):
        raise ValueError(f"{owner}({name}=...) must be a finite number >= 0, got {value!r}.")
