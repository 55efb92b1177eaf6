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


def _finish(fig, path):
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


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
        x = x[dom.contains(x[:, None])]  # a box with holes: only the domain
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
        outside = ~dom.contains(pts).reshape(X.shape)  # blank outside a box with holes
        u = np.ma.masked_where(outside, np.asarray(sol(pts)).reshape(X.shape))
        cols = 2 if exact is not None else 1
        fig, axes = plt.subplots(1, cols, figsize=(5.5 * cols, 4.5), squeeze=False)
        im = axes[0, 0].pcolormesh(X, Y, u, shading="auto", cmap="viridis")
        fig.colorbar(im, ax=axes[0, 0])
        axes[0, 0].set_title("pdedsl solution")
        if exact is not None:
            ref = np.ma.masked_where(outside, np.asarray(_exact_fn(exact, problem)(pts)).reshape(X.shape))
            err = np.abs(u - ref)
            im = axes[0, 1].pcolormesh(X, Y, np.log10(np.maximum(err, 1e-300)), shading="auto", cmap="magma")
            fig.colorbar(im, ax=axes[0, 1], label="log10 |error|")
            rel = np.sqrt(np.sum((u - ref) ** 2) / np.sum(ref**2))
            axes[0, 1].set_title(f"|error|, relative L2 {rel:.2e}")
        for ax in axes[0]:
            ax.set_xlabel(names[0])
            ax.set_ylabel(names[1])
            ax.set_aspect("equal")
    else:
        raise NotImplementedError("plot_solution draws 1D and 2D problems; for 3D, evaluate sol on a slice.")
    return _finish(fig, path)


def plot_convergence(sol, path=None):
    """Relative preconditioned residual per iteration of an iterative solve (CGNormal)."""
    hist = sol.info.get("history")
    if hist is None:
        raise ValueError(
            f"{sol.info['solver']} records no convergence history (only pd.CGNormal does); "
            "direct solvers have none."
        )
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogy(np.arange(len(hist)), hist, color="C0")
    ax.set_xlabel("iteration")
    ax.set_ylabel("relative preconditioned residual")
    ax.set_title(f"{sol.info['solver']}: {sol.info['iterations']} iterations")
    return _finish(fig, path)


def plot_decomposition(model, path=None, n: int = 1000):
    """1D: the normalised windows w_j (a partition of unity). 2D: the subdomain
    centres, one colour per level, with the support of one subdomain per level shaded."""
    import jax.numpy as jnp

    from .ansatz import evaluate

    plt = _pyplot()
    dec = model.decomposition
    dom = dec.domain
    centres = np.asarray(dec.centres)
    hw = np.asarray(dec.half_widths)
    levels = np.asarray(dec.levels)
    if dec.dim == 1:
        x = np.linspace(dom.lower[0], dom.upper[0], n)
        # the windows alone: the same decomposition with a single feature equal to 1
        from .ansatz.basis import AbstractBasis
        from .ansatz.model import FBPINN

        class _One(AbstractBasis):
            def num_features(self, dim):
                return 1

            def features(self, params, z):
                return jnp.ones(1)

        ones = FBPINN(dec, _One(), window=model.window)
        idx, vals = evaluate(ones, jnp.asarray(x[:, None]), ((0,),))
        w = np.zeros((n, dec.num_subdomains))
        np.add.at(
            w,
            (np.repeat(np.arange(n), idx.shape[1]), np.asarray(idx).ravel()),
            np.asarray(vals[(0,)])[..., 0].ravel(),
        )
        fig, ax = plt.subplots(figsize=(8, 3))
        for j in range(dec.num_subdomains):
            ax.plot(x, w[:, j], lw=1, color=f"C{levels[j] % 10}")
        ax.plot(x, w.sum(axis=1), "k--", lw=1, label="sum")
        ax.set_xlabel(str(dom.coords[0]))
        ax.set_title(f"{dec.num_subdomains} windows ({type(model.window).__name__})")
        ax.legend(loc="center right")
    elif dec.dim == 2:
        from matplotlib.patches import Rectangle

        fig, ax = plt.subplots(figsize=(5.5, 5))
        mid = (np.asarray(dom.lower) + np.asarray(dom.upper)) / 2
        for lvl in np.unique(levels):
            on = levels == lvl
            colour = f"C{lvl % 10}"
            ax.plot(
                centres[on, 0],
                centres[on, 1],
                "o",
                ms=max(2, 8 - lvl),
                color=colour,
                label=f"level {lvl}: {on.sum()}",
            )
            # shade the support of the subdomain nearest the middle, to show the overlap
            j = np.flatnonzero(on)[np.argmin(np.linalg.norm(centres[on] - mid, axis=1))]
            ax.add_patch(Rectangle(centres[j] - hw[j], 2 * hw[j, 0], 2 * hw[j, 1], color=colour, alpha=0.15))
        ax.add_patch(Rectangle(dom.lower, *dom.lengths, fill=False, lw=2, color="k"))
        ax.set_xlim(dom.lower[0] - 0.05 * dom.lengths[0], dom.upper[0] + 0.05 * dom.lengths[0])
        ax.set_ylim(dom.lower[1] - 0.05 * dom.lengths[1], dom.upper[1] + 0.05 * dom.lengths[1])
        ax.legend(loc="upper right", fontsize=8)
        ax.set_aspect("equal")
        ax.set_title(f"{dec.num_subdomains} subdomains")
        ax.set_xlabel(str(dom.coords[0]))
        ax.set_ylabel(str(dom.coords[1]))
    else:
        raise NotImplementedError("plot_decomposition draws 1D and 2D decompositions.")
    return _finish(fig, path)


def plot_loss(sol, path=None):
    """Training loss per step of a `pd.train` solution (and the relative L2 error
    against the exact solution, if `exact` was given to `pd.train`)."""
    hist = sol.info.get("loss_history")
    if hist is None:
        raise ValueError(
            f"{sol.info['solver']} records no loss history: only solutions from pd.train do "
            "(pdedsl.plot.plot_convergence draws an iterative linear solve)."
        )
    plt = _pyplot()
    hist = np.asarray(hist)
    errors = sol.info.get("error_history")
    rows = 2 if errors is not None else 1
    fig, axes = plt.subplots(rows, 1, figsize=(7, 3.2 * rows), sharex=True, squeeze=False)
    ax = axes[0, 0]
    ax.semilogy(np.arange(1, len(hist) + 1), hist, color="C0", lw=1)
    ax.set_ylabel("loss")
    ax.set_title(f"{sol.info['solver']}: {len(hist)} steps")
    for st in sol.info.get("stages") or ():
        ax.axvline(sum(s["iterations"] for s in sol.info["stages"][: st["stage"]]), color="0.8", lw=0.5)
    if errors is not None:
        errors = np.asarray(errors)
        axes[1, 0].semilogy(errors[:, 0], errors[:, 1], "o-", color="C3", ms=3)
        axes[1, 0].set_ylabel("relative L2 error")
    axes[-1, 0].set_xlabel("step")
    return _finish(fig, path)
