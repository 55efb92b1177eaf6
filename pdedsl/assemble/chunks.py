"""Loops over row chunks that never copy the large arrays they read or write.

Padding an (N, P, K) array to a multiple of the chunk size, stacking the chunks'
results and slicing the padding off each hold a second copy of the array: at 32^3
subdomains with degree-4 bases in 3D that is 7.4 GB more. Here the chunks start at
multiples of the chunk size, except the last, which is moved back to end at row n
(it overlaps the one before; the chunks are sized evenly, so by fewer rows than
there are chunks): `fill_rows` rewrites the overlap with identical
values, `sum_rows` masks it out.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _steps(n: int, chunk: int) -> tuple[int, int]:
    """(number of chunks, rows per chunk) for n rows in chunks of at most `chunk`:
    as few chunks as that allows, of equal size, so that the last chunk's overlap
    with the one before is under one row per chunk (with chunks of exactly `chunk`
    rows, 16,896 rows in chunks of 16,384 did the work of 32,768)."""
    chunk = max(1, min(int(n), int(chunk)))
    steps = -(-int(n) // chunk)
    return steps, -(-int(n) // steps)


def fill_rows(buffers: tuple, fn, n: int, chunk: int, start: int = 0) -> tuple:
    """Write `fn(lo)` (a tuple of arrays of `chunk` rows: rows lo .. lo + chunk - 1 of
    a block of n rows) into `buffers` at row `start + lo`, for chunks covering the
    block; returns the updated buffers. `fn` receives `lo` as a traced integer and
    the (static) chunk size as its second argument."""
    if n == 0:
        return buffers
    steps, chunk = _steps(n, chunk)

    def body(i, bufs):
        lo = jnp.minimum(i * chunk, n - chunk)
        new = fn(lo, chunk)
        return tuple(
            jax.lax.dynamic_update_slice_in_dim(b, a.astype(b.dtype), start + lo, axis=0)
            for b, a in zip(bufs, new)
        )

    return body(0, buffers) if steps == 1 else jax.lax.fori_loop(0, steps, body, buffers)


def sum_rows(init, fn, n: int, chunk: int):
    """`init + sum over chunks of fn(lo, chunk, weight)`, where `weight` (chunk,) is 1
    for the rows this chunk is the first to cover and 0 for the overlap of the last
    chunk with the one before (so every row counts once)."""
    if n == 0:
        return init
    steps, chunk = _steps(n, chunk)

    def body(i, acc):
        lo = jnp.minimum(i * chunk, n - chunk)
        weight = (lo + jnp.arange(chunk) >= i * chunk).astype(jnp.result_type(float))
        return jax.tree.map(jnp.add, acc, fn(lo, chunk, weight))

    return body(0, init) if steps == 1 else jax.lax.fori_loop(0, steps, body, init)


def rows(a, lo, chunk: int):
    """Rows lo .. lo + chunk - 1 of `a`."""
    return jax.lax.dynamic_slice_in_dim(a, lo, chunk, axis=0)
