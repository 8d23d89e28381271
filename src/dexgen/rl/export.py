"""Turning a training run into a shippable expert: actor weights, evaluation figures and a JSON record."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from dexgen.checks import check_int, check_number
from dexgen.provenance import revision
from dexgen.rl.config import PPOConfig
from dexgen.rl.evaluate import EvalExpertConfig, evaluate_expert
from dexgen.rl.expert import Expert, expert_name, make_actor, shipped_expert_path
from dexgen.rl.train import TrainExpertConfig, load_checkpoint, make_env
from dexgen.sim.constants import DEFAULT_WRIST


@dataclass
class ExportExpertConfig:
    """Export a training run's actor with a JSON record (command, seed, revision, steps, time, eval figures)."""

    run_dir: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="RUN_DIR")]
    """Training run directory (holds last.pt)."""
    ship: bool = False
    """Write into the package's shipped experts instead of the run directory."""
    episodes: int = 8
    """Evaluation episodes per object (training and held-out sets)."""
    seconds: float = 20.0
    """Evaluation episode length, seconds."""
    seed: int = 1
    """Evaluation seed."""
    threads: int = 0
    """Simulation threads; 0 uses every core."""

    def __post_init__(self) -> None:
        check_int("episodes", self.episodes, ge=1)
        check_number("seconds", self.seconds, gt=0)
        check_int("threads", self.threads, ge=0)


def reproduce_command(command: str, iterations: int) -> str:
    """``command`` (a train-expert command line) made to train exactly ``iterations`` iterations in one go: a run
    stopped by ``--max-minutes`` (and continued with ``--resume``) ends where the machine's speed put it, while
    the same seed and iteration count give the same run (segments are seeded by their first iteration)."""
    if not command:
        return ""
    words = _set_flag(_set_flag(shlex.split(command), "--max-minutes"), "--iterations")
    out = [w for w in words if w not in ("--resume", "--no-resume")]
    return shlex.join([*out, "--iterations", str(iterations)])


def _flag(words: list[str], name: str) -> str | None:
    """The value of the last ``name`` flag in a command's words (``--x v`` or ``--x=v``), or None."""
    value = None
    for i, w in enumerate(words):
        if w == name and i + 1 < len(words):
            value = words[i + 1]
        elif w.startswith(name + "="):
            value = w.split("=", 1)[1]
    return value


def _set_flag(words: list[str], name: str, value: str | None = None) -> list[str]:
    """``words`` with every ``name`` flag removed and, unless ``value`` is None, ``name value`` appended."""
    out, skip = [], False
    for w in words:
        if skip:
            skip = False
        elif w == name:
            skip = True
        elif not w.startswith(name + "="):
            out.append(w)
    return out if value is None else [*out, name, value]


def _run_dir(command: str) -> str:
    """The run directory a train-expert command wrote to (its ``--out`` and ``--run-name``, or their defaults)."""
    words = shlex.split(command)
    cfg = TrainExpertConfig(
        task=_flag(words, "--task") or TrainExpertConfig.task,
        axis=_flag(words, "--axis") or TrainExpertConfig.axis,
        seed=int(_flag(words, "--seed") or TrainExpertConfig.seed),
        out=_flag(words, "--out") or TrainExpertConfig.out,
        run_name=_flag(words, "--run-name"),
    )
    return str(Path(cfg.out) / cfg.name)


def reproduce_chain(history: list[dict]) -> list[str]:
    """The commands that retrain a run and every run it started from, oldest first, each made to train exactly the
    iterations its run reached (see `reproduce_command`). ``history`` is a checkpoint's list of training segments;
    a segment that starts at iteration 0 starts a run, a later one resumes the run before.

    The chain runs as given: a run that was moved between segments (a GPU run copied back and resumed here) is
    retrained where it ended, and a run started from an exported expert (``--init-actor``) gets the export of the
    run before it (``dexgen export-expert``) and starts from that file."""
    runs: list[dict] = []
    for seg in history:
        command = seg.get("command", "")
        end = int(seg.get("to_iteration", seg.get("from_iteration", 0)))
        if int(seg.get("from_iteration", 0)) == 0 or not runs:
            runs.append({"command": command, "end": end, "dir": _run_dir(command) if command else ""})
        else:
            runs[-1].update(end=end, dir=_run_dir(command) if command else runs[-1]["dir"])
    chain: list[str] = []
    for i, run in enumerate(runs):
        command = reproduce_command(run["command"], run["end"])
        if not command:
            chain.append(command)
            continue
        words = shlex.split(command)
        if _run_dir(command) != run["dir"]:
            out = str(Path(run["dir"]).parent)
            words = _set_flag(words, "--out", out) if out != TrainExpertConfig.out else _set_flag(words, "--out")
            words = _set_flag(words, "--run-name", Path(run["dir"]).name)
        before = runs[i - 1]["dir"] if i > 0 else ""
        init_from, init_actor = _flag(words, "--init-from"), _flag(words, "--init-actor")
        if before and init_from is not None and Path(init_from).parent != Path(before):
            words = _set_flag(words, "--init-from", str(Path(before) / "last.pt"))
        if before and init_actor is not None and Path(init_actor).parent != Path(before):
            prev = shlex.split(runs[i - 1]["command"])
            name = expert_name(_flag(prev, "--task") or TrainExpertConfig.task,
                               _flag(prev, "--axis") or TrainExpertConfig.axis,
                               _flag(prev, "--wrist") or TrainExpertConfig.wrist)  # fmt: skip
            chain.append(f"dexgen export-expert {shlex.quote(before)}")
            words = _set_flag(words, "--init-actor", str(Path(before) / f"{name}.safetensors"))
        chain.append(shlex.join(words))
    return chain


def expert_from_checkpoint(path: Path) -> Expert:
    """The actor of a training checkpoint, with a record of how it was trained."""
    ckpt = load_checkpoint(path)
    cfg_dict = ckpt["config"]
    ppo = dict(cfg_dict["ppo"])
    ppo_cfg = PPOConfig(**{**ppo, "actor_hidden": tuple(ppo["actor_hidden"]),
                           "critic_hidden": tuple(ppo["critic_hidden"])})  # fmt: skip
    train_cfg = TrainExpertConfig(**{**{k: v for k, v in cfg_dict.items() if k != "ppo"}, "ppo": ppo_cfg})
    env = make_env(train_cfg, num_envs=1)
    actor = make_actor(env.obs_dims, env.num_actions, ppo_cfg)
    actor.load_state_dict(ckpt["alg"]["actor_state_dict"])
    record = {
        "task": train_cfg.task,
        "axis": train_cfg.axis,
        "obs_dims": env.obs_dims,
        "num_actions": env.num_actions,
        "ppo": cfg_dict["ppo"],
        "env": {k: v for k, v in cfg_dict.items() if k != "ppo"},
        "command": ckpt.get("command", ""),
        "reproduce": reproduce_command(ckpt.get("command", ""), ckpt["iteration"]),
        "reproduce_chain": reproduce_chain(ckpt.get("history", [])),
        "seed": train_cfg.seed,
        "revision": ckpt.get("revision", "unknown"),
        "iterations": ckpt["iteration"],
        "env_steps": ckpt["env_steps"],
        "wall_s": round(ckpt["wall_s"], 1),
        "training_history": ckpt.get("history", []),
        "final_training_stats": ckpt.get("stats", {}),
    }
    return Expert(actor, record)


def export_expert(cfg: ExportExpertConfig) -> dict:
    expert = expert_from_checkpoint(Path(cfg.run_dir) / "last.pt")
    evals = {}
    for objects in ("train", "heldout"):
        ev = EvalExpertConfig(task=expert.task, axis=expert.axis, episodes=cfg.episodes, seconds=cfg.seconds,
                              objects=objects, seed=cfg.seed, threads=cfg.threads)  # fmt: skip
        evals[objects] = evaluate_expert(expert, ev)
    wrist = "" if expert.wrist == DEFAULT_WRIST else f" --wrist {expert.wrist}"
    axis = "" if expert.task == "grasp_to_grasp" else f" --axis={expert.axis}"
    expert.record["eval"] = {
        "command": f"dexgen eval-expert --task {expert.task}{axis}{wrist} --episodes {cfg.episodes} "
        f"--seconds {cfg.seconds} --seed {cfg.seed} --objects train|heldout",
        "export_revision": revision(),
        **evals,
    }
    name = expert_name(expert.task, expert.axis, expert.wrist)
    if cfg.ship:
        path = shipped_expert_path(expert.task, expert.axis, expert.wrist)
    else:
        path = Path(cfg.run_dir) / f"{name}.safetensors"
    expert.save(path)
    return {"path": str(path), "train": evals["train"]["overall"], "heldout": evals["heldout"]["overall"]}
