"""Refuse equations whose strong form silently loses a jump condition.

Collocation evaluates the equation pointwise after sympy has applied the product
rule. Where a coefficient under a derivative jumps (`D(k*D(u, x), x)` with a
piecewise-constant k, the classic layered-medium problem), sympy differentiates
each piece and drops the Dirac delta at the jump: the lowered equation then says
`k u'' = f` on each side with u' continuous across the jump, instead of `k u'`
continuous. The solve converges, to the solution of another problem (on
`-(k u')' = 1`, k = 1 | 10, u(0) = u(1) = 0: u(0.5) = 0.069 instead of 0.023).
A source with a Dirac delta (a point load) is lost the same way: collocation
points almost never sit on it.

`check(expr, unknown, coords, context)` raises NotImplementedError with the
culprit for both, before the derivatives are evaluated.
"""

from __future__ import annotations

import sympy as sp

from ..symbolic import pretty

# functions with a jump wherever their argument changes sign (or crosses an integer)
_JUMPS = (sp.Heaviside, sp.sign, sp.floor, sp.ceiling, sp.frac)
# continuous, with a jump in the first derivative
_KINKS = (sp.Abs, sp.Min, sp.Max)


def _contains(expr, func) -> bool:
    return any(
        isinstance(f, sp.core.function.AppliedUndef) and f.func == func for f in expr.atoms(sp.Function)
    )


def _single_breakpoints(cond, v):
    """The values c of `v` at which `cond` (a relational, or an And/Or of them, in
    `v` alone) changes; None if the condition involves anything else."""
    if cond in (sp.true, sp.false):
        return []
    if isinstance(cond, (sp.And, sp.Or, sp.Not)):
        out = []
        for a in cond.args:
            b = _single_breakpoints(a, v)
            if b is None:
                return None
            out += b
        return out
    if isinstance(cond, sp.core.relational.Relational):
        diff = cond.lhs - cond.rhs
        if diff.free_symbols != {v}:
            return None
        try:
            if sp.degree(diff, v) != 1:
                return None
        except sp.PolynomialError:  # not a polynomial in v
            return None
        root = sp.solve(diff, v)[0]
        return [root] if root.is_number else None
    return None


def _piece_at(p: sp.Piecewise, v, at):
    """The expression of the piece of `p` active at `v = at` (conditions in v alone)."""
    for e, c in p.args:
        if c == sp.true or bool(c.subs(v, at)):
            return e
    return None


def _piecewise_jump(p: sp.Piecewise, v, order: int, allowed=()):
    """A point where `p` or one of its first `order - 1` derivatives in `v` jumps
    (a string naming it), or None. Conditions in other variables too: any two pieces
    that differ count as a jump (their regions meet somewhere)."""
    breaks = []
    for _, c in p.args:
        b = _single_breakpoints(c, v)
        if b is None:
            exprs = [e for e, _ in p.args]
            for a in exprs[1:]:
                if sp.simplify(a - exprs[0]).is_zero is not True:
                    return f"between the pieces {pretty(exprs[0])} and {pretty(a)}"
            return None
        breaks += b
    for c in sorted(set(breaks), key=lambda b: float(b)):
        if any(abs(float(c) - a) <= 1e-12 * max(1.0, abs(a)) for a in allowed):
            continue  # a declared interface: the jump conditions there say what is continuous
        eps = sp.Rational(1, 10**9) * max(1, abs(float(c)))
        left, right = _piece_at(p, v, c - eps), _piece_at(p, v, c + eps)
        if left is None or right is None:
            continue
        for k in range(order):
            jump = sp.simplify((sp.diff(left, v, k) - sp.diff(right, v, k)).subs(v, c))
            if jump.is_zero is not True:
                what = "it" if k == 0 else f"its derivative of order {k}"
                return f"at {v} = {float(c):g}, where {what} jumps by {pretty(jump)}"
    return None


def _at_interface(atom, vs, interfaces) -> bool:
    """Does the jump of Heaviside/sign/... `atom` lie on a declared interface (its
    argument linear in one coordinate, with its root on an interface of it)?"""
    for v in vs:
        allowed = [c for s, c in interfaces if s == v]
        if not allowed or len(atom.args) < 1:
            continue
        roots = _single_breakpoints(sp.StrictGreaterThan(atom.args[0], 0), v)
        if roots and all(any(abs(float(r) - a) <= 1e-12 * max(1.0, abs(a)) for a in allowed) for r in roots):
            return True
    return False


def _culprit(inner, counts, coords, unknown, interfaces=()):
    """(the non-smooth coefficient, where it jumps) under a derivative with `counts`
    {variable: order}, or None. Functions of the unknown (|u|, sign(u')) are not
    coefficients: their smoothness is the nonlinear solver's business."""
    for atom in sorted(inner.atoms(sp.Function), key=sp.default_sort_key):
        if _contains(atom, unknown.func) or atom.atoms(sp.Derivative):
            continue
        vs = [v for v in counts if v in atom.free_symbols and v in coords]
        if not vs:
            continue
        if isinstance(atom, (sp.Heaviside, sp.sign)) and _at_interface(atom, vs, interfaces):
            continue
        if isinstance(atom, _JUMPS) or isinstance(atom, sp.DiracDelta):
            return atom, "where its argument changes sign"
        if isinstance(atom, _KINKS) and any(counts[v] >= 2 for v in vs):
            return atom, "where its first derivative jumps (and the derivative of order 2 has a delta)"
        if isinstance(atom, sp.Piecewise):
            for v in vs:
                allowed = tuple(c for s, c in interfaces if s == v)
                where = _piecewise_jump(atom, v, counts[v], allowed)
                if where is not None:
                    return atom, where
    return None


def check(expr, unknown, coords, context: str, interfaces=()) -> None:
    """Raise NotImplementedError for a coefficient that jumps under a derivative of
    the unknown, or a Dirac delta anywhere (see the module docstring).

    `interfaces`: `(coordinate, value)` pairs where the problem has interface
    conditions (`u.jump(x=c) == ...`); jumps there are allowed."""
    for delta in expr.atoms(sp.DiracDelta):
        if any(c in delta.free_symbols for c in coords):
            raise NotImplementedError(
                f"The {context} contains {pretty(delta)}, a point source: collocation evaluates the "
                "equation at points, which miss it, so its effect would be lost. Replace it by a "
                "narrow smooth bump of the same integral (e.g. a Gaussian of width a few point "
                "spacings)."
            )
    for d in expr.atoms(sp.Derivative):
        inner = d.expr
        if not _contains(inner, unknown.func):
            continue
        counts = {}
        for v, n in d.variable_count:
            counts[v] = counts.get(v, 0) + int(n)
        found = _culprit(inner, counts, coords, unknown, tuple((s, float(c)) for s, c in interfaces))
        if found is None:
            continue
        atom, where = found
        raise NotImplementedError(
            f"The {context} differentiates {pretty(atom)}, which is not smooth ({where}), together "
            f"with the unknown: `{pretty(d)}`. Evaluated pointwise, the product rule drops the "
            "jump condition there (for -D(k*D(u, x), x) == f with a jumping k, that k*D(u, x) is "
            "continuous), and the solve would converge to the solution of another problem. "
            "Declare the interface instead: add the conditions that hold across it, e.g. "
            "u.jump(x=c) == 0 and (k*D(u, x)).jump(x=c) == 0, and cut the model there, "
            "pd.FBPINN(pd.Cut(pd.Grid(...), x=c), ...) (docs/dsl.md, 'Interfaces'); or write the "
            "coefficient as a smooth function (e.g. k0 + (k1 - k0)*(1 + tanh((x - c)/w))/2 with w a "
            "few point spacings)."
        )


def drop_interface_deltas(expr, coords, interfaces):
    """Replace by 0 the Dirac deltas that differentiating a step on an interface
    created (`D(Heaviside(x - c))`): they vanish on each side, where the equation is
    evaluated, and the interface conditions carry what happens on the interface."""
    if not interfaces:
        return expr
    found = tuple((s, float(c)) for s, c in interfaces)

    def on_interface(e):
        vs = [v for v in coords if v in e.free_symbols]
        return isinstance(e, sp.DiracDelta) and bool(vs) and _at_interface(e, vs, found)

    return expr.replace(on_interface, lambda e: sp.S.Zero)
