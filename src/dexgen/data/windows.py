"""Training windows cut from a dataset: observation history, future fingertip motion and the next joint targets.

A sample is a step t of an episode [s, e) that has a next step (s <= t <= e - 2; the last step has no label):

- ``obs`` (H, D) float32: frames t-H+1 .. t (oldest first) of ``OBS_FIELDS`` flattened, D = 16 + 16 + 12 = 44:
  joint positions (rad), joint targets in force (rad), fingertip positions ((4, 3) -> 12, metres, palm frame);
  with ``gravity=True`` also the gravity direction (3, unit vector, palm frame), D = 47. Frames before s repeat
  frame s.
- ``dx`` (T, 4, 3) float32, metres, palm frame: ``fingertip_pos[t+k] - fingertip_pos[t]`` for k = 1..T, the
  diffusion model's target. Steps past e - 1 repeat the last position, so padded Δx stays constant.
- ``dx_mask`` (T,) bool: True where t + k is a real step of the episode.
- ``action`` (16,) float32, rad: ``joint_target[t + 1]``, the joint targets set after observing step t (by the
  expert's raw ``action[t]``): what the inverse dynamics model predicts from ``obs`` and ``dx``. It is not the
  stored raw ``action`` field.
- ``primitive_id`` () int64: the primitive executed at step t (an optional mode input).
- ``angvel`` (3,) float32, rad/s, palm frame: the object's angular velocity averaged over steps t .. t+T-1 (steps
  past e - 1 repeat the last), the label of the model's object-rotation predictor. Object state is a training
  label only: no network ever takes it as an input.
- ``intent`` (6,) float32, palm frame (files of schema version 2 on): the object's realized twist averaged over
  the real steps t .. t+T-1 (padding excluded), the motion that Δx goes with: angular velocity (3, rad/s), then
  linear velocity (3, m/s). The model's intent label in training; at run time the intent comes from the
  operator's command, never from the object.

Windows never cross episodes. With ``drop_margin`` m > 0, the last m steps of every episode that ends in a drop are
not samples (their windows show the object slipping out, which the prior should not learn as safe motion); they
still serve as history and future of earlier samples. The train / validation split is by episode. Normalization
statistics are computed over the train split by ``compute_stats`` and stored in the file under ``stats/``.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from dexgen.data.store import DatasetError, open_dataset

OBS_FIELDS = ("joint_pos", "joint_target", "fingertip_pos")
"""Proprioceptive fields of one observation frame, in order (no object state: the controller never sees it)."""

GRAVITY_FIELD = "gravity_dir"
"""The field appended to every observation frame with ``gravity=True`` (3, unit vector, palm frame)."""

INTENT_FIELDS = ("realized_angvel", "realized_linvel")
"""The fields averaged over a window's future into its intent label (rad/s, then m/s; palm frame)."""

INTENT_DIM = 6
"""Values of an intent: the object's angular velocity (3, rad/s) then linear velocity (3, m/s), palm frame."""


def obs_fields(gravity: bool = False) -> tuple[str, ...]:
    """The fields of one observation frame, in order: ``OBS_FIELDS``, then ``GRAVITY_FIELD`` with ``gravity``."""
    return (*OBS_FIELDS, GRAVITY_FIELD) if gravity else OBS_FIELDS


STATS_KEYS = ("obs_mean", "obs_std", "dx_mean", "dx_std", "action_mean", "action_std")
STD_FLOOR = 1e-6
"""Smallest stored standard deviation, so that constant features normalize to zero instead of dividing by zero."""

_BLOCK = 1 << 15
"""Samples per block when computing statistics."""


def split_episodes(num_episodes: int, *, val_fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Episode indices of the train and validation splits, sorted and disjoint, (E_train,) and (E_val,) int64.

    ``round(val_fraction * E)`` episodes, at least one when ``val_fraction > 0`` and E >= 2 and never all of them,
    are drawn for validation by a generator seeded with ``seed`` (the same split for the same E and seed).
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n_val = int(round(val_fraction * num_episodes))
    if val_fraction > 0 and num_episodes >= 2:
        n_val = min(max(n_val, 1), num_episodes - 1)
    else:
        n_val = 0
    order = np.random.default_rng(seed).permutation(num_episodes)
    return np.sort(order[n_val:]).astype(np.int64), np.sort(order[:n_val]).astype(np.int64)


class _Arrays:
    """The fields that windows need, in memory: obs frames (N, D), fingertips (N, 4, 3), targets, ids, bounds,
    and the realized object twist (N, 6) where the file has it (else None)."""

    def __init__(self, path: str | Path, *, gravity: bool = False):
        with open_dataset(path) as r:
            if gravity and not r.has(GRAVITY_FIELD):
                raise DatasetError(f"{path} has no {GRAVITY_FIELD} (schema version {r.version}); collect the data "
                                   "again for a model that observes gravity")  # fmt: skip
            self.fields = obs_fields(gravity)
            self.frames = np.concatenate([r.read(k).reshape(r.num_transitions, -1) for k in self.fields], axis=1)
            self.frames = self.frames.astype(np.float32, copy=False)
            self.twist = None
            """(N, 6) realized object twist per step (rad/s then m/s, palm frame), or None (an older file)."""
            if all(r.has(k) for k in INTENT_FIELDS):
                self.twist = np.concatenate([r.read(k) for k in INTENT_FIELDS], axis=1).astype(np.float32)
            self.tips = r.read("fingertip_pos").astype(np.float32, copy=False)
            self.targets = r.read("joint_target").astype(np.float32, copy=False)
            self.primitive_id = r.read("primitive_id").astype(np.int64)
            self.angvel = r.read("object_angvel").astype(np.float32, copy=False)
            self.starts, self.ends = r.episode_starts, r.episode_ends
            self.transitions = r.num_transitions
            self.dropped = r.read("dropped")[self.ends - 1].astype(bool) if len(self.ends) else np.zeros(0, bool)
            """(E,) bool: the episode ended in a drop."""

    def samples(self, episodes: np.ndarray, *, drop_margin: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every sample step t of the given episodes with its episode's bounds: (t, start, end), each (M,) int64;
        the last ``drop_margin`` steps of episodes that end in a drop are left out."""
        cut = np.where(self.dropped[episodes], drop_margin, 0)
        lengths = np.maximum(self.ends[episodes] - self.starts[episodes] - 1 - cut, 0)  # the last step has no label
        ep = np.repeat(episodes, lengths)
        first = np.repeat(np.cumsum(lengths) - lengths, lengths)
        t = self.starts[ep] + np.arange(int(lengths.sum())) - first
        return t.astype(np.int64), self.starts[ep], self.ends[ep]

    def histories(self, t: np.ndarray, start: np.ndarray, *, history: int) -> np.ndarray:
        """The observation histories (B, H, D) at steps t (B,) of episodes starting at ``start`` (B,)."""
        return self.frames[np.maximum(t[:, None] + np.arange(1 - history, 1), start[:, None])]

    def windows(self, t: np.ndarray, start: np.ndarray, end: np.ndarray, *, history: int, horizon: int) -> dict:
        """The windows at steps t (B,) with episode bounds [start, end): obs (B, H, D), dx (B, T, 4, 3),
        dx_mask (B, T), action (B, 16), primitive_id (B,), angvel (B, 3), and intent (B, 6) where the file has
        the realized twist."""
        ahead = t[:, None] + np.arange(1, horizon + 1)
        mask = ahead < end[:, None]
        future = np.minimum(ahead, end[:, None] - 1)
        out = {
            "obs": self.histories(t, start, history=history),
            "dx": self.tips[future] - self.tips[t][:, None],
            "dx_mask": mask,
            "action": self.targets[t + 1],
            "primitive_id": self.primitive_id[t],
            "angvel": self.angvel[np.minimum(ahead - 1, end[:, None] - 1)].mean(axis=1),
        }
        if self.twist is not None:  # steps t .. t+T-1 of the episode: the motion from t to t+T, padding left out
            real = ahead - 1 < end[:, None]
            twist = self.twist[np.minimum(ahead - 1, end[:, None] - 1)] * real[..., None]
            out["intent"] = (twist.sum(axis=1) / real.sum(axis=1, keepdims=True)).astype(np.float32)
        return out


def _stats_attrs(arrays: _Arrays, *, horizon: int, val_fraction: float, seed: int, drop_margin: int = 0) -> dict:
    return {"split": "train", "horizon": horizon, "val_fraction": val_fraction, "seed": seed,
            "drop_margin": drop_margin,
            "episodes": len(arrays.ends), "transitions": arrays.transitions,
            "obs_fields": json.dumps(arrays.fields)}  # fmt: skip


def _compute(arrays: _Arrays, *, horizon: int, val_fraction: float, seed: int,
             drop_margin: int = 0) -> dict[str, np.ndarray]:  # fmt: skip
    train, _ = split_episodes(len(arrays.ends), val_fraction=val_fraction, seed=seed)
    t, start, end = arrays.samples(train, drop_margin=drop_margin)
    if len(t) == 0:
        raise DatasetError("no training samples: the train split has no episode of two or more steps")
    sums: dict[str, list] = {k: [0.0, 0.0] for k in ("obs", "dx", "action")}
    for i in range(0, len(t), _BLOCK):
        sl = slice(i, i + _BLOCK)
        w = arrays.windows(t[sl], start[sl], end[sl], history=1, horizon=horizon)
        for key, values in (("obs", w["obs"][:, 0]), ("dx", w["dx"]), ("action", w["action"])):
            v = values.astype(np.float64)
            sums[key][0] = sums[key][0] + v.sum(0)
            sums[key][1] = sums[key][1] + (v**2).sum(0)
    out = {}
    for key, (s, s2) in sums.items():
        mean = s / len(t)
        out[f"{key}_mean"] = mean.astype(np.float32)
        out[f"{key}_std"] = np.sqrt(np.maximum(s2 / len(t) - mean**2, 0.0)).clip(STD_FLOOR).astype(np.float32)
    return out


def compute_stats(path: str | Path, *, horizon: int = 8, val_fraction: float = 0.1, seed: int = 0,
                  drop_margin: int = 0, gravity: bool = False) -> dict:  # fmt: skip
    """Compute normalization statistics over the train split's samples and store them in the file under ``stats/``
    (replacing any there); return them. Keys: ``obs_mean``/``obs_std`` (D,) per observation feature,
    ``dx_mean``/``dx_std`` (T, 4, 3) metres, ``action_mean``/``action_std`` (16,) rad; stds floored at STD_FLOOR."""
    arrays = _Arrays(path, gravity=gravity)
    settings = {"horizon": horizon, "val_fraction": val_fraction, "seed": seed, "drop_margin": drop_margin}
    stats = _compute(arrays, **settings)
    _save_stats(path, stats, _stats_attrs(arrays, **settings))
    return stats


def _save_stats(path: str | Path, stats: dict[str, np.ndarray], attrs: dict) -> None:
    import h5py

    with h5py.File(path, "r+") as f:
        if "stats" in f:
            del f["stats"]
        g = f.create_group("stats")
        for k, v in stats.items():
            g.create_dataset(k, data=v)
        g.attrs.update({**attrs, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        g.attrs["complete"] = True  # last: a stats group without it was cut short and is recomputed


def load_stats(path: str | Path, *, horizon: int = 8, val_fraction: float = 0.1, seed: int = 0,
               drop_margin: int = 0, gravity: bool = False) -> dict | None:  # fmt: skip
    """The statistics stored in the file if they were computed for these settings (and observation frames, with
    or without gravity) and the file's current episodes; None if missing, incomplete or stale."""
    with open_dataset(path) as r:
        episodes, transitions = r.num_episodes, r.num_transitions
        g = r.file.get("stats")
        if g is None or not g.attrs.get("complete", False) or any(k not in g for k in STATS_KEYS):
            return None
        want = {"horizon": horizon, "val_fraction": val_fraction, "seed": seed, "episodes": episodes,
                "transitions": transitions, "obs_fields": json.dumps(obs_fields(gravity))}  # fmt: skip
        if any(g.attrs.get(k) != v for k, v in want.items()) or int(g.attrs.get("drop_margin", 0)) != drop_margin:
            return None
        return {k: g[k][()] for k in STATS_KEYS}


class MotionWindows(Dataset):
    """Windows of one split of a dataset for training the diffusion model and the inverse dynamics model.

    ``MotionWindows(path, history=3, horizon=8, split="train")[i]`` is a dict of tensors (see the module docstring):
    ``obs`` (H, 44), ``dx`` (T, 4, 3) metres palm frame, ``dx_mask`` (T,) bool, ``action`` (16,) rad (next joint
    targets), ``primitive_id`` () int64, ``angvel`` (3,) rad/s (object rotation label), ``intent`` (6,) (rad/s,
    m/s; files of schema version 2 on). ``gravity=True`` appends the gravity direction to every observation
    frame (D = 47; the file must have it). ``drop_margin`` steps
    before a drop are left out (see the module docstring). ``stats`` holds the train split's normalization
    statistics (loaded from the file, or computed and stored there when missing or stale; kept in memory if the
    file is read-only).
    ``batch(indices)`` builds many samples at once, as NumPy arrays.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        history: int = 3,
        horizon: int = 8,
        split: str = "train",
        val_fraction: float = 0.1,
        seed: int = 0,
        drop_margin: int = 0,
        gravity: bool = False,
    ):
        if history < 1 or horizon < 1:
            raise ValueError(f"history and horizon must be at least 1, got {history} and {horizon}")
        if drop_margin < 0:
            raise ValueError(f"drop_margin must be >= 0, got {drop_margin}")
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        self.path, self.history, self.horizon, self.split = Path(path), history, horizon, split
        self._arrays = _Arrays(path, gravity=gravity)
        train, val = split_episodes(len(self._arrays.ends), val_fraction=val_fraction, seed=seed)
        self.episodes = train if split == "train" else val
        """Indices of this split's episodes in the file, (E_split,) int64."""
        self._t, self._start, self._end = self._arrays.samples(self.episodes, drop_margin=drop_margin)
        settings = {"horizon": horizon, "val_fraction": val_fraction, "seed": seed, "drop_margin": drop_margin}
        stats = load_stats(path, **settings, gravity=gravity)
        if stats is None:
            stats = _compute(self._arrays, **settings)
            try:
                _save_stats(path, stats, _stats_attrs(self._arrays, **settings))
            except OSError as e:
                warnings.warn(f"normalization statistics not saved in {path}: {e}", stacklevel=2)
        self.stats: dict[str, np.ndarray] = stats

    @property
    def has_intent(self) -> bool:
        """Whether the windows carry an ``intent`` label (the file records the realized object twist)."""
        return self._arrays.twist is not None

    @property
    def obs_dim(self) -> int:
        """Features per observation frame (D)."""
        return self._arrays.frames.shape[1]

    def __len__(self) -> int:
        return len(self._t)

    def step_of(self, index: int) -> int:
        """The dataset row (step t) of sample ``index``."""
        return int(self._t[index])

    def histories(self, indices: np.ndarray) -> np.ndarray:
        """The observation histories (B, H, D) of samples ``indices`` (B,): ``batch(indices)["obs"]`` alone."""
        idx = np.asarray(indices, dtype=np.int64)
        return self._arrays.histories(self._t[idx], self._start[idx], history=self.history)

    def batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """Samples ``indices`` (B,) as NumPy arrays with a leading batch dimension B."""
        idx = np.asarray(indices, dtype=np.int64)
        return self._arrays.windows(self._t[idx], self._start[idx], self._end[idx], history=self.history,
                                    horizon=self.horizon)  # fmt: skip

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"sample {index} out of range for {len(self)} samples")
        w = self.batch(np.array([index % len(self)]))
        return {k: torch.from_numpy(np.ascontiguousarray(v[0])) for k, v in w.items()}
