"""Command sources: where the coarse fingertip motion commands of the guided controller and of raw teleop come from.

A *command* is a fingertip motion over the next T control steps (T = ``HORIZON`` = 8 by default, control period
``DT`` = 0.05 s): an array (T, 4, 3), metres, palm frame, ``Δx_i = x_(t+i) - x_t`` relative to the fingertips'
current positions ``x_t``, i = 1..T, fingers in ``constants.FINGERS`` order (index, middle, ring, thumb). Sources are
batched over N hands and return (N, T, 4, 3) float64.

Every source follows ``CommandSource``: ``reset(tips, *, rng)`` at the start of an episode with the fingertips
(N, 4, 3), then ``command(t, tips)`` at every control step t = 0, 1, ... with the current fingertips (N, 4, 3).

Sources (docs/method.md section 2.6):

- ``KinematicIntent``: "rotate the object at ω about axis n" (optionally also "move it at velocity v") turned into
  fingertip motion by moving the fingertips rigidly about the grasp centre, ignoring contact and gaiting.
- ``CorruptedExpert``: the relative fingertip motion of a recorded RL expert (``Rollout.tips``), with the
  corruptions of a ``CorruptionConfig`` (noise, drift, lag, time jitter, scale error, a frozen finger); ``PRESETS``
  names a few for evaluation.
- ``ReplayCommand``: a recorded fingertip trajectory replayed from a file.

Recording format (``save_recording`` / ``load_recording``): a NumPy ``.npz`` archive with

- ``tips``: float array (S, 4, 3) of fingertip positions, metres, palm frame, fingers in ``constants.FINGERS``
  order, one row per sample, S >= 1; or (S, N, 4, 3) for N hands replayed side by side;
- ``dt`` (optional): scalar sample period, seconds (default 0.05, i.e. 20 Hz, the control rate). A recording at
  another rate is resampled linearly to the control period on replay.

Replayed, the command at control step t is ``tips[t+1 .. t+T] - tips[t]`` with every index clamped to S - 1: after
the recording ends the command holds still (zeros). No NaN or inf is allowed. No other keys are read.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from dexgen.files import atomic_path
from dexgen.sim import constants as C

HORIZON = 8
"""Default command horizon T, control steps (the model's default horizon)."""
DT = 0.05
"""Default control period, seconds (20 Hz)."""

MAX_RECORDING_S = 3600.0
"""Longest recording a replay accepts, seconds (resampled to the control period, a longer one only fills memory)."""
MAX_TIP_M = 0.5
"""Largest distance of a recorded fingertip from the palm, metres per component (a hand reaches about 0.2 m): a
recording beyond it is in other units (millimetres). Its replayed commands stay within the controller's 1 m
(``dexgen.controller.dexgen_controller.MAX_COMMAND_M``)."""

_AXES = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}
_NUM_TIPS = len(C.FINGERS)


def check_tips(tips: np.ndarray, *, n: int | None = None, name: str = "tips") -> np.ndarray:
    """``tips`` as a float64 array (N, 4, 3) (N = ``n`` when given); a one-line ValueError otherwise."""
    arr = np.asarray(tips, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[1:] != (_NUM_TIPS, 3):
        raise ValueError(f"{name} must have shape (N, {_NUM_TIPS}, 3), got {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} is for {arr.shape[0]} hands, the source for {n}")
    return arr


def parse_axis(axis: str | np.ndarray | tuple[float, ...]) -> np.ndarray:
    """A unit axis (3,) (or unit axes (N, 3)) from a palm-frame name ("+z", "-x", "y") or a non-zero vector (3,) or
    vectors (N, 3), which are normalised."""
    if isinstance(axis, str):
        name = axis.strip().lower()
        sign = -1.0 if name.startswith("-") else 1.0
        key = name.lstrip("+-")
        if key not in _AXES or len(name) - len(key) > 1:
            raise ValueError(f"axis {axis!r} is not one of x, y, z with an optional sign (e.g. '+z', '-x')")
        return sign * np.array(_AXES[key])
    vec = np.asarray(axis, dtype=np.float64)
    if vec.shape[-1:] != (3,) or vec.ndim > 2:
        raise ValueError(f"axis must have shape (3,) or (N, 3), got {vec.shape}")
    norm = np.linalg.norm(vec, axis=-1, keepdims=True)
    if not np.isfinite(vec).all() or (norm < 1e-12).any():
        raise ValueError("axis must be a finite non-zero vector")
    return vec / norm


def rotate(vectors: np.ndarray, axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rodrigues rotation of ``vectors`` (..., 3) about unit ``axis`` (..., 3) by ``angle`` (...) radians
    (right-handed); all three broadcast against each other."""
    axis = np.asarray(axis, dtype=np.float64)
    cos = np.cos(angle)[..., None]
    sin = np.sin(angle)[..., None]
    along = np.sum(axis * vectors, axis=-1, keepdims=True)
    return vectors * cos + np.cross(axis, vectors) * sin + axis * along * (1.0 - cos)


class CommandSource:
    """Base of the command sources: ``reset`` at an episode start, then ``command`` at every control step."""

    name: str = "source"
    """Label of the source in logs and tables."""
    horizon: int = HORIZON
    """Command horizon T, control steps."""

    def reset(self, tips: np.ndarray, *, rng: np.random.Generator | int | None = None) -> None:
        """Start an episode for N hands with fingertips ``tips`` (N, 4, 3), metres, palm frame; ``rng`` (a Generator
        or a seed; None: seed 0, so runs repeat) draws any randomness of the episode."""
        check_tips(tips)

    def command(self, t: int, tips: np.ndarray) -> np.ndarray:
        """(N, T, 4, 3) fingertip motion, metres, palm frame, relative to ``tips`` (N, 4, 3), the fingertips at control
        step ``t`` (0 at the episode start)."""
        raise NotImplementedError

    def command_tips(self) -> np.ndarray | None:
        """(N, 4, 3) the fingertips, metres, palm frame, that the last ``command``'s motion starts from, in the
        source's own layout (a person's hand, a recorded hand), for a controller that reads the intended object
        motion from the command (``DexGenController.act(..., command_tips=)``); None: the robot's fingertips."""
        return None


def _generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(0 if rng is None else rng)


class KinematicIntent(CommandSource):
    """Rotate the object at ``omega`` rad/s about ``axis``, as a naive teleoperator would command it: the fingertips
    turn rigidly about the grasp centre by ``omega * dt * i`` at step i (right-handed about ``axis``), plus an
    optional rigid translation ``velocity * dt * i``; contact and finger gaiting are ignored.

    Args:
        axis: palm-frame rotation axis: a name ("+z", "-x", ...) or a vector (3,) or per-hand vectors (N, 3)
            (normalised).
        omega: angular speed, rad/s (negative turns the other way; 0 with no velocity: zero commands).
        horizon: command horizon T, control steps.
        dt: control period, seconds.
        centre: "tips": the mean of the current fingertips (per hand, every step); "nominal":
            ``constants.GRASP_CENTRE``; or a point (3,) / per-hand points (N, 3), metres, palm frame.
        velocity: translation velocity (3,) or (N, 3), m/s, palm frame (None: no translation).
        name: label of the source.
    """

    def __init__(self, axis: str | np.ndarray | tuple[float, ...] = "+z", omega: float = 1.0, *,
                 horizon: int = HORIZON, dt: float = DT, centre: str | np.ndarray | tuple[float, ...] = "tips",
                 velocity: np.ndarray | tuple[float, ...] | None = None, name: str = "kinematic") -> None:  # fmt: skip
        if horizon < 1 or dt <= 0 or not np.isfinite(omega):
            raise ValueError(f"need horizon >= 1, dt > 0 and a finite omega (got {horizon}, {dt}, {omega})")
        self.axis = parse_axis(axis)
        self.omega = float(omega)
        self.horizon = int(horizon)
        self.dt = float(dt)
        if isinstance(centre, str):
            if centre not in ("tips", "nominal"):
                raise ValueError(f"centre {centre!r} is not 'tips', 'nominal' or a point (3,)")
            self.centre: str | np.ndarray = np.array(C.GRASP_CENTRE) if centre == "nominal" else "tips"
        else:
            self.centre = np.asarray(centre, dtype=np.float64)
            if self.centre.shape[-1:] != (3,) or self.centre.ndim > 2:
                raise ValueError(f"centre must have shape (3,) or (N, 3), got {self.centre.shape}")
        self.velocity = np.zeros(3) if velocity is None else np.asarray(velocity, dtype=np.float64)
        if self.velocity.shape[-1:] != (3,) or self.velocity.ndim > 2 or not np.isfinite(self.velocity).all():
            raise ValueError(f"velocity must be finite with shape (3,) or (N, 3), got {self.velocity.shape}")
        self.name = name

    def command(self, t: int, tips: np.ndarray) -> np.ndarray:
        tips = check_tips(tips)
        n = tips.shape[0]
        centre = tips.mean(axis=1) if isinstance(self.centre, str) else np.broadcast_to(self.centre, (n, 3))
        rel = (tips - centre[:, None])[:, None]  # (N, 1, 4, 3)
        steps = np.arange(1, self.horizon + 1, dtype=np.float64)  # i = 1..T
        angle = (self.omega * self.dt * steps)[None, :, None]  # (1, T, 1)
        axis = np.broadcast_to(self.axis, (n, 3))[:, None, None]  # (N, 1, 1, 3)
        shift = np.broadcast_to(self.velocity, (n, 3))[:, None, None] * (self.dt * steps)[None, :, None, None]
        return rotate(rel, axis, angle) - rel + shift


@dataclass(frozen=True)
class CorruptionConfig:
    """How a ``CorruptedExpert`` spoils the expert's fingertip motion; every corruption is off by default.

    Order: the (lagged, jittered) clean command is scaled, the drift is added, then the noise; a frozen finger is
    zeroed last, so it stays exactly still."""

    noise_std: float = 0.0
    """Standard deviation, metres, of i.i.d. Gaussian noise added to every entry of Δx, drawn afresh each call."""
    bias: float = 0.0
    """Standard deviation, metres per control step, of a constant drift b (3,) per hand drawn at reset (the same for
    all four fingers, like a miscalibrated tracker): Δx_i gets i * b added, so the commanded fingertips drift at
    b / dt m/s."""
    lag_steps: int = 0
    """Delay, control steps: the command at step t is the clean command of step t - lag_steps (before the reference
    starts the expert holds still, so early commands move less or not at all)."""
    time_jitter_steps: int = 0
    """Each call shifts each hand's reference time index by an independent random integer in
    [-time_jitter_steps, time_jitter_steps] (after the lag)."""
    scale: float = 1.0
    """Multiplicative error on Δx (e.g. 1.5: the operator's motion is 50 % too large)."""
    frozen_finger: int = -1
    """Index into ``constants.FINGERS`` (or its name, stored as the index) of a finger whose Δx is always zero (it is
    commanded not to move); -1: none."""

    def __post_init__(self) -> None:
        if isinstance(self.frozen_finger, str):
            if self.frozen_finger not in C.FINGERS:
                raise ValueError(f"frozen_finger {self.frozen_finger!r} is not one of {', '.join(C.FINGERS)}")
            object.__setattr__(self, "frozen_finger", C.FINGERS.index(self.frozen_finger))
        for f in ("lag_steps", "time_jitter_steps", "frozen_finger"):
            value = getattr(self, f)
            if isinstance(value, bool) or not float(value).is_integer():
                raise ValueError(f"{f} must be an integer, got {value!r}")
            object.__setattr__(self, f, int(value))  # frozen: coerce 2.0 -> 2 once
        for f in ("noise_std", "bias"):
            value = getattr(self, f)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{f} must be finite and >= 0, got {value}")
        for f in ("lag_steps", "time_jitter_steps"):
            value = getattr(self, f)
            if value < 0:
                raise ValueError(f"{f} must be >= 0, got {value}")
        if not np.isfinite(self.scale):
            raise ValueError(f"scale must be finite, got {self.scale}")
        if self.frozen_finger not in range(-1, _NUM_TIPS):
            raise ValueError(f"frozen_finger must be -1 or a finger index 0..{_NUM_TIPS - 1}, got {self.frozen_finger}")

    @property
    def is_clean(self) -> bool:
        """Whether every corruption is off."""
        return self == CorruptionConfig()

    def describe(self) -> str:
        """The corruptions that are on, e.g. "noise_std=0.003, lag_steps=4" ("clean" when none)."""
        default = CorruptionConfig()
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        on = [f"{k}={v}" for k, v in values.items() if v != getattr(default, k)]
        return ", ".join(on) or "clean"


PRESETS: dict[str, CorruptionConfig] = {
    "clean": CorruptionConfig(),
    "noisy": CorruptionConfig(noise_std=0.003),
    "biased": CorruptionConfig(bias=0.001),
    "lagged": CorruptionConfig(lag_steps=4),
    "jittery": CorruptionConfig(time_jitter_steps=2),
    "scaled": CorruptionConfig(scale=1.5),
    "frozen_thumb": CorruptionConfig(frozen_finger=C.FINGERS.index("thumb")),
    "mixed": CorruptionConfig(noise_std=0.002, bias=0.0005, lag_steps=2, time_jitter_steps=1, scale=1.2),
}
"""Named corruption settings for evaluations to iterate over (noise 3 mm; drift 1 mm per step std, i.e. 2 cm/s; lag
0.2 s; jitter ±0.1 s; 50 % too large; thumb frozen; a mild mix of all but the frozen finger)."""


def corruption(config: CorruptionConfig | str | None = None, **overrides) -> CorruptionConfig:
    """A ``CorruptionConfig`` from a preset name or a config (None: clean), with fields replaced by ``overrides``."""
    if config is None:
        config = CorruptionConfig()
    elif isinstance(config, str):
        if config not in PRESETS:
            raise ValueError(f"unknown corruption preset {config!r}; known: {', '.join(PRESETS)}")
        config = PRESETS[config]
    return replace(config, **overrides) if overrides else config


def _as_batched(ref: np.ndarray, name: str) -> np.ndarray:
    """A trajectory (S, 4, 3) or (S, N, 4, 3) as float64 (S, N, 4, 3); a one-line ValueError otherwise."""
    arr = np.asarray(ref, dtype=np.float64)
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim != 4 or arr.shape[2:] != (_NUM_TIPS, 3) or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name} must have shape (S, {_NUM_TIPS}, 3) or (S, N, {_NUM_TIPS}, 3), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} holds NaN or inf")
    return arr


def relative_window(ref: np.ndarray, tau: np.ndarray, end: np.ndarray, horizon: int) -> np.ndarray:
    """(N, T, 4, 3) ``ref[tau + i] - ref[tau]``, i = 1..T, per hand, of a trajectory ``ref`` (S, N, 4, 3) at time
    indices ``tau`` (N,) (any integers), every index clamped to [0, end] with ``end`` (N,) each hand's last valid row:
    the trajectory holds still before its start and after its end."""
    n = ref.shape[1]
    hands = np.arange(n)
    steps = np.arange(horizon + 1)
    idx = np.clip(tau[:, None] + steps[None], 0, end[:, None])  # (N, T + 1)
    win = ref[idx, hands[:, None]]  # (N, T + 1, 4, 3)
    return win[:, 1:] - win[:, :1]


def episode_ends(hold_steps: np.ndarray) -> np.ndarray:
    """(N,) last row of ``Rollout.tips`` that belongs to each hand's first episode, from ``Rollout.hold_steps`` (N,):
    ``hold_steps - 1`` (the environment resets inside the step that ends an episode, so the row after the last held
    step may already belong to the next episode; when the episode simply ran to the horizon this drops one valid
    row)."""
    return np.maximum(np.asarray(hold_steps, dtype=np.int64) - 1, 0)


class CorruptedExpert(CommandSource):
    """The relative fingertip motion of a recorded expert, corrupted: intent right, execution unsafe.

    The clean command at control step t is ``ref[t+1 .. t+T] - ref[t]`` per hand, every index clamped to [0, end]
    (the expert holds still after its episode ends, and before it starts for lagged indices); ``config`` then applies
    its corruptions (see ``CorruptionConfig``). The current fingertips passed to ``command`` are not used: the command
    is relative motion.

    Args:
        ref: reference fingertip trajectory (S, N, 4, 3) (or (S, 4, 3) for one hand), metres, palm frame, one row per
            control step, e.g. ``Rollout.tips``.
        end: (N,) last valid row of each hand's episode (rows after it belong to other episodes), e.g.
            ``episode_ends(rollout.hold_steps)``; None: S - 1 for every hand. Clamped to [0, S - 1].
        config: corruptions, or the name of one of ``PRESETS`` (default: clean).
        horizon: command horizon T, control steps.
        name: label of the source (default: "corrupted:<preset>" for a preset name, else "corrupted").
    """

    def __init__(self, ref: np.ndarray, end: np.ndarray | None = None, *, config: CorruptionConfig | str = "clean",
                 horizon: int = HORIZON, name: str | None = None) -> None:  # fmt: skip
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        self.ref = _as_batched(ref, "ref")
        s, n = self.ref.shape[:2]
        if end is None:
            end = np.full(n, s - 1)
        end = np.asarray(end)
        if end.shape != (n,) or not np.issubdtype(end.dtype, np.integer):
            raise ValueError(f"end must be integers of shape ({n},), got {end.dtype} {end.shape}")
        self.end = np.clip(end.astype(np.int64), 0, s - 1)
        self.config = corruption(config)
        self.horizon = int(horizon)
        self.name = name or (f"corrupted:{config}" if isinstance(config, str) else "corrupted")
        self.reset(self.ref[0])

    @property
    def num_hands(self) -> int:
        return self.ref.shape[1]

    def reset(self, tips: np.ndarray | None = None, *, rng: np.random.Generator | int | None = None) -> None:
        """Start an episode; ``tips`` (N, 4, 3) only checks N (None: skip); draws the drift of each hand from ``rng``
        (a Generator or a seed; None: seed 0)."""
        if tips is not None:
            check_tips(tips, n=self.num_hands)
        self.rng = _generator(rng)
        self.drift = self.rng.normal(0.0, 1.0, (self.num_hands, 3)) * self.config.bias  # (N, 3) m per step

    def command_tips(self) -> np.ndarray | None:
        """The recorded fingertips (N, 4, 3) the last command's window starts from (the recorded hand's layout)."""
        return getattr(self, "_tips", None)

    def clean(self, t: int) -> np.ndarray:
        """(N, T, 4, 3) the uncorrupted command at control step ``t``."""
        return relative_window(self.ref, np.full(self.num_hands, int(t)), self.end, self.horizon)

    def command(self, t: int, tips: np.ndarray | None = None) -> np.ndarray:
        cfg, n = self.config, self.num_hands
        if tips is not None:
            check_tips(tips, n=n)
        tau = np.full(n, int(t) - cfg.lag_steps)
        if cfg.time_jitter_steps:
            tau = tau + self.rng.integers(-cfg.time_jitter_steps, cfg.time_jitter_steps + 1, n)
        self._tips = self.ref[np.clip(tau, 0, self.end), np.arange(n)]  # where this window starts
        dx = relative_window(self.ref, tau, self.end, self.horizon) * cfg.scale
        if cfg.bias:
            dx = dx + np.arange(1, self.horizon + 1)[None, :, None, None] * self.drift[:, None, None]
        if cfg.noise_std:
            dx = dx + self.rng.normal(0.0, cfg.noise_std, dx.shape)
        if cfg.frozen_finger >= 0:
            dx[:, :, cfg.frozen_finger] = 0.0
        return dx


class Recording(NamedTuple):
    """A loaded recording (see the module docstring)."""

    tips: np.ndarray
    """(S, 4, 3) or (S, N, 4, 3) fingertip positions, metres, palm frame."""
    dt: float
    """Sample period, seconds."""


def check_dt(dt: float, where: str) -> float:
    try:
        value = float(dt)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: dt must be a number, got {dt!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{where}: dt must be finite and > 0, got {value}")
    return value


def _check_recording_tips(tips: np.ndarray, where: str) -> np.ndarray:
    arr = np.asarray(tips)
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"{where}: tips must be a real numeric array, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.ndim not in (3, 4) or arr.shape[-2:] != (_NUM_TIPS, 3) or arr.shape[0] < 1 or 0 in arr.shape:
        raise ValueError(f"{where}: tips must have shape (S, 4, 3) or (S, N, 4, 3), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{where}: tips holds NaN or inf")
    if np.abs(arr).max() > MAX_TIP_M:
        raise ValueError(f"{where}: tips reach {np.abs(arr).max():.3g} from the palm, beyond {MAX_TIP_M:g} m: "
                         "positions are metres in the palm frame (is it in millimetres?)")  # fmt: skip
    return arr


def _check_duration(tips: np.ndarray, dt: float, where: str) -> None:
    """A ValueError if a recording of ``tips`` (S, ...) sampled every ``dt`` s lasts longer than MAX_RECORDING_S."""
    seconds = (tips.shape[0] - 1) * dt
    if seconds > MAX_RECORDING_S:
        raise ValueError(f"{where}: lasts {seconds:.3g} s ({tips.shape[0]} samples every {dt:g} s), longer than the "
                         f"{MAX_RECORDING_S:g} s a replay may last (is dt in seconds?)")  # fmt: skip


def save_recording(path: str | Path, tips: np.ndarray, *, dt: float = DT) -> Path:
    """Write a recording ``path`` (.npz, the format of the module docstring) of ``tips`` (S, 4, 3) or (S, N, 4, 3),
    metres, palm frame, sampled every ``dt`` seconds, atomically (a temporary file renamed into place); returns the
    path."""
    path = Path(path)
    where = f"recording {path}"
    arr = _check_recording_tips(tips, where)
    dt = check_dt(dt, where)
    _check_duration(arr, dt, where)
    with atomic_path(path, suffix=".tmp.npz") as tmp:
        np.savez(tmp, tips=arr, dt=np.array(dt))
    return path


def load_recording(path: str | Path) -> Recording:
    """Read a recording written by ``save_recording`` (or by hand, same format); a one-line ValueError for a
    missing or unreadable file, a missing ``tips`` key, a wrong shape, NaN / inf or a bad ``dt``."""
    path = Path(path)
    where = f"recording {path}"
    if not path.is_file():
        raise ValueError(f"{where}: no such file")
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as err:  # a truncated zip, a text file, pickled data, ...
        raise ValueError(f"{where}: not a readable .npz file ({type(err).__name__})") from None
    if not hasattr(data, "files"):
        raise ValueError(f"{where}: not an .npz archive (a single array)")
    with data:
        if "tips" not in data.files:
            raise ValueError(f"{where}: no 'tips' array (found: {', '.join(data.files) or 'nothing'})")
        try:
            tips = data["tips"]
            dt = data["dt"] if "dt" in data.files else np.array(DT)
        except Exception as err:
            raise ValueError(f"{where}: not a readable .npz file ({type(err).__name__})") from None
    if dt.size != 1:
        raise ValueError(f"{where}: dt must be a scalar, got shape {dt.shape}")
    recording = Recording(_check_recording_tips(tips, where), check_dt(dt.reshape(()).item(), where))
    _check_duration(recording.tips, recording.dt, where)
    return recording


def resample(tips: np.ndarray, dt_from: float, dt_to: float) -> np.ndarray:
    """``tips`` (S, ...) sampled every ``dt_from`` seconds, linearly resampled every ``dt_to`` seconds over the same
    duration (the last sample is kept when the duration is not a multiple of ``dt_to``)."""
    s = tips.shape[0]
    if s == 1 or np.isclose(dt_from, dt_to):
        return tips
    duration = (s - 1) * dt_from
    times = np.arange(0.0, duration + 1e-9 * dt_to, dt_to)
    if duration - times[-1] > 1e-9 * dt_to:
        times = np.append(times, duration)
    pos = times / dt_from
    lo = np.clip(np.floor(pos).astype(np.int64), 0, s - 1)
    hi = np.minimum(lo + 1, s - 1)
    w = (pos - lo).reshape((-1,) + (1,) * (tips.ndim - 1))
    return tips[lo] * (1.0 - w) + tips[hi] * w


class ReplayCommand(CommandSource):
    """A recorded fingertip trajectory replayed as commands: at control step t, ``tips[t+1 .. t+T] - tips[t]``,
    indices clamped to the last sample (holds still after the recording ends).

    Args:
        recording: a recording file (.npz, see the module docstring), a ``Recording``, or an array (S, 4, 3) /
            (S, N, 4, 3) sampled every ``dt``.
        horizon: command horizon T, control steps.
        dt: control period, seconds; a recording at another rate is resampled linearly to it.
        config: optional corruptions (a ``CorruptionConfig`` or preset name) applied as for ``CorruptedExpert``.
        name: label of the source.

    A single-hand recording (S, 4, 3) is replayed to every hand; a recording (S, N, 4, 3) needs N hands at reset.
    """

    def __init__(self, recording: str | Path | Recording | np.ndarray, *, horizon: int = HORIZON, dt: float = DT,
                 config: CorruptionConfig | str = "clean", name: str = "replay") -> None:  # fmt: skip
        if isinstance(recording, (str, Path)):
            recording = load_recording(recording)
        elif not isinstance(recording, Recording):
            recording = Recording(_check_recording_tips(recording, "recording"), dt)
        self.dt = check_dt(dt, "replay")
        _check_duration(recording.tips, check_dt(recording.dt, "replay"), "replay")
        tips = resample(recording.tips, recording.dt, self.dt)
        self.tips = tips if tips.ndim == 4 else tips[:, None]  # (S, N or 1, 4, 3)
        self.config = corruption(config)
        self.horizon = int(horizon)
        self.name = name
        self._expert: CorruptedExpert | None = None

    def reset(self, tips: np.ndarray, *, rng: np.random.Generator | int | None = None) -> None:
        n = check_tips(tips).shape[0]
        ref = self.tips
        if ref.shape[1] == 1:
            ref = np.broadcast_to(ref, (ref.shape[0], n, _NUM_TIPS, 3))
        elif ref.shape[1] != n:
            raise ValueError(f"the recording is for {ref.shape[1]} hands, the episode has {n}")
        self._expert = CorruptedExpert(ref, config=self.config, horizon=self.horizon, name=self.name)
        self._expert.reset(tips, rng=rng)

    def command(self, t: int, tips: np.ndarray) -> np.ndarray:
        if self._expert is None:
            raise RuntimeError("ReplayCommand.command before reset")
        return self._expert.command(t, tips)

    def command_tips(self) -> np.ndarray | None:
        return None if self._expert is None else self._expert.command_tips()


SOURCES = ("kinematic", "corrupted", "replay")
"""Names ``make_source`` knows."""


def make_source(name: str, /, **kw) -> CommandSource:
    """A command source by name: "kinematic" (``KinematicIntent(**kw)``), "corrupted" (``CorruptedExpert(**kw)``;
    "corrupted:<preset>" sets ``config``) or "replay" (``ReplayCommand(**kw)``)."""
    kind, _, preset = name.partition(":")
    if preset:
        if kind not in ("corrupted", "replay"):
            raise ValueError(f"only corrupted and replay sources take a preset, got {name!r}")
        kw.setdefault("config", preset)
    if kind == "kinematic":
        return KinematicIntent(**kw)
    if kind == "corrupted":
        return CorruptedExpert(**kw)
    if kind == "replay":
        return ReplayCommand(**kw)
    raise ValueError(f"unknown command source {name!r}; known: {', '.join(SOURCES)}")
