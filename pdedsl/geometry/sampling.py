"""Point sets in the unit cube: grid, uniform random, Sobol, Halton (all seeded)."""

from __future__ import annotations

import math

import numpy as np

SAMPLERS = ("grid", "uniform", "sobol", "halton")


def grid_shape(n: int | tuple[int, ...], lengths) -> tuple[int, ...]:
    """Per-axis counts for about `n` grid points, proportional to the side lengths."""
    lengths = np.asarray(lengths, dtype=float)
    d = len(lengths)
    if isinstance(n, (tuple, list)):
        whole = all(isinstance(k, (int, np.integer)) or (isinstance(k, float) and k.is_integer()) for k in n)
        hint = "" if whole else " To give the points themselves, pass an (N, d) NumPy array."
        if len(n) != d:
            shown = tuple(n) if len(n) <= 8 else f"({', '.join(map(str, n[:4]))}, ...)"
            raise ValueError(f"Grid shape {shown} has {len(n)} entries for {d} dimensions.{hint}")
        if not whole:
            raise ValueError(f"A grid shape holds whole numbers of points per axis, got {tuple(n)}.{hint}")
        shape = tuple(int(k) for k in n)
    else:
        if d == 0:
            return ()
        if not n >= 1:
            raise ValueError(f"Need at least one point, got {n}.")
        scale = (n / np.prod(lengths)) ** (1.0 / d)
        shape = tuple(max(2, int(round(scale * L))) for L in lengths)
    if any(k < 1 for k in shape):
        raise ValueError(f"Grid shape must be positive, got {shape}.")
    return shape


def unit_points(n, d: int, method: str = "grid", seed: int = 0, lengths=None) -> np.ndarray:
    """`n` points in [0, 1]^d. For `grid`, `n` may be a per-axis shape; endpoints included."""
    if method not in SAMPLERS:
        raise ValueError(f"Unknown sampler {method!r}; choose one of {SAMPLERS}.")
    if d == 0:
        return np.zeros((1, 0))
    if method == "grid":
        shape = grid_shape(n, np.ones(d) if lengths is None else lengths)
        axes = [np.linspace(0.0, 1.0, k) if k > 1 else np.array([0.5]) for k in shape]
        mesh = np.meshgrid(*axes, indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=-1)
    n = int(np.prod(n)) if isinstance(n, (tuple, list)) else int(n)
    if n < 1:
        raise ValueError(f"Need at least one point, got {n}.")
    if method == "uniform":
        return np.random.default_rng(seed).random((n, d))
    if method == "sobol":
        engine = _qmc().Sobol(d, scramble=True, seed=seed)
        m = math.ceil(math.log2(n))
        return engine.random_base2(m)[:n]
    return _qmc().Halton(d, scramble=True, seed=seed).random(n)


def _qmc():
    """scipy.stats.qmc, imported on first use: importing scipy.stats costs ~0.7 s,
    a fifth of `import pdedsl`, and only the Sobol and Halton samplers need it."""
    from scipy.stats import qmc

    return qmc
