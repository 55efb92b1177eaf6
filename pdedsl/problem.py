"""A problem: one equation on a domain, with conditions; validated and lowered at once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import sympy as sp
from sympy.core.function import AppliedUndef

from .geometry import Boundary, Box, Difference, Face, Observations, PointRegion
from .lower import LinearForm, NonlinearError, NonlinearForm, lower_linear, lower_nonlinear
from .symbolic import (
    At,
    Condition,
    Jump,
    NormalDerivative,
    Periodic,
    WholeBoundary,
    as_equation,
    pretty,
    unknowns_in,
)
from .symbolic.expression import parameter_value


@dataclass(frozen=True)
class Interface:
    """Where an interface condition holds: a point (1D) or a piece of the plane
    `coordinate[axis] == value` inside the domain; the condition's rows are its
    expression on the upper side minus on the lower side."""

    region: Face | PointRegion
    axis: int
    value: float

    @property
    def normal(self):
        return None

    def grid_counts(self, shape, lengths):
        counts = getattr(self.region, "grid_counts", None)
        return 1 if counts is None else counts(shape, lengths)

    def sample(self, n=1, method: str = "grid", seed: int = 0):
        return self.region.sample(n, method, seed)

    def __str__(self):
        return f"interface {self.region}"


@dataclass(frozen=True)
class LoweredCondition:
    """One condition on one region (a `Condition` on the boundary gives one per face)."""

    name: str
    condition: Condition
    region: Face | PointRegion | Observations
    form: LinearForm | NonlinearForm
    data: np.ndarray | None = None
    # an interface condition: its left-hand side alone, lowered (the nonlinear path
    # takes the form's jump and subtracts the right-hand side `jump_rhs` at the points)
    lhs_form: LinearForm | NonlinearForm | None = None
    jump_rhs: sp.Expr | None = None


class Problem:
    """A differential equation for one unknown, on a box (or a box minus boxes), with conditions.

    Args:
        equation: `lhs == rhs` built from a pdedsl unknown, or a `sympy.Eq`.
        domain: `pd.Interval(t, 0, 1)`, `pd.Box([x, y], [0, 0], [1, 1])`, or a box
            minus boxes such as the L-shape `pd.Box(...) - pd.Box([x, y], [0.5, 0.5], [1, 1])`.
        conditions: e.g. `[u.at(t=0) == 1, D(u, t).at(t=0) == 0]`,
            `u.on(pd.boundary) == 0`, `(Dn(u) + u).at(x=1) == g(y)`.
            Observed data: `u.at(t=points) == values` (arrays of equal length).
            Periodic: `u.at(x=0) == u.at(x=1)` (the ends of the domain along x;
            in 2D and 3D the two faces, matched point by point). The model must
            then be periodic along x (`pd.Grid(domain, n, overlap, periodic=[x])`),
            which makes u and all its derivatives periodic: `D(u, x).at(x=0) ==
            D(u, x).at(x=1)` may be written too but adds nothing, and `pd.boundary`
            no longer includes the faces x = 0 and x = 1.
            Interfaces: `u.jump(x=c) == 0`, `(k*D(u, x)).jump(x=c) == 0` (upper side
            minus lower side across the plane x = c; a coefficient k may jump there, and
            the model must be cut there: `pd.Cut(decomposition, x=c)`).
        parameters: values for plain sympy symbols, e.g. `{m: 1.0, k: 6400.0}`; a key
            may also be the symbol's name, `{"m": 1.0, "k": 6400.0}`.
        unknown_parameters: symbols to solve for from observed data, with initial
            guesses, e.g. `{mu: 1.0}` (a list of symbols starts them at their
            `pd.Parameter` value, else 1.0); like `parameters`, a key may be the
            symbol's name, `{"mu": 1.0}` or `["mu"]`.

    Everything is checked and lowered here, so mistakes surface at definition time.
    A nonlinear equation (`u*D(u, x)`, `exp(u)`, ...) is lowered to a residual for
    Gauss-Newton (`problem.linear` is False); see `pd.GaussNewton`.
    """

    def __init__(
        self,
        equation,
        domain: Box,
        conditions: Sequence = (),
        parameters: Mapping | None = None,
        unknown_parameters=None,
    ):
        self.equation = as_equation(equation)
        if not isinstance(domain, (Box, Difference)):
            raise TypeError(
                "domain must be pd.Interval(...), pd.Box(...) or a box minus boxes "
                f"(pd.Box(...) - pd.Box(...)), got {type(domain).__name__}."
            )
        self.domain = domain
        if parameters is not None and not isinstance(parameters, Mapping):
            raise TypeError(
                f"parameters must be a dict such as {{k: 6400.0}}, got {type(parameters).__name__}."
            )
        unknowns = unknowns_in(self.equation.residual)
        if not unknowns:
            raise ValueError(
                f"The equation `{self.equation}` contains no unknown function. Declare one "
                "with u = pd.Function('u')(x) and use it in the equation."
            )
        funcs = {f.func for f in unknowns}
        if len(funcs) > 1:
            raise NotImplementedError(
                f"The equation `{self.equation}` has several unknowns "
                f"({', '.join(sorted(map(str, unknowns)))}); systems are not supported yet."
            )
        candidates = [f for f in unknowns if all(isinstance(a, sp.Symbol) for a in f.args)]
        if not candidates:
            raise ValueError(f"The unknown in `{self.equation}` is never a function of its coordinates.")
        self.unknown: AppliedUndef = candidates[0]
        ucoords = tuple(self.unknown.args)
        if set(ucoords) != set(domain.coords):
            same_names = sorted(map(str, ucoords)) == sorted(map(str, domain.coords))
            raise ValueError(
                f"The unknown {pretty(self.unknown)} depends on {tuple(map(str, ucoords))} "
                f"but the domain has coordinates {tuple(map(str, domain.coords))}: they "
                "must be the same (one domain dimension per coordinate)."
                + (
                    " The names match but the symbols differ in their assumptions (e.g. "
                    "pd.Symbol('t', real=True) against pd.Symbol('t')): create each coordinate once "
                    "and use that symbol everywhere."
                    if same_names
                    else ""
                )
            )
        self.coords = domain.coords
        self.nonlinear_terms: str | None = None
        if isinstance(conditions, (Condition, Periodic, sp.Equality)):  # one condition, not in a list
            conditions = [conditions]
        self.conditions = tuple(self._as_condition(c) for c in conditions)
        self.unknown_parameters, self.initial_parameters = _unknown_parameters(
            unknown_parameters, self._symbols()
        )
        for p in self.unknown_parameters:
            if p in domain.coords:
                raise ValueError(
                    f"{p} is a coordinate of the domain, not a parameter: remove it from unknown_parameters=."
                )
        self.parameters = self._resolve_parameters(dict(parameters or {}))
        self.interfaces = self._interfaces()
        self.equation_form = self._lower(self.equation.residual, None, "equation")
        self.periodic = self._periodic_axes()
        lowered = []
        for i, cond in enumerate(self.conditions):
            if isinstance(cond, Periodic):
                continue
            regions = self._regions(cond)
            lhs_form = self._check_jump_terms(cond) if isinstance(cond.where, Jump) else None
            for region in regions:
                name = f"condition {i}" + (f" ({region})" if len(regions) > 1 else "")
                form = self._lower(cond.residual, region.normal, f"condition `{cond}`")
                data = cond.data
                if data is not None:
                    if not isinstance(region, Observations):
                        raise ValueError(
                            f"Condition `{cond}` gives an array of values but is not at observation "
                            "points; write u.at(t=points) == values with one point per value."
                        )
                    if data.size != region.points.shape[0]:
                        raise ValueError(
                            f"Condition `{cond}`: {data.size} values for {region.points.shape[0]} "
                            "observation points; give one value per point."
                        )
                extra = {} if lhs_form is None else {"lhs_form": lhs_form, "jump_rhs": cond.rhs}
                lowered.append(LoweredCondition(name, cond, region, form, data, **extra))
        self.lowered_conditions = tuple(lowered)
        self._check_contradictions()
        self._check_interface_counts()
        known = set(self.unknown_parameters)
        _check_bound(self.equation_form, f"equation `{self.equation}`", known)
        for c in self.lowered_conditions:
            _check_bound(c.form, f"condition `{c.condition}`", known)
        self._check_identifiable()

    def _symbols(self) -> set:
        """The plain symbols of the equation and the conditions (coordinates included)."""
        found = set(self.equation.residual.free_symbols)
        for c in self.conditions:
            if isinstance(c, Condition):
                found |= c.residual.free_symbols
        return {s for s in found if isinstance(s, sp.Symbol)}

    def _resolve_parameters(self, given: dict) -> dict:
        """Check the `parameters=` dict; keys may be symbols or their names."""
        symbols = self._symbols()
        by_name = _by_name(symbols)
        resolved, unmatched = {}, []
        for k, value in given.items():
            if isinstance(k, str):
                matches = by_name.get(k, [])
                if not matches:  # ignored, like a symbol the problem does not use
                    unmatched.append(k)
                    continue
                if len(matches) > 1:
                    raise ValueError(
                        f"parameters= names {k!r}, but the problem has {len(matches)} symbols of "
                        "that name with different assumptions: key the value by the symbol itself."
                    )
                k = matches[0]
            elif not isinstance(k, sp.Symbol):
                raise TypeError(f"parameters keys must be sympy Symbols or their names, got {k!r}.")
            elif k not in symbols and k.name in by_name:
                raise ValueError(
                    f"parameters= gives a value for {k}, but the {k} in the problem is a "
                    "different symbol of the same name (its assumptions differ, e.g. "
                    "pd.Symbol('k', positive=True) against pd.Symbol('k')): create each symbol "
                    "once and use it everywhere, or key the value by its name, "
                    f"parameters={{'{k}': ...}}."
                )
            if k in self.domain.coords:
                raise ValueError(
                    f"{k} is a coordinate of the domain, not a parameter: remove it from parameters= "
                    f"(to fix {k} at a value, write a condition such as u.at({k}=...))."
                )
            if k in resolved:
                raise ValueError(f"parameters= gives {k} twice (by the symbol and by its name).")
            parameter_value(k, value)  # refuses NaN, infinities, arrays, symbols
            resolved[k] = value
        valued = set(resolved) | set(self.unknown_parameters) | set(self.domain.coords)
        missing = sorted(s.name for s in symbols - valued if getattr(s, "value", None) is None)
        if unmatched and missing:  # most likely a misspelt name
            raise ValueError(
                f"parameters= names {', '.join(map(repr, unmatched))}, which the equation and the "
                f"conditions do not use, and gives no value to {', '.join(missing)}."
            )
        both = set(self.unknown_parameters) & set(resolved)
        if both:
            raise ValueError(
                f"{', '.join(sorted(map(str, both)))} is given a value in parameters= and declared "
                "unknown in unknown_parameters=; choose one."
            )
        return resolved

    def _check_contradictions(self) -> None:
        """Two linear conditions with the same operator on the same point or face but
        different data cannot both hold; a least-squares solve would silently split the
        difference (u(0) = 1 and u(0) = 2 gave u(0) = 1.5)."""
        linear = [c for c in self.lowered_conditions if c.data is None and isinstance(c.form, LinearForm)]
        for i, a in enumerate(linear):
            for b in linear[i + 1 :]:
                if (
                    type(a.region) is not type(b.region)
                    or a.region != b.region
                    or a.form.multi_indices != b.form.multi_indices
                    or a.form.coefficients != b.form.coefficients
                ):
                    continue
                pts = a.region.sample(9)
                try:
                    va, vb = (
                        np.broadcast_to(
                            np.asarray(sp.lambdify(self.coords, f.rhs, "numpy")(*pts.T), float), len(pts)
                        )
                        for f in (a.form, b.form)
                    )
                except Exception:  # an rhs NumPy cannot evaluate: no verdict
                    continue
                if not np.allclose(va, vb, rtol=1e-10, atol=1e-12 * max(1.0, float(np.max(np.abs(va))))):
                    raise ValueError(
                        f"The conditions `{a.condition}` and `{b.condition}` contradict each other on "
                        f"{a.region} (the same operator with different values); a least-squares solve "
                        "would split the difference. Keep one of them."
                    )

    def _lower(self, residual, normal, context):
        kw = dict(values=self.parameters, normal=normal, context=context)
        interfaces = tuple((self.coords[a], v) for a, v in self.interfaces)
        if not self.unknown_parameters:
            try:
                return lower_linear(residual, self.unknown, self.coords, interfaces=interfaces, **kw)
            except NonlinearError as e:
                # kept to name the culprit if a linear-only solver is asked for later
                if not getattr(self, "nonlinear_terms", None):
                    self.nonlinear_terms = str(e).split(". Nonlinear")[0] + "."
        return lower_nonlinear(
            residual,
            self.unknown,
            self.coords,
            unknown_parameters=self.unknown_parameters,
            interfaces=interfaces,
            **kw,
        )

    def _check_identifiable(self):
        if not self.unknown_parameters:
            return
        forms = [self.equation_form] + [c.form for c in self.lowered_conditions]
        used = set().union(*(f.free_symbols for f in forms))
        for p in self.unknown_parameters:
            if p not in used:
                raise ValueError(
                    f"The unknown parameter {p} occurs in neither the equation nor a condition, "
                    "so no data can identify it; remove it from unknown_parameters."
                )
        if not any(c.data is not None for c in self.lowered_conditions):
            names = ", ".join(map(str, self.unknown_parameters))
            raise ValueError(
                f"The unknown parameter(s) {names} cannot be identified without data: the "
                "equation and its conditions are satisfied for any value. Add observations, "
                "e.g. u.at(t=points) == values."
            )

    @property
    def linear(self) -> bool:
        """True when the equation and every condition are linear in the unknown and
        no parameter is unknown: `pd.solve` then needs one linear least-squares solve."""
        forms = [self.equation_form] + [c.form for c in self.lowered_conditions]
        return all(isinstance(f, LinearForm) for f in forms)

    @property
    def data_conditions(self) -> tuple[LoweredCondition, ...]:
        return tuple(c for c in self.lowered_conditions if c.data is not None)

    @property
    def dim(self) -> int:
        return self.domain.dim

    @property
    def max_order(self) -> int:
        return max([self.equation_form.order] + [c.form.order for c in self.lowered_conditions])

    def _interfaces(self) -> tuple[tuple[int, float], ...]:
        """The (axis, value) of every interface (`expr.jump(x=c)`), sorted; checks that
        each lies strictly inside the domain and that no other condition sits on it."""
        found = set()
        box = self.domain.bounding_box
        for cond in self.conditions:
            if not (isinstance(cond, Condition) and isinstance(cond.where, Jump)):
                continue
            if cond.data is not None:
                raise ValueError(f"The interface condition `{cond}` takes one right-hand side, not data.")
            if sp.sympify(cond.lhs).has(NormalDerivative):
                raise ValueError(
                    f"The interface condition `{cond}` uses Dn, the outward normal derivative, which an "
                    f"interface does not have; write the derivative across it, D(u, {cond.where.coord})."
                )
            if cond.where.coord not in self.coords:
                raise ValueError(f"Condition `{cond}`: {cond.where.coord} is not a coordinate of the domain.")
            axis = self.domain.axis(cond.where.coord)
            value = float(cond.where.value)
            lo, hi = float(box.lower[axis]), float(box.upper[axis])
            if not lo < value < hi:
                raise ValueError(
                    f"The interface of `{cond}` must lie strictly inside the domain ({lo:g} < "
                    f"{cond.where.coord} < {hi:g}), got {value:g}."
                )
            if axis in self._periodic_links():
                raise NotImplementedError(f"Interfaces across the periodic coordinate {cond.where.coord}.")
            tol = 1e-12 * max(1.0, hi - lo)
            if not any(a == axis and abs(v - value) <= tol for a, v in found):
                found.add((axis, value))
        for cond in self.conditions:
            where = getattr(cond, "where", None)
            if isinstance(where, At) and not where.is_observation:
                for sym, val in where.values.items():
                    if sym not in self.coords:
                        continue
                    a, v = self.domain.axis(sym), float(val)
                    if any(a == b and abs(v - w) <= 1e-12 * max(1.0, abs(w)) for b, w in found):
                        raise ValueError(
                            f"The condition `{cond}` lies on the interface {sym} = {v:g}, where the "
                            "solution may jump: say which side, or write the jump, e.g. "
                            f"{pretty(self.unknown)}.jump({sym}={v:g}) == 0, and a condition away "
                            "from the interface."
                        )
        return tuple(sorted(found))

    def _check_jump_terms(self, cond):
        """The jump rows take the right-hand side at the interface; a term without the
        unknown on the left (e.g. `(u + H(x - c)).jump(x=c)`) would be taken there too,
        though its own jump is what counts. Such terms belong on the right. Returns the
        left-hand side, lowered."""
        form = self._lower(cond.lhs, None, f"condition `{cond}`")
        if isinstance(form, LinearForm) and form.rhs != 0:
            raise ValueError(
                f"The interface condition `{cond}` has terms without {pretty(self.unknown)} on its "
                f"left-hand side ({pretty(-form.rhs)}); write the jump they make on the right-hand "
                f"side instead: `(...).jump(...) == value`."
            )
        return form

    def _check_interface_counts(self) -> None:
        """An equation of order m in the coordinate across an interface needs m
        conditions there (u and the flux for a second-order equation): fewer leave the
        two sides loosely coupled (the least-squares solution is then one of many),
        more over-determine them."""
        if not self.interfaces:
            return
        for axis, value in self.interfaces:
            order = max(a[axis] for a in self.equation_form.multi_indices)
            mine = [
                c
                for c in self.lowered_conditions
                if isinstance(c.region, Interface)
                and c.region.axis == axis
                and abs(c.region.value - value) <= 1e-12 * max(1.0, abs(value))
            ]
            count = len({id(c.condition) for c in mine})  # a plane in pieces: one condition
            if count != order:
                sym = self.coords[axis]
                u = pretty(self.unknown)
                raise ValueError(
                    f"The equation is of order {order} in {sym}, so the interface {sym} = {value:g} "
                    f"needs {order} interface condition(s), got {count}"
                    + (
                        f": for -D(k*D(u, {sym}), {sym}) + ... == f, {u}.jump({sym}={value:g}) == 0 and "
                        f"(k*D({u}, {sym})).jump({sym}={value:g}) == 0."
                        if order == 2
                        else "."
                    )
                )

    def _periodic_links(self) -> set[int]:
        """Axes linked by periodic conditions (before they are checked)."""
        out = set()
        for cond in self.conditions:
            if isinstance(cond, Periodic) and isinstance(cond.first.where, At):
                for sym in cond.first.where.values:
                    if sym in self.coords:
                        out.add(self.domain.axis(sym))
        return out

    def _periodic_axes(self) -> tuple[int, ...]:
        """Check the periodic conditions; the axes they make periodic, sorted."""
        found: dict[int, set] = {}
        for cond in self.conditions:
            if not isinstance(cond, Periodic):
                continue
            expr = cond.first.expression.expr
            if cond.second.expression.expr != expr:
                raise ValueError(
                    f"The condition `{cond}` links two different expressions; only periodic conditions "
                    "link two places, with the same expression on both sides: u.at(x=0) == u.at(x=1)."
                )
            if isinstance(self.domain, Difference):
                raise NotImplementedError(
                    f"Periodic conditions (`{cond}`) on a box with holes are not supported; use a pd.Box."
                )
            ends = [self._end(cond, r.where) for r in (cond.first, cond.second)]
            (axis, v1), (axis2, v2) = ends
            a, b = self.domain.lower[axis], self.domain.upper[axis]
            tol = 1e-12 * max(1.0, b - a)
            near_a, near_b = (
                (abs(v1 - a) <= tol, abs(v2 - a) <= tol),
                (abs(v1 - b) <= tol, abs(v2 - b) <= tol),
            )
            if axis != axis2 or not ((near_a[0] and near_b[1]) or (near_b[0] and near_a[1])):
                c = self.domain.coords[axis]
                raise ValueError(
                    f"The condition `{cond}` must link the two ends of the domain along one coordinate, "
                    f"e.g. {pretty(expr)} at {c} = {a:g} and at {c} = {b:g}; other links are not supported."
                )
            if not (expr == self.unknown or (isinstance(expr, sp.Derivative) and expr.expr == self.unknown)):
                raise NotImplementedError(
                    f"The periodic condition `{cond}`: only the unknown and its derivatives can be "
                    f"periodic (u.at(x=0) == u.at(x=1), D(u, x).at(x=0) == D(u, x).at(x=1)), not "
                    f"{pretty(expr)}."
                )
            found.setdefault(axis, set()).add(expr)
        for axis, exprs in found.items():
            if self.unknown not in exprs:
                c = self.domain.coords[axis]
                a, b = self.domain.lower[axis], self.domain.upper[axis]
                raise NotImplementedError(
                    f"The periodic conditions along {c} make only derivatives of {pretty(self.unknown)} "
                    f"periodic, not {pretty(self.unknown)} itself, which a periodic ansatz does not "
                    f"represent. If {pretty(self.unknown)} is periodic too, add "
                    f"{pretty(self.unknown)}.at({c}={a:g}) == {pretty(self.unknown)}.at({c}={b:g})."
                )
        return tuple(sorted(found))

    def _end(self, cond, where) -> tuple[int, float]:
        """(axis, value) of one side of a periodic condition: `.at(x=v)` or a face."""
        box = self.domain
        if isinstance(where, Face):
            if where.box != box:
                raise ValueError(f"Condition `{cond}` is on a face of another domain.")
            return where.axis, where.value
        if isinstance(where, At) and not where.is_observation and len(where.values) == 1:
            ((sym, val),) = where.values.items()
            if sym not in box.coords:
                raise ValueError(f"Condition `{cond}`: {sym} is not a coordinate of the domain.")
            return box.axis(sym), float(val)
        raise ValueError(
            f"The condition `{cond}` links two places; only periodic conditions, which fix one "
            "coordinate at each end of the domain (u.at(x=0) == u.at(x=1)), are supported."
        )

    @property
    def periodic_coords(self) -> tuple[sp.Symbol, ...]:
        """The coordinates along which the problem is periodic."""
        return tuple(self.coords[i] for i in self.periodic)

    def _as_condition(self, c) -> Condition | Periodic:
        if isinstance(c, (Condition, Periodic)):
            return c
        if isinstance(c, sp.Equality):
            return _condition_from_sympy(c, self.unknown)
        raise TypeError(
            f"Conditions are written like `u.at(t=0) == 1` or `u.on(pd.boundary) == 0`; got "
            f"{type(c).__name__}: {c!r}."
        )

    def _regions(self, cond: Condition):
        where = cond.where
        box = self.domain
        if isinstance(where, Jump):
            axis, value = box.axis(where.coord), float(where.value)
            if box.dim == 1:
                return (Interface(PointRegion(box, (value,)), axis, value),)
            if isinstance(box, Difference):  # the plane's pieces with the domain on both sides
                pieces = tuple(p for p in box.slice(axis, value) if p.normal is None)
                if not pieces:
                    raise ValueError(f"The interface of `{cond}` has no part inside the domain.")
                return tuple(Interface(p, axis, value) for p in pieces)
            return (Interface(Face(box, axis, value), axis, value),)
        if isinstance(where, (WholeBoundary, Boundary)):
            if isinstance(where, Boundary) and where.box != box:
                raise ValueError(f"Condition `{cond}` is on the boundary of another domain.")
            faces = tuple(f for f in box.faces if getattr(f, "axis", None) not in self.periodic)
            if not faces:
                raise ValueError(
                    f"Condition `{cond}`: the domain is periodic along every coordinate, so it has no "
                    "boundary; remove the condition (to fix the solution, use a point: u.at(...) == value)."
                )
            return faces
        if isinstance(where, Face):
            if getattr(where, "domain", where.box) != box:
                raise ValueError(f"Condition `{cond}` is on a face of another domain.")
            return (where,)
        if isinstance(where, At) and where.is_observation:
            return (self._observations(cond),)
        if isinstance(where, At):
            fixed = {}
            for sym, val in where.values.items():
                if sym not in box.coords:
                    raise ValueError(f"Condition `{cond}`: {sym} is not a coordinate of the domain.")
                fixed[box.axis(sym)] = float(val)
            if len(fixed) == box.dim:
                point = tuple(fixed[i] for i in range(box.dim))
                return (PointRegion(box, point),)
            if len(fixed) == 1:
                ((axis, value),) = fixed.items()
                if isinstance(box, Difference):  # the plane's pieces inside the domain
                    return box.slice(axis, value)
                return (Face(box, axis, value),)
            raise NotImplementedError(
                f"Condition `{cond}` fixes {len(fixed)} of {box.dim} coordinates (an edge); "
                "conditions on points or faces are supported."
            )
        raise TypeError(f"Cannot tell where condition `{cond}` holds: {where!r}.")

    def _observations(self, cond: Condition) -> Observations:
        box = self.domain
        values = cond.where.values
        for sym in values:
            if sym not in box.coords:
                raise ValueError(f"Condition `{cond}`: {sym} is not a coordinate of the domain.")
        missing = [str(c) for c in box.coords if c not in values]
        if missing:
            raise ValueError(
                f"Condition `{cond}`: observation points need every coordinate; {', '.join(missing)} "
                "is missing (give an array, or one number shared by all points)."
            )
        sizes = {v.size for v in values.values() if isinstance(v, np.ndarray)}
        if len(sizes) > 1:
            raise ValueError(
                f"Condition `{cond}`: the coordinate arrays have different lengths {sorted(sizes)}."
            )
        (n,) = sizes
        cols = [
            values[c] if isinstance(values[c], np.ndarray) else np.full(n, float(values[c]))
            for c in box.coords
        ]
        return Observations(box, np.stack(cols, axis=1))

    def __str__(self):
        lines = [f"{self.equation}   on {self.domain}"]
        lines += [f"  {c}" for c in self.conditions]
        return "\n".join(lines)

    __repr__ = __str__

    def latex(self) -> str:
        body = [self.equation.latex()] + [c.latex() for c in self.conditions]
        return r"\begin{cases} " + r" \\ ".join(body) + r" \end{cases}"


def _by_name(symbols) -> dict[str, list]:
    """The symbols by name: several under one name where their assumptions differ."""
    out: dict[str, list] = {}
    for s in symbols:
        out.setdefault(s.name, []).append(s)
    return out


def _unknown_parameters(spec, symbols) -> tuple[tuple[sp.Symbol, ...], np.ndarray]:
    """The unknown parameters and their initial guesses; `symbols` are the problem's
    (names are resolved against them, the way `parameters=` keys are)."""
    if spec is None:
        return (), np.zeros(0)
    if isinstance(spec, Mapping):
        items = list(spec.items())
    elif isinstance(spec, (sp.Symbol, str)):
        items = [(spec, None)]
    else:
        try:
            items = [(s, None) for s in spec]
        except TypeError:
            raise TypeError(
                "unknown_parameters must be a dict of initial guesses such as {mu: 1.0}, or a list "
                f"of symbols, got {type(spec).__name__}."
            ) from None
    by_name = _by_name(symbols)
    syms, init = [], []
    for s, v in items:
        if isinstance(s, str):
            matches = by_name.get(s, [])
            if len(matches) != 1:
                raise ValueError(
                    f"unknown_parameters names {s!r}, but "
                    + (
                        "neither the equation nor a condition has a symbol of that name."
                        if not matches
                        else f"the problem has {len(matches)} symbols of that name with different "
                        "assumptions: list the symbol itself."
                    )
                )
            s = matches[0]
        elif not isinstance(s, sp.Symbol):
            raise TypeError(
                f"unknown_parameters must be sympy Symbols (or pd.Parameter) or their names, got {s!r}."
            )
        elif s not in symbols and len(by_name.get(s.name, [])) == 1:
            raise ValueError(
                f"unknown_parameters lists {s}, but the {s} in the problem is a different symbol of "
                "the same name (its assumptions differ, e.g. pd.Symbol('mu', positive=True) against "
                f"pd.Symbol('mu')): create each symbol once and use it everywhere, or name it, "
                f"unknown_parameters={{'{s}': ...}}."
            )
        if v is None:
            v = getattr(s, "value", None)
            v = 1.0 if v is None else v
        try:
            v = float(v)
        except (TypeError, ValueError):
            raise TypeError(f"The initial guess for {s} must be a number, got {v!r}.") from None
        if not np.isfinite(v):
            raise ValueError(f"The initial guess for {s} must be finite, got {v}.")
        syms.append(s)
        init.append(v)
    if len(set(syms)) != len(syms):
        raise ValueError("unknown_parameters lists a symbol twice (by the symbol or by its name).")
    return tuple(syms), np.asarray(init, dtype=float)


def _check_bound(form, context: str, unknown=frozenset()) -> None:
    """Refuse symbols that are neither coordinates, unknown parameters nor given a value."""
    if isinstance(form, NonlinearForm):
        free = form.free_symbols
    else:
        free = set().union(*(c.free_symbols for c in form.coefficients), form.rhs.free_symbols)
    extra = sorted(map(str, free - set(form.coords) - set(unknown)))
    if extra:
        raise ValueError(
            f"The symbol(s) {', '.join(extra)} in the {context} have no value: pass "
            f"parameters={{{extra[0]}: value}} to pd.Problem, or use pd.Parameter('{extra[0]}', value)."
        )


def _condition_from_sympy(eq: sp.Equality, unknown: AppliedUndef) -> Condition | Periodic:
    """`sympy.Eq(u(0), 1)` or `sympy.Eq(Subs(Derivative(u(t), t), t, 0), 0)` -> `Condition`;
    `sympy.Eq(u(0), u(1))` (the unknown on both sides, at two places) -> `Periodic`."""
    sides = [unknowns_in(side) for side in (eq.lhs, eq.rhs)]
    if all(any(f.func == unknown.func for f in side) for side in sides):
        parts = [_at_one_place(side, unknown, eq) for side in (eq.lhs, eq.rhs)]
        if parts[0][1] != parts[1][1]:
            from .symbolic import Expression, Restricted

            return Periodic(*(Restricted(Expression(e), At(fixed)) for e, fixed in parts))
    expr, fixed = _at_one_place(eq.lhs - eq.rhs, unknown, eq)
    return Condition(expr, 0, At(fixed))


def _at_one_place(expr, unknown: AppliedUndef, eq) -> tuple[sp.Expr, dict]:
    """The expression with the unknown at its own coordinates, and where it was evaluated."""
    coords = tuple(unknown.args)
    fixed: dict = {}

    def record(values):
        for c, v in values.items():
            v = sp.sympify(v)
            if v.free_symbols:
                continue
            if c in fixed and fixed[c] != v:
                raise ValueError(f"Condition {eq} evaluates the unknown at two different places.")
            fixed[c] = v

    repl = {}
    for s in expr.atoms(sp.Subs):
        record(dict(zip(s.variables, s.point)))
        repl[s] = s.expr
    expr = expr.xreplace(repl)
    repl = {}
    for f in expr.atoms(AppliedUndef):
        if f.func == unknown.func and f.args != coords:
            record({c: a for c, a in zip(coords, f.args) if a != c})
            repl[f] = unknown
    expr = expr.xreplace(repl)
    if not fixed:
        raise ValueError(
            f"The sympy condition {eq} does not say where it holds; write u(0) or use "
            "the DSL: u.at(t=0) == value."
        )
    return expr, fixed


__all__ = ["Problem", "LoweredCondition"]
