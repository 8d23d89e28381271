"""The procedural object set: named primitive shapes in a training set and a disjoint held-out set.

Sizes follow MuJoCo's geom ``size`` convention (half-sizes, metres): a box is (hx, hy, hz); a sphere (r,); a
cylinder or capsule (r, half_length) along its local z; an ellipsoid (ax, ay, az).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHAPES = ("box", "sphere", "cylinder", "capsule", "ellipsoid")


@dataclass(frozen=True)
class ObjectSpec:
    """One rigid object."""

    name: str
    """Unique name, used on the command line and in the grasp cache."""
    kind: str
    """Family: cube, cuboid, cylinder, sphere, capsule, pen or ellipsoid."""
    shape: str
    """MuJoCo geom type, one of SHAPES."""
    size: tuple[float, ...]
    """MuJoCo geom size (half-sizes), metres."""
    mass: float
    """Mass, kg."""

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"object {self.name!r}: unknown shape {self.shape!r}; expected one of {SHAPES}")
        if self.mass <= 0 or any(s <= 0 for s in self.size):
            raise ValueError(f"object {self.name!r}: mass and sizes must be positive")

    def half_extent(self, local_axis: int) -> float:
        """Half extent of the object along one of its local axes (0, 1, 2), metres."""
        s = self.size
        if self.shape in ("box", "ellipsoid"):
            return s[local_axis]
        if self.shape == "sphere":
            return s[0]
        if self.shape == "cylinder":
            return s[1] if local_axis == 2 else s[0]
        # capsule: hemispherical caps extend the cylinder along z
        return s[1] + s[0] if local_axis == 2 else s[0]

    @property
    def bounding_radius(self) -> float:
        """Radius of the smallest sphere about the centre that holds the object, metres."""
        s = self.size
        if self.shape == "box":
            return float(np.linalg.norm(s))
        if self.shape in ("sphere", "ellipsoid"):
            return max(s)
        if self.shape == "cylinder":
            return float(np.hypot(s[0], s[1]))
        return s[0] + s[1]

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        """Signed distance (...,) of ``points`` (..., 3), object frame, metres, to the surface: negative inside.

        Exact for boxes, spheres, cylinders and capsules; for an ellipsoid, the zero level set is exact and the
        value a distance-like scale of it (enough to find the surface and its normal)."""
        p = np.asarray(points, dtype=np.float64)
        s = np.asarray(self.size)
        if self.shape == "box":
            q = np.abs(p) - s
            return np.linalg.norm(np.maximum(q, 0.0), axis=-1) + np.minimum(q.max(axis=-1), 0.0)
        if self.shape == "sphere":
            return np.linalg.norm(p, axis=-1) - s[0]
        if self.shape == "ellipsoid":
            return (np.linalg.norm(p / s, axis=-1) - 1.0) * s.min()
        if self.shape == "cylinder":
            d = np.stack((np.linalg.norm(p[..., :2], axis=-1) - s[0], np.abs(p[..., 2]) - s[1]), axis=-1)
            return np.minimum(d.max(axis=-1), 0.0) + np.linalg.norm(np.maximum(d, 0.0), axis=-1)
        axis_point = np.zeros_like(p)  # capsule: distance to its core segment
        axis_point[..., 2] = np.clip(p[..., 2], -s[1], s[1])
        return np.linalg.norm(p - axis_point, axis=-1) - s[0]

    def surface_along(self, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where rays from the centre along ``directions`` (n, 3), unit, object frame, leave the object.

        Returns the surface points (n, 3), metres, and the outward unit normals there (n, 3), object frame."""
        d = np.asarray(directions, dtype=np.float64)
        lo, hi = np.zeros(len(d)), np.full(len(d), 1.01 * self.bounding_radius)
        for _ in range(40):  # bisection on the distance along the ray: 40 halvings of < 0.2 m are below 1e-12 m
            mid = 0.5 * (lo + hi)
            inside = self.signed_distance(d * mid[:, None]) < 0.0
            lo, hi = np.where(inside, mid, lo), np.where(inside, hi, mid)
        points = d * lo[:, None]
        eps = 1e-6
        grad = np.stack(
            [self.signed_distance(points + eps * e) - self.signed_distance(points - eps * e) for e in np.eye(3)],
            axis=-1,
        )
        return points, grad / np.linalg.norm(grad, axis=-1, keepdims=True)


SHAPE_CODE_DIM = len(SHAPES) + 3
"""Size of ``shape_code``: a one-hot of the geom type and the half-extents along the object's three axes."""


def shape_code(objects) -> np.ndarray:
    """(N, SHAPE_CODE_DIM) code of each object of ``objects`` (specs): a one-hot of its geom type (in ``SHAPES``
    order) and its nominal half-extents along its local x, y, z, metres. It names the shape family and the size, not
    the object, so a held-out object gets a code in the same terms."""
    code = np.zeros((len(objects), SHAPE_CODE_DIM))
    for i, o in enumerate(objects):
        code[i, SHAPES.index(o.shape)] = 1.0
        code[i, len(SHAPES) :] = [o.half_extent(a) for a in range(3)]
    return code


def _box(name: str, kind: str, full_cm: tuple[float, float, float], mass: float) -> ObjectSpec:
    return ObjectSpec(name, kind, "box", tuple(c / 200 for c in full_cm), mass)


def _round(name: str, kind: str, shape: str, radius_cm: float, length_cm: float, mass: float) -> ObjectSpec:
    return ObjectSpec(name, kind, shape, (radius_cm / 100, length_cm / 200), mass)


TRAIN_OBJECTS: tuple[ObjectSpec, ...] = (
    _box("cube_45", "cube", (4.5, 4.5, 4.5), 0.08),
    _box("cube_60", "cube", (6.0, 6.0, 6.0), 0.12),
    _box("cuboid_60x40x30", "cuboid", (6.0, 4.0, 3.0), 0.07),
    _box("cuboid_80x50x35", "cuboid", (8.0, 5.0, 3.5), 0.12),
    _round("cylinder_r25_h60", "cylinder", "cylinder", 2.5, 6.0, 0.09),
    _round("cylinder_r20_h90", "cylinder", "cylinder", 2.0, 9.0, 0.08),
    ObjectSpec("sphere_r25", "sphere", "sphere", (0.025,), 0.07),
    ObjectSpec("sphere_r30", "sphere", "sphere", (0.030,), 0.10),
    _round("capsule_r20_l50", "capsule", "capsule", 2.0, 5.0, 0.06),
    _round("pen_r6_l140", "pen", "cylinder", 0.6, 14.0, 0.02),
)
"""Objects the experts and the model are trained on."""

HELDOUT_OBJECTS: tuple[ObjectSpec, ...] = (
    _box("cube_52", "cube", (5.2, 5.2, 5.2), 0.10),
    _box("cuboid_70x45x25", "cuboid", (7.0, 4.5, 2.5), 0.09),
    _round("cylinder_r30_h45", "cylinder", "cylinder", 3.0, 4.5, 0.11),
    ObjectSpec("sphere_r35", "sphere", "sphere", (0.035,), 0.13),
    _round("capsule_r15_l60", "capsule", "capsule", 1.5, 6.0, 0.05),
    _round("pen_r5_l120", "pen", "cylinder", 0.5, 12.0, 0.015),
    ObjectSpec("ellipsoid_35x25x20", "ellipsoid", "ellipsoid", (0.035, 0.025, 0.02), 0.08),
)
"""Objects kept for evaluation only: other sizes, and one shape (ellipsoid) never seen in training."""

OBJECT_SETS: dict[str, tuple[ObjectSpec, ...]] = {
    "train": TRAIN_OBJECTS,
    "heldout": HELDOUT_OBJECTS,
    "all": TRAIN_OBJECTS + HELDOUT_OBJECTS,
}
_BY_NAME = {o.name: o for o in OBJECT_SETS["all"]}


def get_object(name: str) -> ObjectSpec:
    """The object called ``name``; a ValueError naming the valid choices otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown object {name!r}; known objects: {', '.join(_BY_NAME)}") from None


def resolve_objects(names: str | tuple[str, ...] | list[str]) -> tuple[ObjectSpec, ...]:
    """Objects from a set name ("train", "heldout", "all") or a list of object names."""
    if isinstance(names, str):
        if names in OBJECT_SETS:
            return OBJECT_SETS[names]
        names = tuple(n for n in names.split(",") if n)
    if not names:
        raise ValueError("no objects given")
    out: list[ObjectSpec] = []
    for name in names:
        out.extend(OBJECT_SETS[name] if name in OBJECT_SETS else (get_object(name),))
    return tuple(out)
