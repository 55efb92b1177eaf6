import atexit
import gc
import os
import shutil
import tempfile
import warnings

# JAX's persistent compilation cache, in a fresh directory for this run: compiling is
# about 70% of the suite's time (two modules: 216 s cold, 66 s with every executable
# already on disk), and without a shared cache each xdist worker, each test module
# (after the clearing below) and each subprocess (examples, benchmarks, sharded
# solves) compiles again what another has compiled. Set before JAX is imported so that
# xdist's workers and the subprocesses inherit it; a directory the user set is kept.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _cache_dir = tempfile.mkdtemp(prefix="pdedsl-tests-jax-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache_dir
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    atexit.register(shutil.rmtree, _cache_dir, ignore_errors=True)

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_code():
    """Drop JAX's compiled executables after each test module.

    Every compiled executable keeps ~3 memory mappings of machine code alive for as
    long as JAX caches it. The whole suite compiles ~20,000 distinct functions, which
    reaches Linux's default limit of 65,530 mappings per process
    (/proc/sys/vm/max_map_count); the next compilation then fails to map its code and
    XLA segfaults (measured 2026-12-03 under gdb: 65,193 mappings at ~86% of the
    suite, then SIGSEGV while XLA raised the failed compile). The price is compiling
    again what a later module shares with an earlier one (not measured apart; the
    suite took 942-1,082 s in three CI runs that day). With the clearing, the
    process peaked at 33,573 mappings (its largest module); a module ending past
    45,000 gets a warning to split it.
    """
    yield
    mapped = _mappings()
    if mapped is not None and mapped > 45_000:
        warnings.warn(
            f"this test module left {mapped} memory mappings (limit about 65,530): split it",
            stacklevel=1,
        )
    jax.clear_caches()
    gc.collect()


def _mappings() -> int | None:
    try:
        with open(f"/proc/{os.getpid()}/maps") as f:
            return sum(1 for _ in f)
    except OSError:  # not Linux
        return None


@pytest.fixture
def key():
    return jax.random.PRNGKey(0)


@pytest.fixture
def getkey():
    keys = iter(jax.random.split(jax.random.PRNGKey(1234), 1000))
    return lambda: next(keys)
