"""Many hand-and-object simulations stepped together on a thread pool, with state in the palm frame.

This is the one place that talks to ``mujoco.batch``; the environment, the grasp generator and the benchmark all
build on it. Each simulation runs on its own copy of the compiled model of its object, so that domain
randomization can edit model parameters per simulation. Results are identical at any thread count
(a guarantee of ``mujoco.batch``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import mujoco
import mujoco.batch
import numpy as np

from dexgen.sim import constants as C
from dexgen.sim.hand import ModelIndex, build_model, wrist_quat
from dexgen.sim.objects import ObjectSpec
from dexgen.sim.rotations import quat_conj, quat_mul, quat_to_mat


class HandBatch:
    """N simulations of the hand, simulation i holding ``objects[i]``.

    Attributes:
        models: per-simulation MjModel copies (edit them, then call ``models_changed``).
        base_models: pristine compiled models, one per simulation (shared among equal objects; read only).
        index: ids and addresses of the model's named parts (identical for every object).
        palm_rot: (3, 3) palm orientation in the world; palm_pos: (3,) palm position in the world, metres.
    """

    def __init__(self, objects: Sequence[ObjectSpec], *, wrist: str = "palm_up", hand: str = C.DEFAULT_HAND,
                 num_threads: int = 0):  # fmt: skip
        if len(objects) == 0:
            raise ValueError("HandBatch needs at least one simulation")
        self.objects = tuple(objects)
        self.wrist = wrist
        self.hand = hand
        self.base_models = [build_model(o, wrist=wrist, hand=hand) for o in self.objects]
        self.models = [copy.copy(m) for m in self.base_models]
        self.index = ModelIndex(self.models[0])
        self.batch = mujoco.batch.Batch(self.models[0], nsim=len(objects), nthread=num_threads, persistent=True)
        self.batch.set_models(self.models)
        self._scratch = mujoco.MjData(self.models[0])  # workspace for mj_setConst, shared by every model

        quat = wrist_quat(wrist)
        self.palm_quat = quat
        self.palm_rot = quat_to_mat(quat)
        self.palm_pos = np.zeros(3)  # the palm body sits at the world origin in hand.xml

        # Live (N, ...) views: state fields are writable, derived ones refresh after every call.
        self.qpos = self.batch.bind("qpos")
        self.qvel = self.batch.bind("qvel")
        self.ctrl = self.batch.bind("ctrl")
        self.site_xpos = self.batch.bind("site_xpos")
        self.actuator_force = self.batch.bind("actuator_force")
        self._hq = self.index.hand_qpos
        self._hd = self.index.hand_dof
        self._oq = slice(self.index.object_qpos, self.index.object_qpos + 7)
        self._od = slice(self.index.object_dof, self.index.object_dof + 6)

    @property
    def num_sims(self) -> int:
        return len(self.objects)

    @property
    def gravity_dir(self) -> np.ndarray:
        """The direction of nominal gravity in the palm frame, (3,) unit vector (fixed by the wrist orientation; a
        gravity curriculum scales gravity, not its direction). A robot knows it from its arm."""
        g = np.asarray(self.base_models[0].opt.gravity, dtype=float) @ self.palm_rot  # world -> palm frame
        return g / np.linalg.norm(g)

    @property
    def num_threads(self) -> int:
        return self.batch.nthread

    def models_changed(self, ids: np.ndarray | None = None) -> None:
        """Tell the batch that the models of simulations ``ids`` (all by default) were edited.

        Runs mj_setConst on them: the constants it derives (from masses, inertias, sizes, ...) must follow the
        edited parameters, or the dynamics become inconsistent (a free object gains energy and blows up).
        """
        ids = range(self.num_sims) if ids is None else ids
        for i in ids:
            mujoco.mj_setConst(self.models[i], self._scratch)
        self.batch.set_models(self.models)

    # ---- stepping ---------------------------------------------------------------------------------------------
    def step(self, nsubsteps: int, ids: np.ndarray | None = None) -> None:
        """Advance by ``nsubsteps`` physics steps, then make positions and velocities current (mjSTAGE_VEL)."""
        self.batch.step(ids, nstep=nsubsteps, stage=mujoco.mjtStage.mjSTAGE_VEL)

    def set_state(
        self,
        ids: np.ndarray,
        *,
        hand_q: np.ndarray,
        targets: np.ndarray,
        object_pos: np.ndarray,
        object_quat: np.ndarray,
    ) -> None:
        """Reset simulations ``ids`` (n,) to a hand pose at rest and an object pose, both in the palm frame.

        Args:
            hand_q: (n, 16) joint positions, radians.
            targets: (n, 16) joint position targets, radians.
            object_pos: (n, 3) object centre, metres, palm frame.
            object_quat: (n, 4) object orientation, palm frame.
        """
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size == 0:
            return
        self.batch.reset(ids, stage=mujoco.mjtStage.mjSTAGE_NONE)
        qpos = self.qpos[ids]
        qpos[:, self._hq] = hand_q
        qpos[:, self._oq.start : self._oq.start + 3] = object_pos @ self.palm_rot.T + self.palm_pos
        qpos[:, self._oq.start + 3 : self._oq.stop] = quat_mul(self.palm_quat, object_quat)
        self.qpos[ids] = qpos
        self.qvel[ids] = 0.0
        self.ctrl[ids] = targets
        self.batch.forward(ids, stage=mujoco.mjtStage.mjSTAGE_VEL)

    def warning_counts(self) -> np.ndarray:
        """(N,) MuJoCo warnings raised so far per simulation (an unstable simulation raises one and is reset)."""
        return self.batch.warning[:, :, 1].sum(axis=1)

    # ---- state in the palm frame ------------------------------------------------------------------------------
    @property
    def hand_q(self) -> np.ndarray:
        """(N, 16) joint positions, radians."""
        return self.qpos[:, self._hq]

    @property
    def hand_qd(self) -> np.ndarray:
        """(N, 16) joint velocities, rad/s."""
        return self.qvel[:, self._hd]

    def fingertips(self) -> np.ndarray:
        """(N, 4, 3) fingertip centres, metres, palm frame (index, middle, ring, thumb)."""
        world = self.site_xpos[:, self.index.fingertip_sites]
        return (world - self.palm_pos) @ self.palm_rot

    def object_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Object centre (N, 3) metres and orientation (N, 4), palm frame."""
        q = self.qpos[:, self._oq]
        pos = (q[:, :3] - self.palm_pos) @ self.palm_rot
        quat = quat_mul(quat_conj(self.palm_quat), q[:, 3:])
        return pos, quat

    def object_velocity(self) -> tuple[np.ndarray, np.ndarray]:
        """Object linear (N, 3) m/s and angular (N, 3) rad/s velocity, palm frame."""
        v = self.qvel[:, self._od]
        lin = v[:, :3] @ self.palm_rot
        # a free joint's angular velocity is in the object's own frame
        obj_rot = quat_to_mat(self.qpos[:, self._oq.start + 3 : self._oq.stop])
        ang = np.einsum("nij,nj->ni", obj_rot, v[:, 3:]) @ self.palm_rot
        return lin, ang

    def palm_touches_object(self, sim: int) -> bool:
        """Whether the palm touches the object in simulation ``sim`` (slow path, for tools)."""
        data = self.batch.get_data(sim)
        model, obj, palm = self.models[sim], self.index.object_geom, self.index.palm_body
        return any(
            (g0 == obj and model.geom_bodyid[g1] == palm) or (g1 == obj and model.geom_bodyid[g0] == palm)
            for g0, g1 in data.contact.geom[: data.ncon]
        )

    def fingers_touching_object(self, sim: int) -> np.ndarray:
        """(4,) bool: which fingers (any link) touch the object in simulation ``sim`` (slow path, for tools)."""
        data = self.batch.get_data(sim)
        touching = np.zeros(len(C.FINGERS), dtype=bool)
        obj = self.index.object_geom
        for g0, g1 in data.contact.geom[: data.ncon]:
            other = g1 if g0 == obj else g0 if g1 == obj else -1
            if other >= 0 and self.index.geom_finger[other] >= 0:
                touching[self.index.geom_finger[other]] = True
        return touching
