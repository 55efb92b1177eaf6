"""Finite-element references (scikit-fem, P1/P2 Lagrange) built from the same `pd.Problem`.

The equation must be a second-order elliptic equation with a diagonal principal part,

    sum_i k_i(x) d^2u/dx_i^2 + sum_i b_i(x) du/dx_i + c(x) u = f(x),

every k_i non-zero and of one sign (Poisson: k_i = -1, c = 0; Helmholtz: k_i = 1,
c = k^2), on an interval, a box, or a box minus boxes (the L-shape). Using
k_i u_ii = (k_i u_i)_i - (dk_i/dx_i) u_i and integrating by parts gives the weak form

    sum_i (k_i u_i, v_i) - ((b_i - dk_i/dx_i) u_i, v) - (c u, v)
        = -(f, v) + <k_n du/dn, v>_boundary,

where on an axis-aligned face with normal +-e_a the boundary flux is k_a du/dn
(the equation is first multiplied by the sign of k, so the principal part is
positive: the matrix of -Laplacian(u) + c u = f, c >= 0, is symmetric positive definite).
Conditions: Dirichlet `u == g` (nodal values of g), Neumann/Robin
`alpha du/dn + beta u == g` (du/dn = (g - beta u)/alpha in the boundary term). Every
part of the boundary needs exactly one condition. Solved by a sparse direct
factorisation (SciPy SuperLU) or, for large symmetric problems when pyamg is
installed, by conjugate gradients with algebraic multigrid.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sps
import scipy.sparse.linalg as spl
import sympy as sp

from ..geometry import Box, Difference, Face, PointRegion, as_points, error_measures, values_at
from ..lower import compile_scalar, substitute_parameters
from ..lower.smoothness import drop_interface_deltas
from ..symbolic import pretty
from .checks import refuse_nonlinear


def _skfem():
    try:
        import skfem
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "pd.finite_elements needs scikit-fem: pip install 'pdedsl[fem]' (or pip install scikit-fem)."
        ) from e
    return skfem


def _numpy_fn(expr: sp.Expr, coords) -> Callable | None:
    """`expr` as a NumPy function of the coordinate arrays (shape (d, ...) -> (...), or a
    float for a constant);
    None for an expression that is identically zero."""
    expr = sp.sympify(expr)
    if expr == 0:
        return None
    if not expr.free_symbols:  # a constant: a float, which NumPy broadcasts for free
        value = float(expr)
        return lambda x: value
    f = sp.lambdify(coords, expr, modules="numpy")
    return lambda x: np.broadcast_to(np.asarray(f(*x), dtype=float), x.shape[1:])


class _Operator:
    """The coefficients k_i, b_i - dk_i/dx_i, c and f of an elliptic equation."""

    def __init__(self, problem):
        form = problem.equation_form
        refuse_nonlinear(problem, "pd.finite_elements")  # (it failed on a missing attribute)
        coords, d = problem.coords, problem.dim
        k = [sp.Integer(0)] * d
        b = [sp.Integer(0)] * d
        c = sp.Integer(0)
        for a, coef in zip(form.multi_indices, form.coefficients):
            order = sum(a)
            if order == 0:
                c = coef
            elif order == 1:
                b[a.index(1)] = coef
            elif order == 2 and 2 in a:
                k[a.index(2)] = coef
            else:
                term = sp.Derivative(problem.unknown, *[(x, n) for x, n in zip(coords, a) if n])
                why = "mixed derivatives" if order == 2 else f"derivatives of order {order}"
                raise ValueError(
                    f"pd.finite_elements handles second-order equations without mixed derivatives "
                    f"(sum_i k_i u_(x_i x_i) + b . grad u + c u = f); the equation `{problem.equation}` "
                    f"has {why} ({pretty(term)})."
                )
        missing = [str(x) for x, ki in zip(coords, k) if ki == 0]
        if missing:
            raise ValueError(
                f"pd.finite_elements needs an elliptic equation, with a second derivative in every "
                f"coordinate; `{problem.equation}` has none in {', '.join(missing)} "
                "(time-dependent and first-order problems need another reference)."
            )
        self.coords = coords
        self.k = [_numpy_fn(ki, coords) for ki in k]
        # d k_i / dx_i of a k that steps on an interface: the delta there is the
        # interface's business (continuity of the flux, natural in the weak form)
        interfaces = tuple((coords[a], v) for a, v in problem.interfaces)
        self.convection = [
            _numpy_fn(drop_interface_deltas(bi - sp.diff(ki, x), coords, interfaces), coords)
            for bi, ki, x in zip(b, k, coords)
        ]
        self.c = _numpy_fn(c, coords)
        self.f = _numpy_fn(form.rhs, coords)

    def check_elliptic(self, nodes, problem) -> float:
        """Check that every k_i is non-zero, of one sign, at the mesh nodes; return the sign."""
        signs = set()
        for i, ki in enumerate(self.k):
            v = np.broadcast_to(ki(nodes), nodes.shape[1:])
            if not np.all(np.isfinite(v)) or np.any(v == 0) or (np.any(v > 0) and np.any(v < 0)):
                raise ValueError(
                    f"The coefficient of the second derivative in {self.coords[i]} in `{problem.equation}` "
                    "vanishes or changes sign in the domain: the equation is not elliptic there."
                )
            signs.add(bool(v.flat[0] > 0))
        if len(signs) > 1:
            raise ValueError(
                f"The second-derivative coefficients in `{problem.equation}` have different signs "
                "in different coordinates: the equation is not elliptic."
            )
        return 1.0 if signs.pop() else -1.0


class _BoundaryPart:
    """One lowered condition as FEM boundary data on a set of mesh facets."""

    def __init__(self, cond, problem):
        self.name = f"{cond.name}: `{cond.condition}`"
        region = cond.region
        form = cond.form
        coords, d = problem.coords, problem.dim
        if isinstance(region, PointRegion):
            if d != 1 or region.normal is None:
                raise ValueError(
                    f"pd.finite_elements takes conditions on the boundary (faces, or the end points "
                    f"of an interval); `{cond.condition}` holds at a single point."
                )
            self.axis, self.value, self.normal = 0, region.point[0], region.normal
            self.lower = self.upper = np.asarray(region.point, dtype=float)
        elif isinstance(region, Face):
            if region.normal is None:
                raise ValueError(
                    f"pd.finite_elements takes conditions on the boundary; `{cond.condition}` holds "
                    f"on {region}, which lies inside the domain."
                )
            self.axis, self.value, self.normal = region.axis, region.value, region.normal
            self.lower = np.asarray(region.box.lower, dtype=float)
            self.upper = np.asarray(region.box.upper, dtype=float)
        else:  # pragma: no cover - Problem only makes faces and points
            raise TypeError(f"Unsupported region {region!r}.")
        zero = (0,) * d
        coef = dict(zip(form.multi_indices, form.coefficients))
        normal_index = tuple(1 if i == self.axis else 0 for i in range(d))
        extra = set(coef) - {zero, normal_index}
        if extra:
            raise ValueError(
                f"pd.finite_elements takes Dirichlet (u == g), Neumann (Dn(u) == g) and Robin "
                f"(Dn(u) + beta*u == g) conditions; `{cond.condition}` on {region} involves "
                f"derivatives along the face or of higher order."
            )
        if normal_index not in coef:
            self.kind = "dirichlet"
            self.g = _numpy_fn(form.rhs / coef[zero], coords) or (lambda x: np.zeros(x.shape[1:]))
        else:
            self.kind = "robin"
            # alpha d/dx_a u = alpha * n_a * du/dn with n_a = +-1
            alpha = coef[normal_index] * int(round(self.normal[self.axis]))
            self.beta_over_alpha = _numpy_fn(coef.get(zero, sp.Integer(0)) / alpha, coords)
            self.g_over_alpha = _numpy_fn(form.rhs / alpha, coords)
        self.facets = np.zeros(0, dtype=np.int64)

    def matches(self, mid) -> np.ndarray:
        """Which facet midpoints (d, F) lie on this part of the boundary."""
        scale = 1e-9 * max(1.0, float(np.max(np.abs(mid)))) if mid.size else 1e-9
        on = np.abs(mid[self.axis] - self.value) <= scale
        for i in range(mid.shape[0]):
            if i != self.axis:
                on &= (mid[i] >= self.lower[i] - scale) & (mid[i] <= self.upper[i] + scale)
        return on


def _check_interfaces(problem, op) -> None:
    """Interfaces are natural in the weak form when u and the flux k_a du/dx_a are
    continuous across them (the interface conditions `u.jump(x=c) == 0` and
    `(k*D(u, x)).jump(x=c) == 0`); other jumps cannot be imposed on a conforming mesh."""
    from ..problem import Interface

    d = problem.dim
    for axis, value in problem.interfaces:
        mine = {}  # one per condition (a plane cut by holes is lowered once per piece)
        for c in problem.lowered_conditions:
            if isinstance(c.region, Interface) and c.region.axis == axis:
                if abs(c.region.value - value) <= 1e-12 * max(1, abs(value)):
                    mine.setdefault(id(c.condition), c)
        mine = list(mine.values())
        pts = np.asarray(mine[0].region.sample(5) if d > 1 else mine[0].region.sample(), dtype=float)
        eps = 1e-9 * max(1.0, abs(value))
        kinds = set()
        for c in mine:
            coef = dict(zip(c.form.multi_indices, c.form.coefficients))
            zero, normal = (0,) * d, tuple(1 if i == axis else 0 for i in range(d))
            kind = None
            if c.form.rhs == 0 and set(coef) == {zero}:
                kind = "value"
            elif c.form.rhs == 0 and set(coef) == {normal}:
                flux = _numpy_fn(coef[normal], problem.coords)
                ratios = []
                for side in (-1, 1):
                    q = pts.copy()
                    q[:, axis] = value + side * eps
                    ratios.append(np.broadcast_to(flux(q.T), q.shape[:1]) / op.k[axis](q.T))
                r = np.concatenate(ratios)
                if np.all(np.isfinite(r)) and np.allclose(r, r[0], rtol=1e-9, atol=0):
                    kind = "flux"
            if kind is None or kind in kinds:
                kinds.add("other")
                break
            kinds.add(kind)
        if kinds != {"value", "flux"}:
            c = problem.coords[axis]
            raise NotImplementedError(
                f"pd.finite_elements handles an interface where u and the flux k du/d{c} are continuous, "
                f"the two conditions u.jump({c}={value:g}) == 0 and (k*D(u, {c})).jump({c}={value:g}) == 0 "
                f"with k the equation's coefficient of d2u/d{c}2 (up to a constant factor): they hold "
                "naturally in the weak form. Other or prescribed jumps are not supported."
            )


def _axis_nodes(domain, h: float, interfaces=()) -> list[np.ndarray]:
    """Mesh nodes per axis: every break point of the domain (and every interface) is a
    node, spacing <= h."""
    if isinstance(domain, Difference):
        lo, hi = domain.cells
        breaks = [np.unique(np.concatenate([lo[:, i], hi[:, i]])) for i in range(domain.dim)]
    else:
        breaks = [np.array([a, b]) for a, b in zip(domain.lower, domain.upper)]
    for axis, value in interfaces:
        breaks[axis] = np.unique(np.concatenate([breaks[axis], [value]]))
    axes = []
    for br in breaks:
        parts = [
            np.linspace(a, b, max(1, math.ceil((b - a) / h - 1e-9)) + 1)[:-1] for a, b in zip(br, br[1:])
        ]
        axes.append(np.concatenate(parts + [br[-1:]]))
    return axes


def _mesh(skfem, domain, h: float, interfaces=()):
    axes = _axis_nodes(domain, h, interfaces)
    d = domain.dim
    if d == 1:
        mesh = skfem.MeshLine(axes[0])
    elif d == 2:
        mesh = skfem.MeshTri.init_tensor(*axes)
    elif d == 3:
        mesh = skfem.MeshTet.init_tensor(*axes)
    else:
        raise ValueError(f"pd.finite_elements meshes 1D, 2D and 3D domains; this one is {d}D.")
    if isinstance(domain, Difference):
        centroids = mesh.p[:, mesh.t].mean(axis=1)
        outside = np.flatnonzero(~domain.contains(centroids.T))
        if outside.size:
            mesh = mesh.remove_elements(outside)
    return mesh, axes


_ELEMENTS = {
    (1, 1): "ElementLineP1",
    (1, 2): "ElementLineP2",
    (2, 1): "ElementTriP1",
    (2, 2): "ElementTriP2",
    (3, 1): "ElementTetP1",
    (3, 2): "ElementTetP2",
}


class FiniteElementSolution:
    """A finite-element solution: `ref(points)`, `ref.errors(exact)`, `ref.l2_errors(exact)`.

    Attributes:
        problem: the `pd.Problem` it solves.
        mesh, basis: the scikit-fem mesh and basis.
        values: the degrees of freedom (nodal values).
        info: degree, element, elements, dofs, mesh_size, setup_s (mesh, basis,
            assembly), solve_s (factorisation and solve).
    """

    def __init__(self, problem, mesh, basis, values, info, axes):
        self.problem = problem
        self.mesh = mesh
        self.basis = basis
        self.values = values
        self.info = info
        self._axes = axes  # the tensor grid the simplices were cut from
        self._cell_elements = None

    def _locate(self, p: np.ndarray) -> np.ndarray:
        """The element containing each point (N, d), through the tensor grid the mesh
        was cut from (scikit-fem's general finder needs O(points x elements) memory)."""
        axes, mesh = self._axes, self.mesh
        counts = tuple(len(a) - 1 for a in axes)

        def cell_of(q, side):  # (d, N) -> flat tensor-cell index
            idx = [
                np.clip(np.searchsorted(a, q[i], side=side) - 1, 0, n - 1)
                for i, (a, n) in enumerate(zip(axes, counts))
            ]
            return np.ravel_multi_index(idx, counts)

        if self._cell_elements is None:
            owner = cell_of(mesh.p[:, mesh.t].mean(axis=1), "right")
            order = np.argsort(owner, kind="stable")
            per = np.bincount(owner, minlength=int(np.prod(counts)))
            table = -np.ones((len(per), max(1, int(per.max()))), dtype=np.int64)
            slot = np.arange(len(order)) - np.repeat(np.cumsum(per) - per, per)
            table[owner[order], slot] = order
            self._cell_elements = table
        best = np.full(len(p), -np.inf)
        cells = np.zeros(len(p), dtype=np.int64)
        # a point on grid lines touches several cells (some may be holes): try the cell
        # above it along every axis first, then the others where that one fails
        for sides in itertools.product(("right", "left"), repeat=p.shape[1]):
            todo = np.flatnonzero(best < -1e-12)
            if todo.size == 0:
                break
            q = p[todo].T
            idx = [
                np.clip(np.searchsorted(a, q[i], side=sd) - 1, 0, n - 1)
                for i, (a, n, sd) in enumerate(zip(axes, counts, sides))
            ]
            cand = self._cell_elements[np.ravel_multi_index(idx, counts)]
            for k in range(cand.shape[1]):
                ok = cand[:, k] >= 0
                tind = np.where(ok, cand[:, k], 0)
                ref = self.basis.mapping.invF(q[:, :, None], tind=tind)[:, :, 0]
                # smallest barycentric coordinate: >= 0 inside the simplex
                score = np.where(ok, np.minimum(ref.min(axis=0), 1.0 - ref.sum(axis=0)), -np.inf)
                better = score > best[todo]
                best[todo] = np.where(better, score, best[todo])
                cells[todo] = np.where(better, tind, cells[todo])
        return cells

    def _probes(self, p: np.ndarray) -> sps.coo_matrix:
        """Sparse (N, dofs) matrix of the basis functions' values at the points."""
        basis = self.basis
        cells = self._locate(p)
        ref = basis.mapping.invF(p.T[:, :, None], tind=cells)
        phis = np.array([basis.elem.gbasis(basis.mapping, ref, k, tind=cells)[0] for k in range(basis.Nbfun)])
        rows = np.tile(np.arange(len(p)), basis.Nbfun)
        cols = basis.element_dofs[:, cells].ravel()
        return sps.coo_matrix((phis.ravel(), (rows, cols)), shape=(len(p), basis.N))

    def _points(self, points) -> np.ndarray:
        p = as_points(points, self.problem.dim, self.problem.coords)
        if not np.all(self.problem.domain.contains(p, tol=1e-9)):
            raise ValueError("Some points lie outside the domain of the finite-element solution.")
        return p

    def __call__(self, points=None, *more, **coords) -> np.ndarray:
        """Values at `points` of shape (N, d) (or (N,) in 1D); returns (N,). Or one array
        per coordinate, by position or by name, as for a solution: `ref(X, Y)`,
        `ref(x=X, y=Y)`, returning their broadcast shape."""
        return values_at(self.problem.coords, self._at_points, points, more, coords, "ref")

    def _at_points(self, points) -> np.ndarray:
        p = self._points(points)
        # inside the bounding box by a hair: clip so that the element finder sees them
        p = np.clip(p, self.problem.domain.lower, self.problem.domain.upper)
        return self._probes(p) @ self.values

    def errors(self, exact, points=None, n: int = 2000) -> dict[str, float]:
        """Errors against `exact` on `points` (default: a grid of about `n` points of the
        domain), with the keys of `Solution.errors`: rel_l2, max_abs, rel_max, norm_l1, points."""
        p = self.problem.domain.sample(n, "grid") if points is None else points
        p = self._points(p)
        return error_measures(self(p), _exact(exact, self.problem)(p))

    def l2_errors(self, exact) -> dict[str, float]:
        """The L2(domain) error by quadrature on the mesh: {"l2", "rel_l2"}.

        Unlike `errors`, this does not sample points, so it measures the nominal
        convergence (h^2 for P1, h^3 for P2) without nodal superconvergence."""
        skfem = _skfem()
        fn = _exact(exact, self.problem)
        intorder = 2 * self.info["degree"] + 4
        basis = skfem.Basis(self.mesh, self.basis.elem, intorder=intorder)
        uh = basis.interpolate(self.values)
        x = np.asarray(basis.default_parameters()["x"])
        ue = np.asarray(fn(x.reshape(x.shape[0], -1).T)).reshape(x.shape[1:])

        @skfem.Functional
        def sq_err(w):
            return (w["uh"] - w["ue"]) ** 2

        @skfem.Functional
        def sq_ref(w):
            return w["ue"] ** 2

        e2 = sq_err.assemble(basis, uh=uh, ue=ue)
        r2 = sq_ref.assemble(basis, ue=ue)
        return {"l2": float(np.sqrt(e2)), "rel_l2": float(np.sqrt(e2 / r2))}

    def __repr__(self):
        i = self.info
        return (
            f"FiniteElementSolution({self.problem.equation}, {i['element']}, "
            f"{i['elements']} elements, {i['dofs']} dofs)"
        )


def _exact(exact, problem) -> Callable:
    if callable(exact) and not isinstance(exact, sp.Basic):
        return lambda p: np.asarray(exact(p))
    expr = sp.sympify(getattr(exact, "expr", exact))
    expr = substitute_parameters(expr, problem.parameters)
    f = compile_scalar(expr, problem.coords)
    return lambda p: np.asarray(f(np.asarray(p)))


_DIRECT_DOFS_2D = 40_000


def _has_pyamg() -> bool:
    try:
        import pyamg  # noqa: F401
    except ImportError:
        return False
    return True


# above this many tensor-grid cells (each 2 triangles or 6 tetrahedra), refuse the mesh:
# 2^12 x 2^12 squares or 2^8 cubed cubes already take tens of GB with their P2 matrices
_MAX_CELLS = 10**7


def finite_elements(problem, resolution, degree: int = 1, *, solver: str = "auto") -> FiniteElementSolution:
    """Solve `problem` with P1 or P2 Lagrange finite elements (scikit-fem).

    Args:
        problem: a `pd.Problem` with an elliptic second-order equation (see the module
            docstring) on an interval, a box, or a box minus boxes, and one condition
            on every part of the boundary.
        resolution: an int `r` is a number of uniform refinements: elements of side
            (longest side of the bounding box) / 2^r; a float is the element side h.
            Simplices come from a tensor grid (2 triangles per square, 6 tetrahedra
            per cube) whose nodes include every corner of the domain.
        degree: 1 (P1) or 2 (P2).
        solver: "direct" (SciPy's SuperLU), "amg" (conjugate gradients preconditioned by
            pyamg's smoothed-aggregation multigrid, to a relative residual of 1e-12; for
            symmetric problems: no first-order terms), or "auto" (default): AMG for
            symmetric problems in 3D or with more than 40,000 unknowns when pyamg is
            installed (falling back to SuperLU if CG fails), else SuperLU.

    Returns:
        A `FiniteElementSolution`, callable on (N, d) points.
    """
    from ..problem import Interface, Problem

    if not isinstance(problem, Problem):
        raise TypeError(f"finite_elements() takes a pd.Problem first, got {type(problem).__name__}.")
    if solver not in ("auto", "direct", "amg"):
        raise ValueError(f"solver must be 'auto', 'direct' or 'amg', got {solver!r}.")
    if degree not in (1, 2):
        raise ValueError(f"degree must be 1 (P1) or 2 (P2), got {degree!r}.")
    domain = problem.domain
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer, float, np.floating)):
        raise TypeError(
            f"resolution must be an int (refinements) or a float (element size), got {resolution!r}."
        )
    longest = float(np.max(domain.lengths))
    if isinstance(resolution, (int, np.integer)):
        if resolution < 0:
            raise ValueError(f"The number of refinements must be >= 0, got {resolution}.")
        h = longest / 2 ** int(resolution)
    else:
        if not (np.isfinite(resolution) and resolution > 0):
            raise ValueError(f"The element size must be positive, got {resolution}.")
        h = float(resolution)
    if problem.dim > 3:
        raise ValueError(f"pd.finite_elements meshes 1D, 2D and 3D domains; this one is {problem.dim}D.")
    cells = float(np.prod(np.ceil(np.asarray(domain.lengths) / h)))
    if cells > _MAX_CELLS:
        what = (
            f"resolution={resolution} refinements, elements of side {h:.3g}"
            if isinstance(resolution, (int, np.integer))
            else f"elements of side {h:.3g}"
        )
        raise ValueError(
            f"pd.finite_elements: {what} make a grid of {cells:.3g} cells, more than {_MAX_CELLS:.0e} "
            "(the mesh alone would not fit in memory). An int resolution is a number of uniform "
            "refinements (7 gives 128 elements along the longest side); a float is the element side."
        )
    assert isinstance(domain, (Box, Difference))
    skfem = _skfem()
    op = _Operator(problem)
    _check_interfaces(problem, op)
    parts = [
        _BoundaryPart(c, problem) for c in problem.lowered_conditions if not isinstance(c.region, Interface)
    ]

    t0 = time.perf_counter()
    mesh, axes = _mesh(skfem, domain, h, problem.interfaces)
    # multiply the equation by the sign of k: the principal part is then positive
    # definite (the matrix is SPD for Poisson, -Laplacian(u) + c u with c >= 0, ...)
    sign = op.check_elliptic(mesh.p, problem)
    element = getattr(skfem, _ELEMENTS[(problem.dim, degree)])()
    # exact for the mass matrix (scikit-fem's default); enough for the nominal order with smooth f
    intorder = 2 * degree
    basis = skfem.Basis(mesh, element, intorder=intorder)

    # which boundary facets belong to which condition
    facets = mesh.boundary_facets()
    mid = mesh.p[:, mesh.facets[:, facets]].mean(axis=1)
    owner = np.full(facets.shape, -1)
    for axis in problem.periodic:  # faces that wrap around: no condition, no boundary
        a, b = domain.lower[axis], domain.upper[axis]
        tol = 1e-9 * (b - a)
        owner[(np.abs(mid[axis] - a) < tol) | (np.abs(mid[axis] - b) < tol)] = -2
    for j, part in enumerate(parts):
        on = part.matches(mid)
        clash = on & (owner != -1)
        if np.any(clash):
            other = parts[owner[np.flatnonzero(clash)[0]]]
            raise ValueError(
                f"pd.finite_elements needs exactly one condition on each part of the boundary; "
                f"{other.name} and {part.name} both hold near {_where(problem, mid[:, clash][:, 0])}."
            )
        owner[on] = j
        part.facets = facets[on]
    if np.any(owner == -1):
        raise ValueError(
            f"pd.finite_elements needs a condition on every part of the boundary; none holds near "
            f"{_where(problem, mid[:, owner == -1][:, 0])}. Add one (e.g. u.on(pd.boundary) == g)."
        )

    @skfem.BilinearForm
    def bilinear(u, v, w):
        out = 0.0
        for i in range(problem.dim):
            out = out + sign * op.k[i](w.x) * u.grad[i] * v.grad[i]
            if op.convection[i] is not None:
                out = out - sign * op.convection[i](w.x) * u.grad[i] * v
        if op.c is not None:
            out = out - sign * op.c(w.x) * u * v
        return out

    @skfem.LinearForm
    def load(v, w):
        return -sign * op.f(w.x) * v if op.f is not None else 0.0 * v

    a_mat = bilinear.assemble(basis)
    rhs = load.assemble(basis)
    dirichlet, xd = [], np.zeros(basis.N)
    for part in parts:
        if part.facets.size == 0:
            continue
        if part.kind == "dirichlet":
            dofs = basis.get_dofs(part.facets).all()
            xd[dofs] = part.g(basis.doflocs[:, dofs])
            dirichlet.append(dofs)
            continue
        fb = skfem.FacetBasis(mesh, element, facets=part.facets, intorder=intorder)
        ka, ba, ga = op.k[part.axis], part.beta_over_alpha, part.g_over_alpha
        if ba is not None:
            robin = skfem.BilinearForm(lambda u, v, w, ka=ka, ba=ba: sign * ka(w.x) * ba(w.x) * u * v)
            a_mat = a_mat + robin.assemble(fb)
        if ga is not None:
            flux = skfem.LinearForm(lambda v, w, ka=ka, ga=ga: sign * ka(w.x) * ga(w.x) * v)
            rhs = rhs + flux.assemble(fb)
    fixed = np.unique(np.concatenate(dirichlet)) if dirichlet else np.zeros(0, dtype=np.int64)
    # periodic axes: each DOF on an upper face is the DOF across on the lower face
    # (u = P u_r): the system becomes P^T A P u_r = P^T b, whose face integrals cancel
    rep = _periodic_representatives(problem, basis.doflocs)
    if problem.periodic:
        join = sps.csr_matrix((np.ones(basis.N), (np.arange(basis.N), rep)), shape=(basis.N, basis.N))
        a_mat = join.T @ a_mat @ join
        rhs = join.T @ rhs
        xd[rep[fixed]] = xd[fixed]
        fixed = np.unique(rep[fixed])
    free = np.setdiff1d(np.unique(rep), fixed)
    a_mat = a_mat.tocsr()
    a_ff = a_mat[free][:, free].tocsc()
    b_f = rhs[free] - a_mat[free][:, fixed] @ xd[fixed]
    t1 = time.perf_counter()

    symmetric = all(c is None for c in op.convection)
    method = solver
    if solver == "auto":
        large = problem.dim == 3 or free.size > _DIRECT_DOFS_2D
        method = "amg" if symmetric and large and _has_pyamg() else "direct"
    x = xd.copy()
    iterations = None
    if method == "amg" and free.size:
        if not symmetric:
            raise ValueError(
                f"solver='amg' (CG with algebraic multigrid) needs a symmetric problem; "
                f"`{problem.equation}` has first-order terms. Use solver='direct'."
            )
        try:
            import pyamg
        except ImportError as e:
            raise ImportError(
                "solver='amg' needs pyamg: pip install 'pdedsl[fem]' (or pip install pyamg)."
            ) from e
        a_csr = a_ff.tocsr()
        residuals: list = []
        ml = pyamg.smoothed_aggregation_solver(a_csr)
        x_f = ml.solve(b_f, tol=1e-12, accel="cg", maxiter=1000, residuals=residuals)
        iterations = len(residuals) - 1
        scale = np.linalg.norm(b_f) or 1.0
        if np.isfinite(x_f).all() and np.linalg.norm(a_csr @ x_f - b_f) <= 1e-9 * scale:
            x[free] = x_f
        elif solver == "auto":  # not positive definite after all (Helmholtz with a large k): factorise
            method = "direct"
        else:
            raise RuntimeError(
                f"CG with algebraic multigrid did not converge in {iterations} iterations (the matrix "
                "is probably not positive definite, e.g. Helmholtz with a large k); use solver='direct'."
            )
    if method == "direct" and free.size:
        x[free] = spl.splu(a_ff).solve(b_f)
    x = x[rep]
    t2 = time.perf_counter()
    if not np.all(np.isfinite(x)):
        raise RuntimeError(
            "The finite-element system is singular (a pure Neumann problem, or k^2 at an eigenvalue)."
        )
    info = {
        "solver": "SuperLU" if method == "direct" else "CG + smoothed-aggregation AMG (pyamg)",
        "iterations": iterations,
        "degree": degree,
        "element": type(element).__name__,
        "elements": int(mesh.t.shape[1]),
        "dofs": int(basis.N),
        "mesh_size": h,
        "setup_s": t1 - t0,
        "solve_s": t2 - t1,
    }
    return FiniteElementSolution(problem, mesh, basis, x, info, axes)


def _periodic_representatives(problem, doflocs) -> np.ndarray:
    """(N,): for each DOF, the DOF it equals across the periodic axes (itself if none):
    located by its coordinates, which a tensor-grid mesh repeats on opposite faces."""
    n = doflocs.shape[1]
    rep = np.arange(n)
    box = problem.domain
    scale = float(np.max(box.lengths))
    keys = {tuple(k): i for i, k in enumerate(np.round(doflocs.T / scale, 9).tolist())}
    for axis in problem.periodic:
        a, b = box.lower[axis], box.upper[axis]
        upper = np.flatnonzero(np.abs(doflocs[axis] - b) < 1e-9 * (b - a))
        across = doflocs[:, upper].copy()
        across[axis] = a
        partner = [keys.get(tuple(k)) for k in np.round(across.T / scale, 9).tolist()]
        if any(j is None for j in partner):  # pragma: no cover - the mesh is a tensor grid
            raise RuntimeError("pd.finite_elements: a periodic face's nodes do not match the face across.")
        rep[upper] = np.asarray(partner)
    for _ in problem.periodic:  # a corner of two periodic axes: follow the chain
        rep = rep[rep]
    return rep


def _where(problem, point) -> str:
    return "(" + ", ".join(f"{c} = {v:.3g}" for c, v in zip(problem.coords, point)) + ")"


__all__ = ["FiniteElementSolution", "finite_elements"]
