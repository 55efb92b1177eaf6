import jax
import pytest

jax.config.update("jax_enable_x64", True)


@pytest.fixture
def key():
    return jax.random.PRNGKey(0)


@pytest.fixture
def getkey():
    keys = iter(jax.random.split(jax.random.PRNGKey(1234), 1000))
    return lambda: next(keys)
