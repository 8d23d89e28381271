"""Simulation stage: the hand model, objects, batched environment, tasks, grasp cache and rendering."""

import os

# Rendering is offscreen (EGL, or OSMesa when MUJOCO_GL=osmesa); MuJoCo reads this when it is first imported.
os.environ.setdefault("MUJOCO_GL", "egl")
