"""Classical references built from the same `pd.Problem`: finite differences and
finite elements (scikit-fem)."""

from .fem import FiniteElementSolution as FiniteElementSolution, finite_elements as finite_elements
from .finite_differences import (
    FiniteDifferenceSolution as FiniteDifferenceSolution,
    finite_differences as finite_differences,
)
