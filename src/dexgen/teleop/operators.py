"""Simulated human operators: closed-loop operators with a goal, and human-like open-loop command families.

A person teleoperating a robot hand moves *their own* fingertips, retargeted to the robot: the command is the
motion of a human fingertip layout, not of the robot's fingertips. Each operator here has such a hand: a template
(``NOMINAL_TEMPLATE``, a precision grasp of a ~5 cm object) scaled, with per-finger offsets and a tilt, placed on
the object as a person would place it. It moves that hand rigidly (turns it about the object, shifts it) at a
bounded speed with a first-order motor lag, trembles (a sinusoid per finger, 8-12 Hz, about 1 mm), hesitates
(random pauses), overshoots and corrects, and its retargeting scales each finger's motion by its own error. It
knows nothing of finger gaiting.

- ``ClosedLoopOperator`` has a goal (turn the object by an angle about a palm-frame axis, optionally shift it) and
  sees the object: the caller passes the object's pose every control step through ``observe`` (what a person
  sees, never the controller's internals); the operator acts on what it saw ``reaction_delay_s`` ago.
- ``HumanOpenLoop`` replays a recording made by such an operator's hand without feedback, one of ``FAMILIES``:
  changing speed with pauses, reversals, a tilted axis, a large per-finger retarget error with tremor.
  ``human_recording`` writes such a recording for ``dexgen.teleop.commands.save_recording``.

Every parameter is drawn per hand from the ranges of a named ``OPERATOR_SETS`` entry: "dev" to develop methods on,
"confirm" (other ranges) to decide on. Their random streams never meet (``operator_rng`` salts the seed with the
set), and evaluations keep their seeds apart (``check_seeds``: dev seeds below ``CONFIRM_SEED_MIN``, confirm seeds
at or above it).

Units: metres, seconds, radians; palm frame; fingers in ``constants.FINGERS`` order. Commands are (N, T, 4, 3)
fingertip displacements as for every ``CommandSource``. A tremor above half the control rate (10 Hz at 20 Hz)
appears aliased in the commands, as it would to a robot sampling a tracked hand at that rate.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from dexgen.sim.rotations import axis_angle_quat, quat_conj, quat_mul, quat_to_rotvec
from dexgen.teleop.commands import DT, HORIZON, CommandSource, ReplayCommand, check_tips, parse_axis, rotate

NOMINAL_TEMPLATE = np.array(
    [
        [0.026, -0.019, 0.002],  # index
        [0.030, 0.000, 0.000],  # middle
        [0.026, 0.019, -0.002],  # ring
        [-0.028, -0.006, 0.000],  # thumb
    ]
)
"""(4, 3) fingertips of a nominal adult precision grasp of a ~5 cm object, metres, relative to the object centre,
retargeted to the robot's palm frame: index, middle and ring 19 mm apart on the +x side, the thumb opposite."""

DEADBAND = 0.05
"""Remaining rotation, radians, below which an operator sees the object as at its aim and stops turning."""

CONFIRM_SEED_MIN = 1000
"""Evaluations with the confirmation operators take seeds >= this; the development ones take seeds below it."""


def _pair(value, name: str, *, low: float = 0.0, high: float = np.inf) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"operator range {name} must be a pair (low, high), got {value!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"operator range {name} must be finite, got ({lo}, {hi})")
    if not low <= lo <= hi <= high:
        raise ValueError(f"operator range {name} must satisfy {low:g} <= low <= high <= {high:g}, got ({lo}, {hi})")
    return lo, hi


@dataclass(frozen=True)
class OperatorRanges:
    """Ranges (low, high), drawn uniformly per hand, of a population of simulated operators."""

    reaction_delay_s: tuple[float, float] = (0.1, 0.3)
    """Reaction delay, seconds: a closed-loop operator acts on the object pose it saw this long ago."""
    max_speed: tuple[float, float] = (0.3, 0.8)
    """Largest turning speed of the operator's hand, rad/s (open-loop families: the nominal speed's factor range
    is applied to the source's ``omega`` instead)."""
    gain: tuple[float, float] = (1.5, 3.0)
    """Proportional gain, 1/s: a closed-loop operator turns at min(max_speed, gain * remaining angle)."""
    motor_lag_s: tuple[float, float] = (0.05, 0.2)
    """Time constant, seconds, of the first-order lag between the speed the operator wants and its hand's."""
    tremor_hz: tuple[float, float] = (8.0, 12.0)
    """Physiological tremor frequency, Hz (one per operator)."""
    tremor_mm: tuple[float, float] = (0.5, 1.5)
    """Tremor amplitude, mm, of each fingertip's sinusoid (its direction and phase drawn per finger)."""
    hesitation_rate: tuple[float, float] = (0.05, 0.3)
    """Pauses started per second of motion (a Poisson process)."""
    hesitation_s: tuple[float, float] = (0.2, 0.8)
    """Duration of one pause, seconds (drawn per pause)."""
    overshoot: tuple[float, float] = (0.0, 0.25)
    """A closed-loop operator first aims this fraction of the goal angle past the goal, then corrects back."""
    axis_tilt_deg: tuple[float, float] = (0.0, 10.0)
    """Misperceived rotation axis: every commanded turn is about an axis tilted by this many degrees."""
    hand_scale: tuple[float, float] = (0.85, 1.25)
    """Size of the operator's hand relative to ``NOMINAL_TEMPLATE``."""
    finger_offset_mm: tuple[float, float] = (0.0, 4.0)
    """Standard deviation, mm, of each fingertip's offset from the scaled template (its own finger spacing)."""
    template_tilt_deg: tuple[float, float] = (0.0, 15.0)
    """Tilt of the operator's hand on the object, degrees, about a random axis."""
    placement_mm: tuple[float, float] = (0.0, 5.0)
    """Standard deviation, mm, of where the hand's centre is put relative to the object's centre."""
    retarget_scale: tuple[float, float] = (0.85, 1.15)
    """Per-finger factor of the retargeting on each fingertip's displacement."""

    def __post_init__(self) -> None:
        highs = {"tremor_hz": 50.0, "overshoot": 1.0, "axis_tilt_deg": 90.0, "template_tilt_deg": 90.0}
        for f in fields(self):
            object.__setattr__(self, f.name, _pair(getattr(self, f.name), f.name, high=highs.get(f.name, np.inf)))
        if self.max_speed[1] <= 0 or self.retarget_scale[1] <= 0 or self.hand_scale[0] <= 0:
            raise ValueError("operator ranges need max_speed, retarget_scale and hand_scale above 0")


OPERATOR_SETS: dict[str, OperatorRanges] = {
    "dev": OperatorRanges(reaction_delay_s=(0.1, 0.2), max_speed=(0.4, 0.7), gain=(1.5, 2.5),
                          motor_lag_s=(0.05, 0.15), tremor_hz=(8.0, 10.0), tremor_mm=(0.5, 1.0),
                          hesitation_rate=(0.05, 0.2), hesitation_s=(0.2, 0.5), overshoot=(0.0, 0.15),
                          axis_tilt_deg=(0.0, 8.0), hand_scale=(0.85, 1.05), finger_offset_mm=(0.0, 3.0),
                          template_tilt_deg=(0.0, 10.0), placement_mm=(0.0, 3.0), retarget_scale=(0.9, 1.1)),
    "confirm": OperatorRanges(reaction_delay_s=(0.15, 0.3), max_speed=(0.3, 0.8), gain=(1.2, 3.0),
                              motor_lag_s=(0.1, 0.25), tremor_hz=(9.0, 12.0), tremor_mm=(0.8, 1.5),
                              hesitation_rate=(0.1, 0.35), hesitation_s=(0.3, 0.9), overshoot=(0.1, 0.3),
                              axis_tilt_deg=(4.0, 15.0), hand_scale=(1.0, 1.25), finger_offset_mm=(2.0, 5.0),
                              template_tilt_deg=(5.0, 20.0), placement_mm=(2.0, 6.0),
                              retarget_scale=(0.8, 1.25)),
}  # fmt: skip
"""Named operator populations. dev: quicker, steadier operators; confirm: slower to react, shakier, larger hands
and retarget errors. Methods are developed on dev and a change is adopted only on confirm (docs/results.md)."""

_SET_SALT = {"dev": 0x5E7D, "confirm": 0xC0F1}


def operator_set(name: str | OperatorRanges) -> OperatorRanges:
    """The ranges of a named set (``OPERATOR_SETS``), or the given ranges; a one-line ValueError otherwise."""
    if isinstance(name, OperatorRanges):
        return name
    if name not in OPERATOR_SETS:
        raise ValueError(f"unknown operator set {name!r}; expected one of {', '.join(OPERATOR_SETS)}")
    return OPERATOR_SETS[name]


def check_seeds(operators: str, seeds: list[int]) -> None:
    """A one-line ValueError unless ``seeds`` belong to the operator set: dev seeds < ``CONFIRM_SEED_MIN`` <=
    confirm seeds, so that development and confirmation never share an episode."""
    operator_set(operators)
    bad = [s for s in seeds if (s >= CONFIRM_SEED_MIN) != (operators == "confirm")]
    if bad:
        where = f">= {CONFIRM_SEED_MIN}" if operators == "confirm" else f"< {CONFIRM_SEED_MIN}"
        raise ValueError(f"the {operators} operators take seeds {where}; got {', '.join(map(str, bad))}")


def operator_rng(operators: str, seed: int) -> np.random.Generator:
    """The random stream of the ``operators`` set (a name of ``OPERATOR_SETS``) for an episode ``seed``."""
    operator_set(operators)
    return np.random.default_rng([_SET_SALT[operators], int(seed)])


def turn_increment(prev_quat: np.ndarray, quat: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """(...) radians the object turned about unit ``axis`` (3,) between orientations ``prev_quat`` and ``quat``
    (..., 4) one control step apart (summed over steps: the turn about the axis, not wrapped to ±pi)."""
    return quat_to_rotvec(quat_mul(quat, quat_conj(prev_quat))) @ axis


def _generator(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(0 if rng is None else rng)


@dataclass
class OperatorParams:
    """One operator per hand (N hands): the drawn parameters, with the meaning of ``OperatorRanges``' fields."""

    reaction_delay_s: np.ndarray
    """(N,) seconds."""
    max_speed: np.ndarray
    """(N,) rad/s."""
    gain: np.ndarray
    """(N,) 1/s."""
    motor_lag_s: np.ndarray
    """(N,) seconds (0: none)."""
    tremor_hz: np.ndarray
    """(N,) Hz."""
    tremor_mm: np.ndarray
    """(N,) mm."""
    hesitation_rate: np.ndarray
    """(N,) pauses per second."""
    hesitation_s: tuple[float, float]
    """Range of one pause's duration, seconds."""
    overshoot: np.ndarray
    """(N,) fraction of the goal angle."""
    axis_tilt: np.ndarray
    """(N, 3, 3) rotation matrices applied to every commanded rotation axis."""
    template: np.ndarray
    """(N, 4, 3) the operator's fingertips relative to the object centre as first placed, metres."""
    placement: np.ndarray
    """(N, 3) offset of the hand's centre from the object's centre, metres."""
    retarget_scale: np.ndarray
    """(N, 4) per-finger factor on displacements."""
    tremor_dir: np.ndarray
    """(N, 4, 3) unit direction of each fingertip's tremor."""
    tremor_phase: np.ndarray
    """(N, 4) phase of each fingertip's tremor, radians."""

    @property
    def num_hands(self) -> int:
        return len(self.max_speed)

    @classmethod
    def ideal(cls, n: int, *, max_speed: float = 0.5, gain: float = 2.0, reaction_delay_s: float = 0.0,
              tremor_hz: float = 10.0, tremor_mm: float = 0.0) -> OperatorParams:  # fmt: skip
        """N identical operators without noise, delay, lag, pauses, overshoot, tilt or retarget error, holding
        ``NOMINAL_TEMPLATE`` centred on the object (for tests and as a reference)."""
        full = lambda v: np.full(n, float(v))  # noqa: E731
        return cls(reaction_delay_s=full(reaction_delay_s), max_speed=full(max_speed), gain=full(gain),
                   motor_lag_s=full(0.0), tremor_hz=full(tremor_hz), tremor_mm=full(tremor_mm),
                   hesitation_rate=full(0.0), hesitation_s=(0.0, 0.0), overshoot=full(0.0),
                   axis_tilt=np.broadcast_to(np.eye(3), (n, 3, 3)).copy(),
                   template=np.broadcast_to(NOMINAL_TEMPLATE, (n, 4, 3)).copy(), placement=np.zeros((n, 3)),
                   retarget_scale=np.ones((n, 4)), tremor_dir=np.broadcast_to(np.eye(3)[2], (n, 4, 3)).copy(),
                   tremor_phase=np.zeros((n, 4)))  # fmt: skip

    def __post_init__(self) -> None:
        for f in fields(self):
            if not np.isfinite(np.asarray(getattr(self, f.name), dtype=np.float64)).all():
                raise ValueError(f"operator parameter {f.name} holds NaN or inf")


def _random_rotations(rng: np.random.Generator, n: int, degrees: np.ndarray) -> np.ndarray:
    """(n, 3, 3) rotations by ``degrees`` (n,) about uniformly random axes."""
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    eye = np.broadcast_to(np.eye(3), (n, 3, 3))
    return np.moveaxis(rotate(eye, axis[:, None], np.deg2rad(degrees)[:, None]), -1, -2)


def sample_operators(ranges: OperatorRanges | str, n: int, rng: np.random.Generator) -> OperatorParams:
    """N operators drawn from ``ranges`` (or a named set) with ``rng``."""
    r = operator_set(ranges)
    u = lambda name: rng.uniform(*getattr(r, name), size=n)  # noqa: E731
    scale, offset_mm, tilt_deg = u("hand_scale"), u("finger_offset_mm"), u("template_tilt_deg")
    template = NOMINAL_TEMPLATE[None] * scale[:, None, None]
    template = template + rng.normal(size=(n, 4, 3)) * offset_mm[:, None, None] * 1e-3
    template = np.einsum("nij,nkj->nki", _random_rotations(rng, n, tilt_deg), template)
    placement = rng.normal(size=(n, 3)) * u("placement_mm")[:, None] * 1e-3
    tremor_dir = rng.normal(size=(n, 4, 3))
    tremor_dir /= np.linalg.norm(tremor_dir, axis=-1, keepdims=True)
    return OperatorParams(reaction_delay_s=u("reaction_delay_s"), max_speed=u("max_speed"), gain=u("gain"),
                          motor_lag_s=u("motor_lag_s"), tremor_hz=u("tremor_hz"), tremor_mm=u("tremor_mm"),
                          hesitation_rate=u("hesitation_rate"), hesitation_s=r.hesitation_s,
                          overshoot=u("overshoot"), axis_tilt=_random_rotations(rng, n, u("axis_tilt_deg")),
                          template=template, placement=placement,
                          retarget_scale=rng.uniform(*r.retarget_scale, size=(n, 4)), tremor_dir=tremor_dir,
                          tremor_phase=rng.uniform(0.0, 2 * np.pi, size=(n, 4)))  # fmt: skip


def tremor(params: OperatorParams, time_s: np.ndarray) -> np.ndarray:
    """(..., N, 4, 3) each fingertip's tremor displacement, metres, at times ``time_s`` (...) seconds."""
    t = np.asarray(time_s, dtype=np.float64)[..., None, None]
    wave = np.sin(2 * np.pi * params.tremor_hz[:, None] * t + params.tremor_phase)  # (..., N, 4)
    return (params.tremor_mm[:, None] * 1e-3 * wave)[..., None] * params.tremor_dir


class _Hesitation:
    """Per-hand pauses: a Poisson process of starts (``rate`` per second) with durations drawn from a range."""

    def __init__(self, params: OperatorParams, rng: np.random.Generator, dt: float) -> None:
        self.p, self.rng, self.dt = params, rng, dt
        self.left = np.zeros(params.num_hands)

    def step(self) -> np.ndarray:
        """(N,) bool: the hand pauses this control step."""
        start = (self.left <= 0) & (self.rng.random(len(self.left)) < 1.0 - np.exp(-self.p.hesitation_rate * self.dt))
        self.left = np.where(start, self.rng.uniform(*self.p.hesitation_s, size=len(self.left)), self.left)
        pausing = self.left > 0
        self.left = self.left - self.dt
        return pausing


def _lag(current: np.ndarray, wanted: np.ndarray, lag_s: np.ndarray, dt: float) -> np.ndarray:
    """One step of a first-order lag with time constants ``lag_s`` (N,) from ``current`` toward ``wanted`` (N, k)."""
    keep = np.exp(-dt / np.maximum(lag_s, 1e-9))[:, None]
    return wanted + (current - wanted) * keep


class _Hand:
    """The operator's own fingertips (tremor-free), moved rigidly; the retargeted command of their motion."""

    def __init__(self, params: OperatorParams, centre: np.ndarray, horizon: int, dt: float) -> None:
        self.p, self.horizon, self.dt = params, horizon, dt
        self.centre = centre + params.placement  # (N, 3)
        self.rel = params.template.copy()  # (N, 4, 3)

    @property
    def tips(self) -> np.ndarray:
        return self.centre[:, None] + self.rel

    def command(self, omega: np.ndarray, velocity: np.ndarray, time_s: float) -> np.ndarray:
        """(N, T, 4, 3) the retargeted displacement of turning at ``omega`` (N, 3) rad/s and shifting at
        ``velocity`` (N, 3) m/s over the horizon, plus the tremor's change from now."""
        steps = np.arange(1, self.horizon + 1, dtype=np.float64)
        speed = np.linalg.norm(omega, axis=-1)
        axis = omega / np.maximum(speed, 1e-12)[:, None]
        angle = speed[:, None, None] * self.dt * steps[None, :, None]  # (N, T, 1)
        rel = self.rel[:, None]  # (N, 1, 4, 3)
        shift = velocity[:, None, None] * (self.dt * steps)[None, :, None, None]
        dx = rotate(rel, axis[:, None, None], angle) - rel + shift
        dx = dx * self.p.retarget_scale[:, None, :, None]
        times = time_s + self.dt * steps
        shake = tremor(self.p, times) - tremor(self.p, np.array(time_s))  # (T, N, 4, 3)
        return dx + np.moveaxis(shake, 0, 1)

    def advance(self, omega: np.ndarray, velocity: np.ndarray) -> None:
        speed = np.linalg.norm(omega, axis=-1)
        axis = omega / np.maximum(speed, 1e-12)[:, None]
        self.rel = rotate(self.rel, axis[:, None], (speed * self.dt)[:, None])
        self.centre = self.centre + velocity * self.dt


class ClosedLoopOperator(CommandSource):
    """A person with a goal who watches the object: turn it by ``angle`` about palm-frame ``axis`` from where it
    was first seen (and, with ``shift``, move it by that much).

    Every control step the caller first passes what the person sees, ``observe(t, object_quat, object_pos)``, then
    asks for ``command(t, tips)``. The operator acts on the pose it saw ``reaction_delay_s`` earlier (the first one
    before that): it aims at the goal (first ``overshoot`` past it, until it sees the object there or beyond, then
    at the goal itself), wants to turn about the remaining rotation's axis (tilted by its misperception) at
    min(max_speed, gain * remaining angle) (0 within ``DEADBAND`` and while it hesitates), reaches that speed with
    its motor lag, and commands the retargeted motion of its own hand turning at that speed over the horizon, plus
    tremor. ``tips`` (the robot's fingertips) are not used beyond their count: a person sees the object, not the
    robot's contacts.

    Args:
        axis: goal rotation axis, palm frame: a name ("+z") or a vector (3,).
        angle: goal rotation, radians (> 0).
        operators: the population to draw the operators from (a name of ``OPERATOR_SETS`` or ranges); ignored
            with ``params``.
        params: fixed operators (``OperatorParams``) instead of drawn ones.
        shift: optional goal translation (3,), metres, palm frame (None: none).
        turn_only: the operator cares about the turn about ``axis`` only: it corrects no tilt off that axis.
        horizon: command horizon T, control steps.
        dt: control period, seconds.
        name: label of the source.
    """

    def __init__(self, axis: str | np.ndarray = "+z", angle: float = np.pi / 2, *,
                 operators: str | OperatorRanges = "dev", params: OperatorParams | None = None,
                 shift: np.ndarray | None = None, turn_only: bool = False, horizon: int = HORIZON, dt: float = DT,
                 name: str = "operator") -> None:  # fmt: skip
        if not np.isfinite(angle) or angle <= 0:
            raise ValueError(f"goal angle must be finite and > 0 radians, got {angle}")
        if horizon < 1 or not np.isfinite(dt) or dt <= 0:
            raise ValueError(f"need horizon >= 1 and a finite dt > 0 (got {horizon}, {dt})")
        self.axis = parse_axis(axis)
        self.angle = float(angle)
        self.ranges = operator_set(operators) if params is None else None
        self.fixed = params
        self.shift = np.zeros(3) if shift is None else np.asarray(shift, dtype=np.float64)
        if self.shift.shape != (3,) or not np.isfinite(self.shift).all():
            raise ValueError(f"goal shift must be a finite vector (3,), got {self.shift}")
        self.turn_only = bool(turn_only)
        self.horizon, self.dt, self.name = int(horizon), float(dt), name
        self.params: OperatorParams | None = None

    def reset(self, tips: np.ndarray, *, rng: np.random.Generator | int | None = None) -> None:
        n = check_tips(tips).shape[0]
        self.rng = _generator(rng)
        self.params = self.fixed if self.fixed is not None else sample_operators(self.ranges, n, self.rng)
        if self.params.num_hands != n:
            raise ValueError(f"the operators are for {self.params.num_hands} hands, the episode has {n}")
        self.delay_steps = np.rint(self.params.reaction_delay_s / self.dt).astype(np.int64)
        self.seen: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (quat, pos, turned) per step
        self.hand: _Hand | None = None
        self.hesitation = _Hesitation(self.params, self.rng, self.dt)
        self.omega = np.zeros((n, 3))
        self.velocity = np.zeros((n, 3))
        self.passed = np.zeros(n, dtype=bool)

    def observe(self, t: int, object_quat: np.ndarray, object_pos: np.ndarray) -> None:
        """What the person sees at control step ``t`` (called once per step, t = 0, 1, ..., before ``command``):
        the object's orientation (N, 4) (w, x, y, z) and centre (N, 3), metres, palm frame. The first call places
        the operator's hand on the object and fixes the goal relative to this pose."""
        if self.params is None:
            raise RuntimeError("ClosedLoopOperator.observe before reset")
        quat = np.asarray(object_quat, dtype=np.float64)
        pos = np.asarray(object_pos, dtype=np.float64)
        n = self.params.num_hands
        if quat.shape != (n, 4) or pos.shape != (n, 3):
            raise ValueError(f"observe needs object_quat ({n}, 4) and object_pos ({n}, 3), got {quat.shape}, "
                             f"{pos.shape}")  # fmt: skip
        if t != len(self.seen):
            raise ValueError(f"observe is called once per control step in order: expected step {len(self.seen)}, "
                             f"got {t}")  # fmt: skip
        if not t:
            self.start_quat, self.start_pos = quat.copy(), pos.copy()
            self.goal_quat = quat_mul(axis_angle_quat(self.axis, self.angle), quat)
            over = axis_angle_quat(self.axis[None], self.angle * (1.0 + self.params.overshoot))
            self.over_quat = quat_mul(over, quat)
            self.goal_pos = pos + self.shift
            self.hand = _Hand(self.params, pos, self.horizon, self.dt)
        turned = np.zeros(n) if not t else self.seen[-1][2] + turn_increment(self.seen[-1][0], quat, self.axis)
        self.seen.append((quat.copy(), pos.copy(), turned))

    def perceived(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What the operator acts on at step ``t``, seen ``delay`` steps ago: the object's orientation (N, 4),
        centre (N, 3) and how far it has turned about the goal's axis since the start (N,), radians (followed
        through every step, so a turn the wrong way by 270 degrees is not taken for 90 degrees the right way)."""
        idx = np.clip(t - self.delay_steps, 0, len(self.seen) - 1)
        hands = np.arange(len(idx))
        return tuple(np.stack([s[k] for s in self.seen])[idx, hands] for k in range(3))

    def wanted(self, quat: np.ndarray, pos: np.ndarray, turned: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The turning (N, 3) rad/s and shifting (N, 3) m/s the operator wants given the object pose it sees and
        how far it has seen it turn about the goal's axis."""
        p = self.params
        self.passed |= turned >= self.angle  # seen at or past the goal: stop overshooting
        if self.turn_only:
            aim = np.where(self.passed, self.angle, self.angle * (1.0 + p.overshoot))
            err = (aim - turned)[:, None] * self.axis
        else:
            aim = np.where(self.passed[:, None], self.goal_quat, self.over_quat)
            err = quat_to_rotvec(quat_mul(aim, quat_conj(quat)))  # (N, 3)
        size = np.linalg.norm(err, axis=-1)
        self.passed |= size < DEADBAND  # at the overshot aim: now correct back to the goal
        speed = np.where(size < DEADBAND, 0.0, np.minimum(p.max_speed, p.gain * size))
        omega = np.einsum("nij,nj->ni", p.axis_tilt, err / np.maximum(size, 1e-12)[:, None]) * speed[:, None]
        gap = self.goal_pos - pos
        dist = np.linalg.norm(gap, axis=-1)
        lin = np.where(dist < 1e-3, 0.0, np.minimum(0.05, p.gain * dist))  # at most 5 cm/s
        return omega, gap / np.maximum(dist, 1e-12)[:, None] * lin[:, None]

    def command(self, t: int, tips: np.ndarray) -> np.ndarray:
        if self.hand is None:
            raise RuntimeError("ClosedLoopOperator.command before observe")
        check_tips(tips, n=self.params.num_hands)
        if len(self.seen) != t + 1:
            raise ValueError(f"command({t}) needs observe({t}) first")
        omega, velocity = self.wanted(*self.perceived(t))
        pausing = self.hesitation.step()[:, None]
        omega, velocity = np.where(pausing, 0.0, omega), np.where(pausing, 0.0, velocity)
        self.omega = _lag(self.omega, omega, self.params.motor_lag_s, self.dt)
        self.velocity = _lag(self.velocity, velocity, self.params.motor_lag_s, self.dt)
        cmd = self.hand.command(self.omega, self.velocity, t * self.dt)
        self._tips = self.hand.tips  # the operator's own hand (tremor-free), where this command starts
        self.hand.advance(self.omega, self.velocity)
        return cmd

    def command_tips(self) -> np.ndarray | None:
        """The operator's own fingertips (N, 4, 3), palm frame, that the last command turns (its hand's layout)."""
        return getattr(self, "_tips", None)


FAMILIES = ("pauses", "reversal", "tilted", "retarget")
"""Human-like open-loop families: pauses (changing speed with pauses), reversal (turning back now and then),
tilted (the axis tilted 15-25 degrees, dev, or 25-35, confirm), retarget (per-finger retarget scale error 0.6-1.4,
dev, or 0.5-1.6, confirm, with a 1.5-2 mm tremor)."""

_FAMILY_RANGES = {
    "dev": {"tilt_deg": (15.0, 25.0), "retarget": (0.6, 1.4), "tremor_mm": (1.5, 2.0), "segment_s": (0.5, 2.0),
            "back_s": (0.5, 1.5)},
    "confirm": {"tilt_deg": (25.0, 35.0), "retarget": (0.5, 1.6), "tremor_mm": (1.5, 2.0), "segment_s": (0.3, 1.5),
                "back_s": (1.0, 2.0)},
}  # fmt: skip


def _speed_profile(family: str, ranges: dict, steps: int, dt: float, rng: np.random.Generator) -> np.ndarray:
    """(steps,) the family's speed factor at each control step (1: the nominal speed; negative: turning back)."""
    out = np.ones(steps)
    if family == "pauses":
        t = 0
        while t < steps:
            length = max(1, int(round(rng.uniform(*ranges["segment_s"]) / dt)))
            out[t : t + length] = 0.0 if rng.random() < 0.3 else rng.uniform(0.3, 1.7)
            t += length
    elif family == "reversal":
        t = 0
        while t < steps:
            forward = max(1, int(round(rng.uniform(1.5, 3.5) / dt)))
            back = max(1, int(round(rng.uniform(*ranges["back_s"]) / dt)))
            out[t + forward : t + forward + back] = -1.0
            t += forward + back
    return out


def human_recording(family: str, axis: str | np.ndarray, omega: float, seconds: float, *, centre: np.ndarray,
                    operators: str = "dev", rng: np.random.Generator | int | None = None,
                    dt: float = DT) -> np.ndarray:  # fmt: skip
    """A recording (S, N, 4, 3) of N operators' retargeted fingertips (S = seconds / dt + 1 rows, every ``dt``),
    turning about ``axis`` at ``omega`` rad/s without feedback, shaped by ``family`` (see ``FAMILIES``), their
    hands placed on ``centre`` (N, 3) (the object as the person sees it), operators drawn from ``operators``."""
    if family not in FAMILIES:
        raise ValueError(f"unknown human-like family {family!r}; expected one of {', '.join(FAMILIES)}")
    if not np.isfinite(omega) or not np.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"need a finite omega and seconds > 0, got {omega}, {seconds}")
    rng = _generator(rng)
    centre = np.asarray(centre, dtype=np.float64)
    n, steps = centre.shape[0], int(round(seconds / dt))
    operator_set(operators)
    fam = _FAMILY_RANGES[operators]
    p = sample_operators(operators, n, rng)
    axes = np.broadcast_to(parse_axis(axis), (n, 3))
    if family == "tilted":
        perp = np.cross(axes, rng.normal(size=(n, 3)))
        perp /= np.linalg.norm(perp, axis=-1, keepdims=True)
        axes = rotate(axes, perp, np.deg2rad(rng.uniform(*fam["tilt_deg"], size=n)))
    if family == "retarget":
        p.retarget_scale = rng.uniform(*fam["retarget"], size=(n, 4))
        p.tremor_mm = rng.uniform(*fam["tremor_mm"], size=n)
    profiles = np.stack([_speed_profile(family, fam, steps, dt, rng) for _ in range(n)], axis=1)  # (S, N)
    hand = _Hand(p, centre, 1, dt)
    start = hand.tips
    out = np.empty((steps + 1, n, 4, 3))
    out[0] = start
    speed = np.zeros((n, 3))
    for t in range(steps):
        speed = _lag(speed, axes * (omega * profiles[t])[:, None], p.motor_lag_s, dt)
        hand.advance(speed, np.zeros((n, 3)))
        out[t + 1] = hand.tips
    moved = (out - start) * p.retarget_scale[None, :, :, None]  # retargeting scales each finger's displacement
    return start + moved + tremor(p, np.arange(steps + 1) * dt)


class HumanOpenLoop(CommandSource):
    """A recording made by a simulated operator of one of ``FAMILIES``, replayed: "turn about ``axis`` at ``omega``"
    as a person's hand does it, without feedback. At reset the operators are drawn (from ``rng``) and their hands
    placed on the centre of the robot's fingertips (where the person sees the object); then the recording replays
    like ``ReplayCommand`` (holding still after ``seconds``). A seed given as ``rng`` draws from the set's own
    stream (``operator_rng``).

    Args:
        family: one of ``FAMILIES``.
        axis: commanded rotation axis, palm frame: a name or a vector (3,).
        omega: nominal angular speed, rad/s.
        operators: the population (a name of ``OPERATOR_SETS``).
        seconds: length of the recording, seconds.
        horizon: command horizon T, control steps.
        dt: control period, seconds.
        name: label of the source (default "human:<family>").
    """

    def __init__(self, family: str, axis: str | np.ndarray = "+z", omega: float = 0.5, *, operators: str = "dev",
                 seconds: float = 60.0, horizon: int = HORIZON, dt: float = DT,
                 name: str | None = None) -> None:  # fmt: skip
        if family not in FAMILIES:
            raise ValueError(f"unknown human-like family {family!r}; expected one of {', '.join(FAMILIES)}")
        if not np.isfinite(omega) or not np.isfinite(seconds) or seconds <= 0:
            raise ValueError(f"need a finite omega and seconds > 0, got {omega}, {seconds}")
        operator_set(operators)
        self.family, self.axis, self.omega, self.operators = family, parse_axis(axis), float(omega), operators
        self.seconds, self.horizon, self.dt = float(seconds), int(horizon), float(dt)
        self.name = name or f"human:{family}"
        self._replay: ReplayCommand | None = None

    def reset(self, tips: np.ndarray, *, rng: np.random.Generator | int | None = None) -> None:
        tips = check_tips(tips)
        # a seed draws from the operator set's own stream (``operator_rng``), as in the closed-loop suites
        rng = rng if isinstance(rng, np.random.Generator) else operator_rng(self.operators, 0 if rng is None else rng)
        rec = human_recording(self.family, self.axis, self.omega, self.seconds, centre=tips.mean(axis=1),
                              operators=self.operators, rng=rng, dt=self.dt)  # fmt: skip
        self._replay = ReplayCommand(rec, horizon=self.horizon, dt=self.dt, name=self.name)
        self._replay.reset(tips, rng=rng)

    def command(self, t: int, tips: np.ndarray) -> np.ndarray:
        if self._replay is None:
            raise RuntimeError("HumanOpenLoop.command before reset")
        return self._replay.command(t, tips)

    def command_tips(self) -> np.ndarray | None:
        return None if self._replay is None else self._replay.command_tips()
