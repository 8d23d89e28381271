"""The dataset's schema: every stored field with its per-step shape, dtype, unit and frame, and the primitive names.

A dataset is a flat table of control steps (one row per step, all episodes one after another) plus ``episode_ends``
(exclusive end row of each episode), as in diffusion_policy's replay buffer. Conventions, for a step ``t`` of an
episode recorded at ``CONTROL_HZ``:

- ``joint_pos[t]`` and ``fingertip_pos[t]`` are measured at the start of step t (what the expert observed);
- ``joint_target[t]`` are the joint targets in force when they were measured (the environment's "previous
  targets": set by the action of step t - 1; at t = 0 the episode's initial targets);
- ``action[t]`` is the expert's raw output computed from observation t; it sets ``joint_target[t + 1]``;
- ``realized_angvel[t]`` and ``realized_linvel[t]`` are the object's motion over step t, from the start of step t
  to the start of step t + 1 (the environment's control-rate finite difference, computed before any reset), so
  the last step of an episode has one too.

So the inverse dynamics model's label at step t is ``joint_target[t + 1]`` (see ``dexgen.data.windows``). All
positions are in the palm frame: origin at the palm's centre, +x toward the fingers, +z out of the palm face, +y
toward the ring finger. Joints are in ``dexgen.sim.constants.JOINT_NAMES`` order, fingertips in ``FINGERS`` order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

SCHEMA_VERSION = 2
"""Version of the layout and field table that this code writes. Version 2 added the realized object twist and the
gravity direction (the fields whose ``since`` is 2)."""

READABLE_VERSIONS = (1, 2)
"""Schema versions this code reads: a file of version v holds the fields whose ``since`` is at most v. Only files
of ``SCHEMA_VERSION`` can be appended to."""

CONTROL_HZ = 20.0
"""Control rate at which steps are recorded, Hz (one row every 50 ms)."""

NUM_JOINTS = 16
NUM_FINGERTIPS = 4
PARAM_DIM = 16
"""Length of ``primitive_param``: the longest primitive command (grasp_to_grasp's 16 target joint positions)."""

ROTATE_AXES = ("+x", "-x", "+y", "-y", "+z", "-z")
"""Signed palm axes of the rotate primitive (as ``dexgen.sim.tasks.AXES``)."""
TRANSLATE_AXES = ("+x", "-x", "+y", "-y")
"""Signed palm axes of the translate primitive (as ``dexgen.sim.tasks.TranslateTask.allowed_axes``)."""

PRIMITIVES: tuple[str, ...] = (
    *(f"rotate{a}" for a in ROTATE_AXES),
    *(f"translate{a}" for a in TRANSLATE_AXES),
    "grasp_to_grasp",
)
"""Primitive names; ``primitive_id`` is an index into this tuple (stored in the file, so ids stay readable)."""

_AXIS_VECTORS = {"x": 0, "y": 1, "z": 2}


@dataclass(frozen=True)
class Field:
    """One stored quantity: its per-row shape and dtype, unit and frame, and what it means."""

    name: str
    shape: tuple[int, ...]
    """Shape of one row (one step, or one episode for episode fields)."""
    dtype: str
    """NumPy dtype name; "str" for variable-length UTF-8 strings."""
    unit: str
    """Unit and frame, e.g. "m, palm frame"; "-" for ids and flags."""
    doc: str
    """What the value is, exactly."""
    analysis_only: bool = False
    """Privileged simulator state: for analysis, never an input of a model or the controller."""
    since: int = 1
    """The schema version that added the field (files of older versions do not have it)."""


STEP_FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        Field("joint_pos", (NUM_JOINTS,), "float32", "rad",
              "joint positions at the start of step t (noise-free simulator state), JOINT_NAMES order"),
        Field("joint_target", (NUM_JOINTS,), "float32", "rad",
              "joint targets in force when joint_pos[t] was measured (set by action[t-1]; initial targets at t=0)"),
        Field("action", (NUM_JOINTS,), "float32", "rad per unit action (relative targets)",
              "the expert's raw action from observation t, before scaling and clipping; sets joint_target[t+1]"),
        Field("fingertip_pos", (NUM_FINGERTIPS, 3), "float32", "m, palm frame",
              "fingertip site positions at the start of step t, FINGERS order (index, middle, ring, thumb)"),
        Field("primitive_id", (), "int8", "-", "index into PRIMITIVES of the primitive executed at step t"),
        Field("primitive_param", (PARAM_DIM,), "float32", "unit axis or m (palm frame), or rad",
              "the primitive's command at step t, zero-padded: the signed unit axis (3) for rotate, the commanded "
              "offset (3, m: the target relative to the object's position when commanded) for translate, the "
              "target joint positions (16, rad) for grasp_to_grasp"),
        Field("object_pos", (3,), "float32", "m, palm frame", "object centre at the start of step t", True),
        Field("object_quat", (4,), "float32", "unit quaternion wxyz, palm frame",
              "object orientation at the start of step t", True),
        Field("object_linvel", (3,), "float32", "m/s, palm frame", "object linear velocity at step t", True),
        Field("object_angvel", (3,), "float32", "rad/s, palm frame", "object angular velocity at step t", True),
        Field("dropped", (), "bool", "-", "the object counted as dropped at step t (then t is the episode's last)"),
        Field("realized_angvel", (3,), "float32", "rad/s, palm frame",
              "the object's rotation from the start of step t to the start of step t+1 as a rotation vector, "
              "divided by the control step (the environment's control-rate angular velocity); privileged state "
              "used only as a training label (the model's intent), never a run-time input", since=2),
        Field("realized_linvel", (3,), "float32", "m/s, palm frame",
              "the object centre's displacement from the start of step t to the start of step t+1, divided by "
              "the control step; a training label only, as realized_angvel", since=2),
        Field("gravity_dir", (3,), "float32", "unit vector, palm frame",
              "direction of gravity in the palm frame at step t (from the wrist orientation: a robot knows it "
              "from its arm)", since=2),
    )
}  # fmt: skip
"""Per-step fields of ``SCHEMA_VERSION``, stored under ``steps/<name>`` with one row per control step."""


def step_fields(version: int = SCHEMA_VERSION) -> dict[str, Field]:
    """The per-step fields a file of schema ``version`` holds; a ValueError for a version this code cannot read."""
    if version not in READABLE_VERSIONS:
        raise ValueError(f"schema version {version}: this code reads versions {', '.join(map(str, READABLE_VERSIONS))}")
    return {k: f for k, f in STEP_FIELDS.items() if f.since <= version}


EPISODE_FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        Field("object_name", (), "str", "-", "name of the episode's object (dexgen.sim.objects)"),
        Field("wrist", (), "str", "-", "wrist orientation of the episode: palm_up, palm_down or sideways"),
    )
}
"""Per-episode fields, stored under ``episodes/<name>`` with one row per episode."""


def primitive_name(task: str, axis: str | None = None) -> str:
    """The primitive name of a task and, for rotate and translate, its signed axis ("+x" ...); a ValueError if none."""
    name = task if task == "grasp_to_grasp" else f"{task}{axis}"
    if name not in PRIMITIVES:
        raise ValueError(f"unknown primitive {name!r}; expected one of {', '.join(PRIMITIVES)}")
    return name


def primitive_id(name: str) -> int:
    """Index of a primitive name in ``PRIMITIVES``; a ValueError naming the choices otherwise."""
    if name not in PRIMITIVES:
        raise ValueError(f"unknown primitive {name!r}; expected one of {', '.join(PRIMITIVES)}")
    return PRIMITIVES.index(name)


def axis_vector(axis: str) -> np.ndarray:
    """The signed unit palm axis named like "+x" or "-z", shape (3,)."""
    if len(axis) != 2 or axis[0] not in "+-" or axis[1] not in _AXIS_VECTORS:
        raise ValueError(f"unknown axis {axis!r}; expected a sign and x, y or z, e.g. '+x'")
    v = np.zeros(3, dtype=np.float32)
    v[_AXIS_VECTORS[axis[1]]] = 1.0 if axis[0] == "+" else -1.0
    return v


def primitive_param(command: Sequence[float] | np.ndarray) -> np.ndarray:
    """A primitive command (axis (3,) or target joints (16,)), or a batch of them (N, k), zero-padded to
    ``PARAM_DIM``: shape (PARAM_DIM,) or (N, PARAM_DIM), float32."""
    c = np.asarray(command, dtype=np.float32)
    if c.shape[-1] > PARAM_DIM:
        raise ValueError(f"a primitive command has at most {PARAM_DIM} values, got {c.shape[-1]}")
    out = np.zeros((*c.shape[:-1], PARAM_DIM), dtype=np.float32)
    out[..., : c.shape[-1]] = c
    return out


def describe() -> dict:
    """The schema as plain data (stored as the file's ``schema`` attribute as JSON, and read back with
    ``parse_description``): version, control rate, primitives and the field tables."""
    return {
        "version": SCHEMA_VERSION,
        "control_hz": CONTROL_HZ,
        "primitives": list(PRIMITIVES),
        "steps": {k: asdict(f) | {"shape": list(f.shape)} for k, f in STEP_FIELDS.items()},
        "episodes": {k: asdict(f) | {"shape": list(f.shape)} for k, f in EPISODE_FIELDS.items()},
    }


def parse_description(text: str) -> dict:
    """The inverse of ``json.dumps(describe())``: a description whose field tables are ``Field`` objects."""
    d = json.loads(text)
    for group in ("steps", "episodes"):
        d[group] = {k: Field(**{**f, "shape": tuple(f["shape"])}) for k, f in d[group].items()}
    return d


def row_dtype(field: Field) -> np.dtype:
    """The NumPy dtype of a field's rows (variable-length strings are Python objects)."""
    return np.dtype(object) if field.dtype == "str" else np.dtype(field.dtype)
