"""Human-hand input: fingertip commands from tracked human hand keypoints.

A hand tracker (MediaPipe Hands, a glove, a headset) gives per frame 21 landmarks in MediaPipe's order (0 wrist;
thumb 1-4, index 5-8, middle 9-12, ring 13-16, little 17-20; tips at 4, 8, 12, 16, 20), metres, in the wrist frame.
Retargeting maps the human index, middle, ring and thumb tips onto the robot's fingertips (``constants.FINGERS``
order) by one similarity and a per-finger offset, ``robot_k = s R human_k + o_k``, fitted once per operator
(``fit_retarget``) from a calibration sequence: keypoints recorded while the person follows a known fingertip motion
(the hand shown moving through ``robot_tips``), paired frame by frame. Scale and rotation come from every finger's
motion about its own mean, the offsets from the means, so a person whose fingers are spaced unlike the robot's
still maps each finger's motion onto the right fingertip.

Keypoint files (``load_keypoints`` / ``save_keypoints``): a NumPy ``.npz`` archive with ``keypoints`` (S, 21, 3),
metres, wrist frame, one row per frame; ``dt`` (seconds between frames, default the control period); a calibration
file also holds ``robot_tips`` (S, 4, 3), metres, palm frame, the motion the person followed. Shipped samples
(synthetic, ``scripts/make_human_hand_samples.py``): ``HUMAN_CALIBRATION`` and ``HUMAN_DEMO`` (a turn about palm z).

``HumanHandSource`` commands from keypoints: replaying a recording (the future is known: the command is the
retargeted motion over the next T steps, as ``ReplayCommand``), or fed live one frame per control step (``feed``),
where the command continues the retargeted fingertips' velocity over the last ``velocity_window_s``. Its
``command_tips`` are the retargeted fingertips: the person's own layout, not the robot's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from dexgen.files import atomic_path
from dexgen.teleop.commands import DT, HORIZON, CommandSource, Recording, ReplayCommand, check_dt, check_tips

NUM_LANDMARKS = 21
"""Landmarks per frame, MediaPipe Hands' order."""
TIP_LANDMARKS = (8, 12, 16, 4)
"""The landmarks retargeted onto the robot's fingertips, in ``constants.FINGERS`` order (index, middle, ring,
thumb)."""
MAX_KEYPOINT_M = 0.5
"""Largest keypoint coordinate, metres (a hand spans about 0.2 m): larger values are in other units."""
SAMPLES = Path(__file__).resolve().parent / "samples"
HUMAN_CALIBRATION = SAMPLES / "human_calibration.npz"
"""A synthetic operator's calibration: keypoints following a sweep of the default hand's fingertips."""
HUMAN_DEMO = SAMPLES / "human_demo.npz"
"""The same synthetic operator turning an imagined object about palm z at about 0.5 rad/s for 6 s."""


def check_keypoints(keypoints, where: str = "keypoints") -> np.ndarray:
    """``keypoints`` as float64 (..., 21, 3), checked: a ValueError naming the problem otherwise."""
    arr = np.asarray(keypoints)
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"{where} must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim < 2 or arr.shape[-2:] != (NUM_LANDMARKS, 3):
        raise ValueError(f"{where} must have {NUM_LANDMARKS} landmarks of 3 coordinates per frame (MediaPipe's "
                         f"order), got shape {arr.shape}")  # fmt: skip
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{where} hold NaN or inf")
    if np.abs(arr).max(initial=0.0) > MAX_KEYPOINT_M:
        raise ValueError(f"{where} reach {np.abs(arr).max():.3g}, beyond {MAX_KEYPOINT_M} m of the wrist: give "
                         "metres")  # fmt: skip
    return arr


@dataclass(frozen=True)
class Retarget:
    """A fitted map from human keypoints (wrist frame) to robot fingertips (palm frame)."""

    scale: float
    """Robot fingertip motion per metre of human fingertip motion."""
    rotation: np.ndarray
    """(3, 3) from the human wrist frame to the robot palm frame."""
    offsets: np.ndarray
    """(4, 3) per-finger offsets, metres, palm frame (``constants.FINGERS`` order)."""
    residual_mm: float
    """Root-mean-square fingertip error over the calibration sequence, millimetres."""

    def apply(self, keypoints) -> np.ndarray:
        """Robot fingertips (..., 4, 3), metres, palm frame, for keypoints (..., 21, 3), metres, wrist frame."""
        tips = check_keypoints(keypoints)[..., TIP_LANDMARKS, :]
        return self.scale * tips @ self.rotation.T + self.offsets


def fit_retarget(keypoints, robot_tips) -> Retarget:
    """Fit a ``Retarget`` to a calibration: keypoints (S, 21, 3), metres, wrist frame, recorded while the person
    followed ``robot_tips`` (S, 4, 3), metres, palm frame, frame by frame. A ValueError if the sequence does not
    move the fingertips enough in three dimensions to fix a rotation."""
    kp = check_keypoints(keypoints, "calibration keypoints")
    human = kp[..., TIP_LANDMARKS, :]
    robot = np.asarray(robot_tips, dtype=np.float64)
    if kp.ndim != 3 or robot.shape != human.shape:
        raise ValueError(f"calibration needs keypoints (S, {NUM_LANDMARKS}, 3) and robot_tips (S, 4, 3) of the same "
                         f"S, got {kp.shape} and {robot.shape}")  # fmt: skip
    if not np.isfinite(robot).all():
        raise ValueError("calibration robot_tips hold NaN or inf")
    h = (human - human.mean(0)).reshape(-1, 3)  # each finger's motion about its own mean
    r = (robot - robot.mean(0)).reshape(-1, 3)
    spread = np.linalg.svd(h, compute_uv=False) / np.sqrt(len(h))
    if spread[-1] < 1e-3:
        raise ValueError(f"the calibration moves the fingertips too little in some direction ({1e3 * spread[-1]:.2g} "
                         "mm rms) to fit a rotation: follow the whole calibration motion")  # fmt: skip
    rot = Rotation.align_vectors(r, h)[0]
    turned = rot.apply(h)
    scale = float(np.sum(turned * r) / np.sum(h * h))
    rotation = rot.as_matrix()
    offsets = robot.mean(0) - scale * human.mean(0) @ rotation.T
    fitted = Retarget(scale, rotation, offsets, 0.0)
    residual = float(np.sqrt(np.mean(np.sum((fitted.apply(kp) - robot) ** 2, axis=-1))))
    return Retarget(scale, rotation, offsets, 1e3 * residual)


def save_keypoints(path: str | Path, keypoints, *, dt: float = DT, robot_tips=None) -> Path:
    """Write a keypoint file atomically (``robot_tips`` (S, 4, 3) for a calibration); returns its path."""
    kp = check_keypoints(keypoints)
    if kp.ndim != 3:
        raise ValueError(f"keypoints must be (S, {NUM_LANDMARKS}, 3), got {kp.shape}")
    extra = {}
    if robot_tips is not None:
        extra["robot_tips"] = np.asarray(robot_tips, dtype=np.float64)
        if extra["robot_tips"].shape != (len(kp), 4, 3):
            raise ValueError(f"robot_tips must be ({len(kp)}, 4, 3), got {extra['robot_tips'].shape}")
    path = Path(path)
    with atomic_path(path, suffix=".tmp.npz") as tmp:
        np.savez_compressed(tmp, keypoints=kp, dt=np.float64(check_dt(dt, str(path))), **extra)
    return path


def load_keypoints(path: str | Path) -> tuple[np.ndarray, float, np.ndarray | None]:
    """(keypoints (S, 21, 3), dt, robot_tips (S, 4, 3) or None) of a keypoint file; a ValueError naming the
    problem if it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no keypoint file at {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            if "keypoints" not in f:
                raise ValueError(f"{path} has no 'keypoints' array (keys: {', '.join(f.files) or 'none'})")
            kp = f["keypoints"]
            dt = float(f["dt"]) if "dt" in f else DT
            robot = f["robot_tips"] if "robot_tips" in f else None
    except (OSError, EOFError) as e:
        raise ValueError(f"cannot read keypoint file {path}: {e}") from None
    kp = check_keypoints(kp, str(path))
    if kp.ndim != 3 or len(kp) < 2:
        raise ValueError(f"{path}: keypoints must be (S, {NUM_LANDMARKS}, 3) with S >= 2, got {kp.shape}")
    return kp, check_dt(dt, str(path)), robot


class HumanHandSource(CommandSource):
    """Fingertip commands from human hand keypoints, retargeted by ``retarget``.

    Args:
        retarget: the operator's fitted ``Retarget``.
        keypoints: a recording (S, 21, 3) sampled every ``dt`` (a keypoint file's path or an array): replayed to
            every hand; None: fed live with ``feed`` before each ``command``.
        dt: sample period of a recording given as an array, seconds (a file has its own; a recording at another
            rate than the control period is resampled to it). Live frames come one per control step.
        horizon: command horizon T, control steps.
        velocity_window_s: live: the command continues the average fingertip velocity over this much of the past
            (averaging out tracker jitter and tremor).
        name: label of the source.
    """

    def __init__(self, retarget: Retarget, keypoints=None, *, dt: float = DT, horizon: int = HORIZON,
                 velocity_window_s: float = 0.15, name: str = "human-hand") -> None:  # fmt: skip
        if isinstance(keypoints, (str, Path)):
            keypoints, dt, _ = load_keypoints(keypoints)
        self.retarget, self.horizon, self.name = retarget, int(horizon), name
        if not (np.isfinite(velocity_window_s) and velocity_window_s > 0):
            raise ValueError(f"velocity_window_s must be > 0, got {velocity_window_s}")
        self.window = max(1, int(round(velocity_window_s / DT)))
        self.recorded = None
        if keypoints is not None:
            self.recorded = Recording(retarget.apply(keypoints), check_dt(dt, name))  # (S, 4, 3) retargeted
        self._replay: ReplayCommand | None = None
        self._live: list[np.ndarray] = []
        self.num_hands: int | None = None

    def reset(self, tips: np.ndarray, *, rng: np.random.Generator | int | None = None) -> None:
        self.num_hands = check_tips(tips).shape[0]
        self._live = []
        if self.recorded is not None:
            self._replay = ReplayCommand(self.recorded, horizon=self.horizon, name=self.name)
            self._replay.reset(tips)

    def feed(self, keypoints) -> None:
        """Live: the newest frame, keypoints (21, 3) for every hand or (N, 21, 3), metres, wrist frame."""
        if self.recorded is not None:
            raise RuntimeError("this source replays a recording; feed keypoints to a live one (keypoints=None)")
        if self.num_hands is None:
            raise RuntimeError("HumanHandSource.feed before reset")
        tips = self.retarget.apply(keypoints)
        self._live.append(np.broadcast_to(tips, (self.num_hands, 4, 3)).copy())
        del self._live[: -(self.window + 1)]

    def command(self, t: int, tips: np.ndarray) -> np.ndarray:
        if self._replay is not None:
            return self._replay.command(t, tips)
        check_tips(tips, n=self.num_hands)
        if not self._live:
            raise RuntimeError("HumanHandSource.command before any keypoints were fed")
        frames = len(self._live) - 1
        velocity = (self._live[-1] - self._live[0]) / (max(frames, 1) * DT)  # (N, 4, 3) m/s
        steps = DT * np.arange(1, self.horizon + 1)
        return steps[None, :, None, None] * velocity[:, None]

    def command_tips(self) -> np.ndarray | None:
        if self._replay is not None:
            return self._replay.command_tips()
        return self._live[-1] if self._live else None
