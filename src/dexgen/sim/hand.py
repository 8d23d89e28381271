"""Building compiled MuJoCo models of the hand holding one object, in a chosen wrist orientation."""

from __future__ import annotations

import functools
from pathlib import Path

import mujoco
import numpy as np

from dexgen.checks import check_choice
from dexgen.sim import constants as C
from dexgen.sim.objects import ObjectSpec, resolve_objects

WRIST_QUATS: dict[str, tuple[float, float, float, float]] = {
    "palm_up": (1.0, 0.0, 0.0, 0.0),
    "palm_down": (0.0, 1.0, 0.0, 0.0),
    # palm facing +y of the world, thumb up
    "sideways": (float(np.sqrt(0.5)), -float(np.sqrt(0.5)), 0.0, 0.0),
}
"""Orientation (w, x, y, z) of the palm frame in the world frame, by name; gravity is -z of the world."""

_OBJECT_RGBA = {
    "cube": (0.85, 0.35, 0.2, 1),
    "cuboid": (0.9, 0.6, 0.15, 1),
    "cylinder": (0.2, 0.55, 0.85, 1),
    "sphere": (0.3, 0.75, 0.35, 1),
    "capsule": (0.65, 0.35, 0.8, 1),
    "pen": (0.95, 0.85, 0.2, 1),
    "ellipsoid": (0.85, 0.3, 0.55, 1),
}


def check_wrist(name: str, value, *, optional: bool = False) -> None:
    """A ValueError unless ``value`` names a wrist orientation (palm_up, palm_down, sideways)."""
    check_choice(name, value, WRIST_QUATS, optional=optional)


def wrist_quat(wrist: str) -> np.ndarray:
    """Palm orientation in the world for a wrist name; a ValueError naming the choices otherwise."""
    if wrist not in WRIST_QUATS:
        raise ValueError(f"unknown wrist orientation {wrist!r}; expected one of {', '.join(WRIST_QUATS)}")
    return np.array(WRIST_QUATS[wrist])


def wrist_gravity_dir(wrist: str) -> np.ndarray:
    """(3,) unit direction of gravity in the palm frame for a wrist orientation (world gravity along -z), as
    ``HandBatch.gravity_dir`` has it for a simulated hand; a robot knows it from its arm."""
    from dexgen.sim.rotations import quat_conj, quat_to_mat

    return quat_to_mat(quat_conj(wrist_quat(wrist))) @ np.array([0.0, 0.0, -1.0])


def _lookat_xyaxes(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> list[float]:
    """Camera x and y axes (MuJoCo's xyaxes) for a camera at ``eye`` looking at ``target``."""
    back = eye - target
    back /= np.linalg.norm(back)
    x = np.cross(up, back)
    x /= np.linalg.norm(x)
    y = np.cross(back, x)
    return [*x, *y]


def hand_xml(hand: str) -> Path:
    """The MJCF file of a hand model by name (``constants.HANDS``); a ValueError naming the choices otherwise."""
    if hand not in C.HANDS:
        raise ValueError(f"unknown hand {hand!r}; expected one of {', '.join(C.HANDS)}")
    return C.HANDS[hand]


def build_spec(obj: ObjectSpec, *, wrist: str = "palm_up", hand: str = C.DEFAULT_HAND) -> mujoco.MjSpec:
    """An editable spec of the hand (``constants.HANDS``) with ``obj`` resting near the grasp centre."""
    spec = mujoco.MjSpec.from_file(str(hand_xml(hand)))
    quat = wrist_quat(wrist)
    palm = spec.body(C.PALM_BODY)
    palm.quat = quat
    # The camera rides with the palm so that every wrist orientation is seen from the palm side.
    eye, target = np.array([-0.16, -0.2, 0.24]), np.array([0.03, 0.0, 0.03])
    palm.add_camera(name="view", pos=eye, xyaxes=_lookat_xyaxes(eye, target, np.array([0.0, 0.0, 1.0])), fovy=45)

    body = spec.worldbody.add_body(name=C.OBJECT_BODY)
    # Not "simple": domain randomization moves the centre of mass off the body frame, which the fast path for
    # simple bodies (inertial frame == body frame) does not allow.
    body.simple = 0
    body.add_freejoint(name=C.OBJECT_JOINT)
    size = np.zeros(3)
    size[: len(obj.size)] = obj.size
    # The object's contact properties come from the hand file's "object" class: they belong with the hand's own.
    body.add_geom(
        spec.find_default("object"),
        name=C.OBJECT_GEOM,
        type=getattr(mujoco.mjtGeom, f"mjGEOM_{obj.shape.upper()}"),
        size=size,
        mass=obj.mass,
        rgba=_OBJECT_RGBA[obj.kind],
    )
    rot = np.zeros(9)
    mujoco.mju_quat2Mat(rot, quat)
    body.pos = rot.reshape(3, 3) @ np.array(C.GRASP_CENTRE)
    return spec


@functools.lru_cache(maxsize=64)
def build_model(obj: ObjectSpec, *, wrist: str = "palm_up", hand: str = C.DEFAULT_HAND) -> mujoco.MjModel:
    """The compiled model of the hand with ``obj``. Cached: copy it before editing (``copy.copy``)."""
    return build_spec(obj, wrist=wrist, hand=hand).compile()


class ModelIndex:
    """Integer ids and address slices of the named parts of a compiled hand model."""

    def __init__(self, model: mujoco.MjModel):
        name = mujoco.mjtObj
        self.palm_body = mujoco.mj_name2id(model, name.mjOBJ_BODY, C.PALM_BODY)
        self.object_body = mujoco.mj_name2id(model, name.mjOBJ_BODY, C.OBJECT_BODY)
        self.object_geom = mujoco.mj_name2id(model, name.mjOBJ_GEOM, C.OBJECT_GEOM)
        self.fingertip_sites = np.array([mujoco.mj_name2id(model, name.mjOBJ_SITE, s) for s in C.FINGERTIP_SITES])
        self.fingertip_geoms = np.array([mujoco.mj_name2id(model, name.mjOBJ_GEOM, g) for g in C.FINGERTIP_GEOMS])
        joints = [mujoco.mj_name2id(model, name.mjOBJ_JOINT, j) for j in C.JOINT_NAMES]
        self.hand_qpos = np.array([model.jnt_qposadr[j] for j in joints])
        self.hand_dof = np.array([model.jnt_dofadr[j] for j in joints])
        self.joint_range = model.jnt_range[joints].copy()
        obj_joint = mujoco.mj_name2id(model, name.mjOBJ_JOINT, C.OBJECT_JOINT)
        self.object_qpos = int(model.jnt_qposadr[obj_joint])
        self.object_dof = int(model.jnt_dofadr[obj_joint])
        actuators = [mujoco.mj_name2id(model, name.mjOBJ_ACTUATOR, a) for a in C.ACTUATOR_NAMES]
        if actuators != list(range(C.NUM_JOINTS)):
            raise ValueError("hand model: actuators must come in JOINT_NAMES order")
        hand_geoms = model.geom_bodyid != self.object_body
        self.hand_geoms = np.flatnonzero(hand_geoms)
        # finger of each geom (index into C.FINGERS), -1 for the palm and the object
        body_names = [model.body(b).name for b in model.geom_bodyid]
        prefixes = [n.split("_")[0] for n in body_names]
        self.geom_finger = np.array([C.FINGERS.index(p) if p in C.FINGERS else -1 for p in prefixes])


def joint_range(hand: str = C.DEFAULT_HAND) -> np.ndarray:
    """(16, 2) lower and upper joint limits of the hand, radians, JOINT_NAMES order (the same for every object)."""
    return ModelIndex(build_model(resolve_objects("train")[0], hand=hand)).joint_range.copy()
