"""Matplotlib figures of solutions (headless-safe: the Agg backend when no display)."""

from __future__ import annotations

import os

import numpy as np


def _pyplot():
    import matplotlib

    if not os.environ.get("DISPLAY") and matplotlib.get_backend().lower() not in ("agg", "pdf", "svg"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_solution(sol, exact=None, path=None, n: int | None = None):
    """Solution (and exact solution and error, if `exact` is given) on a grid.

    1D: the solution over the exact one, and |error| on a log scale below.
    2D: the solution field, and the |error| map. Returns the figure; saves a PNG
    to `path` if given.
    """
    from .solution import _exact_fn

    plt = _pyplot()
    problem = sol.problem
    dom = problem.domain
    names = [str(c) for c in problem.coords]
    if problem.dim == 1:
        x = np.linspace(dom.lower[0], dom.upper[0], n or 2000)
        u = np.asarray(sol(x))
        rows = 2 if exact is not None else 1
        fig, axes = plt.subplots(rows, 1, figsize=(8, 3.2 * rows), sharex=True, squeeze=False)
        ax = axes[0, 0]
        if exact is not None:
            ref = np.asarray(_exact_fn(exact, problem)(x[:, None]))
            ax.plot(x, ref, color="0.6", lw=4, label="exact")
        ax.plot(x, u, color="C0", lw=1.5, label="pdedsl")
        ax.set_ylabel(str(problem.unknown.func))
        ax.legend(loc="upper right")
        ax.set_title(str(problem.equation))
        if exact is not None:
            err = np.abs(u - ref)
            axes[1, 0].semilogy(x, np.maximum(err, 1e-300), color="C3")
            rel = np.linalg.norm(u - ref) / np.linalg.norm(ref)
            axes[1, 0].set_ylabel("|error|")
            axes[1, 0].set_title(f"relative L2 error {rel:.2e}")
        axes[-1, 0].set_xlabel(names[0])
    elif problem.dim == 2:
        m = n or 200
        gx = np.linspace(dom.lower[0], dom.upper[0], m)
        gy = np.linspace(dom.lower[1], dom.upper[1], m)
        X, Y = np.meshgrid(gx, gy, indexing="ij")
        pts = np.stack([X.ravel(), Y.ravel()], axis=-1)
        u = np.asarray(sol(pts)).reshape(X.shape)
        cols = 2 if exact is not None else 1
        fig, axes = plt.subplots(1, cols, figsize=(5.5 * cols, 4.5), squeeze=False)
        im = axes[0, 0].pcolormesh(X, Y, u, shading="auto", cmap="viridis")
        fig.colorbar(im, ax=axes[0, 0])
        axes[0, 0].set_title("pdedsl solution")
        if exact is not None:
            ref = np.asarray(_exact_fn(exact, problem)(pts)).reshape(X.shape)
            err = np.abs(u - ref)
            im = axes[0, 1].pcolormesh(X, Y, np.log10(np.maximum(err, 1e-300)), shading="auto", cmap="magma")
            fig.colorbar(im, ax=axes[0, 1], label="log10 |error|")
            rel = np.linalg.norm(u - ref) / np.linalg.norm(ref)
            axes[0, 1].set_title(f"|error|, relative L2 {rel:.2e}")
        for ax in axes[0]:
            ax.set_xlabel(names[0])
            ax.set_ylabel(names[1])
            ax.set_aspect("equal")
    else:
        raise NotImplementedError("plot_solution draws 1D and 2D problems; for 3D, evaluate sol on a slice.")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
