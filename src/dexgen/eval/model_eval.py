"""``dexgen eval-model``: how good is the trained model on its own (issue: the DexGen model)?

(a) ``idm``: open-loop error of the inverse dynamics model on the dataset's validation windows (true Δx in).
(b) ``intent``: how a command's intended object rotation can be read off fingertip motion, on the same validation
    windows: the rigid turn of the fingertips (``dexgen.controller.guidance.command_rotation``) and the model's
    rotation predictor, each against the object's true mean angular velocity; and how rigid the experts' fingertip
    motion is (``rigid_fraction_of``). This is what ``ControllerConfig.intent="auto"`` relies on.
(c) ``tracking``: the IDM in closed loop: each expert is run once and its fingertip trajectory recorded; then, from
    the same initial states, the IDM is asked at every step to reach the expert's next fingertip positions (relative
    to where the fingertips are now). Reported: fingertip tracking error while both hold the object, holding time,
    and how fast the object turns about the expert's axis (pooled over held steps) as a fraction of the expert's.
    The replay follows a recorded path without feedback from the object, so it does not bound the controller,
    which replans from the hand's state at every step.
(d) ``controller``: the unguided DexGen controller (α = 0) from the same initial states, holding time and drop rate
    against the RL experts, on training and held-out objects.

All rollouts use the experts' own environment settings (palm up, randomized physics, 20 Hz), one episode per
simulation, ``episodes`` per object, seeded by ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import tyro

from dexgen.checks import check_int, check_number
from dexgen.controller.dexgen_controller import ControllerConfig, DexGenController, frame_from_policy_obs
from dexgen.controller.observation import ObservationHistory
from dexgen.model.checkpoint import load_model, model_wrists, save_model, shipped_model_path
from dexgen.model.dexgen_model import DexGenModel
from dexgen.rl.evaluate import expert_env
from dexgen.rl.expert import Expert, shipped_expert_path
from dexgen.sim.constants import DEFAULT_WRIST
from dexgen.sim.env import HandEnv
from dexgen.sim.hand import check_wrist
from dexgen.sim.objects import resolve_objects
from dexgen.sim.rollout import Rollout, rollout
from dexgen.teleop.commands import parse_axis

PARTS = ("idm", "intent", "tracking", "controller")


@dataclass
class EvalModelConfig:
    """Evaluate a trained DexGen model alone: IDM open-loop error, IDM closed-loop tracking, unguided control."""

    checkpoint: tyro.conf.Positional[str | None] = None
    """Model weights (.safetensors with its .json); None: the shipped model of --wrist."""
    wrist: str | None = None
    """Wrist orientation of the rollouts and of the shipped experts compared with; None: the orientation of the
    model's training data (palm_up without a checkpoint)."""
    dataset: str | None = None
    """Dataset for the open-loop IDM error and the intent reading; None: the one named in the model's record."""
    parts: str = "idm,intent,tracking,controller"
    """Comma-separated parts to run: idm, intent, tracking, controller."""
    experts: str = "+z,-z"
    """Rotation axes of the shipped experts to compare with and to track."""
    objects: str = "train,heldout"
    """Comma-separated object sets, each reported separately."""
    episodes: int = 4
    """Episodes per object (one per simulation)."""
    seconds: float = 20.0
    """Episode horizon, seconds."""
    num_inference_steps: int | None = None
    """DDIM steps of the controller; None: the model's default."""
    seed: int = 1
    """Seed of initial grasps, randomization, observation noise and sampling."""
    threads: int = 0
    """Simulation and PyTorch threads; 0 uses every core."""
    record: bool = False
    """Write the figures into the model's JSON record (as its ``eval``)."""
    json: bool = False
    """Print one JSON object instead of a table."""

    def __post_init__(self) -> None:
        check_wrist("wrist", self.wrist, optional=True)
        bad = sorted({p.strip() for p in self.parts.split(",") if p.strip()} - set(PARTS))
        if bad:
            raise ValueError(f"unknown parts {bad}; expected some of {', '.join(PARTS)}")
        for axis in (a.strip() for a in self.experts.split(",") if a.strip()):
            parse_axis(axis)
        for objects in (s.strip() for s in self.objects.split(",") if s.strip()):
            resolve_objects(objects)
        check_int("episodes", self.episodes, ge=1)
        check_number("seconds", self.seconds, gt=0)
        check_int("num_inference_steps", self.num_inference_steps, ge=1, optional=True)
        check_int("threads", self.threads, ge=0)


def targets_to_actions(env: HandEnv, targets: np.ndarray) -> np.ndarray:
    """Relative actions of a relative-mode environment that set joint targets (N, 16) radians."""
    return (targets - env.targets) / env.config.action_scale


def _env(expert: Expert, cfg: EvalModelConfig, object_set: str) -> HandEnv:
    return expert_env(expert, object_set, episodes=cfg.episodes, seconds=cfg.seconds, seed=cfg.seed,
                      threads=cfg.threads, wrist=cfg.wrist)  # fmt: skip


def _holding(r: Rollout) -> dict:
    return {"holding_s_median": float(np.median(r.hold_s)), "holding_s_mean": float(np.mean(r.hold_s)),
            "drop_rate": float(np.mean(r.dropped))}  # fmt: skip


def _val_windows(model: DexGenModel, dataset: str, *, max_windows: int, seed: int) -> dict:
    """Up to ``max_windows`` validation windows of ``dataset`` (the split of the model's record), as NumPy arrays;
    the observation frames end with the gravity direction for a model that observes it."""
    from dexgen.data.windows import MotionWindows

    split = model.record.get("dataset", {})
    val = MotionWindows(dataset, history=model.cfg.history, horizon=model.cfg.horizon, split="val",
                        val_fraction=split.get("val_fraction", 0.05), seed=split.get("split_seed", 0),
                        gravity=model.cfg.gravity_obs)  # fmt: skip
    rng = np.random.default_rng(seed)
    return val.batch(np.sort(rng.choice(len(val), size=min(max_windows, len(val)), replace=False)))


def idm_open_loop(model: DexGenModel, dataset: str, *, max_windows: int = 20000, seed: int = 0) -> dict:
    """RMSE (rad) of the IDM's joint targets on validation windows of ``dataset``, with the split of the model's
    record; also the error of holding the current targets (the trivial baseline) for scale."""
    w = _val_windows(model, dataset, max_windows=max_windows, seed=seed)
    with torch.no_grad():
        pred = model.idm_targets(torch.from_numpy(w["obs"]), torch.from_numpy(w["dx"])).numpy()
    err = pred - w["action"]
    hold_err = w["obs"][:, -1, 16:32] - w["action"]
    return {"windows": int(len(w["obs"])), "idm_rmse_rad": float(np.sqrt(np.mean(err**2))),
            "hold_targets_rmse_rad": float(np.sqrt(np.mean(hold_err**2))),
            "idm_rmse_per_joint_rad": np.sqrt(np.mean(err**2, axis=0)).round(4).tolist()}  # fmt: skip


def intent_reading(model: DexGenModel, dataset: str, *, max_windows: int = 20000, seed: int = 0) -> dict:
    """How well the experts' fingertip motion Δx tells the object's rotation, on validation windows of ``dataset``:
    the correlation, per palm-frame axis, of the object's mean angular velocity over the horizon with the rigid turn
    of the fingertips (``rigid_corr_xyz``) and with the model's rotation predictor (``predicted_corr_xyz``; absent
    for a model without one); median magnitudes (rad/s) of the three; and quantiles (5, 25, 50, 75, 95 %) of the
    fraction of the fingertips' squared displacement a rigid motion explains (1: a rigid turn)."""
    from dexgen.controller.guidance import command_rotation, rigid_fraction_of

    w = _val_windows(model, dataset, max_windows=max_windows, seed=seed)
    obs, dx, truth = torch.from_numpy(w["obs"]), torch.from_numpy(w["dx"]), w["angvel"]
    tips = obs[:, -1, 32:44].reshape(-1, 4, 3)
    with torch.no_grad():
        readings = {"rigid": command_rotation(dx, tips).numpy()}
        if model.rotation is not None:
            readings["predicted"] = model.predict_rotation(obs, dx).numpy()
        fraction = rigid_fraction_of(dx, tips).numpy()
    out: dict = {"windows": int(len(obs)), "object_rad_per_s_median": float(np.median(np.linalg.norm(truth, axis=1)))}
    for name, r in readings.items():
        out[f"{name}_corr_xyz"] = [round(float(np.corrcoef(r[:, i], truth[:, i])[0, 1]), 4) for i in range(3)]
        out[f"{name}_rad_per_s_median"] = float(np.median(np.linalg.norm(r, axis=1)))
    out["rigid_fraction_quantiles"] = np.quantile(fraction, [0.05, 0.25, 0.5, 0.75, 0.95]).round(4).tolist()
    return out


def idm_tracking(model: DexGenModel, env: HandEnv, reference: Rollout) -> tuple[Rollout, dict]:
    """Run the IDM in ``env`` (reset to the reference's initial states) toward the reference's recorded fingertip
    trajectory; returns its rollout and the tracking figures."""
    n, steps = env.num_envs, reference.tips.shape[0] - 1
    if not np.allclose(env.fingertips(), reference.tips[0], atol=1e-9):
        raise RuntimeError("tracking: the environment does not start where the reference did")
    end = np.where(reference.dropped, reference.hold_steps, steps)  # last row of the reference's own episode
    hist = ObservationHistory(n, model.cfg.history)
    k = model.cfg.idm_horizon
    ar = np.arange(n)

    def policy(obs, t):
        h = torch.from_numpy(hist.push(frame_from_policy_obs(obs["policy"])).copy())
        rows = np.minimum(t + 1 + np.arange(k)[:, None], end[None, :])  # (k, N)
        future = reference.tips[rows, ar[None, :]].transpose(1, 0, 2, 3)  # (N, k, 4, 3)
        dx = torch.from_numpy((future - env.fingertips()[:, None]).astype(np.float32))
        with torch.no_grad():
            targets = model.idm_targets(h, dx).numpy().astype(np.float64)
        return targets_to_actions(env, targets)

    r = rollout(env, policy, record_tips=True)
    speed = np.linalg.norm(np.diff(reference.tips, axis=0), axis=-1)  # (steps, N, 4)
    valid = np.arange(steps)[:, None] < end[None, :]
    figures = {"tracking_error_mm": tips_error_mm(r, reference),
               "expert_tip_speed_mm_per_s": 1000.0 * float(speed[valid].mean()) / reference.dt}  # fmt: skip
    return r, figures


def tips_error_mm(r: Rollout, reference: Rollout) -> float:
    """Mean fingertip distance (mm) between two recorded rollouts over the steps where both still hold the object."""
    steps = reference.tips.shape[0] - 1
    held = np.where(r.dropped, r.hold_steps, steps)
    both = np.minimum(held, np.where(reference.dropped, reference.hold_steps, steps))
    err, count = 0.0, 0
    for i in range(len(both)):
        d = np.linalg.norm(r.tips[: both[i], i] - reference.tips[: both[i], i], axis=-1)  # (steps, 4)
        err += d.sum()
        count += d.size
    return 1000.0 * err / max(count, 1)


def expert_repeat(expert: Expert, env: HandEnv, reference: Rollout, *, seed: int) -> float:
    """How closely the expert repeats its own fingertip trajectory (mm): the expert again from the reference's
    initial states, with another draw of the observation noise (``env`` must be built like the reference's). The
    scale against which the IDM's tracking error is judged."""
    if not np.allclose(env.fingertips(), reference.tips[0], atol=1e-9):
        raise RuntimeError("expert repeat: the environment does not start where the reference did")
    env.rng = np.random.default_rng([seed, 1])  # the initial states are drawn; only later noise differs
    r = rollout(env, lambda obs, _t: expert.act(obs), record_tips=True)
    return tips_error_mm(r, reference)


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b > 0 else float("nan")


def _dataset_of(model: DexGenModel, cfg: EvalModelConfig, what: str, part: str) -> str:
    dataset = cfg.dataset or model.record.get("dataset", {}).get("path")
    if not dataset or not Path(dataset).exists():
        raise ValueError(f"dataset {dataset!r} for {what} not found; pass --dataset or leave {part} out of --parts")
    return dataset


def evaluate_model(model: DexGenModel, cfg: EvalModelConfig) -> dict:
    parts = [p.strip() for p in cfg.parts.split(",") if p.strip()]
    bad = sorted(set(parts) - set(PARTS))
    if bad:
        raise ValueError(f"unknown parts {bad}; expected some of {', '.join(PARTS)}")
    cfg = replace(cfg, wrist=cfg.wrist or model_wrists(model)[0])
    out: dict = {"checkpoint": model.record.get("path", ""), "wrist": cfg.wrist, "seed": cfg.seed,
                 "episodes_per_object": cfg.episodes, "seconds": cfg.seconds}  # fmt: skip
    if "idm" in parts:
        out["idm_open_loop"] = idm_open_loop(model, _dataset_of(model, cfg, "the open-loop IDM error", "idm"))
    if "intent" in parts:
        out["intent_reading"] = intent_reading(model, _dataset_of(model, cfg, "the intent reading", "intent"))
    experts = {a.strip(): Expert.load(shipped_expert_path("rotate", a.strip(), cfg.wrist), task="rotate",
                                      axis=a.strip(), wrist=cfg.wrist)
               for a in cfg.experts.split(",")}  # fmt: skip
    need_rollouts = "tracking" in parts or "controller" in parts
    for object_set in [s.strip() for s in cfg.objects.split(",") if s.strip()] if need_rollouts else []:
        res: dict = {}
        refs: dict[str, Rollout] = {}
        for axis, expert in experts.items():
            env = _env(expert, cfg, object_set)
            refs[axis] = rollout(env, lambda obs, _t, e=expert: e.act(obs), record_tips="tracking" in parts,
                                 progress=None if cfg.json else f"expert {axis} {object_set}")  # fmt: skip
            res[f"expert{axis}"] = _holding(refs[axis]) | {
                "angvel_rad_per_s_median": float(np.median(refs[axis].rate_about(env.task.command))),
                "angvel_rad_per_s_pooled": refs[axis].pooled_rate_about(env.task.command),
            }
            if "tracking" in parts:
                r, fig = idm_tracking(model, _env(expert, cfg, object_set), refs[axis])
                repeat = expert_repeat(expert, _env(expert, cfg, object_set), refs[axis], seed=cfg.seed)
                res[f"idm_tracking{axis}"] = (
                    _holding(r)
                    | fig
                    | {
                        "expert_repeat_error_mm": repeat,
                        "tracking_error_ratio_vs_expert_repeat": _ratio(fig["tracking_error_mm"], repeat),
                        "holding_ratio_vs_expert": _ratio(float(np.mean(r.hold_s)), float(np.mean(refs[axis].hold_s))),
                        "angvel_rad_per_s_median": float(np.median(r.rate_about(env.task.command))),
                        "angvel_rad_per_s_pooled": r.pooled_rate_about(env.task.command),
                        "angvel_ratio_vs_expert": _ratio(
                            r.pooled_rate_about(env.task.command), refs[axis].pooled_rate_about(env.task.command)
                        ),
                    }
                )
        if "controller" in parts:
            first = next(iter(experts.values()))
            env = _env(first, cfg, object_set)
            ctrl = DexGenController(model, config=ControllerConfig(num_inference_steps=cfg.num_inference_steps,
                                                                   seed=cfg.seed), batch=env.num_envs,
                                   gravity_dir=env.sims.gravity_dir)  # fmt: skip

            def policy(obs, _t, env=env, ctrl=ctrl):
                return targets_to_actions(env, ctrl.act(frame_from_policy_obs(obs["policy"])))

            r = rollout(env, policy, progress=None if cfg.json else f"unguided {object_set}")
            z = np.array([0.0, 0.0, 1.0])
            res["unguided"] = _holding(r) | {
                "angvel_z_rad_per_s_median": float(np.median(r.rate_about(z))),
                "abs_angvel_z_rad_per_s_median": float(np.median(np.abs(r.rate_about(z)))),
                "holding_median_ratio_vs_experts": _ratio(
                    float(np.median(r.hold_s)), float(np.mean([np.median(x.hold_s) for x in refs.values()]))
                ),
                "holding_mean_ratio_vs_experts": _ratio(
                    float(np.mean(r.hold_s)), float(np.mean([np.mean(x.hold_s) for x in refs.values()]))
                ),
                "rejected_outputs": ctrl.rejected,
            }
        out[object_set] = res
    return out


def run_eval_model(cfg: EvalModelConfig) -> dict:
    """The eval-model command."""
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    path = Path(cfg.checkpoint) if cfg.checkpoint else shipped_model_path(cfg.wrist or DEFAULT_WRIST)
    model = load_model(path)  # --wrist may run a model in another orientation than its data's: an analysis
    model.record["path"] = str(path)
    out = evaluate_model(model, cfg)
    if cfg.record:
        from dexgen.provenance import revision

        record = {k: v for k, v in model.record.items() if k not in ("format", "format_version", "config", "data",
                                                                      "path")}  # fmt: skip
        import sys

        record["eval"] = {"command": "dexgen " + " ".join(sys.argv[1:]), "revision": revision(), **out}
        dataset = cfg.dataset or record.get("dataset", {}).get("path")
        if "generated_by" not in record.get("dataset", {}) and dataset and Path(dataset).exists():
            from dexgen.data.store import open_dataset

            with open_dataset(dataset) as r:  # records written before training stored this
                record["dataset"]["generated_by"] = {k: r.attrs.get(k) for k in ("command", "seed", "revision")}
        save_model(model, path, record=record)
    return out
