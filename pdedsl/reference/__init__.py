"""Classical references built from the same `pd.Problem`: finite elements (scikit-fem)."""

from .fem import FiniteElementSolution as FiniteElementSolution, finite_elements as finite_elements
