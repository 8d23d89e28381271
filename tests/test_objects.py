import numpy as np
import pytest

from dexgen.sim.objects import (
    HELDOUT_OBJECTS,
    SHAPE_CODE_DIM,
    SHAPES,
    TRAIN_OBJECTS,
    ObjectSpec,
    get_object,
    resolve_objects,
    shape_code,
)


def test_sets_are_disjoint_and_cover_every_kind():
    train = {o.name for o in TRAIN_OBJECTS}
    heldout = {o.name for o in HELDOUT_OBJECTS}
    assert not train & heldout
    kinds = {o.kind for o in TRAIN_OBJECTS}
    assert {"cube", "cuboid", "cylinder", "sphere", "capsule", "pen"} <= kinds
    # the held-out set has a shape never trained on
    assert {o.shape for o in HELDOUT_OBJECTS} - {o.shape for o in TRAIN_OBJECTS}


def test_sizes_are_hand_sized():
    for o in TRAIN_OBJECTS + HELDOUT_OBJECTS:
        longest = 2 * max(o.half_extent(a) for a in range(3))
        assert 0.03 <= longest <= (0.15 if o.kind == "pen" else 0.10), o.name


def test_unknown_names_give_clear_errors():
    with pytest.raises(ValueError, match="unknown object 'teapot'"):
        get_object("teapot")
    with pytest.raises(ValueError, match="unknown shape"):
        ObjectSpec("x", "cube", "torus", (0.1,), 0.1)


def test_resolve_sets_and_lists():
    assert resolve_objects("train") == TRAIN_OBJECTS
    names = resolve_objects("cube_45,sphere_r35")
    assert [o.name for o in names] == ["cube_45", "sphere_r35"]
    assert set(SHAPES) >= {o.shape for o in resolve_objects("all")}


def test_shape_code_names_the_geom_type_and_half_extents_not_the_object():
    objs = resolve_objects("cuboid_60x40x30,sphere_r30,pen_r6_l140,capsule_r20_l50")
    code = shape_code(objs)
    assert code.shape == (4, SHAPE_CODE_DIM)
    assert [SHAPES[i] for i in code[:, : len(SHAPES)].argmax(1)] == ["box", "sphere", "cylinder", "capsule"]
    assert np.allclose(code[:, : len(SHAPES)].sum(1), 1.0)
    np.testing.assert_allclose(code[0, len(SHAPES) :], [0.03, 0.02, 0.015])
    np.testing.assert_allclose(code[1, len(SHAPES) :], [0.03, 0.03, 0.03])
    np.testing.assert_allclose(code[2, len(SHAPES) :], [0.006, 0.006, 0.07])
    np.testing.assert_allclose(code[3, len(SHAPES) :], [0.02, 0.02, 0.045])  # the caps lengthen a capsule
    held_out = shape_code(HELDOUT_OBJECTS)  # held-out objects are coded in the same terms
    assert held_out.shape == (len(HELDOUT_OBJECTS), SHAPE_CODE_DIM) and (held_out[:, len(SHAPES) :] > 0).all()


@pytest.mark.parametrize("name", ["cube_45", "cuboid_60x40x30", "sphere_r30", "cylinder_r20_h90", "capsule_r20_l50",
                                  "ellipsoid_35x25x20"])  # fmt: skip
def test_surface_along_finds_the_surface_and_its_outward_normal(name):
    obj = get_object(name)
    rng = np.random.default_rng(0)
    d = rng.normal(size=(200, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    points, normals = obj.surface_along(d)
    np.testing.assert_allclose(obj.signed_distance(points), 0.0, atol=1e-9)
    np.testing.assert_allclose(np.cross(points, d), 0.0, atol=1e-12)  # on the ray
    assert (np.einsum("ni,ni->n", points, d) > 0).all()
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0)
    assert (obj.signed_distance(points + 1e-4 * normals) > 0).all()
    assert (obj.signed_distance(points - 1e-4 * normals) < 0).all()


def test_signed_distance_of_a_box_face_and_a_sphere():
    box, ball = get_object("cuboid_60x40x30"), get_object("sphere_r30")
    points, normals = box.surface_along(np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0]]))
    np.testing.assert_allclose(points, [[0.03, 0, 0], [0, 0, -0.015]], atol=1e-12)
    np.testing.assert_allclose(normals, [[1, 0, 0], [0, 0, -1]], atol=1e-6)
    assert box.signed_distance(np.zeros(3)) == pytest.approx(-0.015)
    assert ball.signed_distance(np.array([0.05, 0.0, 0.0])) == pytest.approx(0.02)
