"""``dexgen data check`` and ``dexgen data stats``: validate a dataset file, and summarize what it holds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import tyro

from dexgen.data.schema import PRIMITIVES
from dexgen.data.store import DatasetError, check_dataset, open_dataset


@dataclass
class DataCheckConfig:
    """Validate a dataset file: schema, shapes, finiteness, episode bounds (an error if anything is wrong)."""

    path: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="PATH")]
    """Dataset file (.h5)."""
    json: bool = False
    """Print one JSON object instead of a table."""


def run_data_check(cfg: DataCheckConfig) -> dict:
    """``check_dataset`` as a command: the report if the file is sound, else a one-line ``DatasetError``."""
    result = check_dataset(cfg.path)
    if not result["ok"]:
        problems = result["problems"]
        more = f" (and {len(problems) - 3} more problems)" if len(problems) > 3 else ""
        raise DatasetError("; ".join(problems[:3]) + more)
    return result


@dataclass
class DataStatsConfig:
    """Summarize a dataset: per-primitive counts, episode durations, a histogram of fingertip speeds."""

    path: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="PATH")]
    """Dataset file (.h5)."""
    plot: str | None = "outputs/data_speeds.png"
    """Where to write the histogram of fingertip speeds (PNG); None writes no plot."""
    json: bool = False
    """Print one JSON object instead of a table."""


def fingertip_speeds(tips: np.ndarray, episode_ends: np.ndarray, *, control_hz: float) -> np.ndarray:
    """Speeds of every fingertip between consecutive steps of the same episode, (M, 4) m/s, from fingertip
    positions (N, 4, 3) metres and episode ends (E,)."""
    if len(tips) < 2:
        return np.zeros((0, tips.shape[1]), dtype=np.float64)
    speed = np.linalg.norm(np.diff(tips.astype(np.float64), axis=0), axis=-1) * control_hz  # (N - 1, 4)
    same_episode = np.ones(len(tips) - 1, dtype=bool)
    same_episode[episode_ends[:-1] - 1] = False  # the step from an episode's last row to the next one's first
    return speed[same_episode]


def summarize(path: str | Path) -> dict:
    """Episodes, transitions, episode durations (s); per primitive: transitions, episodes using it, segments (runs
    of it within an episode) and their mean duration (s); episodes per object, drop rate and fingertip speed
    percentiles (m/s); also the speeds themselves, (M, 4) m/s, under ``_speeds`` for plotting."""
    with open_dataset(path) as r:
        hz = float(r.attrs["control_hz"])
        ends, lengths = r.episode_ends, r.episode_lengths
        ids, dropped, tips = r.read("primitive_id"), r.read("dropped"), r.read("fingertip_pos")
        objects = r.episode_info("object_name")
    durations = lengths / hz
    starts = np.concatenate(([0], ends[:-1])).astype(np.int64)
    run_starts = np.union1d(starts, np.flatnonzero(np.diff(ids)) + 1)  # runs of one primitive within an episode
    run_lengths = np.diff(np.append(run_starts, len(ids)))
    per_primitive = {}
    for i, name in enumerate(PRIMITIVES):
        rows = ids == i
        if rows.any():
            runs = ids[run_starts] == i
            per_primitive[name] = {"transitions": int(rows.sum()),
                                   "episodes": int(np.add.reduceat(rows, starts).astype(bool).sum()),
                                   "segments": int(runs.sum()),
                                   "segment_s_mean": float(run_lengths[runs].mean() / hz)}  # fmt: skip
    speeds = fingertip_speeds(tips, ends, control_hz=hz)
    out = {
        "path": str(path),
        "episodes": len(ends),
        "transitions": int(ends[-1]) if len(ends) else 0,
        "hours": round(float(lengths.sum()) / hz / 3600.0, 4),
        "duration_s_mean": float(durations.mean()) if len(ends) else 0.0,
        "duration_s_median": float(np.median(durations)) if len(ends) else 0.0,
        "drop_rate": float(dropped.sum() / len(ends)) if len(ends) else 0.0,
        "per_primitive": per_primitive,
        "per_object": {o: objects.count(o) for o in sorted(set(objects))},
        "fingertip_speed_m_s": {f"p{q}": float(np.percentile(speeds, q)) if speeds.size else 0.0
                                for q in (50, 95, 99)} | {"max": float(speeds.max()) if speeds.size else 0.0},
    }  # fmt: skip
    out["_speeds"] = speeds
    return out


def plot_speeds(speeds: np.ndarray, out: str | Path, *, title: str = "") -> Path:
    """Histogram of fingertip speeds (M, 4) m/s, one outline per finger, log count axis, speeds above the 99.9th
    percentile in the last bin; written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dexgen.sim.constants import FINGERS

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    top = float(np.percentile(speeds, 99.9)) if speeds.size else 1.0
    bins = np.linspace(0.0, max(top, 1e-6), 60)
    for i, finger in enumerate(FINGERS):
        ax.hist(np.clip(speeds[:, i], 0.0, bins[-1]), bins=bins, histtype="step", label=finger)
    ax.set_yscale("log")
    ax.set_xlabel("fingertip speed (m/s, palm frame)")
    ax.set_ylabel("steps")
    ax.set_title(title or "fingertip speeds")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def run_data_stats(cfg: DataStatsConfig) -> dict:
    """``summarize`` as a command, with the speed histogram written to ``cfg.plot``."""
    result = summarize(cfg.path)
    speeds = result.pop("_speeds")
    if cfg.plot:
        result["plot"] = str(plot_speeds(speeds, cfg.plot, title=f"fingertip speeds: {Path(cfg.path).name}"))
    return result
