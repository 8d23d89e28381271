import mujoco
import numpy as np
import pytest

from dexgen.sim import constants as C
from dexgen.sim.hand import WRIST_QUATS, ModelIndex, build_model, wrist_quat
from dexgen.sim.objects import OBJECT_SETS, get_object


@pytest.mark.parametrize("obj", OBJECT_SETS["all"], ids=lambda o: o.name)
def test_every_object_builds(obj):
    model = build_model(obj)
    assert model.nu == C.NUM_JOINTS
    assert model.nq == C.NUM_JOINTS + 7
    idx = ModelIndex(model)
    assert model.body_mass[idx.object_body] == pytest.approx(obj.mass)


def test_hand_figures():
    model = build_model(get_object("cube_45"))
    idx = ModelIndex(model)
    hand_mass = sum(model.body_mass[b] for b in range(1, model.nbody) if b != idx.object_body)
    assert 0.9 < hand_mass < 1.3  # the Allegro hand weighs about 1.1 kg
    assert (model.actuator_gainprm[:, 0] == 3.0).all()
    np.testing.assert_allclose(model.actuator_ctrlrange, idx.joint_range)
    # every finger geom maps to its finger, the palm and object to none
    assert set(idx.geom_finger[idx.hand_geoms]) == {-1, 0, 1, 2, 3}


@pytest.mark.parametrize("wrist", list(WRIST_QUATS))
def test_wrist_orientation_sets_the_palm(wrist):
    model = build_model(get_object("cube_45"), wrist=wrist)
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    np.testing.assert_allclose(data.body("palm").xquat, wrist_quat(wrist), atol=1e-12)


def test_unknown_wrist():
    with pytest.raises(ValueError, match="unknown wrist orientation"):
        wrist_quat("upside")
