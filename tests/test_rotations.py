import mujoco
import numpy as np

from dexgen.sim.rotations import axis_angle_quat, quat_conj, quat_mul, quat_to_mat, quat_to_rotvec, random_quat


def test_against_mujoco():
    rng = np.random.default_rng(0)
    a, b = random_quat(rng, 5), random_quat(rng, 5)
    prod = quat_mul(a, b)
    mats = quat_to_mat(a)
    for i in range(5):
        ref = np.zeros(4)
        mujoco.mju_mulQuat(ref, a[i], b[i])
        np.testing.assert_allclose(prod[i], ref, atol=1e-12)
        m = np.zeros(9)
        mujoco.mju_quat2Mat(m, a[i])
        np.testing.assert_allclose(mats[i], m.reshape(3, 3), atol=1e-12)


def test_rotvec_round_trip_and_identity():
    axis = np.array([[0.0, 0.6, 0.8]])
    q = axis_angle_quat(axis, np.array([0.7]))
    np.testing.assert_allclose(quat_to_rotvec(q), axis * 0.7, atol=1e-12)
    np.testing.assert_allclose(quat_to_rotvec(-q), axis * 0.7, atol=1e-12)  # double cover
    np.testing.assert_allclose(quat_to_rotvec(quat_mul(q, quat_conj(q))), 0.0, atol=1e-12)
