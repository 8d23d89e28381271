import numpy as np

from dexgen.sim import constants as C
from dexgen.sim.hand_batch import HandBatch
from dexgen.sim.objects import get_object
from dexgen.sim.rotations import random_quat


def _start(sims, rng):
    n = sims.num_sims
    q = np.tile(np.array(C.OPEN_POSE), (n, 1))
    pos = np.tile(np.array(C.GRASP_CENTRE), (n, 1)) + rng.uniform(-0.005, 0.005, (n, 3))
    quat = random_quat(rng, n)
    sims.set_state(np.arange(n), hand_q=q, targets=q + 0.3, object_pos=pos, object_quat=quat)
    return pos, quat


def test_state_round_trips_in_palm_frame_for_any_wrist():
    rng = np.random.default_rng(0)
    for wrist in ("palm_up", "palm_down", "sideways"):
        sims = HandBatch([get_object("cube_45")] * 3, wrist=wrist, num_threads=1)
        pos, quat = _start(sims, rng)
        got_pos, got_quat = sims.object_pose()
        np.testing.assert_allclose(got_pos, pos, atol=1e-12)
        np.testing.assert_allclose(np.abs(np.sum(got_quat * quat, axis=1)), 1.0, atol=1e-12)
        np.testing.assert_allclose(sims.hand_q, np.tile(C.OPEN_POSE, (3, 1)), atol=1e-12)
        tips = sims.fingertips()
        assert tips.shape == (3, 4, 3)
        assert (tips[:, :3, 0] > 0.05).all()  # straight fingers reach past the palm's distal edge (+x)


def test_identical_results_at_any_thread_count():
    objs = [get_object(n) for n in ("cube_45", "sphere_r30", "pen_r6_l140", "capsule_r20_l50")]
    finals = []
    for threads in (1, 2):
        sims = HandBatch(objs, num_threads=threads)
        _start(sims, np.random.default_rng(3))
        sims.step(40)
        finals.append(sims.qpos.copy())
    np.testing.assert_array_equal(finals[0], finals[1])
    assert np.isfinite(finals[0]).all()


def test_velocity_in_palm_frame():
    sims = HandBatch([get_object("sphere_r30")], wrist="palm_down", num_threads=1)
    _start(sims, np.random.default_rng(1))
    sims.qvel[0, sims.index.object_dof : sims.index.object_dof + 3] = (0.0, 0.0, -1.0)  # world down
    lin, _ = sims.object_velocity()
    np.testing.assert_allclose(lin[0], (0.0, 0.0, 1.0), atol=1e-12)  # palm down: world down is palm +z
