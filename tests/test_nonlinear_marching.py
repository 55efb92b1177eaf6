"""Time marching of nonlinear problems: a Gauss-Newton solve per stage."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import pdedsl as pd
from pdedsl import D
from pdedsl.solve import marching
from pdedsl.solve.marching_nonlinear import _Setup, nonlinear_stage_solver
from pdedsl.solve.nonlinear import _jacobian, _raw_residual

T = 4.0


@pytest.fixture(scope="module")
def riccati():
    """u' = -u^2 on [0, 4], u(0) = 1: u = 1 / (1 + t)."""
    t = pd.Symbol("t")
    u = pd.Function("u")(t)
    problem = pd.Problem(D(u, t) + u**2 == 0, domain=pd.Interval(t, 0, T), conditions=[u.at(t=0) == 1])
    model = pd.FBPINN(pd.Grid(problem.domain, 12, 2.0), pd.RandomFeatures(10))
    return problem, model, 1 / (1 + t), t


def _blocks(problem, model, n=300):
    from pdedsl.solve.solve import collocation

    blocks = collocation(problem, model, n)
    forms = [problem.equation_form] + [c.form for c in problem.lowered_conditions]
    return [(name, f, pts, None) for (name, _, pts), f in zip(blocks, forms)]


def test_marched_riccati_equation(riccati):
    problem, model, exact, t = riccati
    sol = pd.solve(problem, model, points=300, schedule=pd.TimeMarching(t, active=3))
    stages = sol.info["stages"]
    assert len(stages) == 12 - 3 + 1
    assert all(s["unknowns"] == 3 * 10 and s["success"] for s in stages)
    assert all(2 <= s["nonlinear_steps"] <= 12 for s in stages)
    assert sol.info["success"]
    assert sol.errors(exact)["rel_l2"] < 1e-7  # measured 8.4e-9 (global solve: 1.8e-10)
    report = sol.report()
    assert "stage   9: slabs 9-11, 30 unknowns" in report and "GaussNewton steps, residual" in report


def test_damped_pendulum_against_solve_ivp():
    """u'' + 0.5 u' + 9 sin(u) = 0, u(0) = 2, u'(0) = 0 on [0, 6]: a nonlinearity that is not
    polynomial, with second derivatives. The global Gauss-Newton solve of the same model from
    its linear part lands in a wrong minimum (rel_l2 2.7); marching follows the trajectory."""
    t = pd.Symbol("t")
    u = pd.Function("u")(t)
    problem = pd.Problem(
        D(u, t, 2) + 0.5 * D(u, t) + 9 * pd.sin(u) == 0,
        domain=pd.Interval(t, 0, 6),
        conditions=[u.at(t=0) == 2, D(u, t).at(t=0) == 0],
    )
    ref = solve_ivp(
        lambda s, y: [y[1], -0.5 * y[1] - 9 * np.sin(y[0])],
        (0, 6),
        [2.0, 0.0],
        rtol=1e-12,
        atol=1e-12,
        dense_output=True,
    )
    model = pd.FBPINN(pd.Grid(problem.domain, 15, 2.0), pd.RandomFeatures(12))
    sol = pd.solve(problem, model, points=400, schedule=pd.TimeMarching(t, active=3))
    assert all(s["unknowns"] == 36 for s in sol.info["stages"])
    ts = np.linspace(0, 6, 2001)
    err = sol.errors(lambda x: ref.sol(np.asarray(x)[:, 0])[0], points=ts[:, None])
    assert err["rel_l2"] < 5e-6  # measured 4.6e-7 (8.7e-6 with initial="linear")


def test_frozen_coefficients_never_change(riccati):
    """Drive the Gauss-Newton stages one by one: a subdomain frozen at stage s keeps its
    coefficients bit for bit through every later stage."""
    problem, model, _, t = riccati
    schedule = pd.TimeMarching(t, active=3)
    setup = _Setup(schedule, problem, model, _blocks(problem, model), pd.GaussNewton())
    step = nonlinear_stage_solver(setup)
    snapshots = [np.asarray(a) for _, a, _ in marching.march(setup.plan, jnp.zeros((12, 10)), step)]
    for s, stage in enumerate(setup.plan.stages):
        frozen = np.flatnonzero(setup.plan.frozen(stage))
        for later in snapshots[s:]:
            assert np.array_equal(later[frozen], snapshots[s][frozen])
        assert not np.array_equal(snapshots[s][stage.ids], np.zeros((len(stage.ids), 10)))


def test_frozen_part_enters_inside_the_nonlinearity(riccati):
    """A stage's residual at its active coefficients equals the full problem's residual (frozen
    and active coefficients together) on the stage's rows, and its Jacobian is the derivative of
    that in the active coefficients only."""
    problem, model, _, t = riccati
    setup = _Setup(pd.TimeMarching(t, active=3), problem, model, _blocks(problem, model), pd.GaussNewton())
    stage = setup.plan.stages[4]
    c = jax.random.normal(jax.random.PRNGKey(1), (12, 10))
    c = c.at[np.flatnonzero(setup.plan.slab > stage.hi - 1)].set(0.0)  # future subdomains unsolved
    ids = jnp.asarray(stage.ids)
    srm = setup.restrict(setup.rm, stage, c)
    rows, valid = setup.rows(stage)
    theta = jnp.zeros(0)
    full = np.asarray(_raw_residual(setup.rm, (c, theta)))
    starts = [a for _, a, _ in setup.rm.groups]
    want = np.concatenate([full[a + r] for a, r in zip(starts, rows)])
    got = np.asarray(_raw_residual(srm, (c[ids], theta)))
    assert stage.lo > 0 and np.sum(np.concatenate(valid)) > 0
    assert np.allclose(got, want, rtol=1e-12, atol=1e-12)
    # the frozen part is really there (as an offset of U inside u^2): without it the rows differ
    bare = eqx.tree_at(
        lambda r: [b.offset for b in r.blocks], srm, [jnp.zeros_like(b.offset) for b in srm.blocks]
    )
    assert not np.allclose(np.asarray(_raw_residual(bare, (c[ids], theta))), want, rtol=1e-3)

    def stage_residual(ca):
        return srm.residual((ca, theta))

    jac = jax.jit(jax.jacfwd(stage_residual))(c[ids]).reshape(len(got), -1)
    system = _jacobian(srm, (c[ids], theta), jnp.zeros(len(got)))
    assert np.allclose(np.asarray(system.dense()), np.asarray(jac), rtol=1e-10, atol=1e-12)


def test_marching_refuses_what_it_cannot_do(riccati):
    problem, model, _, t = riccati
    u = pd.Function("u")(t)
    k = pd.Symbol("k")
    tobs = np.linspace(0.5, 3.5, 8)
    inverse = pd.Problem(
        D(u, t) + k * u**2 == 0,
        domain=problem.domain,
        conditions=[u.at(t=0) == 1, u.at(t=tobs) == 1 / (1 + tobs)],
        unknown_parameters={k: 0.5},
    )
    with pytest.raises(NotImplementedError, match="unknown parameters"):
        pd.solve(inverse, model, schedule=pd.TimeMarching(t, active=3))
    with pytest.raises(NotImplementedError, match="VariableProjection"):
        pd.solve(inverse, model, solver=pd.VariableProjection(), schedule=pd.TimeMarching(t, active=3))
    with pytest.raises(ValueError, match="previous"):
        pd.solve(problem, model, solver=pd.GaussNewton(initial="previous"))
    with pytest.raises(ValueError, match="initial has shape"):
        pd.solve(problem, model, solver=pd.GaussNewton(initial=np.zeros((3, 3))), schedule=pd.TimeMarching(t))


def test_marched_burgers_with_box_schwarz_stage_solves():
    """Each stage's Gauss-Newton linear solves by CG with BoxSchwarz, which groups the
    active subdomains by their centres (the stage Jacobians had none: "BoxSchwarz needs
    the subdomain centres"); the same answer as the default direct stage solves (measured
    1.6e-16 apart). TwoLevel is refused before any stage."""
    x, t = pd.Symbol("x"), pd.Symbol("t")
    u = pd.Function("u")(x, t)
    domain = pd.Box([x, t], [0, 0], [1, 1])
    problem = pd.Problem(
        D(u, t) + u * D(u, x) - 0.05 * D(u, x, 2) == 0,
        domain=domain,
        conditions=[u.at(t=0) == -pd.sin(np.pi * x), u.at(x=0) == 0, u.at(x=1) == 0],
    )
    model = pd.FBPINN(pd.Grid(domain, (6, 6), 2.0), pd.Polynomial(5))
    direct = pd.solve(problem, model, schedule=pd.TimeMarching(t))
    boxes = pd.solve(
        problem,
        model,
        schedule=pd.TimeMarching(t),
        solver=pd.GaussNewton(linear_solver=pd.CGNormal(pd.BoxSchwarz(), rtol=1e-12)),
    )
    p = domain.sample((30, 30))
    assert boxes.info["success"]
    assert np.linalg.norm(boxes(p) - direct(p)) <= 1e-8 * np.linalg.norm(direct(p))
    with pytest.raises(NotImplementedError, match="do not support TwoLevel"):
        pd.solve(
            problem,
            model,
            schedule=pd.TimeMarching(t),
            solver=pd.GaussNewton(linear_solver=pd.CGNormal(pd.TwoLevel())),
        )
