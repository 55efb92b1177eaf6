"""Lowering: sympy equations and conditions -> canonical linear or nonlinear forms compiled to JAX."""

from .derivatives import apply_to_function as apply_to_function, derivative as derivative
from .linear import (
    CompiledLinearForm as CompiledLinearForm,
    CompiledScalar as CompiledScalar,
    LinearForm as LinearForm,
    MultiIndex as MultiIndex,
    NonlinearError as NonlinearError,
    ObservedData as ObservedData,
    apply_form as apply_form,
    compile_scalar as compile_scalar,
    lower_linear as lower_linear,
    substitute_parameters as substitute_parameters,
)
from .nonlinear import (
    CompiledNonlinearForm as CompiledNonlinearForm,
    NonlinearForm as NonlinearForm,
    lower_nonlinear as lower_nonlinear,
)
