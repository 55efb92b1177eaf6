import gc

import jax
import pytest

jax.config.update("jax_enable_x64", True)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_code():
    """Drop JAX's compiled executables after each test module.

    Every compiled executable keeps ~3 memory mappings of machine code alive for as
    long as JAX caches it. The whole suite compiles ~20,000 distinct functions, which
    reaches Linux's default limit of 65,530 mappings per process
    (/proc/sys/vm/max_map_count); the next compilation then fails to map its code and
    XLA segfaults (measured 2026-12-03: 48,000+ mappings at 80% of the suite, then
    SIGSEGV inside `backend_compile_and_load`). Modules share little compiled code, so
    clearing between them costs little.
    """
    yield
    jax.clear_caches()
    gc.collect()


@pytest.fixture
def key():
    return jax.random.PRNGKey(0)


@pytest.fixture
def getkey():
    keys = iter(jax.random.split(jax.random.PRNGKey(1234), 1000))
    return lambda: next(keys)
