"""Geometry: boxes, their faces and points, and the point samplers."""

import itertools

import numpy as np
import pytest
import sympy as sp

import pdedsl as pd
from pdedsl.geometry import SAMPLERS, Face, PointRegion, grid_shape, unit_points

x, y, z = pd.Symbol("x"), pd.Symbol("y"), pd.Symbol("z")
RANDOM_SAMPLERS = ("uniform", "sobol", "halton")

# Boxes of each dimension with awkward bounds (negative, non-unit, not representable).
BOXES = {
    1: pd.Interval(x, -1.3, 2.7),
    2: pd.Box([x, y], [-1.3, 0.1], [2.7, 0.7]),
    3: pd.Box([x, y, z], [0.0, -2.0, 0.25], [1.0, 2.0, 0.5]),
}


def inside_closed(box, pts) -> bool:
    """Exact (no tolerance) membership of every point in the closed box."""
    return bool(np.all((pts >= np.asarray(box.lower)) & (pts <= np.asarray(box.upper))))


# -- construction and validation ---------------------------------------------------------


def test_interval_is_a_1d_box():
    iv = pd.Interval(x, -1, 3)
    assert isinstance(iv, pd.Box)
    assert iv.coords == (x,) and iv.lower == (-1.0,) and iv.upper == (3.0,)
    assert iv.dim == 1
    np.testing.assert_array_equal(iv.lengths, [4.0])


def test_box_attributes_3d():
    box = BOXES[3]
    assert box.dim == 3
    assert box.coords == (x, y, z)
    np.testing.assert_allclose(box.lengths, [1.0, 4.0, 0.25])
    assert box.axis(y) == 1 and box.axis("z") == 2
    with pytest.raises(ValueError):
        box.axis(pd.Symbol("w"))


@pytest.mark.parametrize(
    "lower, upper",
    [
        ((0.0,), (0.0,)),  # empty side
        ((1.0,), (0.0,)),  # reversed side
        ((0.0, 1.0), (1.0, 1.0)),
        ((0.0, 0.0), (1.0, -1.0)),
        ((0.0, 0.0), (np.inf, 1.0)),
        ((np.nan, 0.0), (1.0, 1.0)),
    ],
)
def test_box_rejects_lower_not_below_upper(lower, upper):
    coords = (x, y)[: len(lower)]
    with pytest.raises(ValueError):
        pd.Box(coords, lower, upper)


def test_interval_rejects_lower_not_below_upper():
    with pytest.raises(ValueError):
        pd.Interval(x, 1, 1)
    with pytest.raises(ValueError):
        pd.Interval(x, 2, 1)


@pytest.mark.parametrize(
    "coords, lower, upper",
    [
        ((x, y), (0, 0), (1,)),
        ((x, y), (0,), (1, 1)),
        ((x,), (0, 0), (1, 1)),
        ((x, y, z), (0, 0), (1, 1)),
    ],
)
def test_box_rejects_mismatched_lengths(coords, lower, upper):
    with pytest.raises(ValueError):
        pd.Box(coords, lower, upper)


@pytest.mark.parametrize("coords", [("x",), (x, "y"), (x, x + y), (1.0,), ()])
def test_box_rejects_non_symbol_coordinates(coords):
    n = max(len(coords), 1)
    with pytest.raises((TypeError, ValueError)):
        pd.Box(coords, (0,) * n, (1,) * n)


def test_box_non_symbol_coordinates_is_type_error():
    with pytest.raises(TypeError):
        pd.Box(("x", "y"), (0, 0), (1, 1))


def test_box_rejects_repeated_coordinate():
    with pytest.raises(ValueError):
        pd.Box((x, x), (0, 0), (1, 1))


def test_box_accepts_plain_sympy_symbols():
    t = sp.Symbol("t")
    box = pd.Box([t], [0], [1])
    assert box.coords == (t,)


def test_contains():
    box = pd.Box([x, y], [0, 0], [2, 1])
    pts = np.array([[0, 0], [2, 1], [1, 0.5], [2.1, 0.5], [1, -0.01], [-1e-3, 0.5]])
    np.testing.assert_array_equal(box.contains(pts), [True, True, True, False, False, False])
    # A bound overshot by a rounding error still counts as inside (default tolerance).
    assert box.contains(np.array([2 + 1e-15, 1]))[0]
    assert not box.contains(np.array([2 + 1e-15, 1]), tol=0.0)[0]


# -- samplers ----------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("method", SAMPLERS)
def test_sample_shape_and_inside(dim, method):
    box = BOXES[dim]
    n = 64
    pts = box.sample(n, method)
    assert pts.ndim == 2 and pts.shape[1] == dim
    if method == "grid":
        assert pts.shape[0] == int(np.prod(box.grid_shape(n)))
    else:
        assert pts.shape[0] == n
    assert np.all(np.isfinite(pts))
    assert inside_closed(box, pts), (pts.min(0), pts.max(0))
    assert np.all(box.contains(pts))


@pytest.mark.parametrize("method", RANDOM_SAMPLERS)
def test_random_samplers_spread_over_box(method):
    """Every axis is covered: the sample is not squashed into a corner or a slab."""
    box = BOXES[2]
    pts = box.sample(512, method)
    lo, hi = np.asarray(box.lower), np.asarray(box.upper)
    u = (pts - lo) / (hi - lo)
    assert np.all(u.min(0) < 0.02) and np.all(u.max(0) > 0.98)
    np.testing.assert_allclose(u.mean(0), 0.5, atol=0.05)
    # Points are distinct.
    assert len(np.unique(pts, axis=0)) == len(pts)


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_grid_includes_corners(dim):
    box = BOXES[dim]
    pts = box.sample(100, "grid")
    for corner in itertools.product(*zip(box.lower, box.upper)):
        assert np.any(np.all(pts == np.asarray(corner), axis=1)), corner


def test_grid_1d_is_linspace():
    iv = pd.Interval(x, -1.3, 2.7)
    pts = iv.sample(11, "grid")
    assert pts.shape == (11, 1)
    np.testing.assert_allclose(pts[:, 0], np.linspace(-1.3, 2.7, 11), rtol=0, atol=1e-15)
    assert pts[0, 0] == -1.3 and pts[-1, 0] == 2.7


@pytest.mark.parametrize(
    "lower, upper, n, expected",
    [
        ((0, 0), (2, 1), 200, (20, 10)),
        ((0, 0), (1, 1), 100, (10, 10)),
        ((-1, 0), (1, 4), 50, (5, 10)),
        ((0, 0, 0), (1, 2, 4), 512, (4, 8, 16)),
    ],
)
def test_grid_shape_proportional_to_sides(lower, upper, n, expected):
    box = pd.Box((x, y, z)[: len(lower)], lower, upper)
    assert box.grid_shape(n) == expected
    assert grid_shape(n, box.lengths) == expected
    pts = box.sample(n, "grid")
    assert pts.shape == (int(np.prod(expected)), len(lower))
    # The grid is the tensor product of evenly spaced axes including both bounds.
    for i, k in enumerate(expected):
        np.testing.assert_allclose(np.unique(pts[:, i]), np.linspace(lower[i], upper[i], k), atol=1e-14)


def test_grid_shape_about_n_points_for_uneven_box():
    box = BOXES[2]  # sides 4 x 0.6
    shape = box.grid_shape(400)
    ratio = shape[0] / shape[1]
    assert abs(ratio - 4 / 0.6) / (4 / 0.6) < 0.15
    assert 0.8 * 400 <= np.prod(shape) <= 1.25 * 400


def test_grid_shape_has_at_least_two_points_per_axis():
    # A very thin box still gets both of its bounds along the thin side.
    box = pd.Box([x, y], [0, 0], [1, 1e-3])
    shape = box.grid_shape(10)
    assert shape[1] >= 2


@pytest.mark.parametrize("shape", [(3, 5), (2, 2), (7, 4)])
def test_grid_explicit_shape(shape):
    box = BOXES[2]
    pts = box.sample(shape, "grid")
    assert pts.shape == (shape[0] * shape[1], 2)
    for i, k in enumerate(shape):
        np.testing.assert_allclose(
            np.unique(pts[:, i]), np.linspace(box.lower[i], box.upper[i], k), atol=1e-14
        )
    # 'ij' ordering: the last axis varies fastest.
    np.testing.assert_allclose(pts[: shape[1], 1], np.linspace(box.lower[1], box.upper[1], shape[1]))
    assert np.all(pts[: shape[1], 0] == box.lower[0])


def test_grid_explicit_shape_3d_and_list():
    box = BOXES[3]
    assert box.sample((2, 3, 4), "grid").shape == (24, 3)
    assert box.sample([2, 3, 4], "grid").shape == (24, 3)
    assert box.grid_shape((2, 3, 4)) == (2, 3, 4)


def test_grid_explicit_shape_wrong_length_raises():
    with pytest.raises(ValueError):
        BOXES[2].sample((3, 4, 5), "grid")
    with pytest.raises(ValueError):
        BOXES[2].grid_shape((3,))


def test_grid_explicit_shape_non_positive_raises():
    with pytest.raises(ValueError):
        BOXES[2].sample((0, 4), "grid")


@pytest.mark.parametrize("method", RANDOM_SAMPLERS)
def test_random_samplers_tuple_shape_means_product(method):
    pts = BOXES[2].sample((4, 5), method)
    assert pts.shape == (20, 2)


@pytest.mark.parametrize("method", RANDOM_SAMPLERS)
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_random_samplers_seeded(method, dim):
    box = BOXES[dim]
    a = box.sample(50, method, seed=3)
    b = box.sample(50, method, seed=3)
    c = box.sample(50, method, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    # The default seed is fixed too.
    np.testing.assert_array_equal(box.sample(50, method), box.sample(50, method))


def test_grid_ignores_seed():
    box = BOXES[2]
    np.testing.assert_array_equal(box.sample(30, "grid", seed=1), box.sample(30, "grid", seed=2))


@pytest.mark.parametrize("method", RANDOM_SAMPLERS)
def test_random_samplers_need_a_point(method):
    with pytest.raises(ValueError):
        BOXES[1].sample(0, method)


@pytest.mark.parametrize("method", ["Grid", "random", "lhs", ""])
def test_unknown_sampler_raises(method):
    with pytest.raises(ValueError, match="sampler"):
        BOXES[2].sample(10, method)
    with pytest.raises(ValueError):
        BOXES[2].face(x=0.0).sample(10, method)
    with pytest.raises(ValueError):
        unit_points(10, 2, method)


@pytest.mark.parametrize("method", SAMPLERS)
def test_unit_points_in_unit_cube(method):
    u = unit_points(33, 3, method, seed=5)
    assert u.shape[1] == 3
    assert np.all((u >= 0) & (u <= 1))


# -- faces --------------------------------------------------------------------------------


def test_face_fixed_coordinate_and_outward_normal_2d():
    box = pd.Box([x, y], [0, -1], [2, 1])
    cases = {
        "x=0": (box.face(x=0), 0, 0.0, [-1, 0], -1),
        "x=2": (box.face(x=2), 0, 2.0, [1, 0], 1),
        "y=-1": (box.face(y=-1), 1, -1.0, [0, -1], -1),
        "y=1": (box.face(y=1), 1, 1.0, [0, 1], 1),
    }
    for name, (face, axis, value, normal, side) in cases.items():
        assert isinstance(face, Face), name
        assert face.axis == axis and face.value == value, name
        assert face.side == side, name
        np.testing.assert_array_equal(face.normal, normal, err_msg=name)
        pts = face.sample(9, "grid")
        assert pts.shape[1] == 2
        assert np.all(pts[:, axis] == value), name
        assert np.all(box.contains(pts)), name
        other = 1 - axis
        # The grid on the face includes both ends of the other side.
        assert pts[:, other].min() == box.lower[other] and pts[:, other].max() == box.upper[other]


def test_face_by_symbol_name_and_sympy_values():
    box = pd.Box([x, y], [0, 0], [1, 1])
    assert box.face(y=sp.Integer(1)).value == 1.0
    assert box.face(y=1).axis == 1


def test_face_normal_3d_all_faces():
    box = BOXES[3]
    faces = box.faces
    assert len(faces) == 6
    seen = set()
    for f in faces:
        n = f.normal
        assert n is not None and n.shape == (3,)
        assert np.count_nonzero(n) == 1 and abs(n[f.axis]) == 1.0
        assert n[f.axis] == (-1 if f.value == box.lower[f.axis] else 1)
        assert f.value in (box.lower[f.axis], box.upper[f.axis])
        seen.add((f.axis, f.side))
        pts = f.sample(16, "grid")
        assert np.all(pts[:, f.axis] == f.value) and np.all(box.contains(pts))
        # Points of a face: the outward normal points out of the box.
        outside = pts + 1e-3 * n
        assert not np.any(box.contains(outside))
    assert seen == {(a, s) for a in range(3) for s in (-1, 1)}


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_box_has_2d_faces(dim):
    box = BOXES[dim]
    assert len(box.faces) == 2 * dim
    assert box.boundary.faces == box.faces
    assert len({(f.axis, f.value) for f in box.faces}) == 2 * dim


def test_interior_plane_has_no_normal():
    box = pd.Box([x, y], [0, 0], [2, 1])
    plane = box.face(x=0.5)
    assert plane.side == 0
    assert plane.normal is None
    pts = plane.sample(5, "grid")
    assert np.all(pts[:, 0] == 0.5)


@pytest.mark.parametrize("fixed", [{"x": -0.1}, {"x": 2.5}, {"y": 1.0001}, {"y": -3}])
def test_face_outside_box_raises(fixed):
    box = pd.Box([x, y], [0, 0], [2, 1])
    with pytest.raises(ValueError):
        box.face(**fixed)


def test_face_needs_exactly_one_known_coordinate():
    box = pd.Box([x, y], [0, 0], [2, 1])
    with pytest.raises(ValueError):
        box.face(x=0, y=0)
    with pytest.raises(ValueError):
        box.face()
    with pytest.raises(ValueError):
        box.face(z=0)


def test_face_of_interval_is_a_point():
    iv = pd.Interval(x, 0, 1)
    f = iv.face(x=1)
    pts = f.sample(7)
    assert pts.shape[1] == 1 and np.all(pts == 1.0)
    np.testing.assert_array_equal(f.normal, [1.0])


@pytest.mark.parametrize("method", RANDOM_SAMPLERS)
def test_face_random_samples(method):
    box = BOXES[3]
    f = box.face(y=2.0)
    pts = f.sample(20, method, seed=1)
    assert pts.shape == (20, 3)
    assert np.all(pts[:, 1] == 2.0) and inside_closed(box, pts)
    np.testing.assert_array_equal(pts, f.sample(20, method, seed=1))
    assert not np.allclose(pts, f.sample(20, method, seed=2))


# -- points -------------------------------------------------------------------------------


def test_point_region_outside_raises():
    iv = pd.Interval(x, 0, 1)
    with pytest.raises(ValueError):
        PointRegion(iv, (1.5,))
    box = pd.Box([x, y], [0, 0], [1, 1])
    with pytest.raises(ValueError):
        PointRegion(box, (0.5, -0.1))


def test_point_region_normal_1d():
    iv = pd.Interval(x, -1, 2)
    np.testing.assert_array_equal(PointRegion(iv, (-1.0,)).normal, [-1.0])
    np.testing.assert_array_equal(PointRegion(iv, (2.0,)).normal, [1.0])
    assert PointRegion(iv, (0.3,)).normal is None


def test_point_region_normal_2d():
    box = pd.Box([x, y], [0, 0], [2, 1])
    np.testing.assert_array_equal(PointRegion(box, (2.0, 0.5)).normal, [1.0, 0.0])
    np.testing.assert_array_equal(PointRegion(box, (1.0, 0.0)).normal, [0.0, -1.0])
    assert PointRegion(box, (0.0, 0.0)).normal is None  # corner: no unique normal
    assert PointRegion(box, (1.0, 0.5)).normal is None  # interior


def test_point_region_sample_and_contains():
    box = pd.Box([x, y], [0, 0], [2, 1])
    pr = PointRegion(box, (0.25, 1.0))
    pts = pr.sample()
    np.testing.assert_array_equal(pts, [[0.25, 1.0]])
    assert box.contains(pts).all()
    # Points on the boundary are accepted (closed box).
    PointRegion(box, (2.0, 1.0))


# -- input validation (regressions of bugs found in review) ---------------------------


def test_contains_1d_accepts_flat_points():
    iv = pd.Interval(x, 0, 1)
    np.testing.assert_array_equal(iv.contains(np.array([0.5, 2.0, 1.0])), [True, False, True])


@pytest.mark.parametrize("dim, point", [(1, (0.5, 0.7)), (2, (0.5,))])
def test_point_region_rejects_wrong_dimension(dim, point):
    box = BOXES[1] if dim == 1 else pd.Box([x, y], [0, 0], [1, 1])
    with pytest.raises(ValueError):
        PointRegion(box, point)


@pytest.mark.parametrize("dim, n", [(1, 0), (2, 0), (1, -5), (2, -5)])
def test_grid_rejects_non_positive_count(dim, n):
    with pytest.raises(ValueError, match="at least one point|positive"):
        BOXES[dim].sample(n, "grid")
