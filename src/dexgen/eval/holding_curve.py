"""When the object is dropped: the share of episodes still holding it as time goes on, per method.

A median holding time says when half of the episodes have dropped the object; the curve says when the others do,
which is what tells an early failure (the grasp is lost in the first seconds) from a slow one. Holding times are
capped at the horizon, so every episode is observed until it drops or the horizon ends: the share still holding at
``t`` is the plain fraction of episodes with holding time >= ``t``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CHECKPOINTS_S = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0)
"""The times (seconds) at which ``held_fractions`` reports the share still holding, those within the horizon."""


def held_fraction(hold_s, t: float) -> float:
    """The share (0-1) of episodes with holding time ``hold_s`` (E,) seconds that still hold the object at ``t``
    seconds; NaN when there are no episodes. Holding times within 1 µs of ``t`` count as holding (the horizon's cap)."""
    h = np.asarray(hold_s, dtype=float)
    return float(np.mean(h >= t - 1e-6)) if h.size else float("nan")


def held_fractions(hold_s_per_method: dict[str, list[float]], *, seconds: float) -> dict[str, dict[str, float]]:
    """``{method: {"t": share still holding at t}}`` for every time of ``CHECKPOINTS_S`` up to the horizon
    ``seconds`` and the horizon itself (keys as ``f"{t:g}"``)."""
    times = sorted({t for t in CHECKPOINTS_S if t < seconds} | {float(seconds)})
    return {m: {f"{t:g}": held_fraction(h, t) for t in times} for m, h in hold_s_per_method.items()}


def holding_curve_plot(hold_s_per_method: dict[str, list[float]], path: Path, *, seconds: float,
                       title: str = "Still holding the object") -> Path:  # fmt: skip
    """Plot the share of episodes still holding vs time (0 to the horizon ``seconds``), one step line per method
    with its median holding time marked; writes ``path`` (PNG) and returns it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(0.0, seconds, 301)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for m, h in hold_s_per_method.items():
        h = np.asarray(h, dtype=float)
        if not h.size:
            continue
        (line,) = ax.step(grid, [held_fraction(h, t) for t in grid], where="post", label=f"{m} ({h.size} episodes)")
        ax.axvline(float(np.median(h)), color=line.get_color(), linestyle=":", linewidth=1)
    ax.axhline(0.5, color="grey", linewidth=0.5)
    ax.set_xlim(0.0, seconds)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("time since the episode started (s)")
    ax.set_ylabel("share of episodes still holding the object")
    ax.set_title(f"{title} (dotted: median holding time)")
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def save_figure(fig, path) -> Path:
    """Lay out ``fig``, write it to ``path`` (a PNG, 120 dpi; parents made) and close it; returns the path."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
