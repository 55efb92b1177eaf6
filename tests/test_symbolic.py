"""The DSL: spellings of the same equation, conditions, printing, and mistakes caught at
definition time with a message naming the culprit."""

import re

import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import pdedsl as pd
from pdedsl import D, Dn
from pdedsl.symbolic import Condition, Equation, Expression

t = pd.Symbol("t")
x, y = pd.Symbol("x"), pd.Symbol("y")
u = pd.Function("u")(t)
U = sp.Function("u")(t)  # the same unknown, spelled in plain sympy
M, MU, K = 1.0, 4.0, 6400.0
INTERVAL = pd.Interval(t, 0, 1)
SQUARE = pd.Box([x, y], [0, 0], [1, 1])
PTS_T = np.linspace(0.0, 1.0, 7)[:, None]
PTS_XY = np.random.default_rng(0).uniform(0.0, 1.0, size=(9, 2))

m_s, mu_s, k_s = sp.symbols("m mu k")


def coefficient_spellings():
    """(m, mu, k) and the `parameters=` that go with them, one entry per spelling."""
    return {
        "python-float": ((M, MU, K), {}),
        "sympy-symbol+parameters": ((m_s, mu_s, k_s), {m_s: M, mu_s: MU, k_s: K}),
        "pd.Parameter": ((pd.Parameter("m", M), pd.Parameter("mu", MU), pd.Parameter("k", K)), {}),
        "numpy-float64": ((np.float64(M), np.float64(MU), np.float64(K)), {}),
        "jax-scalar": ((jnp.asarray(M), jnp.asarray(MU), jnp.asarray(K)), {}),
    }


COEFFS = coefficient_spellings()
FORCINGS = {"zero": 0, "float": 2.5, "numpy-float64": np.float64(-3.0), "sympy": sp.sin(t)}


def plain(f):
    """The forcing as plain sympy, for the reference spelling."""
    return sp.Float(float(f)) if isinstance(f, np.floating) else sp.sympify(f)


def assert_same_form(got, want, points):
    assert got.coords == want.coords
    assert got.multi_indices == want.multi_indices
    cg, cw = got.compile(), want.compile()
    assert len(cg.coefficients) == len(cw.coefficients)
    for a, b in zip(cg.coefficients, cw.coefficients):
        np.testing.assert_allclose(np.asarray(a(points)), np.asarray(b(points)), rtol=1e-15, atol=0)
    assert sp.simplify(got.rhs - want.rhs) == 0, (got.rhs, want.rhs)


def assert_same_conditions(got: pd.Problem, want: pd.Problem, points):
    assert len(got.lowered_conditions) == len(want.lowered_conditions)
    for cg, cw in zip(got.lowered_conditions, want.lowered_conditions):
        assert cg.region == cw.region
        assert_same_form(cg.form, cw.form, points)


# --- the same equation, many spellings --------------------------------------------------


@pytest.mark.parametrize("f", list(FORCINGS.values()), ids=list(FORCINGS))
@pytest.mark.parametrize("spelling", list(COEFFS))
def test_oscillator_spellings_lower_identically(spelling, f):
    (m, mu, k), parameters = COEFFS[spelling]
    eq = m*D(u, t, 2) + mu*D(u, t) + k*u == f  # fmt: skip
    assert isinstance(eq, Equation)
    # the coefficients also appear in a condition, which must see the same values
    conditions = [u.at(t=0) == 1, D(u, t).at(t=0) == 0, (m * u + D(u, t)).at(t=1) == mu]
    problem = pd.Problem(eq, INTERVAL, conditions=conditions, parameters=parameters)
    reference = pd.Problem(
        sp.Eq(M * U.diff(t, 2) + MU * U.diff(t) + K * U, plain(f)),
        INTERVAL,
        conditions=[
            sp.Eq(U.subs(t, 0), 1),
            sp.Eq(U.diff(t).subs(t, 0), 0),
            sp.Eq(M * U.subs(t, 1) + U.diff(t).subs(t, 1), MU),
        ],
    )
    assert problem.equation_form.multi_indices == ((0,), (1,), (2,))
    assert_same_form(problem.equation_form, reference.equation_form, PTS_T)
    assert_same_conditions(problem, reference, PTS_T)


@pytest.mark.parametrize("spelling", ["sympy-symbol+parameters", "pd.Parameter"])
def test_plain_sympy_with_symbolic_coefficients(spelling):
    (m, mu, k), parameters = COEFFS[spelling]
    dsl = pd.Problem(m * D(u, t, 2) + mu * D(u, t) + k * u == sp.sin(t), INTERVAL, parameters=parameters)
    sympy_spelling = pd.Problem(
        sp.Eq(m * U.diff(t, 2) + mu * U.diff(t) + k * U, sp.sin(t)), INTERVAL, parameters=parameters
    )
    assert_same_form(dsl.equation_form, sympy_spelling.equation_form, PTS_T)
    assert [float(c) for c in dsl.equation_form.coefficients] == [K, MU, M]


def test_reversed_equation_lowers_identically():
    eq = sp.sin(t) == D(u, t, 2) + 4.0 * u
    assert isinstance(eq, Equation)
    forward = pd.Problem(D(u, t, 2) + 4.0 * u == sp.sin(t), INTERVAL)
    assert_same_form(pd.Problem(eq, INTERVAL).equation_form, forward.equation_form, PTS_T)
    eq0 = 0 == D(u, t) + u
    assert isinstance(eq0, Equation)


def test_diff_method_is_D():
    assert u.diff(t, 2).expr == D(u, t, 2).expr == sp.Derivative(U, (t, 2))
    assert isinstance(u.diff(t), Expression)


@pytest.mark.parametrize(
    "dsl, sympy_eq",
    [
        pytest.param(lambda u: u.at(t=0) == 1, lambda U: sp.Eq(U.subs(t, 0), 1), id="value-at-0"),
        pytest.param(
            lambda u: D(u, t).at(t=0) == 0, lambda U: sp.Eq(U.diff(t).subs(t, 0), 0), id="slope-at-0"
        ),
        pytest.param(
            lambda u: (u + D(u, t)).at(t=1) == 2,
            lambda U: sp.Eq(U.subs(t, 1) + U.diff(t).subs(t, 1), 2),
            id="robin-at-1",
        ),
    ],
)
def test_conditions_in_plain_sympy_match_dsl(dsl, sympy_eq):
    eq = D(u, t, 2) + u == 0
    a = pd.Problem(eq, INTERVAL, [dsl(u)])
    b = pd.Problem(eq, INTERVAL, [sympy_eq(U)])
    assert len(a.lowered_conditions) == 1
    assert type(a.lowered_conditions[0].region).__name__ == "PointRegion"
    assert_same_conditions(a, b, PTS_T)


def test_face_condition_in_plain_sympy_matches_dsl():
    u2 = pd.Function("u")(x, y)
    U2 = sp.Function("u")(x, y)
    eq = D(u2, x, 2) + D(u2, y, 2) == 0
    a = pd.Problem(eq, SQUARE, [u2.at(x=0) == sp.sin(y), D(u2, y).at(y=1) == x])
    b = pd.Problem(eq, SQUARE, [sp.Eq(U2.subs(x, 0), sp.sin(y)), sp.Eq(U2.diff(y).subs(y, 1), x)])
    assert [(c.region.axis, c.region.value) for c in a.lowered_conditions] == [(0, 0.0), (1, 1.0)]
    assert_same_conditions(a, b, PTS_XY)


def test_variable_coefficients():
    ux = pd.Function("u")(x)
    Ux = sp.Function("u")(x)
    eq = (1 + x**2) * D(ux, x, 2) + sp.sin(x) * D(ux, x) == sp.exp(x)
    assert isinstance(eq, Equation)
    interval = pd.Interval(x, -1, 2)
    problem = pd.Problem(eq, interval)
    form = problem.equation_form
    assert form.multi_indices == ((1,), (2,))
    assert sp.simplify(form.coefficients[0] - sp.sin(x)) == 0
    assert sp.simplify(form.coefficients[1] - (1 + x**2)) == 0
    assert sp.simplify(form.rhs - sp.exp(x)) == 0
    reference = pd.Problem(sp.Eq((1 + x**2) * Ux.diff(x, 2) + sp.sin(x) * Ux.diff(x), sp.exp(x)), interval)
    assert_same_form(form, reference.equation_form, np.linspace(-1, 2, 11)[:, None])
    values = np.asarray(form.compile().coefficients[1](np.array([[0.0], [2.0]])))
    np.testing.assert_array_equal(values, [1.0, 5.0])


# --- printing ---------------------------------------------------------------------------


def test_equation_str_is_readable():
    s = str(M * D(u, t, 2) + MU * D(u, t) + K * u == 0)
    assert "D(u, t, 2)" in s
    assert "D(u, t)" in s
    assert s.endswith("= 0")
    assert "Derivative" not in s and "u(t)" not in s


def test_equation_with_parameters_prints_their_names():
    m, mu, k = COEFFS["pd.Parameter"][0]
    eq = m * D(u, t, 2) + mu * D(u, t) + k * u == sp.sin(t)
    s = str(eq)
    for piece in ("m*D(u, t, 2)", "mu*D(u, t)", "k*u"):
        assert piece in s
    assert s.endswith(" = sin(t)")
    assert repr(eq) == f"Equation({s})"


def test_mixed_derivative_and_normal_derivative_print():
    u2 = pd.Function("u")(x, y)
    assert str(D(u2, x, 2, y)) == "D(u, x, 2, y)"
    assert repr(D(u2, x, y)) == "Expression(D(u, x, y))"
    assert str(Dn(u2) + u2) in ("u + Dn(u)", "Dn(u) + u")
    assert r"\partial_n u" in (Dn(u2) + u2).latex()


def test_equation_latex():
    s = (M * D(u, t, 2) + MU * D(u, t) + K * u == sp.sin(t)).latex()
    assert r"\frac{d^{2}}{d t^{2}} u" in s
    assert r"\frac{d}{d t} u" in s
    assert r"u{\left(t \right)}" not in s and "u(t)" not in s  # the unknown shows by name
    assert s.endswith(r"= \sin{\left(t \right)}")
    m, mu, k = COEFFS["pd.Parameter"][0]
    assert r"\mu" in (m * D(u, t, 2) + mu * D(u, t) + k * u == 0).latex()


def test_conditions_print():
    c1 = u.at(t=0) == 1
    c2 = D(u, t).at(t=0) == 0
    assert isinstance(c1, Condition)
    assert str(c1) == "u = 1 at t = 0"
    assert str(c2) == "D(u, t) = 0 at t = 0"
    assert c1.latex() == r"\left.u\right|_{t=0} = 1"
    assert c2.latex() == r"\left.\frac{d}{d t} u\right|_{t=0} = 0"
    assert str(u.on(pd.boundary) == 0) == "u = 0 at boundary"


def test_problem_str_and_latex():
    problem = pd.Problem(
        M * D(u, t, 2) + MU * D(u, t) + K * u == 0,
        INTERVAL,
        conditions=[u.at(t=0) == 1, D(u, t).at(t=0) == 0],
    )
    lines = str(problem).splitlines()
    assert len(lines) == 3
    assert "D(u, t, 2)" in lines[0] and lines[0].endswith("on Box(t in [0, 1])")
    assert lines[1:] == ["  u = 1 at t = 0", "  D(u, t) = 0 at t = 0"]
    s = problem.latex()
    assert s.startswith(r"\begin{cases}") and s.endswith(r"\end{cases}")
    assert r"\frac" in s
    assert r"\left.u\right|_{t=0} = 1" in s
    assert s.count(r" \\ ") == 2


# --- mistakes caught at definition time ---------------------------------------------------


def test_derivative_by_undeclared_coordinate():
    with pytest.raises(ValueError, match=r"x is not a coordinate of u"):
        D(u, x)


def test_condition_at_point_outside_the_domain():
    condition = u.at(t=2) == 0  # only the domain knows it is outside
    with pytest.raises(ValueError, match=r"t = 2.*outside"):
        pd.Problem(D(u, t, 2) + u == 0, INTERVAL, [condition])


def test_nan_and_infinity_in_equations_and_conditions_are_refused():
    # sympy turns nan * D(u, t, 2) into nan, which used to read as "contains no unknown"
    with pytest.raises(ValueError, match=r"left-hand side `nan` contains nan"):
        _ = float("nan") * D(u, t, 2) == 1
    with pytest.raises(ValueError, match=r"right-hand side `oo` contains oo"):
        _ = D(u, t, 2) == float("inf")
    with pytest.raises(ValueError, match=r"condition's right-hand side `nan`"):
        _ = u.at(t=0) == float("nan")
    with pytest.raises(ValueError, match="zoo"):
        _ = D(u, t) == 1 / sp.Integer(0)


def test_at_takes_coordinates_by_name():
    # u.at(array) failed with Python's "takes 1 positional argument but 2 were given"
    u2 = pd.Function("u")(x, y)
    with pytest.raises(TypeError, match=re.escape("by name: u.at(x=..., y=...)")):
        u2.at(np.zeros((3, 2)))
    with pytest.raises(TypeError, match=re.escape("D(u, t).at(t=...)")):
        D(u, t).at(0.0)


def test_face_outside_the_box():
    u2 = pd.Function("u")(x, y)
    with pytest.raises(ValueError, match=r"x = 2 lies outside"):
        pd.Problem(D(u2, x, 2) + D(u2, y, 2) == 0, SQUARE, [u2.at(x=2) == 0])
    with pytest.raises(ValueError, match=r"y = -0.5 lies outside"):
        SQUARE.face(y=-0.5)
    with pytest.raises(ValueError, match=r"\bz\b.*not a coordinate"):
        SQUARE.face(z=0)


def test_equation_without_the_unknown():
    with pytest.raises(ValueError, match=r"`sin\(t\) = 0` contains no unknown"):
        pd.Problem(sp.Eq(sp.sin(t), 0), INTERVAL)
    cancelled = D(u, t) - D(u, t) == t
    with pytest.raises(ValueError, match=r"`0 = t` contains no unknown"):
        pd.Problem(cancelled, INTERVAL)


def test_expression_is_not_an_equation():
    expression = D(u, t, 2) + u
    with pytest.raises(TypeError) as info:
        pd.Problem(expression, INTERVAL)
    assert "not an equation" in str(info.value)
    assert str(expression) in str(info.value)


def test_sympy_expression_is_not_an_equation():
    with pytest.raises(TypeError, match=r"not an equation"):
        pd.Problem(U.diff(t, 2) + U, INTERVAL)


def test_bool_from_plain_sympy_eq_is_not_an_equation():
    structural = U.diff(t, 2) + U == 0  # plain sympy: a structural comparison
    assert structural is False
    with pytest.raises(TypeError, match=r"Got False .*returns a bool"):
        pd.Problem(structural, INTERVAL)


def test_string_is_not_an_equation():
    with pytest.raises(TypeError, match=r"got str: 'D\(u, t\) = 0'"):
        pd.Problem("D(u, t) = 0", INTERVAL)


def test_domain_and_unknown_dimensions_differ():
    u2 = pd.Function("u")(x, y)
    with pytest.raises(ValueError, match=r"depends on \('x', 'y'\).*coordinates \('x',\)"):
        pd.Problem(D(u2, x, 2) + D(u2, y, 2) == 0, pd.Interval(x, 0, 1))
    with pytest.raises(ValueError, match=r"depends on \('t',\).*coordinates \('x', 'y'\)"):
        pd.Problem(D(u, t) == 0, SQUARE)


def _tiny_model(problem):
    return pd.FBPINN(pd.Grid(problem.domain, 2, 1.5), pd.Polynomial(3))


@pytest.mark.parametrize(
    "equation, conditions, name",
    [
        (D(u, t, 2) + u**3 == 0, [], "u**3"),
        (D(u, t, 2) + u * D(u, t) == 0, [], "u*D(u, t)"),
        (D(u, t, 2) + pd.sin(u) == 0, [], "sin(u)"),
        (D(u, t, 2) + u == 0, [(u**2).at(t=0) == 1], "u**2"),
    ],
)
def test_nonlinear_problem_is_accepted_but_a_linear_solver_names_the_term(equation, conditions, name):
    problem = pd.Problem(equation, INTERVAL, conditions)
    assert not problem.linear
    for solver in (pd.DenseLeastSquares(), pd.LSMR(), pd.SparseNormal()):
        with pytest.raises(pd.NonlinearError, match=re.escape(f"`{name}`")) as info:
            pd.solve(problem, _tiny_model(problem), solver=solver)
        assert "pd.GaussNewton" in str(info.value)


def test_lifted_functions_accept_numbers_sympy_and_expressions():
    assert pd.exp(0) == 1
    assert pd.sin(t) == sp.sin(t)
    assert isinstance(pd.exp(u), Expression)


def test_sympy_functions_of_the_unknown_name_the_pdedsl_ones():
    x = pd.Symbol("x")
    u = pd.Function("u")(x)
    for build in (lambda: sp.sin(u), lambda: sp.exp(D(u, x)), lambda: sp.Eq(u, 1)):
        with pytest.raises(sp.SympifyError, match=r"pd\.sin\(u\)") as info:
            build()
        assert isinstance(info.value, TypeError)
    # sympy's operators still defer to the DSL's: these build expressions and equations
    assert isinstance(sp.exp(-x) * u + x, Expression)
    assert isinstance(sp.Integer(2) * u == sp.sin(x), Equation)
    assert str(pd.sin(u)) == "sin(u)"
    # a restricted expression in sympy.Eq: the message writes the condition with ==
    with pytest.raises(sp.SympifyError, match=r"u\.at\(x=0\) == 0 \(not sympy\.Eq"):
        sp.Eq(u.at(x=0), 0)
    assert isinstance(0 == u.at(x=0), Condition) and isinstance(sp.sin(x) == u.at(x=0), Condition)


def test_at_with_a_name_that_is_not_a_coordinate():
    with pytest.raises(ValueError, match=r"`z` in `\.at\(z=\.\.\.\)` is not a coordinate of u"):
        u.at(z=0)


def test_at_with_a_symbolic_value():
    with pytest.raises(ValueError, match=r"\.at\(t=x\)"):
        u.at(t=x)


def test_bool_of_an_equation_is_an_error():
    eq = D(u, t) + u == 0
    with pytest.raises(TypeError, match=r"equation (u \+ D\(u, t\)|D\(u, t\) \+ u) = 0 has no truth value"):
        bool(eq)
    with pytest.raises(TypeError, match="truth value"):
        bool(u.at(t=0) == 1)
    with pytest.raises(TypeError, match="truth value"):
        bool(u)
    with pytest.raises(TypeError, match="!="):
        u != 0  # noqa: B015


def test_normal_derivative_in_the_interior_equation():
    with pytest.raises(ValueError, match=r"Dn\(\.\.\.\) in .*normal"):
        pd.Problem(Dn(u) + u == 0, INTERVAL)
    u2 = pd.Function("u")(x, y)
    with pytest.raises(ValueError, match=r"Dn\(\.\.\.\) in .*normal"):
        pd.Problem(Dn(u2) == 0, SQUARE)
    # an interior plane has no outward side either
    with pytest.raises(ValueError, match=r"Dn\(\.\.\.\) in .*normal"):
        pd.Problem(D(u2, x, 2) == 0, SQUARE, [Dn(u2).at(x=0.5) == 0])


def test_invalid_function_name():
    with pytest.raises(ValueError, match=r"'2u'"):
        pd.Function("2u")


def test_function_needs_coordinate_symbols():
    with pytest.raises(TypeError, match=r"u\(\.\.\.\) takes coordinate symbols"):
        pd.Function("u")(1.0)
    with pytest.raises(ValueError, match=r"repeated coordinate"):
        pd.Function("u")(t, t)


def test_parameter_value_must_be_a_number():
    with pytest.raises(ValueError, match=r"parameter k must be a number"):
        pd.Parameter("k", x + 1)


@pytest.mark.parametrize(
    "value, message",
    [
        (float("nan"), "finite real number, got nan"),
        (float("inf"), "finite real number, got oo"),
        (sp.I, "finite real number, got I"),
        (np.array([1.0, 2.0]), "a number"),
        ("four", "must be a number"),
    ],
)
def test_parameter_values_that_no_solve_can_use_are_refused(value, message):
    """NaN used to simplify the unknown away (a misleading 'does not contain the
    unknown' error); an array or a string failed deep inside sympy."""
    k = sp.Symbol("k")
    with pytest.raises((ValueError, TypeError), match="number"):
        pd.Parameter("k", value)
    with pytest.raises(ValueError, match=message):
        pd.Problem(D(u, t, 2) + k * u == 0, INTERVAL, [u.at(t=0) == 1], parameters={k: value})
    assert pd.Problem(D(u, t, 2) + k * u == 0, INTERVAL, [u.at(t=0) == 1], parameters={k: np.float64(2)})


def test_a_coordinate_is_not_a_parameter():
    with pytest.raises(ValueError, match="t is a coordinate of the domain, not a parameter"):
        pd.Problem(D(u, t, 2) + m_s * u == 0, INTERVAL, [u.at(t=0) == 1], parameters={m_s: 1.0, t: 0.5})


def test_parameters_may_be_keyed_by_name():
    """A name resolves to the problem's symbol of that name (whatever its assumptions)
    and lowers exactly as the symbol key does; a misspelt name, or a symbol that only
    shares a name with the problem's, is refused with the fix."""
    kp = sp.Symbol("k", positive=True)
    by_symbol = pd.Problem(D(u, t, 2) + kp * u == 0, INTERVAL, [u.at(t=0) == 1], parameters={kp: 4.0})
    by_name = pd.Problem(D(u, t, 2) + kp * u == 0, INTERVAL, [u.at(t=0) == 1], parameters={"k": 4.0})
    assert by_name.parameters == {kp: 4.0}
    assert str(by_name.equation_form) == str(by_symbol.equation_form)
    # a name used only in a condition
    c = sp.Symbol("c")
    p = pd.Problem(D(u, t, 2) + u == 0, INTERVAL, [u.at(t=0) == c], parameters={"c": 2.0})
    assert p.parameters == {c: 2.0}
    with pytest.raises(ValueError, match=r"names 'kk', which the equation.*no value to k\."):
        pd.Problem(D(u, t, 2) + kp * u == 0, INTERVAL, [u.at(t=0) == 1], parameters={"kk": 4.0})
    # names the problem does not use are ignored (one dict for several problems), as
    # symbols it does not use are
    shared = {"k": 4.0, "c": 2.0}
    p = pd.Problem(D(u, t, 2) + kp * u == 0, INTERVAL, [u.at(t=0) == 1], parameters=shared)
    assert p.parameters == {kp: 4.0}
    with pytest.raises(ValueError, match="different symbol of the same name"):
        pd.Problem(D(u, t, 2) + kp * u == 0, INTERVAL, [u.at(t=0) == 1], parameters={sp.Symbol("k"): 4.0})
    with pytest.raises(ValueError, match="gives k twice"):
        pd.Problem(D(u, t, 2) + kp * u == 0, INTERVAL, [u.at(t=0) == 1], parameters={"k": 4.0, kp: 4.0})
    with pytest.raises(ValueError, match="t is a coordinate of the domain"):
        pd.Problem(D(u, t, 2) + kp * u == 0, INTERVAL, [u.at(t=0) == 1], parameters={"k": 1.0, "t": 0.5})
    with pytest.raises(TypeError, match="Symbols or their names, got 3"):
        pd.Problem(D(u, t, 2) + kp * u == 0, INTERVAL, [u.at(t=0) == 1], parameters={3: 4.0})
    with pytest.raises(TypeError, match="parameters must be a dict"):
        pd.Problem(D(u, t, 2) + kp * u == 0, INTERVAL, [u.at(t=0) == 1], parameters=[(kp, 4.0)])
    with pytest.raises(ValueError, match="declared unknown"):
        pd.Problem(
            D(u, t, 2) + kp * u == 0,
            INTERVAL,
            [u.at(t=0) == 1, u.at(t=np.array([0.5])) == np.array([0.1])],
            parameters={"k": 4.0},
            unknown_parameters=[kp],
        )


def test_arithmetic_on_a_restricted_expression_says_how_to_write_it():
    with pytest.raises(TypeError, match=re.escape("(2*u + D(u, x)).at(x=0) == 1")):
        2 * u.at(t=0) == 1  # noqa: B015
    with pytest.raises(TypeError, match="restricted expression"):
        u.at(t=0) + 1 == 1  # noqa: B015
    with pytest.raises(TypeError, match="periodic"):
        u.at(t=1) - u.at(t=0) == 0  # noqa: B015
    with pytest.raises(TypeError, match="restricted expression"):
        -u.at(t=0) == 1  # noqa: B015


def test_one_condition_need_not_be_in_a_list():
    one = pd.Problem(D(u, t) + u == 0, INTERVAL, conditions=u.at(t=0) == 1)
    listed = pd.Problem(D(u, t) + u == 0, INTERVAL, conditions=[u.at(t=0) == 1])
    assert [str(c) for c in one.conditions] == [str(c) for c in listed.conditions]


def test_two_unknowns_are_refused():
    v = pd.Function("v")(t)
    with pytest.raises(NotImplementedError, match=re.escape("several unknowns (u(t), v(t))")):
        pd.Problem(D(u, t) + v == 0, INTERVAL)
    # a list of equations is a system (it used to say "Expected an equation, got list")
    with pytest.raises(NotImplementedError, match=r"list of 2 equations.*D\(u, t, 2\) == -u"):
        pd.Problem([D(u, t) == v, D(v, t) == -u], INTERVAL, [u.at(t=0) == 1])
    # a list of one equation is that equation
    one = pd.Problem([D(u, t) + u == 0], INTERVAL, [u.at(t=0) == 1])
    assert str(one.equation) == str(pd.Problem(D(u, t) + u == 0, INTERVAL, [u.at(t=0) == 1]).equation)
    # a condition on another function than the equation's (it used to say "several unknowns")
    with pytest.raises(ValueError, match=r"is on v\(t\), but the problem's unknown is u\(t\)"):
        pd.Problem(D(u, t) + u == 0, INTERVAL, [v.at(t=0) == 1])


def test_equation_used_as_an_operand():
    with pytest.raises(TypeError, match=r"equation cannot be used"):
        D(u, t) + (u == 0)


def test_an_order_before_the_coordinate_is_explained():
    with pytest.raises(TypeError, match=re.escape("D(u, x, 2)")):
        D(u, 2)


def test_a_complex_equation_is_refused_with_a_reason():
    problem = pd.Problem(D(u, t, 2) + sp.I * u == 0, INTERVAL, [u.at(t=0) == 1, D(u, t).at(t=0) == 0])
    model = pd.FBPINN(pd.Grid(INTERVAL, 2, 2.0), pd.Polynomial(3))
    with pytest.raises(ValueError, match="complex; pdedsl solves real-valued problems"):
        pd.solve(problem, model)


def test_coordinates_that_differ_only_in_assumptions_are_named():
    t_real = pd.Symbol("t", real=True)
    v = pd.Function("v")(t_real)
    with pytest.raises(ValueError, match="names match but the symbols differ in their assumptions"):
        pd.Problem(D(v, t_real) + v == 0, INTERVAL)
    problem = pd.Problem(D(u, t) + u == 0, INTERVAL, [u.at(t=0) == 1])
    sol = pd.solve(problem, pd.FBPINN(pd.Grid(INTERVAL, 2, 2.0), pd.Polynomial(6)))
    with pytest.raises(ValueError, match="other assumptions"):
        sol.errors(sp.exp(-t_real))
    assert sol.errors(sp.exp(-t))["rel_l2"] < 1e-6


def test_a_list_of_coordinates_is_not_taken_for_a_grid_shape():
    problem = pd.Problem(D(u, t) + u == 0, INTERVAL, [u.at(t=0) == 1])
    model = pd.FBPINN(pd.Grid(INTERVAL, 2, 2.0), pd.Polynomial(3))
    with pytest.raises(ValueError, match=r"\(N, d\) NumPy array"):
        pd.solve(problem, model, points=[0.1, 0.5, 0.9])
    with pytest.raises(ValueError, match="whole numbers of points per axis"):
        pd.solve(problem, model, points=[10.5])


def test_contradicting_conditions_are_refused():
    """u(0) = 1 and u(0) = 2 used to be averaged by the least-squares solve (u(0) = 1.5)."""
    with pytest.raises(ValueError, match="contradict each other on t = 0"):
        pd.Problem(D(u, t, 2) + u == 0, INTERVAL, [u.at(t=0) == 1, u.at(t=0) == 2])
    pd.Problem(D(u, t, 2) + u == 0, INTERVAL, [u.at(t=0) == 1, u.at(t=0) == 1.0])  # repeated, consistent
    w = pd.Function("w")(x, y)
    square = pd.Box([x, y], [0, 0], [1, 1])
    with pytest.raises(ValueError, match="contradict each other on x = 0"):
        pd.Problem(D(w, x, 2) + D(w, y, 2) == 0, square, [w.on(pd.boundary) == 0, w.at(x=0) == sp.sin(y)])
    # the same data on the shared face (x vanishes on x = 0): no contradiction
    pd.Problem(D(w, x, 2) + D(w, y, 2) == 0, square, [w.on(pd.boundary) == x, w.at(x=0) == 0])
