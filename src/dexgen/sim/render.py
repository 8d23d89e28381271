"""Offscreen rendering of simulations to images and videos (MP4 through imageio-ffmpeg, or GIF)."""

from __future__ import annotations

import os
from pathlib import Path

import mujoco
import numpy as np

from dexgen.sim.hand_batch import HandBatch


class RenderError(OSError):
    """No offscreen OpenGL context could be made."""


class SimRenderer:
    """Renders simulation ``sim`` of a HandBatch from the hand's ``view`` camera."""

    def __init__(self, sims: HandBatch, *, sim: int = 0, width: int = 480, height: int = 360):
        self.sims, self.sim = sims, sim
        self.model = sims.batch.get_model(sim)
        self.data = mujoco.MjData(self.model)
        try:
            self.renderer = mujoco.Renderer(self.model, height=height, width=width)
        except Exception as e:  # the GL backends raise several types
            raise RenderError(
                f"cannot create an offscreen OpenGL context with MUJOCO_GL={os.environ.get('MUJOCO_GL')}: {e}; "
                "install Mesa's EGL (libegl1 libegl-mesa0) or OSMesa (libosmesa6) and set MUJOCO_GL accordingly"
            ) from None

    def frame(self) -> np.ndarray:
        """(height, width, 3) uint8 image of the current state."""
        self.sims.batch.get_model(self.sim, self.model)  # follow per-episode randomization (object size, ...)
        self.sims.batch.get_data(self.sim, self.data)
        mujoco.mj_forward(self.model, self.data)
        self.renderer.update_scene(self.data, camera="view")
        return self.renderer.render().copy()

    def close(self) -> None:
        self.renderer.close()


def write_video(path: str | Path, frames: list[np.ndarray], *, fps: float) -> Path:
    """Write frames to ``path`` (.mp4 or .gif); returns the path."""
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gif":
        imageio.mimsave(path, frames, duration=1.0 / fps, loop=0)
    elif path.suffix == ".mp4":
        imageio.mimsave(path, frames, fps=fps, macro_block_size=8)
    else:
        raise ValueError(f"video path must end in .mp4 or .gif, got {path}")
    return path


def write_image(path: str | Path, frame: np.ndarray) -> Path:
    """Write one frame as PNG; returns the path."""
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.imwrite(path, frame)
    return path
