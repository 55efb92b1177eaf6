"""A physics-informed neural network: one global network, as an ansatz."""

from __future__ import annotations

import math
from collections.abc import Callable

from ..geometry import Box, Difference
from .basis import MLP, PeriodicInput
from .decomposition import Grid, _periodic_axes
from .model import FBPINN
from .windows import Constant


def PINN(
    domain: Box | Difference,
    hidden: tuple[int, ...] = (64, 64),
    activation: str | Callable = "tanh",
    output_scale: float = 1.0,
    seed: int = 0,
    periodic=(),
) -> FBPINN:
    """A single network over the whole domain (a PINN): `u(x) = sum_k a_k h_k(z)`.

    The same ansatz as `pd.FBPINN` with one subdomain covering `domain`, no window
    (`Constant`) and an `pd.MLP(hidden, activation, output_scale)` basis whose last
    hidden layer is multiplied by the output weights `a`. The input is normalised
    to `z = (x - centre) / (0.75 * length)`, in [-2/3, 2/3] per axis (of the bounding
    box, for a box minus boxes such as the L-shape). Train it with
    `pd.train(problem, model)`, exactly like an FBPINN; `pd.solve` works too (the
    hidden layers then act as fixed random features).

    `periodic=[x]` (for a problem with `u.at(x=a) == u.at(x=b)`): the network
    sees `cos(2 pi (x - a) / L)` and `sin(2 pi (x - a) / L)` instead of `x`, with
    `L = b - a` (`pd.PeriodicInput`), so it is periodic along `x`, with all its
    derivatives.
    """
    if not isinstance(domain, (Box, Difference)):
        raise TypeError(
            f"PINN needs the problem's domain (pd.Interval/pd.Box or a box minus boxes, e.g. "
            f"problem.domain), got {type(domain).__name__}."
        )
    basis = MLP(hidden=hidden, activation=activation, output_scale=output_scale)
    axes = _periodic_axes(domain, periodic)
    if axes:
        # z = (x - centre) / (0.75 L): one period of x is 1 / 0.75 in z
        basis = PeriodicInput(basis, axes, frequency=2 * math.pi * 0.75)
    return FBPINN(Grid(domain, subdomains=1, overlap=1.5), basis, window=Constant(), seed=seed)
