"""A trained expert's actor: saved as safetensors weights with a JSON record beside them, loaded for inference.

Shipped experts live in ``dexgen/rl/experts/<task><axis>[_<wrist>].safetensors`` (e.g. ``rotate+z`` palm up,
``rotate+z_palm_down``), each with a ``.json`` record of the command, seed, code revision, environment steps, wall time
and evaluation figures.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import torch
from tensordict import TensorDict

from dexgen.files import file_sha256
from dexgen.rl.config import PPOConfig
from dexgen.rl.expert_files import ExpertError, read_expert_files
from dexgen.rl.numpy_actor import constant_inputs
from dexgen.sim.constants import DEFAULT_WRIST
from dexgen.strict_json import dumps

EXPERT_DIR = Path(__file__).parent / "experts"


def expert_name(task: str, axis: str, wrist: str = DEFAULT_WRIST) -> str:
    """The file stem of an expert: ``rotate+z``, ``grasp_to_grasp``, ``rotate+z_palm_down``."""
    name = task if task == "grasp_to_grasp" else f"{task}{axis}"
    return name if wrist == DEFAULT_WRIST else f"{name}_{wrist}"


def shipped_expert_path(task: str, axis: str, wrist: str = DEFAULT_WRIST) -> Path:
    """Path of the shipped expert's weights for a task, axis and wrist orientation."""
    return EXPERT_DIR / f"{expert_name(task, axis, wrist)}.safetensors"


def make_actor(obs_dims: dict[str, int], num_actions: int, ppo: PPOConfig) -> torch.nn.Module:
    """rsl-rl's actor MLP for observation groups of the given sizes."""
    from rsl_rl.models import MLPModel

    rsl = ppo.to_rsl()
    obs = TensorDict({k: torch.zeros(1, d) for k, d in obs_dims.items()}, batch_size=[1])
    actor_cfg = {k: v for k, v in rsl["actor"].items() if k != "class_name"}
    with contextlib.redirect_stdout(io.StringIO()):
        return MLPModel(obs, rsl["obs_groups"], "actor", num_actions, **actor_cfg)


class Expert:
    """Deterministic actor of a trained expert.

    ``record`` holds at least: task, axis, obs_dims, num_actions, ppo (PPOConfig fields), env (the TrainExpertConfig
    the expert was trained with).
    """

    def __init__(self, actor: torch.nn.Module, record: dict):
        self.actor = actor.eval()
        self.record = record
        self._pinned = self._constant_inputs()

    def _constant_inputs(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{group: (columns, training values)} of the actor inputs that never varied in training, which ``act``
        pins to their training value (see ``dexgen.rl.numpy_actor.constant_inputs``)."""
        norm = getattr(self.actor, "obs_normalizer", None)
        if not hasattr(norm, "_std"):
            return {}
        std, mean = norm._std.detach().cpu().numpy()[0], norm._mean.detach().cpu().numpy()[0]
        pinned, start = {}, 0
        for group in self.actor.obs_groups:
            width = int(self.record["obs_dims"][group])
            cols = np.flatnonzero(constant_inputs(std[start : start + width]))
            if cols.size:
                pinned[group] = (cols, mean[start + cols])
            start += width
        return pinned

    @property
    def task(self) -> str:
        return self.record["task"]

    @property
    def axis(self) -> str:
        return self.record["axis"]

    @property
    def wrist(self) -> str:
        """The wrist orientation the expert was trained in."""
        return self.record.get("env", {}).get("wrist", DEFAULT_WRIST)

    def save(self, path: Path) -> None:
        """Write ``path`` (.safetensors) and its JSON record beside it, the weights' SHA-256 in the record's
        ``weights_sha256``."""
        from safetensors.torch import save_file

        path.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.actor.state_dict().items()}
        save_file(state, str(path))
        self.record["weights_sha256"] = file_sha256(path)
        path.with_suffix(".json").write_text(dumps(self.record, indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path, *, task: str | None = None, axis: str | None = None,
             wrist: str | None = None) -> Expert:  # fmt: skip
        """Load weights and record; an ExpertError with a one-line reason otherwise: the files are missing,
        unreadable or do not match (see ``read_expert_files``), or the record's task, axis (except for
        grasp_to_grasp) or wrist orientation is not the one given."""
        record, arrays = read_expert_files(path)
        trained = {"task": record.get("task"), "axis": record.get("axis"),
                   "wrist": record.get("env", {}).get("wrist", DEFAULT_WRIST)}  # fmt: skip
        asked = {"task": task, "axis": None if record.get("task") == "grasp_to_grasp" else axis, "wrist": wrist}
        for key, value in asked.items():
            if value is not None and trained[key] != value:
                raise ExpertError(f"expert {path} was trained for {key} {trained[key]}, not {value}")
        state = {k: torch.from_numpy(v) for k, v in arrays.items()}
        record_path = Path(path).with_suffix(".json")
        try:
            ppo_fields = dict(record["ppo"])
            ppo_fields["actor_hidden"] = tuple(ppo_fields["actor_hidden"])
            ppo_fields["critic_hidden"] = tuple(ppo_fields["critic_hidden"])
            actor = make_actor(record["obs_dims"], record["num_actions"], PPOConfig(**ppo_fields))
        except (KeyError, TypeError) as e:
            raise ExpertError(f"expert record {record_path} is incomplete: {e}") from None
        try:
            actor.load_state_dict(state, strict=True)
        except RuntimeError as e:
            first = str(e).strip().splitlines()
            raise ExpertError(f"expert {path} does not match its record: {' '.join(first[:2])}") from None
        return cls(actor, record)

    @torch.inference_mode()
    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """(N, 16) deterministic actions for observation groups (N, dim) each; inputs that never varied in training
        are pinned to their training value."""
        obs = dict(obs)
        for group, (cols, values) in self._pinned.items():
            obs[group] = np.array(obs[group], dtype=np.float32)
            obs[group][:, cols] = values
        td = TensorDict({k: torch.as_tensor(v) for k, v in obs.items()}, batch_size=[len(obs["policy"])])
        return self.actor(td).numpy().astype(np.float64)
