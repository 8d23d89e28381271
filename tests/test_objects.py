import pytest

from dexgen.sim.objects import HELDOUT_OBJECTS, SHAPES, TRAIN_OBJECTS, ObjectSpec, get_object, resolve_objects


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
