"""The Allegro hand model: kinematics against the published figures, self-collisions, mass and servo response."""

import mujoco
import numpy as np
import pytest

from allegro_urdf import fingertips
from dexgen.sim import constants as C
from dexgen.sim.hand import ModelIndex, build_model, hand_xml
from dexgen.sim.objects import resolve_objects


def _model(hand="allegro"):
    return build_model(resolve_objects("train")[0], hand=hand)


def _tips(model, q):
    data = mujoco.MjData(model)
    data.qpos[ModelIndex(model).hand_qpos] = q
    mujoco.mj_kinematics(model, data)
    return np.array([data.site(s).xpos for s in C.FINGERTIP_SITES])


def test_fingertips_follow_the_published_kinematics_within_5_mm():
    model = _model()
    lo, hi = ModelIndex(model).joint_range.T
    rng = np.random.default_rng(0)
    for q in rng.uniform(lo, hi, (50, C.NUM_JOINTS)):
        err = np.linalg.norm(_tips(model, q) - fingertips(q), axis=-1)
        assert err.max() < 0.005, err
    # the legacy hand does not: joint 0 swings its fingers about the palm normal, its thumb differs
    legacy = _model("legacy")
    q = np.clip(np.full(C.NUM_JOINTS, 0.4), lo, hi)
    assert np.linalg.norm(_tips(legacy, q) - fingertips(q), axis=-1).mean() > 0.01


def test_joint_zero_rolls_a_straight_finger_in_place():
    model = _model()
    q = np.zeros(C.NUM_JOINTS)
    q[12] = 0.263  # thumb joint 0 at its lower limit
    rolled = q.copy()
    rolled[0] = 0.4  # index joint 0
    assert np.linalg.norm(_tips(model, q)[0] - _tips(model, rolled)[0]) < 1e-6
    bent, bent_rolled = q.copy(), rolled.copy()
    bent[1] = bent_rolled[1] = 1.0
    assert np.linalg.norm(_tips(model, bent)[0] - _tips(model, bent_rolled)[0]) > 0.02


def _contacts(model, q) -> set[tuple[str, str]]:
    data = mujoco.MjData(model)
    index = ModelIndex(model)
    data.qpos[index.hand_qpos] = q
    data.qpos[index.object_qpos : index.object_qpos + 3] = (0.0, 0.0, 1.0)  # object out of the way
    mujoco.mj_forward(model, data)
    body = lambda g: model.body(model.geom_bodyid[g]).name  # noqa: E731
    return {tuple(sorted((body(c.geom1), body(c.geom2)))) for c in data.contact[: data.ncon]}


def test_fingers_collide_with_each_other_and_the_palm_but_not_at_rest():
    model = _model()
    rest = np.array(C.OPEN_POSE)
    assert _contacts(model, rest) == set()
    crossed = np.zeros(C.NUM_JOINTS)
    crossed[[0, 4]] = (-0.47, 0.47)  # index and middle rolled toward each other, bent
    crossed[[1, 2, 3, 5, 6, 7]] = 1.2
    crossed[12] = 0.263
    assert any("index" in a and "middle" in b for a, b in _contacts(model, crossed))
    curled = np.zeros(C.NUM_JOINTS)
    curled[[1, 2, 3]] = (1.61, 1.709, 1.618)
    curled[12] = 0.263
    assert ("index_distal", "palm") in _contacts(model, curled)
    # the legacy hand's fingers pass through each other
    assert not any("index" in a and "middle" in b for a, b in _contacts(_model("legacy"), crossed))


def test_mass_is_the_published_link_masses():
    model = _model()
    hand_mass = model.body_subtreemass[ModelIndex(model).palm_body]
    assert hand_mass == pytest.approx(0.9549, abs=1e-4)


def test_a_joint_reaches_a_step_target_in_about_two_control_steps_without_ringing():
    model = _model()
    data = mujoco.MjData(model)
    index = ModelIndex(model)
    data.qpos[index.hand_qpos] = data.ctrl[:] = np.clip(0.3, *index.joint_range.T)
    data.qpos[index.object_qpos : index.object_qpos + 3] = (0.0, 0.0, 1.0)
    j = 5  # middle finger, joint 1
    data.ctrl[j] = 0.6
    trace = []
    for _ in range(100):  # 0.5 s
        mujoco.mj_step(model, data)
        trace.append(data.qpos[index.hand_qpos[j]])
    frac = (np.array(trace) - 0.3) / 0.3
    assert frac.max() < 1.05  # no ringing overshoot
    assert np.argmax(frac >= 0.95) * model.opt.timestep < 0.15


def test_unknown_hand_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="unknown hand 'bogus'; expected one of legacy, allegro"):
        hand_xml("bogus")


def test_contacts_are_hard_on_the_allegro_and_unchanged_on_the_legacy_hand():
    obj = resolve_objects("train")[0]
    allegro, legacy = build_model(obj, hand="allegro"), build_model(obj, hand="legacy")
    obj_geom = ModelIndex(allegro).object_geom
    # the object takes its contact properties from the hand file's "object" class
    colliding = np.flatnonzero(allegro.geom_contype > 0)  # every geom but the floor
    np.testing.assert_allclose(allegro.geom_solimp[colliding, :2], np.tile([0.99, 0.999], (len(colliding), 1)))
    np.testing.assert_allclose(allegro.geom_friction[obj_geom], [0.8, 0.01, 0.0001])
    g = ModelIndex(legacy).object_geom
    np.testing.assert_allclose(legacy.geom_solimp[g, :3], [0.9, 0.95, 0.001])  # MuJoCo's default
    np.testing.assert_allclose(legacy.geom_solref[g], [0.01, 1.0])
    np.testing.assert_allclose(legacy.geom_friction[g], [0.8, 0.01, 0.0001])
    assert (legacy.geom_contype[g], legacy.geom_conaffinity[g], legacy.geom_condim[g]) == (2, 1, 3)
    assert (allegro.geom_contype[obj_geom], allegro.geom_conaffinity[obj_geom]) == (2, 1)
