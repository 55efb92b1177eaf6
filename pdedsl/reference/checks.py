"""Checks shared by the classical references."""

from ..lower import LinearForm, NonlinearError


def refuse_nonlinear(problem, who: str) -> None:
    """The references solve linear problems: refuse a nonlinear equation or condition."""
    why = " (it has unknown parameters)" if problem.unknown_parameters else ""
    if not isinstance(problem.equation_form, LinearForm):
        raise NonlinearError(f"{who} solves linear problems; `{problem.equation}` is not linear{why}.")
    for c in problem.lowered_conditions:
        if not isinstance(c.form, LinearForm):
            raise NonlinearError(
                f"{who} solves linear problems; the condition `{c.condition}` is not linear{why}."
            )
