"""Domains, their boundaries, and collocation point sets."""

from .box import (
    Boundary as Boundary,
    Box as Box,
    Face as Face,
    Interval as Interval,
    Observations as Observations,
    PointRegion as PointRegion,
)
from .difference import Difference as Difference, Facet as Facet
from .points import (
    as_points as as_points,
    error_measures as error_measures,
    format_point as format_point,
    values_at as values_at,
)
from .sampling import SAMPLERS as SAMPLERS, grid_shape as grid_shape, unit_points as unit_points
