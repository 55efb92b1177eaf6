"""The DSL: coordinates, unknowns, derivatives, equations, conditions, parameters."""

from .expression import (
    At as At,
    Condition as Condition,
    D as D,
    Dn as Dn,
    Equation as Equation,
    Expression as Expression,
    Function as Function,
    Jump as Jump,
    NormalDerivative as NormalDerivative,
    Parameter as Parameter,
    Periodic as Periodic,
    Restricted as Restricted,
    Symbol as Symbol,
    WholeBoundary as WholeBoundary,
    as_equation as as_equation,
    boundary as boundary,
    coordinates_of as coordinates_of,
    unknowns_in as unknowns_in,
)
from .functions import (
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
from .printing import latex as latex, pretty as pretty
