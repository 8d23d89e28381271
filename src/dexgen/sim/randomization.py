"""Domain randomization: per-simulation physical parameters drawn at every reset, from a seeded generator."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dexgen.sim.hand_batch import HandBatch

PARAM_NAMES = ("mass_scale", "friction", "object_scale", "com_x", "com_y", "com_z", "kp_scale", "damping_scale")
"""Order of the physical parameters in ``DomainRandomizer.params`` (and in the privileged observation)."""


@dataclass(frozen=True)
class RandomizationConfig:
    """Ranges of the randomized physical parameters (uniform draws); set ``enabled=False`` for nominal physics."""

    enabled: bool = True
    """Randomize at all; when False every simulation uses the nominal model."""
    friction: tuple[float, float] = (0.5, 1.2)
    """Sliding friction coefficient of the object (MuJoCo takes the larger of the two geoms' coefficients)."""
    fingertip_friction_scale: tuple[float, float] = (0.8, 1.1)
    """Factor on the fingertips' nominal sliding friction (1.2)."""
    mass_scale: tuple[float, float] = (0.7, 1.3)
    """Factor on the object's nominal mass."""
    com_offset: float = 0.004
    """Largest shift of the object's centre of mass along each of its axes, metres."""
    object_scale: tuple[float, float] = (0.97, 1.03)
    """Factor on the object's size (kept small: cached grasps were made at nominal size)."""
    kp_scale: tuple[float, float] = (0.8, 1.2)
    """Factor on the actuators' position gain (nominal 3 N m / rad)."""
    damping_scale: tuple[float, float] = (0.8, 1.2)
    """Factor on the joints' damping (nominal 0.1 N m s / rad)."""
    joint_noise_std: float = 0.005
    """Standard deviation of Gaussian noise added to observed joint positions, radians."""

    def __post_init__(self) -> None:
        for name in ("friction", "fingertip_friction_scale", "mass_scale", "object_scale", "kp_scale", "damping_scale"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"randomization range {name}={lo, hi} must satisfy 0 < low <= high")
        if self.com_offset < 0 or self.joint_noise_std < 0:
            raise ValueError("com_offset and joint_noise_std must be non-negative")


class DomainRandomizer:
    """Writes randomized parameters into a HandBatch's per-simulation models.

    ``params`` (N, 8) holds each simulation's current draw in PARAM_NAMES order (nominal: 1, nominal friction,
    1, 0, 0, 0, 1, 1).
    """

    def __init__(self, sims: HandBatch, config: RandomizationConfig):
        self.sims = sims
        self.config = config
        idx = sims.index
        self._obj_body, self._obj_geom = idx.object_body, idx.object_geom
        self._tips, self._dofs = idx.fingertip_geoms, idx.hand_dof
        self.params = np.zeros((sims.num_sims, len(PARAM_NAMES)))
        for i, model in enumerate(sims.base_models):
            self.params[i] = (1.0, model.geom_friction[self._obj_geom, 0], 1.0, 0, 0, 0, 1.0, 1.0)

    def randomize(self, ids: np.ndarray, rng: np.random.Generator) -> None:
        """Draw new parameters for simulations ``ids`` and write them into their models."""
        cfg = self.config
        if not cfg.enabled or len(ids) == 0:
            return
        n = len(ids)
        u = rng.uniform
        draws = np.column_stack(
            (
                u(*cfg.mass_scale, n),
                u(*cfg.friction, n),
                u(*cfg.object_scale, n),
                u(-cfg.com_offset, cfg.com_offset, (n, 3)),
                u(*cfg.kp_scale, n),
                u(*cfg.damping_scale, n),
            )
        )
        tip_friction = u(*cfg.fingertip_friction_scale, n)
        self.params[ids] = draws
        b, g = self._obj_body, self._obj_geom
        for k, i in enumerate(ids):
            base, model = self.sims.base_models[i], self.sims.models[i]
            mass, friction, scale, cx, cy, cz, kp, damping = draws[k]
            model.body_mass[b] = base.body_mass[b] * mass
            model.body_inertia[b] = base.body_inertia[b] * mass * scale**2
            model.body_ipos[b] = base.body_ipos[b] + (cx, cy, cz)
            model.geom_size[g] = base.geom_size[g] * scale
            model.geom_rbound[g] = base.geom_rbound[g] * scale
            model.geom_aabb[g] = base.geom_aabb[g] * scale
            model.geom_friction[g, 0] = friction
            model.geom_friction[self._tips, 0] = base.geom_friction[self._tips, 0] * tip_friction[k]
            model.actuator_gainprm[:, 0] = base.actuator_gainprm[:, 0] * kp
            model.actuator_biasprm[:, 1] = base.actuator_biasprm[:, 1] * kp
            model.dof_damping[self._dofs] = base.dof_damping[self._dofs] * damping
        self.sims.models_changed(ids)

    def joint_noise(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """Observation noise for joint positions, radians."""
        if not self.config.enabled or self.config.joint_noise_std == 0:
            return np.zeros(shape)
        return rng.normal(0.0, self.config.joint_noise_std, shape)
