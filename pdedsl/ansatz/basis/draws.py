"""Uniform random draws in [-1, 1], computed on the host with NumPy.

The same numbers as `jax.random.split` and `jax.random.uniform` (float64, in [-1, 1])
with JAX's default Threefry-2x32 generator (`tests/test_ansatz.py` checks them bit for bit), without
compiling it: XLA took about 1 s for each new shape of a random-feature model's weights
(the hash's 20 rounds, compiled per shape), most of a cold 1D solve's 2.6 s. The hash is
Threefry-2x32 (Salmon, Moraes, Dror & Shaw, "Parallel random numbers: as easy as 1, 2,
3", SC 2011); the counters of an array are its flat indices, split in two 32-bit words,
as in JAX's "partitionable" layout.
"""

from __future__ import annotations

import jax
import numpy as np

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _threefry2x32(key: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    k1, k2 = np.uint32(key[0]), np.uint32(key[1])
    ks = (k1, k2, k1 ^ k2 ^ np.uint32(0x1BD11BDA))
    with np.errstate(over="ignore"):  # uint32 arithmetic wraps, as the hash intends
        a, b = hi + ks[0], lo + ks[1]
        for i in range(5):
            for r in _ROTATIONS[i % 2]:
                a = a + b
                b = (b << np.uint32(r)) | (b >> np.uint32(32 - r))
                b = a ^ b
            a = a + ks[(i + 1) % 3]
            b = b + ks[(i + 2) % 3] + np.uint32(i + 1)
    return a, b


def _counters(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    i = np.arange(int(np.prod(shape)), dtype=np.uint64).reshape(shape)
    return (i >> np.uint64(32)).astype(np.uint32), (i & np.uint64(0xFFFFFFFF)).astype(np.uint32)


def key_words(key) -> np.ndarray:
    """The two uint32 words of a JAX key (`jax.random.PRNGKey(seed)` or a typed
    `jax.random.key(seed)` of the default generator)."""
    if jax.dtypes.issubdtype(getattr(key, "dtype", None), jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    words = np.asarray(key)
    if words.shape != (2,) or words.dtype != np.uint32:
        raise ValueError(f"Expected a Threefry key (2 uint32 words, jax.random.PRNGKey(seed)), got {key!r}.")
    return words


def split(key, num: int = 2) -> np.ndarray:
    """`jax.random.split(key, num)`: (num, 2) uint32 words."""
    a, b = _threefry2x32(key_words(key), *_counters((num,)))
    return np.stack([a, b], axis=-1)


def uniform(key, shape: tuple[int, ...]) -> np.ndarray:
    """`jax.random.uniform(key, shape, float64, minval=-1.0, maxval=1.0)`.

    Only [-1, 1]: there `f * 2 - 1` is exact, while for other bounds XLA fuses JAX's
    `f * (maxval - minval) + minval` into one multiply-add, which NumPy rounds twice
    (the last bit differs)."""
    a, b = _threefry2x32(key_words(key), *_counters(tuple(shape)))
    bits = (a.astype(np.uint64) << np.uint64(32)) | b.astype(np.uint64)
    # 52 random mantissa bits under the exponent of 1.0: a float in [1, 2), minus 1
    floats = ((bits >> np.uint64(12)) | np.uint64(0x3FF0000000000000)).view(np.float64) - 1.0
    return np.maximum(-1.0, floats * 2.0 - 1.0)
