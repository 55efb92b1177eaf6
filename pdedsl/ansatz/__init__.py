"""The ansatz: windows, decompositions, basis families, and their evaluation."""

from .basis import (
    MLP as MLP,
    AbstractBasis as AbstractBasis,
    PeriodicInput as PeriodicInput,
    Polynomial as Polynomial,
    RandomFeatures as RandomFeatures,
)
from .decomposition import (
    AbstractDecomposition as AbstractDecomposition,
    Cut as Cut,
    Grid as Grid,
    Multilevel as Multilevel,
)
from .model import FBPINN as FBPINN, evaluate as evaluate
from .pinn import PINN as PINN
from .windows import (
    AbstractWindow as AbstractWindow,
    BSpline as BSpline,
    Bump as Bump,
    Constant as Constant,
    Cosine as Cosine,
)
