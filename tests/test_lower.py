"""Lowering against truth.

Each linear operator is written in the DSL, lowered to `sum_a c_a D^a u = g`, compiled
to JAX, and applied (through JAX forward-mode derivatives) to a smooth non-polynomial
test function. The result, minus the compiled right-hand side, must equal sympy's own
evaluation of the equation's residual at that function.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import pdedsl as pd
from pdedsl import D, Dn
from pdedsl.lower import LinearForm, apply_to_function, compile_scalar, lower_linear
from pdedsl.symbolic import Equation

x, y, z = pd.Symbol("x"), pd.Symbol("y"), pd.Symbol("z")
a = pd.Symbol("a")  # a plain sympy symbol, given its value through values= / parameters=
beta = pd.Symbol("beta")  # a plain sympy symbol that is never given a value
A_VALUE = 2.0
k = pd.Parameter("k", 3.0)

u1 = pd.Function("u")(x)
u2 = pd.Function("u")(x, y)
u3 = pd.Function("u")(x, y, z)
COORDS = {1: (x,), 2: (x, y), 3: (x, y, z)}

# Smooth, non-polynomial test functions, written twice: in sympy (the truth) and by
# hand in JAX (what the compiled operator is applied to), one point of shape (d,).
G_SYMPY = {
    1: sp.sin(x) * sp.exp(x / 2) + 1 / (2 + x),
    2: sp.sin(x) * sp.exp(y / 2) + sp.cos(x * y),
    3: sp.sin(x) * sp.exp(y / 2) * sp.cos(z) + sp.sin(x * y * z),
}
G_JAX = {
    1: lambda p: jnp.sin(p[0]) * jnp.exp(p[0] / 2) + 1 / (2 + p[0]),
    2: lambda p: jnp.sin(p[0]) * jnp.exp(p[1] / 2) + jnp.cos(p[0] * p[1]),
    3: lambda p: jnp.sin(p[0]) * jnp.exp(p[1] / 2) * jnp.cos(p[2]) + jnp.sin(p[0] * p[1] * p[2]),
}
POINTS = {d: jnp.asarray(np.random.default_rng(d).uniform(0.2, 1.4, size=(50, d))) for d in (1, 2, 3)}


def dim(u) -> int:
    return len(u.expr.args)


def operator_minus_rhs(eq: Equation, u, values=None) -> np.ndarray:
    """`sum_a c_a D^a g - rhs` at the test points, entirely through the lowered, compiled form.

    Jitted: faster than op-by-op dispatch, and checks that compiled forms trace under jit."""
    d = dim(u)
    form = lower_linear(eq.residual, u.expr, COORDS[d], values=values)
    compiled = form.compile()
    apply = jax.jit(lambda pts: apply_to_function(compiled, G_JAX[d], pts) - compiled.rhs(pts))
    return np.asarray(apply(POINTS[d]))


def sympy_residual_at_g(eq: Equation, u, values=None) -> np.ndarray:
    """sympy's own evaluation of `lhs - rhs` with u -> g, at the test points."""
    d = dim(u)
    residual = eq.residual.xreplace({p: p.value for p in eq.residual.atoms(pd.Parameter)})
    residual = residual.xreplace({s: sp.Float(v) for s, v in (values or {}).items()})
    residual_of_g = residual.subs(u.expr, G_SYMPY[d]).doit()
    assert residual_of_g.free_symbols <= set(COORDS[d])
    pts = np.asarray(POINTS[d])
    value = sp.lambdify(COORDS[d], residual_of_g, "numpy")(*pts.T)
    return np.broadcast_to(np.asarray(value, dtype=float), pts.shape[:1])


def rel_err(got, want) -> float:
    return float(np.linalg.norm(got - want) / np.linalg.norm(want))


OPERATORS = [
    pytest.param(D(u1, x, 2) + 4 * u1 == sp.sin(x), u1, None, id="1d-order2-const"),
    pytest.param((1 + x**2) * D(u1, x) - x * u1 == x**3, u1, None, id="1d-order1-variable"),
    pytest.param(D(u1, x, 3) + sp.exp(x) * D(u1, x) == sp.cos(x), u1, None, id="1d-order3-exp-coefficient"),
    pytest.param(D(u1, x, 4) - k * u1 == k * x, u1, None, id="1d-order4-Parameter"),
    pytest.param(D(x * u1, x) == 1, u1, None, id="1d-product-D(x*u,x)"),
    pytest.param(
        D(sp.sin(x) * D(u1, x), x) + u1 / (1 + x) == 0, u1, None, id="1d-divergence-form-sin-coefficient"
    ),
    pytest.param(D(u1, x, 2) / (2 + sp.sin(x)) + u1 / a == a, u1, {a: A_VALUE}, id="1d-quotient-values"),
    pytest.param(D(u2, x, 2) + D(u2, y, 2) == -2 * sp.sin(x) * sp.sin(y), u2, None, id="2d-poisson-const"),
    pytest.param(D(u2, x, y) + x * y * u2 == x + y, u2, None, id="2d-mixed-D(u,x,y)"),
    pytest.param(D(u2, x, 2, y) + sp.sin(x) * D(u2, y) == 0, u2, None, id="2d-mixed-D(u,x,2,y)"),
    pytest.param(
        D(u2, x, 4) + 2 * D(u2, x, 2, y, 2) + D(u2, y, 4) == sp.exp(x * y), u2, None, id="2d-biharmonic"
    ),
    pytest.param(
        a * D(u2, x, 2) + D(u2, y) + a**2 * u2 == a * x, u2, {a: A_VALUE}, id="2d-symbol-via-values"
    ),
    pytest.param(
        D(u2, y) + sp.cos(x) * D(u2, x) - (1 + y**2) * D(u2, x, 2) == sp.exp(-y),
        u2,
        None,
        id="2d-advection-diffusion-variable",
    ),
    pytest.param(D(u3, x, y, z) + D(u3, z, 2) == x * y * z, u3, None, id="3d-mixed-D(u,x,y,z)"),
    pytest.param(
        D(u3, x, 2) + D(u3, y, 2) + D(u3, z, 2) + k**2 * u3 == 0, u3, None, id="3d-helmholtz-Parameter"
    ),
    pytest.param(
        (1 + z**2) * D(u3, x, 2, y, z) - sp.exp(-x) * D(u3, y, 3) + D(u3, x) == sp.sin(y),
        u3,
        None,
        id="3d-order4-mixed-variable",
    ),
    pytest.param(
        D(sp.exp(x) * D(u3, x), x) + D((1 + y**2) * D(u3, y), y) + D(x * u3, z) == 0,
        u3,
        None,
        id="3d-divergence-form",
    ),
]


@pytest.mark.parametrize("eq, u, values", OPERATORS)
def test_lowered_operator_matches_sympy(eq, u, values):
    want = sympy_residual_at_g(eq, u, values)
    assert np.linalg.norm(want) > 1e-3  # the comparison is not between two near-zero vectors
    got = operator_minus_rhs(eq, u, values)
    assert got.shape == want.shape
    assert rel_err(got, want) <= 1e-10


def test_harness_detects_a_wrong_operator():
    # Guard against a comparison that always passes: a different operator must fail it.
    got = operator_minus_rhs(D(u2, x, 2) + D(u2, y, 2) == 0, u2)
    want = sympy_residual_at_g(D(u2, x, 2) + D(u2, y, 2) + 1e-3 * D(u2, x, y) == 0, u2)
    assert rel_err(got, want) > 1e-6


@pytest.mark.parametrize(
    "eq, u",
    [
        pytest.param(
            D(u3, x) - (1 + x**2) * (D(u3, y, 2) + D(u3, z, 2)) == 0, u3, id="variable-diffusivity-heat"
        ),
        pytest.param(x * (D(u1, x) + u1) == sp.sin(x), u1, id="x*(D(u,x)+u)=sin(x)"),
        pytest.param(D((1 + x**2) * (D(u1, x) + u1), x) == 0, u1, id="divergence-form-of-a-sum"),
    ],
)
def test_coefficient_times_sum_is_linear(eq, u):
    want = sympy_residual_at_g(eq, u)
    got = operator_minus_rhs(eq, u)
    assert rel_err(got, want) <= 1e-10


def test_problem_parameters_give_the_same_form_as_values():
    eq = a * D(u2, x, 2) + D(u2, y, 2) + a * y * u2 == a * sp.sin(x)
    direct = lower_linear(eq.residual, u2.expr, (x, y), values={a: A_VALUE})
    problem = pd.Problem(eq, pd.Box([x, y], [0, 0], [1, 1]), parameters={a: A_VALUE})
    via_problem = problem.equation_form
    assert direct.multi_indices == via_problem.multi_indices == ((0, 0), (2, 0), (0, 2))
    for c1, c2, want in zip(direct.coefficients, via_problem.coefficients, (2 * y, 2, 1), strict=True):
        assert sp.simplify(c1 - want) == 0
        assert sp.simplify(c2 - want) == 0
    assert sp.simplify(direct.rhs - 2 * sp.sin(x)) == 0
    assert sp.simplify(via_problem.rhs - 2 * sp.sin(x)) == 0
    assert a not in direct.rhs.free_symbols


@pytest.mark.parametrize(
    "eq, u, indices, coefficients",
    [
        pytest.param(D(u2, x, 2) + D(u2, y, 2) == 0, u2, ((2, 0), (0, 2)), (1, 1), id="laplacian"),
        pytest.param(D(x * u1, x) == 0, u1, ((0,), (1,)), (1, x), id="D(x*u,x)"),
        pytest.param(D(u3, x, y, z) + k * u3 == 0, u3, ((0, 0, 0), (1, 1, 1)), (3, 1), id="D(u,x,y,z)+k*u"),
        pytest.param(
            D(u2, x, 2, y) + y * D(u2, x) == 0, u2, ((1, 0), (2, 1)), (y, 1), id="D(u,x,2,y)+y*D(u,x)"
        ),
        pytest.param(D(u2, y, x) + D(u2, x, y) == 0, u2, ((1, 1),), (2,), id="mixed-partials-merge"),
        pytest.param(
            D(u2, x, 2) + sp.sin(y) * D(u2, x, 2) - sp.sin(y) * D(u2, x, 2) + u2 == 0,
            u2,
            ((0, 0), (2, 0)),
            (1, 1),
            id="cancelling-coefficients",
        ),
    ],
)
def test_multi_indices_and_coefficients(eq, u, indices, coefficients):
    form = lower_linear(eq.residual, u.expr, COORDS[dim(u)])
    assert isinstance(form, LinearForm)
    assert form.multi_indices == indices
    assert len(form.coefficients) == len(coefficients)
    for got, want in zip(form.coefficients, coefficients):
        assert sp.simplify(got - want) == 0, (got, want)
    assert form.order == max(sum(i) for i in indices)


@pytest.mark.parametrize(
    "f",
    [
        pytest.param(0, id="zero"),
        pytest.param(2.5, id="float"),
        pytest.param(np.float64(-1.5), id="numpy-float64"),
        pytest.param(sp.sin(x) * y + sp.exp(-x), id="sympy-expression"),
    ],
)
def test_rhs_extraction(f):
    form = lower_linear((D(u2, x, 2) + u2 == f).residual, u2.expr, (x, y))
    assert sp.simplify(form.rhs - sp.sympify(float(f) if isinstance(f, np.floating) else f)) == 0
    pts = POINTS[2]
    got = np.asarray(form.compile().rhs(pts))
    want = np.broadcast_to(
        np.asarray(sp.lambdify((x, y), sp.sympify(f), "numpy")(*np.asarray(pts).T), dtype=float), (50,)
    )
    assert got.shape == (50,)
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=0)


def test_rhs_collects_terms_free_of_the_unknown_from_both_sides():
    # D(u,x,2) + cos(x) + k = x  ->  D(u,x,2) = x - cos(x) - 3
    form = lower_linear((D(u1, x, 2) + sp.cos(x) + k == x).residual, u1.expr, (x,))
    assert form.multi_indices == ((2,),)
    assert sp.simplify(form.rhs - (x - sp.cos(x) - 3)) == 0


NONLINEAR = [
    pytest.param(u1 * D(u1, x), "u*D(u, x)", id="u*D(u,x)"),
    pytest.param(u1**2, "u**2", id="u**2"),
    pytest.param(sp.sin(u1.expr), "sin(u)", id="sin(u)"),
    pytest.param(D(u1, x) ** 2, "D(u, x)**2", id="D(u,x)**2"),
]


@pytest.mark.parametrize("term, name", NONLINEAR)
def test_nonlinear_term_is_refused_and_named(term, name):
    assert issubclass(pd.NonlinearError, NotImplementedError)
    assert pd.lower.NonlinearError is pd.NonlinearError
    eq = D(u1, x, 2) + x * u1 + term == sp.sin(x)
    with pytest.raises(pd.NonlinearError, match=re.escape(f"`{name}`")) as info:
        lower_linear(eq.residual, u1.expr, (x,))
    # only the offending term is named, not the linear ones
    assert "x*u" not in str(info.value)


def test_equation_without_the_unknown_is_refused():
    with pytest.raises(ValueError, match="does not contain the unknown u"):
        lower_linear(sp.sin(x) - 1, u1.expr, (x,))
    # D(u + x, x) - D(u, x) = 1: the unknown's derivative cancels
    with pytest.raises(ValueError, match="does not contain the unknown u"):
        lower_linear((D(u1 + x, x) - D(u1, x) == 0).residual, u1.expr, (x,))
    # (x + 1) u - x u - u = 0: the unknown occurs but its coefficients cancel
    with pytest.raises(ValueError, match="cancels out"):
        lower_linear(((x + 1) * u1 - x * u1 - u1 == 0).residual, u1.expr, (x,))
    with pytest.raises(ValueError, match=re.escape("sin(x)")):
        pd.Problem(sp.Eq(sp.sin(x), 0), pd.Interval(x, 0, 1))


def test_unbound_symbol_is_named_at_compile_time():
    with pytest.raises(ValueError, match="beta"):
        compile_scalar(beta * x, (x,))
    form = lower_linear((beta * D(u1, x, 2) + u1 == 0).residual, u1.expr, (x,))
    with pytest.raises(ValueError, match="beta"):
        form.compile()
    kappa = pd.Parameter("kappa")  # no value
    form = lower_linear((D(u1, x, 2) + u1 == kappa).residual, u1.expr, (x,))
    with pytest.raises(ValueError, match="kappa"):
        form.compile()
    # with a value it compiles and evaluates
    bound = lower_linear((beta * D(u1, x, 2) + u1 == 0).residual, u1.expr, (x,), values={beta: 5.0})
    compiled = bound.compile()
    np.testing.assert_allclose(np.asarray(compiled.coefficients[1](POINTS[1])), 5.0, rtol=0, atol=0)


def test_unbound_symbol_is_named_by_problem():
    with pytest.raises(ValueError, match="beta"):
        pd.Problem(beta * D(u1, x, 2) + u1 == 0, pd.Interval(x, 0, 1))


@pytest.mark.parametrize(
    "u, normal",
    [
        pytest.param(u1, (-1.0,), id="1d-left"),
        pytest.param(u2, (1.0, 0.0), id="2d-x-upper"),
        pytest.param(u2, (0.0, -1.0), id="2d-y-lower"),
        pytest.param(u3, (0.0, 0.0, 1.0), id="3d-z-upper"),
    ],
)
def test_normal_derivative_substituted(u, normal):
    d = dim(u)
    coords = COORDS[d]
    form = lower_linear((Dn(u) + 2 * u).expr - sp.cos(x), u.expr, coords, normal=normal)
    axis = int(np.flatnonzero(normal)[0])
    unit = tuple(int(i == axis) for i in range(d))
    assert form.multi_indices == ((0,) * d, unit)
    assert form.coefficients[0] == 2
    assert form.coefficients[1] == normal[axis]
    g = G_SYMPY[d]
    truth = sum(n * sp.diff(g, c) for n, c in zip(normal, coords)) + 2 * g - sp.cos(x)
    pts = POINTS[d]
    want = sp.lambdify(coords, truth, "numpy")(*np.asarray(pts).T)
    compiled = form.compile()
    got = np.asarray(jax.jit(lambda p: apply_to_function(compiled, G_JAX[d], p) - compiled.rhs(p))(pts))
    assert rel_err(got, want) <= 1e-10


def test_normal_derivative_needs_a_normal():
    with pytest.raises(ValueError, match="normal"):
        lower_linear((Dn(u2) + u2).expr, u2.expr, (x, y))


def test_normal_derivative_on_each_face_of_the_boundary():
    box = pd.Box([x, y], [0, 0], [1, 2])
    problem = pd.Problem(D(u2, x, 2) + D(u2, y, 2) == 0, box, [(Dn(u2) + u2).on(pd.boundary) == 0])
    got = {(c.region.axis, c.region.value): c.form for c in problem.lowered_conditions}
    assert set(got) == {(0, 0.0), (0, 1.0), (1, 0.0), (1, 2.0)}
    for (axis, value), form in got.items():
        sign = -1.0 if value == 0.0 else 1.0
        unit = (1, 0) if axis == 0 else (0, 1)
        assert form.multi_indices == ((0, 0), unit)
        assert form.coefficients == (1, sign)


@pytest.mark.parametrize(
    "value, want",
    [
        pytest.param(sp.Integer(3), 3.0, id="integer"),
        pytest.param(sp.Float(2.5), 2.5, id="float"),
        pytest.param(sp.Integer(0), 0.0, id="zero"),
        pytest.param(sp.pi, np.pi, id="pi"),
        pytest.param(-7, -7.0, id="python-int"),
    ],
)
def test_compile_scalar_constant_broadcasts(value, want):
    fn = compile_scalar(value, (x, y))
    pts = POINTS[2]
    out = fn(pts)
    assert out.shape == (50,)
    assert out.dtype == jnp.float64
    np.testing.assert_array_equal(np.asarray(out), np.full(50, want))


def test_compile_scalar_of_one_coordinate_in_3d():
    out = np.asarray(compile_scalar(sp.sin(y), (x, y, z))(POINTS[3]))
    assert out.shape == (50,)
    np.testing.assert_allclose(out, np.sin(np.asarray(POINTS[3])[:, 1]), rtol=1e-15)


def test_compile_scalar_refuses_the_unknown():
    with pytest.raises(ValueError, match="unknown"):
        compile_scalar(u1.expr + x, (x,))


# -- coefficients that are not smooth under a derivative ---------------------------


def _dirichlet_1d(lhs, rhs=1):
    return pd.Problem(lhs == rhs, pd.Interval(x, 0, 1), [U1.at(x=0) == 0, U1.at(x=1) == 0])


U1 = pd.Function("u")(x)


def test_a_jumping_coefficient_under_a_derivative_is_refused_not_solved_wrong():
    """-(k u')' = 1 with k = 1 | 10 jumping at 0.5: the product rule drops the delta,
    and the solve converged to u(0.5) = 0.069 (the right answer is 0.023)."""
    k = sp.Piecewise((1, x < 0.5), (10, True))
    with pytest.raises(NotImplementedError, match=r"not smooth \(at x = 0.5, where it jumps by -9\)"):
        _dirichlet_1d(-D(k * D(U1, x), x))
    with pytest.raises(NotImplementedError, match=r"Heaviside\(x - 0.5\), which is not smooth"):
        _dirichlet_1d(-D((1 + 9 * sp.Heaviside(x - 0.5)) * D(U1, x), x))
    with pytest.raises(NotImplementedError, match="first derivative jumps"):
        _dirichlet_1d(D(sp.Abs(x - 0.5) * U1, x, 2))
    with pytest.raises(NotImplementedError, match="a point source"):
        _dirichlet_1d(-D(U1, x, 2), sp.DiracDelta(x - 0.5))
    v = pd.Function("v")(x, y)
    inclusion = sp.Piecewise((1, x**2 + y**2 < 0.25), (10, True))
    with pytest.raises(NotImplementedError, match=r"between the pieces 1 and 10"):
        pd.Problem(
            D(inclusion * D(v, x), x) + D(inclusion * D(v, y), y) == 1,
            pd.Box([x, y], [-1, -1], [1, 1]),
            [v.on(pd.boundary) == 0],
        )
    # the same coefficients where no derivative acts on them are fine
    _dirichlet_1d(-k * D(U1, x, 2))
    _dirichlet_1d(-D(U1, x, 2), k)


def test_a_continuous_piecewise_coefficient_under_one_derivative_is_accepted_and_exact():
    """k continuous with a kink: k' jumps but has no delta, so the strong form holds."""
    k = sp.Piecewise((1 + x, x < 0.5), (2 - x, True))
    exact = sp.sin(sp.pi * x)
    f = -sp.diff(k * sp.diff(exact, x), x)
    problem = _dirichlet_1d(-D(k * D(U1, x), x), f)
    sol = pd.solve(problem, pd.FBPINN(pd.Grid(problem.domain, 8, 2.0), pd.Polynomial(8)))
    assert sol.errors(exact)["rel_l2"] < 1e-8
    # a C^1 piecewise coefficient under a second derivative is accepted too (x^2 | x - 1/4)
    _dirichlet_1d(D(sp.Piecewise((x**2, x < 0.5), (x - 0.25, True)) * U1, x, 2))
    with pytest.raises(NotImplementedError, match="derivative of order 1 jumps"):
        _dirichlet_1d(D(k * U1, x, 2))


def test_abs_under_a_derivative_lowers_as_for_real_arguments():
    """sympy differentiates Abs of a symbol without assumptions through re() and im(),
    which cannot be lowered; pdedsl's quantities are real: d|a|/dx = sign(a) a'."""
    k = 1 + sp.Abs(x - 0.5)
    exact = sp.sin(sp.pi * x)
    f = -sp.diff(k * sp.diff(exact, x), x)  # sympy's own derivative, with re() and im() inside
    assert f.has(sp.re)
    problem = _dirichlet_1d(-D(k * D(U1, x), x), f)
    form = problem.equation_form
    coeff = dict(zip(form.multi_indices, form.coefficients))
    pts = np.array([0.1, 0.4, 0.6, 0.9])
    first = sp.lambdify(x, coeff[(1,)], "numpy")(pts)
    assert np.allclose(first, -np.sign(pts - 0.5))  # -(k u')' = -k' u' - k u''
    sol = pd.solve(problem, pd.FBPINN(pd.Grid(problem.domain, 8, 2.0), pd.Polynomial(8)))
    assert sol.errors(exact)["rel_l2"] < 1e-10  # measured 5.1e-14


def test_abs_of_a_derivative_of_the_unknown_is_a_nonlinear_term():
    """abs(D(u, x)) (a p-Laplacian-like flux (1 + |u'|) u'): Gauss-Newton to rounding."""
    exact = sp.sin(sp.pi * x)
    ux = sp.diff(exact, x)
    f = -sp.diff((1 + sp.Abs(ux)) * ux, x) + exact
    problem = _dirichlet_1d(-D((1 + abs(D(U1, x))) * D(U1, x), x) + U1, f)
    assert not problem.linear
    sol = pd.solve(problem, pd.FBPINN(pd.Grid(problem.domain, 8, 2.0), pd.Polynomial(8)))
    assert sol.errors(exact)["rel_l2"] < 1e-10  # measured 3.6e-13 in 7 Gauss-Newton steps


def test_forms_that_differ_only_in_their_numbers_share_their_compiled_code():
    """The floats of a coefficient or right-hand side are array leaves (`constants`),
    not compiled in: a parameter sweep reuses one compiled function per template,
    and each form still evaluates with its own numbers. Exponents stay part of the
    code (x**2.5 is not x**c)."""
    forms = []
    for kv in (1.5, 2.5):
        ex = kv * x**2.5 + sp.sin(0.3 * kv * x)
        forms.append(lower_linear((D(u2, x, 2) + kv * u2 == ex).residual, u2.expr, (x, y)).compile())
    (first, second), pts = forms, jnp.array([[0.5, 0.0], [2.0, 0.0]])
    assert first.rhs.fn is second.rhs.fn
    assert first.coefficients[0].fn is second.coefficients[0].fn  # of u (order 0 first)
    for kv, form in zip((1.5, 2.5), forms):
        want = kv * pts[:, 0] ** 2.5 + np.sin(0.3 * kv * pts[:, 0])
        np.testing.assert_allclose(np.asarray(form.rhs(pts)), want, rtol=1e-14)
        np.testing.assert_allclose(np.asarray(form.coefficients[0](pts)), [kv, kv], rtol=0)
    other = compile_scalar(1.5 * x**1.5, (x, y))  # another exponent: other code
    assert other.fn is not first.rhs.fn
    # integers and rationals as factors or terms are numbers too (a sweep over a mode n)
    modes = [compile_scalar(n * sp.sin(n * sp.pi * x) + sp.Rational(1, n), (x, y)) for n in (2, 3)]
    assert modes[0].fn is modes[1].fn
    for n, mode in zip((2, 3), modes):
        want = n * np.sin(n * np.pi * pts[:, 0]) + 1 / n
        np.testing.assert_allclose(np.asarray(mode(pts)), want, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(np.asarray(other(pts)), 1.5 * pts[:, 0] ** 1.5, rtol=1e-14)
    # a value is passed exactly, not through a 15-digit printout of it
    third = float(np.float64(1) / 3)
    assert float(np.asarray(compile_scalar(third * x, (x,))(jnp.ones((1, 1))))[0]) == third
