"""Classical references built from the same lowered problem (finite differences)."""

from .finite_differences import (
    FiniteDifferenceSolution as FiniteDifferenceSolution,
    error_measures as error_measures,
    finite_differences as finite_differences,
)
