"""Point arrays in the user's spellings, and error measures on point sets (shared by
`Solution` and the classical references)."""

from __future__ import annotations

import numpy as np


def as_points(points, dim: int, coords) -> np.ndarray:
    """(N, d) float array from `points` of shape (N, d), (N,) in 1D, (d,) or a scalar in 1D."""
    try:
        p = np.asarray(points, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(
            f"Points must be numbers, an (N, {dim}) array in the coordinate order "
            f"{tuple(map(str, coords))}; got {points!r}."[:300]
        ) from None
    if p.ndim == 0 and dim == 1:
        p = p.reshape(1, 1)
    elif p.ndim == 1 and dim == 1:
        p = p[:, None]
    elif p.ndim == 1 and p.shape[0] == dim:
        p = p[None, :]
    if p.ndim != 2 or p.shape[1] != dim:
        raise ValueError(
            f"Points must have shape (N, {dim}) (or (N,) in 1D) in the coordinate order "
            f"{tuple(map(str, coords))}; got shape {tuple(np.shape(points))}."
        )
    return p


def call_points(coords, points, more, named, name: str = "f"):
    """The points of a call `f(points)`, `f(X, Y)` (one array per coordinate, in the
    coordinate order) or `f(x=X, y=Y)`: `(points, shape)`, where `shape` is the arrays'
    broadcast shape that the values take (None for `f(points)`, whose points are left
    for `as_points`)."""
    names = [str(c) for c in coords]
    if more:
        if named or len(more) + 1 != len(names):
            raise TypeError(
                f"Give the points as one (N, {len(names)}) array, or one array per coordinate "
                f"({', '.join(names)}), by position or by name; got {len(more) + 1} positional "
                f"argument(s){' and ' + ', '.join(sorted(named)) if named else ''}."
            )
        points, named = None, dict(zip(names, (points, *more)))
    if named:
        if points is not None or set(named) != set(names):
            raise TypeError(
                f"Give either points or every coordinate by name ({', '.join(f'{n}=...' for n in names)}); "
                f"got {'points and ' if points is not None else ''}{', '.join(sorted(named))}."
            )
        try:
            arrays = np.broadcast_arrays(*[np.asarray(named[n], dtype=float) for n in names])
        except ValueError as e:
            raise ValueError(
                f"The coordinate arrays ({', '.join(names)}) do not broadcast together: {e}"
            ) from None
        return np.stack([a.reshape(-1) for a in arrays], axis=-1), arrays[0].shape
    if points is None:
        raise TypeError(
            f"Give the points: {name}(points) with points of shape (N, {len(names)}), "
            f"or {name}({', '.join(f'{n}=...' for n in names)})."
        )
    return points, None


def values_at(coords, values, points, more, named, name: str = "f"):
    """`values(points)` (an (N,) array for the points as given) for a call `f(points)`,
    `f(X, Y)` or `f(x=X, y=Y)`: shaped like the coordinate arrays, or (N,), or a scalar
    for a single point."""
    points, out_shape = call_points(coords, points, more, named, name)
    shape = np.shape(points)
    out = values(points)
    if out_shape is not None:
        return out.reshape(out_shape)
    return out.reshape(()) if len(shape) == 0 or (len(shape) == 1 and len(coords) > 1) else out


def format_point(coords, point) -> str:
    """`x=0.5, y=1.25`: a point named by its coordinates, for messages."""
    return ", ".join(f"{c}={v:.6g}" for c, v in zip(coords, point))


def error_measures(u, ref) -> dict[str, float]:
    """rel_l2, max_abs, rel_max, norm_l1 (= mean|u - ref| / std(ref), the FBPINN papers'
    measure) and the point count. A relative measure whose scale is zero (rel_l2 against
    ref = 0, norm_l1 against a constant ref) is undefined: NaN."""
    u = np.asarray(u, dtype=float).reshape(-1)
    ref = np.asarray(ref, dtype=float).reshape(-1)
    if ref.shape != u.shape:  # (a scalar or a wrong length used to broadcast, or fail in numpy)
        raise ValueError(
            f"The exact solution (or reference) gave {ref.size} value(s) at {u.size} points: a "
            "callable must return one value per point, an array of shape (N,) for points of shape (N, d)."
        )
    err = u - ref

    def ratio(a, b):
        return float(a / b) if b > 0 else float("nan")

    return {
        "rel_l2": ratio(np.linalg.norm(err), np.linalg.norm(ref)),
        "max_abs": float(np.max(np.abs(err))),
        "rel_max": ratio(np.max(np.abs(err)), np.max(np.abs(ref))),
        "norm_l1": ratio(np.mean(np.abs(err)), np.std(ref)),
        "points": int(ref.size),
    }
