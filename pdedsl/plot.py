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


_IMAGE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg", ".eps", ".ps", ".tif", ".tiff", ".webp")


def _check_exact(exact, where: str) -> None:
    """`sol.plot("u.png")` passes a file name as the exact solution: say so plainly
    (sympy would try to parse it)."""
    if isinstance(exact, os.PathLike) or (isinstance(exact, str) and exact.lower().endswith(_IMAGE_SUFFIXES)):
        raise TypeError(
            f"{where}: the first argument is the exact solution, got the file name {os.fspath(exact)!r}; "
            f"to save the figure pass path={os.fspath(exact)!r}."
        )


def _finish(fig, path):
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def _inside_values(sol, pts, outside):
    """`sol` at the points not `outside` the domain (a solution refuses the others), NaN at those."""
    keep = ~np.asarray(outside).ravel()
    u = np.full(len(pts), np.nan)
    u[keep] = np.asarray(sol(pts[keep]))
    return u


def plot_solution(sol, exact=None, path=None, n: int | None = None):
    """Solution (and exact solution and error, if `exact` is given) on a grid.

    1D: the solution over the exact one, and |error| on a log scale below.
    2D: the solution field, and the |error| map (`plot_slices` draws lines through it).
    (2+1)D with a coordinate named t: snapshots at four times (`plot_snapshots`).
    Returns the figure; saves a PNG to `path` if given.
    """
    _check_exact(exact, "sol.plot")
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
        u = np.ma.masked_where(outside, _inside_values(sol, pts, outside).reshape(X.shape))
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
    elif problem.dim == 3 and _time_coord(problem, None, required=False) is not None:
        return plot_snapshots(sol, exact=exact, path=path, n=n)
    else:
        raise NotImplementedError(
            f"plot_solution draws 1D and 2D problems, and (2+1)D ones with a time coordinate named t; "
            f"for coordinates {', '.join(names)} use pdedsl.plot.plot_snapshots(sol, time=...) or "
            "pdedsl.plot.plot_slices(sol, ...)."
        )
    return _finish(fig, path)


def _coord(problem, c, what: str):
    """The index of coordinate `c` (a Symbol or its name) in the problem's coordinates."""
    names = [str(v) for v in problem.coords]
    if str(c) not in names:
        raise ValueError(f"{what}={c} is not a coordinate of the problem (coordinates: {', '.join(names)}).")
    return names.index(str(c))


def _time_coord(problem, time, required=True):
    """`time` given, or the coordinate named t, or None."""
    if time is not None:
        return _coord(problem, time, "time")
    names = [str(v) for v in problem.coords]
    if "t" in names:
        return names.index("t")
    if required:
        raise ValueError(
            f"No coordinate is named t (coordinates: {', '.join(names)}); pass time=<coordinate>."
        )
    return None


def plot_snapshots(sol, exact=None, time=None, times=None, path=None, n: int | None = None):
    """(2+1)D: the solution over the two space coordinates at a few times, one
    panel per time on a common colour scale; with `exact`, a second row of
    log10 |error| maps (common scale) titled with the relative L2 error at that time.

    Args:
        time: the time coordinate (default: the coordinate named t).
        times: the times to draw (default: 4, evenly spaced from start to end).
        n: grid points per space axis (default 100).
    """
    _check_exact(exact, "plot_snapshots")
    from .solution import _exact_fn

    plt = _pyplot()
    problem = sol.problem
    if problem.dim != 3:
        raise ValueError(
            f"plot_snapshots draws problems with two space coordinates and a time coordinate; this one "
            f"has {problem.dim} coordinates ({', '.join(map(str, problem.coords))})."
        )
    dom = problem.domain
    it = _time_coord(problem, time)
    ix, iy = [i for i in range(3) if i != it]
    lo, hi = float(dom.lower[it]), float(dom.upper[it])
    times = np.linspace(lo, hi, 4) if times is None else np.atleast_1d(np.asarray(times, dtype=float))
    if times.ndim != 1 or times.size == 0 or np.any(times < lo) or np.any(times > hi):
        raise ValueError(f"times must be values of {problem.coords[it]} in [{lo}, {hi}], got {times}.")
    m = n or 100
    gx = np.linspace(dom.lower[ix], dom.upper[ix], m)
    gy = np.linspace(dom.lower[iy], dom.upper[iy], m)
    X, Y = np.meshgrid(gx, gy, indexing="ij")
    fields, errors, rels = [], [], []
    for tk in times:
        pts = np.empty((X.size, 3))
        pts[:, ix], pts[:, iy], pts[:, it] = X.ravel(), Y.ravel(), tk
        outside = ~dom.contains(pts).reshape(X.shape)
        u = np.ma.masked_where(outside, _inside_values(sol, pts, outside).reshape(X.shape))
        fields.append(u)
        if exact is not None:
            ref = np.ma.masked_where(outside, np.asarray(_exact_fn(exact, problem)(pts)).reshape(X.shape))
            errors.append(np.log10(np.maximum(np.abs(u - ref), 1e-300)))
            rels.append(float(np.sqrt(np.sum((u - ref) ** 2) / np.sum(ref**2))))
    rows = 2 if exact is not None else 1
    cols = len(times)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.6 * cols + 1, 3.4 * rows), squeeze=False, layout="constrained"
    )
    umin = min(float(f.min()) for f in fields)
    umax = max(float(f.max()) for f in fields)
    names = [str(c) for c in problem.coords]
    for k, tk in enumerate(times):
        im = axes[0, k].pcolormesh(X, Y, fields[k], shading="auto", cmap="viridis", vmin=umin, vmax=umax)
        axes[0, k].set_title(f"{names[it]} = {tk:.4g}")
    fig.colorbar(im, ax=list(axes[0]), label=str(problem.unknown.func))
    if exact is not None:
        finite = [e[np.isfinite(e)] for e in errors]
        emin = min(float(e.min()) for e in finite)
        emax = max(float(e.max()) for e in finite)
        for k, tk in enumerate(times):
            im = axes[1, k].pcolormesh(X, Y, errors[k], shading="auto", cmap="magma", vmin=emin, vmax=emax)
            axes[1, k].set_title(f"|error| at {names[it]} = {tk:.4g}, rel. L2 {rels[k]:.1e}", fontsize=9)
        fig.colorbar(im, ax=list(axes[1]), label="log10 |error|")
    for ax in axes.ravel():
        ax.set_xlabel(names[ix])
        ax.set_ylabel(names[iy])
        ax.set_aspect("equal")
    fig.suptitle(str(problem.equation))
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def plot_slices(sol, exact=None, along=None, at=None, path=None, n: int | None = None):
    """The solution along one coordinate, on a few lines through the domain (2D and up).

    `along`: the coordinate on the horizontal axis (default: the first). `at`: a dict
    giving the other coordinates' values; one of them may be a list (one line per
    value). Default: three lines at the quartiles of the first other coordinate,
    the remaining ones at the midpoint. With `exact`, the exact solution is drawn
    dashed under each line and |error| along the lines goes in a second panel.
    """
    _check_exact(exact, "plot_slices")
    from .solution import _exact_fn

    plt = _pyplot()
    problem = sol.problem
    if problem.dim < 2:
        raise ValueError("plot_slices draws problems with two or more coordinates; use sol.plot() in 1D.")
    dom = problem.domain
    names = [str(c) for c in problem.coords]
    ia = 0 if along is None else _coord(problem, along, "along")
    others = [i for i in range(problem.dim) if i != ia]
    values = {}
    for c, v in (at or {}).items():
        i = _coord(problem, c, "at")
        if i == ia:
            raise ValueError(f"at= fixes {c}, which is the coordinate the slices run along.")
        values[i] = np.atleast_1d(np.asarray(v, dtype=float))
    lists = [i for i, v in values.items() if v.size > 1]
    if len(lists) > 1:
        raise ValueError(
            f"at= may give several values for one coordinate only, got lists for {[names[i] for i in lists]}."
        )
    mid = (np.asarray(dom.lower, float) + np.asarray(dom.upper, float)) / 2
    if not values:
        first = others[0]
        values[first] = dom.lower[first] + np.array([0.25, 0.5, 0.75]) * (dom.upper[first] - dom.lower[first])
    for i in others:
        values.setdefault(i, np.array([mid[i]]))
    vary = lists[0] if lists else max(others, key=lambda i: values[i].size)
    m = n or 400
    s = np.linspace(dom.lower[ia], dom.upper[ia], m)
    rows = 2 if exact is not None else 1
    fig, axes = plt.subplots(rows, 1, figsize=(8, 3.2 * rows), sharex=True, squeeze=False)
    for k, v in enumerate(values[vary]):
        pts = np.empty((m, problem.dim))
        pts[:, ia] = s
        for i in others:
            pts[:, i] = v if i == vary else values[i][0]
        inside = dom.contains(pts)
        x, p = s[inside], pts[inside]
        u = np.asarray(sol(p))
        fixed = ", ".join(f"{names[i]}={pts[0, i]:.3g}" for i in others)
        axes[0, 0].plot(x, u, color=f"C{k % 10}", lw=1.5, label=fixed)
        if exact is not None:
            ref = np.asarray(_exact_fn(exact, problem)(p))
            axes[0, 0].plot(x, ref, color="0.3", lw=1, ls="--")
            axes[1, 0].semilogy(x, np.maximum(np.abs(u - ref), 1e-300), color=f"C{k % 10}", lw=1)
    axes[0, 0].set_ylabel(str(problem.unknown.func))
    axes[0, 0].legend(loc="best", fontsize=8)
    axes[0, 0].set_title(
        f"{problem.unknown.func} along {names[ia]}" + ("  (dashed: exact)" if exact is not None else "")
    )
    if exact is not None:
        axes[1, 0].set_ylabel("|error|")
    axes[-1, 0].set_xlabel(names[ia])
    return _finish(fig, path)


def plot_convergence(sol, path=None):
    """Residual per iteration of an iterative linear solve (`sol.info["history"]`):
    `pd.CGNormal`'s relative preconditioned normal residual, `pd.LSMR`'s estimate of
    ||r|| / ||b|| per iteration, `pd.GMRES`'s ||r|| / ||b|| per restart cycle."""
    hist = sol.info.get("history")
    name = str(sol.info["solver"])
    if hist is None or not name.startswith(("CGNormal", "LSMR", "GMRES")):
        raise ValueError(
            f"{name} records no convergence history of a linear solve (pd.LSMR, pd.CGNormal and "
            "pd.GMRES do); direct solvers have none."
        )
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogy(np.arange(len(hist)), hist, color="C0")
    if name.startswith("CGNormal"):
        ax.set_ylabel("relative preconditioned residual")
    else:
        ax.set_ylabel("||r|| / ||b||" + (" (LSMR's estimate)" if name.startswith("LSMR") else ""))
    ax.set_xlabel("restart cycle" if name.startswith("GMRES") else "iteration")
    ax.set_title(f"{name}: {sol.info['iterations']} {'cycles' if name.startswith('GMRES') else 'iterations'}")
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
