"""Shared test helpers."""

import jax
import jax.numpy as jnp
import numpy as np


def tree_allclose(x, y, *, rtol=1e-12, atol=1e-12) -> bool:
    """All leaves of two pytrees have equal structure and close values."""
    if jax.tree_util.tree_structure(x) != jax.tree_util.tree_structure(y):
        return False
    return all(
        np.allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)
        for a, b in zip(jax.tree_util.tree_leaves(x), jax.tree_util.tree_leaves(y), strict=True)
    )


def rel_err(a, b) -> float:
    """||a - b|| / ||b||."""
    a, b = jnp.asarray(a), jnp.asarray(b)
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))
