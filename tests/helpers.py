"""Shared test helpers."""

import contextlib
import logging
import re

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

import pdedsl as pd
from pdedsl import D, demos
from pdedsl.assemble import assemble
from pdedsl.solve import collocation


def tree_allclose(x, y, *, rtol=1e-12, atol=1e-12) -> bool:
    """All leaves of two pytrees have equal structure and close values."""
    if jax.tree_util.tree_structure(x) != jax.tree_util.tree_structure(y):
        return False
    return all(
        np.allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)
        for a, b in zip(jax.tree_util.tree_leaves(x), jax.tree_util.tree_leaves(y), strict=True)
    )


@contextlib.contextmanager
def compilations():
    """The names of the functions JAX compiles inside the block (a list, filled as
    they compile): an in-memory cache hit adds nothing; a miss adds the name, even
    where the persistent compilation cache then provides the executable."""
    names = []

    class Record(logging.Handler):
        def emit(self, record):
            m = re.match(r"Compiling (\S+)", record.getMessage())
            if m:
                names.append(m.group(1))

    logger, handler = logging.getLogger("jax"), Record(logging.DEBUG)
    logger.addHandler(handler)
    try:
        with jax.log_compiles(True):
            yield names
    finally:
        logger.removeHandler(handler)


def rel_err(a, b) -> float:
    """||a - b|| / ||b||."""
    a, b = jnp.asarray(a), jnp.asarray(b)
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


def dense_answer(system, damp=0.0):
    """min ||M D c - b||^2 + damp^2 ||c||^2 by NumPy's SVD least squares, D the unit
    column scaling; returns (coefficients a = D c, residual norm ||M a - b||)."""
    m = np.asarray(system.dense())
    b = np.asarray(system.rhs)
    norms = np.linalg.norm(m, axis=0)
    scale = np.where(norms > 0, 1 / np.where(norms > 0, norms, 1), 0)
    ms = m * scale
    if damp:
        ms = np.vstack([ms, damp * np.eye(ms.shape[1])])
        b = np.concatenate([b, np.zeros(ms.shape[1])])
    c = np.linalg.lstsq(ms, b, rcond=None)[0]
    a = c * scale
    return a, np.linalg.norm(m @ a - np.asarray(system.rhs))


def poisson_system(decomposition, basis, points):
    """Poisson on the unit square, u = sin(pi x) sin(pi y) exp(x), on `decomposition(box)`:
    (problem, model, system, exact)."""
    x, y = pd.Symbol("x"), pd.Symbol("y")
    v = pd.Function("v")(x, y)
    dom = pd.Box([x, y], [0, 0], [1, 1])
    exact = sp.sin(sp.pi * x) * sp.sin(sp.pi * y) * sp.exp(x)
    f = sp.diff(exact, x, 2) + sp.diff(exact, y, 2)
    problem = pd.Problem(D(v, x, 2) + D(v, y, 2) == f, domain=dom, conditions=[v.on(pd.boundary) == 0])
    model = pd.FBPINN(decomposition(dom), basis)
    return problem, model, assemble(model, collocation(problem, model, points=points)), exact


def poisson_3d_system(side, features, points):
    """The 3D Poisson demo on side^3 subdomains of tanh features: its system."""
    problem, _, _, _ = demos.poisson_3d()
    model = pd.FBPINN(pd.Grid(problem.domain, (side,) * 3, 2.0), pd.RandomFeatures(features))
    return assemble(model, collocation(problem, model, points=(points,) * 3))
