"""Task definitions: commands, unscaled reward terms and termination for each motion primitive.

A task sees the environment's per-step ``StepState`` and returns a dict of unscaled reward terms (each (N,)) and a
(N,) termination flag; the environment multiplies the terms by the scales in the task's config and sums them, and
logs every term on its own, so that a stalled learner shows which term is responsible.

Tasks: ``rotate`` (about one of the six signed palm-frame axes), ``translate`` (move the object to a commanded
offset in the palm x/y plane and hold it there) and ``grasp_to_grasp`` (reach a target finger configuration taken
from another cached grasp while holding the object).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dexgen.sim import constants as C
from dexgen.sim.termination import DropConfig, dropped

AXES: dict[str, tuple[float, float, float]] = {
    "+x": (1.0, 0.0, 0.0),
    "-x": (-1.0, 0.0, 0.0),
    "+y": (0.0, 1.0, 0.0),
    "-y": (0.0, -1.0, 0.0),
    "+z": (0.0, 0.0, 1.0),
    "-z": (0.0, 0.0, -1.0),
}
"""Signed palm-frame axes by name."""


@dataclass
class StepState:
    """What a task may look at after a control step (all arrays have leading dimension N; palm frame)."""

    q: np.ndarray
    """(N, 16) joint positions, radians (true, without observation noise)."""
    qd: np.ndarray
    """(N, 16) joint velocities, rad/s."""
    torque: np.ndarray
    """(N, 16) actuator torques, N m."""
    targets: np.ndarray
    """(N, 16) joint targets applied this step, radians."""
    object_pos: np.ndarray
    """(N, 3) object centre, metres."""
    object_quat: np.ndarray
    """(N, 4) object orientation."""
    object_linvel: np.ndarray
    """(N, 3) object linear velocity at control rate (finite difference over the control step), m/s."""
    object_angvel: np.ndarray
    """(N, 3) object angular velocity at control rate (finite difference over the control step), rad/s."""
    grasp_q: np.ndarray
    """(N, 16) joint positions of the grasp the episode started from, radians."""


def joint_rms(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """RMS over the last axis of ``a - b``: (..., 16) joint positions in radians -> (...) radians. The one distance
    between hand configurations (grasp-to-grasp error, target draws away from the start, collection's targets)."""
    return np.sqrt(np.mean((a - b) ** 2, axis=-1))


def parse_axis_vector(spec: str) -> np.ndarray | None:
    """The unit vector of an axis given as three numbers "x,y,z" (palm frame), None when ``spec`` is not three
    numbers; a ValueError for a zero-length or non-finite vector."""
    parts = spec.split(",")
    if len(parts) != 3:
        return None
    try:
        v = np.array([float(p) for p in parts])
    except ValueError:
        return None
    norm = np.linalg.norm(v)
    if not np.isfinite(v).all() or norm < 1e-9:
        raise ValueError(f"axis {spec!r} must be a finite vector of nonzero length")
    return v / norm


def _parse_axes(spec: str, allowed: tuple[str, ...]) -> tuple[tuple[str, ...], np.ndarray]:
    """Axis names and (K, 3) unit vectors of an axes spec: 'all', a comma list of ``allowed`` names, or one axis as
    three numbers "x,y,z" (rotation only: ``allowed`` holds all six signed axes)."""
    vector = parse_axis_vector(spec) if len(allowed) == len(AXES) else None
    if vector is not None:
        return (spec,), vector[None]
    names = tuple(allowed) if spec == "all" else tuple(a.strip() for a in spec.split(","))
    for a in names:
        if a not in allowed:
            raise ValueError(f"unknown axis {a!r}; expected 'all' or a comma-separated list of {', '.join(allowed)}"
                             + (" or three numbers x,y,z" if len(allowed) == len(AXES) else ""))  # fmt: skip
    return names, np.array([AXES[a] for a in names])


class Task:
    """Base class: per-environment commands, reward terms and termination."""

    name: str = ""
    command_dim: int = 0

    def __init__(self, config, num_envs: int):
        self.config = config
        self.num_envs = num_envs
        self.drop = config.drop
        self.command = np.zeros((num_envs, self.command_dim))

    @property
    def scales(self) -> dict[str, float]:
        return dict(self.config.scales)

    def reset(self, ids: np.ndarray, rng: np.random.Generator, env) -> None:
        """Draw new commands for environments ``ids`` at the start of their episodes."""

    def observation(self) -> np.ndarray:
        """(N, command_dim) command features that the expert policy sees."""
        return self.command

    def compute(self, s: StepState) -> tuple[dict[str, np.ndarray], np.ndarray]:
        raise NotImplementedError

    def _common_terms(self, s: StepState) -> tuple[dict[str, np.ndarray], np.ndarray]:
        drop = dropped(s.object_pos, self.drop)
        terms = {
            "pose_deviation": np.sum((s.q - s.grasp_q) ** 2, axis=-1),
            "torque": np.sum(s.torque**2, axis=-1),
            "work": np.abs(np.sum(s.torque * s.qd, axis=-1)),
            "drop": drop.astype(np.float64),
            "alive": (~drop).astype(np.float64),
        }
        return terms, drop


@dataclass(frozen=True)
class RotateConfig:
    """Rotation about a signed palm-frame axis."""

    axes: str = "+z"
    """Axis per episode, drawn uniformly: 'all', a comma-separated subset of +x,-x,+y,-y,+z,-z, or one axis given
    as three numbers x,y,z (normalized)."""
    sphere_share: float = 0.0
    """Share of episodes whose axis is instead drawn uniformly over the unit sphere (the rest from ``axes``, which
    are thereby over-represented): one policy conditioned on the axis learns to turn about any."""
    angvel_clip: float = 0.5
    """Rotation reward saturates at this angular velocity about the axis, rad/s."""
    overspeed_limit: float = 1.0
    """Angular speed about the axis (either sign), rad/s, above which the overspeed term counts the excess."""
    scales: dict[str, float] = field(
        default_factory=lambda: {
            "rotate": 2.0,
            "overspeed": 0.0,
            "off_axis": -0.1,
            "linvel": -0.3,
            "pose_deviation": -0.02,
            "torque": -0.002,
            "work": -0.02,
            "drop": -20.0,
            "alive": 0.1,
        }
    )
    """Weight of each reward term ("alive" pays for every step the object stays in hand, so that a learner whose
    rotation reward does not yet outweigh its penalties still prefers holding on to dropping; "overspeed", off by
    default, can make spinning far past the clip cost: the palm-up +z expert spins spheres at 2-3 rad/s, where the
    clipped rotation term pays no more, and drops a quarter of them)."""
    drop: DropConfig = DropConfig()
    """When the object counts as dropped (ends the episode)."""


class AxisTask(Task):
    """A task commanded by a unit palm-frame axis drawn per episode: one of ``config.axes``, or with probability
    ``config.sphere_share`` (where the config has it) a uniform draw over the sphere. Command: the unit axis (3)."""

    command_dim = 3
    allowed_axes: tuple[str, ...] = tuple(AXES)

    def __init__(self, config, num_envs: int):
        super().__init__(config, num_envs)
        self.axis_names, self.axis_vectors = _parse_axes(config.axes, self.allowed_axes)
        self.sphere_share = float(getattr(config, "sphere_share", 0.0))
        if not 0.0 <= self.sphere_share <= 1.0:
            raise ValueError(f"sphere_share must be in [0, 1], got {self.sphere_share}")

    def reset(self, ids, rng, env) -> None:
        axes = self.axis_vectors[rng.integers(len(self.axis_names), size=len(ids))]
        if self.sphere_share > 0.0:
            on_sphere = rng.random(len(ids)) < self.sphere_share
            v = rng.normal(size=(len(ids), 3))
            v /= np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
            axes = np.where(on_sphere[:, None], v, axes)
        self.command[ids] = axes


class RotateTask(AxisTask):
    """Rotate the object about a commanded signed palm-frame axis."""

    name = "rotate"

    def compute(self, s):
        terms, drop = self._common_terms(s)
        along = np.sum(s.object_angvel * self.command, axis=-1)
        clip = self.config.angvel_clip
        terms["rotate"] = np.clip(along, -clip, clip)
        terms["overspeed"] = np.maximum(np.abs(along) - self.config.overspeed_limit, 0.0)
        terms["off_axis"] = np.linalg.norm(s.object_angvel - along[:, None] * self.command, axis=-1)
        terms["linvel"] = np.linalg.norm(s.object_linvel, axis=-1)
        return terms, drop


TRANSLATE_DIRECTIONS = ("+x", "-x", "+y", "-y")
"""Named directions of translation: the palm's x and y axes (its normal is blocked by the palm)."""

OFFSET_OBS_SCALE = 50.0
"""Factor (per metre) on the remaining displacement that a translation expert observes: a 2 cm offset reads 1."""


def planar_offsets(rng: np.random.Generator, directions: np.ndarray, *, spread: float, min_distance: float,
                   max_distance: float) -> np.ndarray:  # fmt: skip
    """(n, 3) offsets in the palm x/y plane, metres: each of the (n, 3) unit ``directions`` (in that plane) turned
    about palm z by an angle drawn uniformly in [-spread, spread] radians (0: along it exactly; pi: any way round),
    times a distance drawn uniformly in [min_distance, max_distance]."""
    d = np.array(directions, dtype=np.float64)
    if spread > 0:
        turn = rng.uniform(-spread, spread, size=len(d))
        c, s = np.cos(turn), np.sin(turn)
        d[:, 0], d[:, 1] = c * directions[:, 0] - s * directions[:, 1], s * directions[:, 0] + c * directions[:, 1]
    return d * rng.uniform(min_distance, max_distance, size=len(d))[:, None]


def planar_distance(target: np.ndarray, object_pos: np.ndarray) -> np.ndarray:
    """(N,) distance in the palm x/y plane between (N, 3) targets and object positions, metres (the height, palm z,
    is not commanded: the palm blocks it on one side)."""
    return np.linalg.norm(target[..., :2] - object_pos[..., :2], axis=-1)


def offset_observation(target: np.ndarray, object_pos: np.ndarray) -> np.ndarray:
    """(N, 3) what a translation expert sees of its command: the remaining displacement target - object position,
    palm frame, times ``OFFSET_OBS_SCALE``."""
    return (target - object_pos) * OFFSET_OBS_SCALE


@dataclass(frozen=True)
class TranslateConfig:
    """Move the object to a commanded offset in the palm x/y plane and hold it there."""

    axes: str = "all"
    """Directions of the offsets: 'all' (any angle in the palm x/y plane, uniformly) or a comma-separated subset of
    +x,-x,+y,-y (one of them per command, uniformly)."""
    min_distance: float = 0.01
    """Least length of a commanded offset, metres (twice the tolerance: an offset within the tolerance would be
    reached before the hand moves)."""
    max_distance: float = 0.02
    """Greatest length of a commanded offset, metres (lengths are drawn uniformly between the two)."""
    tolerance: float = 0.005
    """The hold bonus pays for every step the object is within this distance of its target (palm x/y plane),
    metres."""
    progress_clip: float = 0.002
    """Each step's progress (reduction of the distance to the target) is clipped to +-this, metres (0.002 m per
    50 ms step: 4 cm/s), so that a jolt that throws the object at the target pays no more than a steady push."""
    scales: dict[str, float] = field(
        default_factory=lambda: {
            "progress": 1000.0,
            "hold": 1.0,
            "distance": 0.0,
            "angvel": -0.1,
            "pose_deviation": -0.05,
            "torque": -0.01,
            "work": -0.05,
            "drop": -20.0,
            "alive": 0.1,
        }
    )
    """Weight of each reward term: "progress" (metres per step: 1 per millimetre gained) pays for approaching the
    target and charges for moving away, so what an episode earns from it does not grow with its length; "hold" pays
    every step within the tolerance; "distance" (metres, off by default) can add a dense cost on the distance
    itself."""
    drop: DropConfig = DropConfig()
    """When the object counts as dropped (ends the episode)."""

    def __post_init__(self) -> None:
        for name in ("min_distance", "max_distance", "tolerance", "progress_clip"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value)):
                raise ValueError(f"translation {name} must be a finite number, got {value}")
        if self.min_distance < 0 or self.max_distance <= 0:
            raise ValueError(f"translation distances must be >= 0 (min) and > 0 (max), got min_distance "
                             f"{self.min_distance}, max_distance {self.max_distance}")  # fmt: skip
        if self.min_distance > self.max_distance:
            raise ValueError(f"translation min_distance {self.min_distance} exceeds max_distance {self.max_distance}")
        if self.tolerance <= 0:
            raise ValueError(f"translation tolerance must be > 0, got {self.tolerance}")
        if self.progress_clip <= 0:
            raise ValueError(f"translation progress_clip must be > 0, got {self.progress_clip}")
        translate_directions(self.axes)


def translate_directions(spec: str) -> tuple[str, ...]:
    """The direction names of a translation spec: ('all',) or the named ones; a one-line ValueError otherwise."""
    if spec == "all":
        return ("all",)
    return _parse_axes(spec, TRANSLATE_DIRECTIONS)[0]


class TranslateTask(Task):
    """Move the object by a commanded offset in the palm x/y plane and hold it there.

    A command is drawn at each episode's start (and on demand, ``draw``) relative to where the object is then:
    ``command`` (N, 3) holds the offset (what a dataset records as the primitive's parameter), ``target`` (N, 3)
    the position to reach, palm frame, metres. The policy sees the remaining displacement (``offset_observation``).
    """

    name = "translate"
    command_dim = 3
    allowed_axes = TRANSLATE_DIRECTIONS

    def __init__(self, config: TranslateConfig, num_envs: int):
        super().__init__(config, num_envs)
        self.axis_names = translate_directions(config.axes)
        self.any_angle = self.axis_names == ("all",)
        self.axis_vectors = np.array([AXES["+x"]]) if self.any_angle else np.array([AXES[a] for a in self.axis_names])
        self.target = np.zeros((num_envs, 3))
        """(N, 3) the position each object is to reach, metres, palm frame."""
        self.object_pos = np.zeros((num_envs, 3))
        """(N, 3) the object's position after the last step or draw, metres, palm frame."""
        self.last_distance = np.zeros(num_envs)
        """(N,) planar distance to the target after the last step or draw, metres."""

    def draw(self, ids: np.ndarray, rng: np.random.Generator, object_pos: np.ndarray) -> None:
        """New commands for environments ``ids``: offsets from the objects' current positions ``object_pos``
        (len(ids), 3), along the configured directions (any angle for 'all') with lengths in
        [min_distance, max_distance]."""
        cfg = self.config
        directions = self.axis_vectors[rng.integers(len(self.axis_vectors), size=len(ids))]
        offsets = planar_offsets(rng, directions, spread=np.pi if self.any_angle else 0.0,
                                 min_distance=cfg.min_distance, max_distance=cfg.max_distance)  # fmt: skip
        self.command[ids] = offsets
        self.object_pos[ids] = object_pos
        self.target[ids] = object_pos + offsets
        self.last_distance[ids] = planar_distance(self.target[ids], object_pos)

    def reset(self, ids, rng, env) -> None:
        self.draw(ids, rng, env.sims.object_pose()[0][ids])

    def observation(self) -> np.ndarray:
        """(N, 3) the remaining displacement to the target, scaled (``offset_observation``)."""
        return offset_observation(self.target, self.object_pos)

    def compute(self, s):
        terms, drop = self._common_terms(s)
        distance = planar_distance(self.target, s.object_pos)
        clip = self.config.progress_clip
        terms["progress"] = np.clip(self.last_distance - distance, -clip, clip)
        terms["hold"] = ((distance <= self.config.tolerance) & ~drop).astype(np.float64)
        terms["distance"] = distance
        terms["angvel"] = np.linalg.norm(s.object_angvel, axis=-1)
        self.last_distance = distance
        self.object_pos = np.array(s.object_pos, dtype=np.float64)
        return terms, drop


@dataclass(frozen=True)
class GraspToGraspConfig:
    """Reach another cached grasp's finger configuration while holding the object."""

    success_tolerance: float = 0.15
    """Success when the RMS joint error to the target falls below this, radians."""
    terminate_on_success: bool = True
    """End the episode at success (the next one starts from a fresh grasp)."""
    min_target_distance: float = 0.3
    """The target grasp is drawn among those at least this far (RMS over joints, radians) from the hand at the
    episode's start (the farthest one where the object has none), so that an episode does not start at its goal
    (a start grasp drawn again as the target would count as a success at once; an object with a single grasp still
    does)."""
    scales: dict[str, float] = field(
        default_factory=lambda: {
            "joint_error": -1.0,
            "joint_progress": 0.0,
            "success": 10.0,
            "linvel": -0.3,
            "torque": -0.01,
            "work": -0.05,
            "drop": -10.0,
        }
    )
    """Weight of each reward term ("joint_progress", off by default, pays for each step's reduction of the RMS joint
    error, so that what an episode earns from it does not grow with its length: a per-step "joint_error" cost makes
    ending the episode by a drop cheaper than a slow approach)."""
    drop: DropConfig = DropConfig()
    """When the object counts as dropped (ends the episode)."""


class GraspToGraspTask(Task):
    """Move the fingers to a target configuration drawn from the object's grasp cache. Command: the target (16)."""

    name = "grasp_to_grasp"
    command_dim = C.NUM_JOINTS

    def __init__(self, config, num_envs: int):
        super().__init__(config, num_envs)
        self.last_error = np.full(num_envs, np.nan)
        """(N,) RMS joint error to the target after the previous step (NaN before an episode's first), radians."""

    def reset(self, ids, rng, env) -> None:
        start = env.sims.hand_q[ids]
        self.command[ids] = env.sample_grasp_q(ids, rng, away_from=start, min_distance=self.config.min_target_distance)
        self.last_error[ids] = joint_rms(env.sims.hand_q[ids], self.command[ids])

    def compute(self, s):
        terms, drop = self._common_terms(s)
        rms = joint_rms(s.q, self.command)
        terms["joint_progress"] = np.where(np.isnan(self.last_error), 0.0, self.last_error - rms)
        self.last_error = rms
        success = (rms < self.config.success_tolerance) & ~drop  # reaching the grasp as the object falls is no success
        terms["joint_error"] = rms
        terms["success"] = success.astype(np.float64)
        terms["linvel"] = np.linalg.norm(s.object_linvel, axis=-1)
        del terms["pose_deviation"], terms["alive"]  # success ends the episode: holding on is not the goal
        done = drop | (success & self.config.terminate_on_success)
        return terms, done


TASKS = {"rotate": (RotateTask, RotateConfig), "translate": (TranslateTask, TranslateConfig),
         "grasp_to_grasp": (GraspToGraspTask, GraspToGraspConfig)}  # fmt: skip
"""Task class and default config by name."""


def make_task(name: str, num_envs: int, config=None) -> Task:
    """Build a task by name with its default config (or ``config``); a ValueError naming the choices otherwise."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}")
    cls, config_cls = TASKS[name]
    return cls(config if config is not None else config_cls(), num_envs)
