"""Sharding the block-sparse system across devices (`jax.sharding`).

The rows of M (collocation points) are split evenly across the devices of a 1-D
mesh; the coefficients (J, K) are replicated. Under `jit`, XLA's SPMD partitioner
then runs `M a` locally on each device and turns `M^T r` (a segment sum over rows)
into local partial sums plus one all-reduce: the only communication an iterative
solve needs. Assembly is sharded the same way (`jax.shard_map` over the points),
so no device ever holds the whole operator.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from .system import LinearSystem

AXIS = "rows"


def resolve_devices(devices=None) -> list | None:
    """`devices` argument -> a list of devices, or None for a single-device solve.

    None (default): all devices when there are several, else None. `1` or `False`:
    None. An int n: the first n devices. A sequence: those devices.
    """
    available = jax.devices()
    if devices is None:
        return list(available) if len(available) > 1 else None
    if devices is False or (isinstance(devices, (int, np.integer)) and int(devices) == 1):
        return None
    if isinstance(devices, (int, np.integer)):
        n = int(devices)
        if n < 1 or n > len(available):
            raise ValueError(
                f"devices={n}: there are {len(available)} device(s) ({available[0].platform}). On a "
                "CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N (set before importing "
                "jax) simulates N devices."
            )
        return list(available[:n])
    if isinstance(devices, Sequence) and not isinstance(devices, str):
        devs = list(devices)
        if not devs:
            raise ValueError("devices=[] lists no device.")
        return devs if len(devs) > 1 else None
    raise TypeError(f"devices must be None, an int or a list of jax devices, got {devices!r}.")


def mesh(devices) -> Mesh:
    return Mesh(np.asarray(devices), (AXIS,))


def pad_rows(n: int, num_devices: int) -> int:
    """Rows after padding to a multiple of the device count."""
    return -(-n // num_devices) * num_devices


def shard_system(system: LinearSystem, devices) -> LinearSystem:
    """Pad the rows to a multiple of the device count (zero rows: they change neither
    the least-squares solution nor the residual) and place them row-sharded."""
    m = mesh(devices)
    n = system.rhs.shape[0]
    extra = pad_rows(n, len(devices)) - n

    def pad(a, value=0):
        if not extra:
            return a
        width = [(0, extra)] + [(0, 0)] * (a.ndim - 1)
        return jnp.pad(a, width, constant_values=value)

    rows = NamedSharding(m, P(AXIS))
    put = lambda a: jax.device_put(a, rows)  # noqa: E731
    replicated = NamedSharding(m, P())
    levels = None if system.levels is None else jax.device_put(system.levels, replicated)
    return LinearSystem(
        values=put(pad(system.values)),
        index=put(pad(system.index)),
        rhs=put(pad(system.rhs)),
        row_scale=put(pad(system.row_scale, 1)),
        num_subdomains=system.num_subdomains,
        groups=system.groups,
        levels=levels,
        centres=None if system.centres is None else jax.device_put(system.centres, replicated),
    )


def sharded_rows(fn, points, devices):
    """Evaluate `fn(points) -> pytree of row arrays` with the points split across
    `devices` (padded by repeating the last point; the padding rows are returned
    and must be dropped or zeroed by the caller)."""
    m = mesh(devices)
    n = points.shape[0]
    extra = pad_rows(n, len(devices)) - n
    if extra:
        points = jnp.concatenate([points, jnp.repeat(points[-1:], extra, axis=0)])
    points = jax.device_put(points, NamedSharding(m, P(AXIS)))
    out = jax.jit(jax.shard_map(fn, mesh=m, in_specs=P(AXIS), out_specs=P(AXIS)))(points)
    return out, extra


__all__ = ["resolve_devices", "shard_system", "sharded_rows", "pad_rows", "mesh"]
