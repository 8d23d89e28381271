"""``dexgen train``: fit the diffusion prior and the inverse dynamics model on a motion dataset.

A run lives in ``OUT/NAME/``: ``last.pt`` (everything needed to resume exactly: weights, EMA weights, optimizer,
learning-rate schedule, random states), ``model.safetensors`` + ``model.json`` (the EMA weights for use, written at
every checkpoint), ``tb/`` (TensorBoard) and ``log.jsonl`` (one line per validation). Batches are drawn by a seeded
generator whose state is checkpointed, so an interrupted run resumed with ``--resume`` continues the same sequence.

Training runs on the CPU by default (``--device cuda`` on a GPU). Started by ``torchrun --nproc-per-node K``, K
processes share every batch through PyTorch's DistributedDataParallel: each draws the same global batch indices
and takes its slice, gradients are averaged, and process 0 validates and writes the run.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from dexgen.checks import check_int, check_number
from dexgen.data.schema import PRIMITIVES
from dexgen.data.store import DatasetError
from dexgen.data.windows import INTENT_DIM, MotionWindows
from dexgen.files import atomic_path, read_torch_checkpoint
from dexgen.model.checkpoint import data_signature, save_model
from dexgen.model.config import GRAVITY_DIM, ModelConfig
from dexgen.model.dexgen_model import NUM_JOINTS, TARGETS, DexGenModel
from dexgen.provenance import revision
from dexgen.sim.constants import DEFAULT_HAND
from dexgen.strict_json import dumps

PARTS = ("both", "diffusion", "idm")


@dataclass
class TrainModelConfig:
    """Train the DexGen diffusion model and inverse dynamics model on a dataset (or resume a run)."""

    dataset: str
    """Dataset file (.h5) written by ``dexgen collect``."""
    out: str = "runs/model"
    """Directory of runs."""
    name: str = "dexgen"
    """Run name: the run lives in OUT/NAME."""
    only: str = "both"
    """Which networks to train: both, diffusion or idm."""
    steps: int = 30000
    """Optimizer steps."""
    batch_size: int = 256
    """Windows per step."""
    lr: float = 1e-3
    """Peak learning rate (AdamW), reached after warm-up and decayed by a cosine to zero."""
    warmup_steps: int = 500
    """Linear warm-up steps."""
    weight_decay: float = 1e-6
    """AdamW weight decay."""
    ema_decay: float = 0.999
    """Decay of the exponential moving average of the weights (the weights used for evaluation)."""
    val_fraction: float = 0.05
    """Fraction of episodes held out for validation (split by episode)."""
    drop_margin_s: float = 0.0
    """Leave out the windows of the last this many seconds of episodes that end in a drop (the object slipping
    out is not motion the prior should learn); 0 keeps every window."""
    val_windows: int = 4096
    """Validation windows evaluated at each validation (a fixed random subset)."""
    val_every: int = 1000
    """Steps between validations and checkpoints."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """Architecture and diffusion settings."""
    seed: int = 0
    """Seed of initialization, batch order, diffusion noise and the split."""
    threads: int = 0
    """Torch threads; 0 leaves PyTorch's default."""
    device: str = "cpu"
    """Torch device: cpu (the default; shipped weights are reproduced on it), cuda or cuda:N. Under ``torchrun``
    each process takes the GPU of its LOCAL_RANK (NCCL), or the CPU (gloo)."""
    resume: bool = False
    """Continue OUT/NAME from its last checkpoint."""
    max_minutes: float = 0.0
    """Stop at the first checkpoint after this many minutes of this process (0: no limit); resume later."""
    progress: bool = True
    """Show a progress bar."""
    json: bool = False
    """Print one JSON object at the end."""

    def __post_init__(self) -> None:
        if self.only not in PARTS:
            raise TrainError(f"--only must be one of {', '.join(PARTS)}, got {self.only!r}")
        if not (np.isfinite(self.drop_margin_s) and self.drop_margin_s >= 0):
            raise TrainError(f"--drop-margin-s must be >= 0, got {self.drop_margin_s}")
        for name in ("steps", "batch_size", "val_windows", "val_every"):
            check_int(name, getattr(self, name), ge=1)
        check_int("warmup_steps", self.warmup_steps, ge=0)
        check_int("threads", self.threads, ge=0)
        check_number("lr", self.lr, gt=0)
        check_number("weight_decay", self.weight_decay, ge=0)
        check_number("ema_decay", self.ema_decay, ge=0, lt=1)
        check_number("val_fraction", self.val_fraction, gt=0, lt=1)
        check_number("max_minutes", self.max_minutes, ge=0)
        if not re.fullmatch(r"cpu|cuda(:\d+)?", self.device):
            raise TrainError(f"--device must be cpu, cuda or cuda:N, got {self.device!r}")


class TrainError(ValueError):
    """A training run cannot start or resume as asked."""


def _dataset_info(ds: MotionWindows) -> dict:
    """What a model record says about its dataset: where it was, its size, its wrist orientations and the
    primitives its steps execute, and how it was made."""
    from dexgen.data.store import open_dataset

    with open_dataset(ds.path) as r:
        made = {k: r.attrs.get(k) for k in ("command", "seed", "revision")}
        # every later opening (a resumed or extended collection, e.g. with other start states) is part of the recipe
        openings = json.loads(r.attrs.get("history", "[]"))[1:]
        if openings:
            keys = ("command", "seed", "revision", "episodes_at_open")
            made["then"] = [{k: o.get(k) for k in keys} for o in openings]
        wrists = sorted(set(r.episode_info("wrist")))
        hand = str(r.attrs.get("hand", DEFAULT_HAND))  # datasets from before it was stored: the default hand
        version = r.version
    seen = [PRIMITIVES[i] for i in np.unique(ds._arrays.primitive_id)]
    return {"path": str(ds.path), "episodes": int(len(ds._arrays.ends)), "transitions": int(ds._arrays.transitions),
            "wrists": wrists, "hand": hand, "primitives_seen": seen, "generated_by": made, **data_signature(),
            "schema_version": version}  # fmt: skip


INTENT_STD_FLOOR = (0.05, 0.002)
"""Smallest scale of the intent's angular (rad/s) and linear (m/s) parts: data that barely translate would
otherwise make any asked-for translation an input far outside the training range."""


def intent_scales(intent: np.ndarray) -> np.ndarray:
    """The intent normalizer's scale (6,): the root-mean-square of the angular part (rad/s) for its three values
    and of the linear part (m/s) for its three, floored at ``INTENT_STD_FLOOR``, from intents (N, 6). One scale
    per part, not per axis, and no centring: a turn about any axis reads alike, and zero (hold still) stays
    zero. Data that turn about one axis only would otherwise scale the other axes by their tiny spread."""
    x = np.asarray(intent, dtype=np.float64)
    angular = max(float(np.sqrt(np.mean(x[:, :3] ** 2))), INTENT_STD_FLOOR[0])
    linear = max(float(np.sqrt(np.mean(x[:, 3:] ** 2))), INTENT_STD_FLOOR[1])
    return np.array([angular] * 3 + [linear] * 3, dtype=np.float32)


def fit_normalizers(model: DexGenModel, train: MotionWindows, *, seed: int, samples: int = 100_000) -> None:
    """Set the model's normalizers: observation and Δx statistics of the train split (stored in the dataset), the
    gravity direction left as it is (a unit vector), and the change of joint targets, the object's rotation and
    the intent over a random subset of train windows."""
    s = train.stats
    mean, std = s["obs_mean"].copy(), s["obs_std"].copy()
    if model.cfg.gravity_obs:
        mean[-GRAVITY_DIM:], std[-GRAVITY_DIM:] = 0.0, 1.0
    model.obs_norm.set(mean, std)
    model.dx_norm.set(s["dx_mean"], s["dx_std"])
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(train), size=min(samples, len(train)), replace=False)
    w = train.batch(idx)
    model.delta_norm.fit(w["action"] - w["obs"][:, -1, TARGETS])
    if model.rotation is not None:
        model.angvel_norm.fit(w["angvel"])
    if model.cfg.intent:
        model.intent_norm.set(np.zeros(INTENT_DIM), intent_scales(w["intent"]))


def _tensors(w: dict[str, np.ndarray], device: torch.device | None = None) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in w.items()}


def noisy_joints(obs: torch.Tensor, std: float, gen: torch.Generator) -> torch.Tensor:
    """Observation histories obs (B, H, D) with Gaussian noise of ``std`` radians on every frame's joint positions
    (the first 16 features), as the controller reads them; obs itself if std is 0."""
    if std == 0:
        return obs
    noise = torch.zeros_like(obs)
    noise[..., :NUM_JOINTS] = std * torch.randn((*obs.shape[:-1], NUM_JOINTS), generator=gen).to(obs.device)
    return obs + noise


def _losses(model: DexGenModel, b: dict[str, torch.Tensor], only: str, gen: torch.Generator) -> dict:
    out = {}
    obs = noisy_joints(b["obs"], model.cfg.joint_noise_std, gen)
    if only in ("both", "diffusion"):
        mode = b["primitive_id"] if model.cfg.mode == "primitive" else None
        if mode is not None and model.cfg.mode_dropout > 0:
            drop = (torch.rand(mode.shape, generator=gen) < model.cfg.mode_dropout).to(mode.device)
            mode = torch.where(drop, torch.full_like(mode, -1), mode)
        intent = keep = None
        if model.cfg.intent:
            intent = b["intent"]
            keep = (torch.rand(len(intent), generator=gen) >= model.cfg.intent_dropout).to(intent.device)
        out["diffusion"] = model.diffusion_loss(obs, b["dx"], mask=b["dx_mask"], mode=mode, generator=gen,
                                                intent=intent, intent_keep=keep)  # fmt: skip
    if only in ("both", "idm"):
        out["idm"] = model.idm_loss(obs, b["dx"], b["action"], mask=b["dx_mask"])
    if only == "both" and model.rotation is not None:
        out["rotation"] = model.rotation_loss(obs, b["dx"], b["angvel"], mask=b["dx_mask"], generator=gen)
    return out


@torch.no_grad()
def validate(model: DexGenModel, val: dict[str, torch.Tensor], only: str, *, seed: int = 0) -> dict[str, float]:
    """Validation losses on fixed windows with fixed diffusion noise (comparable across calls), plus the IDM's
    root-mean-square joint target error in radians; for a model trained with mode dropout, also the diffusion loss
    with every window's true mode (``diffusion_known_mode``, comparable with a model without dropout) and with the
    unknown mode (``diffusion_unknown_mode``); for a model with an intent input, the diffusion loss with every
    window's intent (``diffusion_intent``) and with the null intent (``diffusion_null_intent``)."""
    gen = torch.Generator().manual_seed(seed)
    # the same noise for both readings of the mode, and none taken from ``gen`` (which "diffusion" keeps to itself)
    mode_gens = {k: torch.Generator().manual_seed(seed + 1) for k in ("diffusion_known_mode", "diffusion_unknown_mode")}
    out: dict[str, float] = {}
    n = len(val["obs"])
    sums: dict[str, float] = {}
    for i in range(0, n, 1024):
        b = {k: v[i : i + 1024] for k, v in val.items()}
        for k, v in _losses(model, b, only, gen).items():
            sums[k] = sums.get(k, 0.0) + float(v) * len(b["obs"])
        if only in ("both", "idm"):
            err = model.idm_targets(b["obs"], b["dx"]) - b["action"]
            sums["idm_rmse_rad"] = sums.get("idm_rmse_rad", 0.0) + float(err.pow(2).mean()) * len(b["obs"])
        if "rotation" in sums:  # explained variance of the angular velocity from clean Δx, per axis
            err = model.predict_rotation(b["obs"], b["dx"]) - b["angvel"]
            sums["_rot_sse"] = sums.get("_rot_sse", 0.0) + err.pow(2).sum(0)
        if only in ("both", "diffusion") and model.cfg.mode == "primitive" and model.cfg.mode_dropout > 0:
            # "diffusion" drops the mode at random as training does; these two are the loss of each reading alone
            mode = b["primitive_id"]
            for key, m in (("diffusion_known_mode", mode), ("diffusion_unknown_mode", torch.full_like(mode, -1))):
                loss = model.diffusion_loss(b["obs"], b["dx"], mask=b["dx_mask"], mode=m, generator=mode_gens[key],
                                            intent=b["intent"] if model.cfg.intent else None)  # fmt: skip
                sums[key] = sums.get(key, 0.0) + float(loss) * len(b["obs"])
        if only in ("both", "diffusion") and model.cfg.intent:
            # the loss with every window's intent and with the null intent: how much the intent tells
            for key, it in (("diffusion_intent", b["intent"]), ("diffusion_null_intent", None)):
                loss = model.diffusion_loss(b["obs"], b["dx"], mask=b["dx_mask"], intent=it,
                                            mode=None if model.cfg.mode == "none" else b["primitive_id"],
                                            generator=torch.Generator().manual_seed(seed + 2))  # fmt: skip
                sums[key] = sums.get(key, 0.0) + float(loss) * len(b["obs"])
    for k, v in sums.items():
        out[k] = v / n
    if "idm_rmse_rad" in out:
        out["idm_rmse_rad"] = float(np.sqrt(out["idm_rmse_rad"]))
    if "_rot_sse" in out:
        r2 = 1.0 - out.pop("_rot_sse") / val["angvel"].var(dim=0, unbiased=False).clamp_min(1e-12)
        out.update({f"rotation_r2_{axis}": float(v) for axis, v in zip("xyz", r2)})
    return out


class _Losses(torch.nn.Module):
    """The training losses as one module, so that DistributedDataParallel can wrap them."""

    def __init__(self, model: DexGenModel, only: str):
        super().__init__()
        self.model, self.only = model, only

    def forward(self, batch: dict[str, torch.Tensor], gen: torch.Generator) -> dict[str, torch.Tensor]:
        return _losses(self.model, batch, self.only, gen)


def _process_group(cfg: TrainModelConfig) -> tuple[int, int, torch.device]:
    """(rank, world size, device) of this process; under torchrun (WORLD_SIZE > 1) it joins the process group."""
    cuda = cfg.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise TrainError(f"--device {cfg.device}: torch {torch.__version__} sees no CUDA device here")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, torch.device(cfg.device)
    if cfg.batch_size % world:
        raise TrainError(f"--batch-size {cfg.batch_size} does not split evenly among {world} processes")
    import torch.distributed as dist

    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if cuda else "gloo")
    return dist.get_rank(), world, device


def _gather(obj, world: int) -> list:
    """``obj`` of every process, in rank order (a list of one without a process group)."""
    if world == 1:
        return [obj]
    import torch.distributed as dist

    out = [None] * world
    dist.all_gather_object(out, obj)
    return out


def _barrier() -> None:
    import torch.distributed as dist

    dist.barrier()


def _process_seed(seed: int, rank: int) -> int:
    """Seed of the diffusion noise of process ``rank``: ``seed`` itself for process 0 (a single-process run)."""
    return seed if rank == 0 else int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])


def train_model(cfg: TrainModelConfig) -> dict | None:
    """Train (or resume) a model run; returns a summary with the run directory and the last validation (None in
    the processes other than 0 of a distributed run)."""
    from diffusers.optimization import get_cosine_schedule_with_warmup
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    run_dir = Path(cfg.out) / cfg.name
    last = run_dir / "last.pt"
    ckpt = None
    if cfg.resume:
        ckpt = _load_training_checkpoint(last)
        _check_resume(ckpt, cfg, last)
    elif last.exists():
        raise TrainError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --name")
    world_env = int(os.environ.get("WORLD_SIZE", "1"))
    if ckpt is not None and ckpt.get("world_size", 1) != world_env:
        raise TrainError(f"cannot resume {last}: it was trained by {ckpt.get('world_size', 1)} processes, "
                         f"not {world_env}")  # fmt: skip

    rank, world, device = _process_group(cfg)
    lead = rank == 0
    if not lead:  # reading a dataset may write its statistics into it: process 0 first, then the others
        _barrier()
    try:
        margin = _drop_margin_steps(cfg.dataset, cfg.drop_margin_s)
        windows = {"history": cfg.model.history, "horizon": cfg.model.horizon, "val_fraction": cfg.val_fraction,
                   "seed": cfg.seed, "drop_margin": margin, "gravity": cfg.model.gravity_obs}  # fmt: skip
        train = MotionWindows(cfg.dataset, split="train", **windows)
        val = MotionWindows(cfg.dataset, split="val", **windows)
    except (DatasetError, OSError) as e:
        raise TrainError(f"cannot read dataset {cfg.dataset}: {e}") from None
    if len(train) == 0 or len(val) == 0:
        raise TrainError(f"dataset {cfg.dataset} has too few episodes for a train and a validation split")
    if cfg.model.intent and not train.has_intent:
        raise TrainError(f"dataset {cfg.dataset} does not record the realized object twist (schema version 1): "
                         "collect it again to train a model with an intent input")  # fmt: skip
    if train.obs_dim != cfg.model.obs_dim:
        cfg = replace(cfg, model=replace(cfg.model, obs_dim=train.obs_dim))
    data = _dataset_info(train)
    if ckpt is not None and {k: ckpt["data"][k] for k in ("episodes", "transitions")} != {
        k: data[k] for k in ("episodes", "transitions")
    }:
        raise TrainError(f"cannot resume {last}: it was trained on a dataset of {ckpt['data']['episodes']} episodes "
                         f"and {ckpt['data']['transitions']} transitions; {cfg.dataset} differs")  # fmt: skip
    if lead and world > 1:
        _barrier()

    torch.manual_seed(cfg.seed)
    model = DexGenModel(cfg.model)
    fit_normalizers(model, train, seed=cfg.seed)
    parts = {"denoiser": cfg.only != "idm", "idm": cfg.only != "diffusion", "rotation": cfg.only == "both"}
    for name, trained in parts.items():
        if getattr(model, name) is not None:
            getattr(model, name).requires_grad_(trained)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = get_cosine_schedule_with_warmup(opt, cfg.warmup_steps, cfg.steps)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
    net: torch.nn.Module = _Losses(model, cfg.only)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(_process_seed(cfg.seed, rank))
    step, wall = 0, 0.0
    this_command = "dexgen " + " ".join(sys.argv[1:])
    history = []
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        ema.load_state_dict(ckpt["ema"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["lr_schedule"])
        rng.bit_generator.state = ckpt["numpy_rng"]
        gen.set_state(ckpt["torch_gens"][rank] if world > 1 else ckpt["torch_gen"])
        step, wall, history = ckpt["step"], ckpt["wall_s"], list(ckpt["history"])
    history.append({"command": this_command, "revision": revision(), "threads": torch.get_num_threads(),
                    "device": str(device), "processes": world, "from_step": step, "to_step": step})  # fmt: skip
    if step >= cfg.steps:
        return {"run_dir": str(run_dir), "step": step, "model": str(run_dir / "model.safetensors")} if lead else None

    vrng = np.random.default_rng(cfg.seed + 1)
    vidx = np.sort(vrng.choice(len(val), size=min(cfg.val_windows, len(val)), replace=False))
    val_batch = _tensors(val.batch(vidx), device)
    writer = None
    if lead:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
        writer = SummaryWriter(log_dir=str(run_dir / "tb"), purge_step=step)
    bar = tqdm(total=cfg.steps, initial=step, desc=cfg.name, disable=not (cfg.progress and lead), unit="step")
    t_process = time.perf_counter()
    t0 = t_process - wall
    metrics: dict[str, float] = {}
    running: dict[str, float] = {}
    share = slice(rank * cfg.batch_size // world, (rank + 1) * cfg.batch_size // world)
    model.train()
    while step < cfg.steps:
        # every process draws the whole batch's indices (the same generator) and trains on its share
        b = _tensors(train.batch(rng.integers(len(train), size=cfg.batch_size)[share]), device)
        losses = net(b, gen)
        loss = sum(losses.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        ema.update_parameters(model)
        step += 1
        for k, v in losses.items():
            v = v.item()
            running[k] = 0.98 * running.get(k, v) + 0.02 * v
        bar.update(1)
        if step % 50 == 0 and lead:
            bar.set_postfix({k: f"{v:.4f}" for k, v in running.items()})
            for k, v in losses.items():
                writer.add_scalar(f"train/{k}", float(v.detach()), step)
            writer.add_scalar("train/lr", sched.get_last_lr()[0], step)
        if step % cfg.val_every == 0 or step == cfg.steps:
            gens = _gather(gen.get_state(), world)
            history[-1]["to_step"] = step
            wall = time.perf_counter() - t0
            if lead:
                metrics = _checkpoint(run_dir, cfg, model=model, ema=ema, opt=opt, sched=sched, rng=rng, gens=gens,
                                      step=step, wall=wall, data=data, history=history, val_batch=val_batch,
                                      running=running, writer=writer)  # fmt: skip
            model.train()
            elapsed = time.perf_counter() - t_process
            stop = cfg.max_minutes > 0 and elapsed > 60.0 * cfg.max_minutes and step < cfg.steps
            if _gather(stop, world)[0]:  # process 0 decides for all
                break
    bar.close()
    if world > 1:
        import torch.distributed as dist

        sums = _gather(sum(float(p.detach().double().sum()) for p in model.parameters()), world)
        # DDP's reducer holds the process group: drop it first, so that the group ends inside
        # destroy_process_group; ended later by a destructor holding the GIL, gloo's worker thread deadlocks on it
        del net
        dist.barrier()
        dist.destroy_process_group()
        if len(set(sums)) > 1:
            raise RuntimeError(f"distributed training left the processes with different weights: {sums}")
    if not lead:
        return None
    writer.close()
    model_path = str(run_dir / "model.safetensors")
    return {"run_dir": str(run_dir), "step": step, "wall_s": round(wall, 1), "model": model_path,
            "processes": world, **metrics}  # fmt: skip


def _checkpoint(run_dir: Path, cfg: TrainModelConfig, *, model, ema, opt, sched, rng, gens, step, wall, data,
                history, val_batch, running, writer) -> dict[str, float]:  # fmt: skip
    """Validate the EMA weights, append to log.jsonl, write last.pt and the EMA model with its record; returns
    the metrics."""
    ema_model = ema.module.eval()
    metrics = {f"val/{k}": v for k, v in validate(ema_model, val_batch, cfg.only, seed=cfg.seed).items()}
    metrics.update({f"train/{k}": v for k, v in running.items()})
    for k, v in metrics.items():
        if k.startswith("val/"):
            writer.add_scalar(k, v, step)
    with open(run_dir / "log.jsonl", "a") as f:
        f.write(dumps({"step": step, "wall_s": round(wall, 1), **metrics}) + "\n")
    with atomic_path(run_dir / "last.pt") as tmp:
        torch.save(
            {"model": model.state_dict(), "ema": ema.state_dict(), "optimizer": opt.state_dict(),
             "lr_schedule": sched.state_dict(), "numpy_rng": rng.bit_generator.state,
             "torch_gen": gens[0], **({"torch_gens": gens, "world_size": len(gens)} if len(gens) > 1 else {}),
             "step": step, "wall_s": wall, "config": _config_dict(cfg), "data": data, "history": history},
            tmp,
        )  # fmt: skip
    record = {
        "command": history[0]["command"],
        "seed": cfg.seed,
        "revision": history[0]["revision"],
        "dataset": {**data, "val_fraction": cfg.val_fraction, "split_seed": cfg.seed},
        "training": {"steps": step, "wall_s": round(wall, 1), "only": cfg.only, "history": history},
        "validation": metrics,
    }
    save_model(ema_model.to("cpu"), run_dir / "model.safetensors", record=record)
    ema_model.to(model.device)
    writer.flush()
    return metrics


def _drop_margin_steps(path: str, seconds: float) -> int:
    """``seconds`` in control steps of the dataset at ``path``."""
    if seconds == 0:
        return 0
    from dexgen.data.store import open_dataset

    with open_dataset(path) as r:
        return int(round(seconds * float(r.attrs["control_hz"])))


def _config_dict(cfg: TrainModelConfig) -> dict:
    return asdict(cfg)


_RESUME_KEYS = ("dataset", "only", "batch_size", "lr", "warmup_steps", "weight_decay", "ema_decay",
                "val_fraction", "drop_margin_s", "seed")  # fmt: skip


def _load_training_checkpoint(path: Path) -> dict:
    return read_torch_checkpoint(path, keys=("ema", "config"), kind="dexgen model training", error=TrainError)


def _check_resume(ckpt: dict, cfg: TrainModelConfig, path: Path) -> None:
    saved = {"drop_margin_s": 0.0, **ckpt["config"]}  # runs from before the option kept every window
    for key in _RESUME_KEYS:
        if saved[key] != getattr(cfg, key):
            given = getattr(cfg, key)
            raise TrainError(f"cannot resume {path}: it was trained with {key}={saved[key]!r}, not {given!r}")
    mine = {k: v for k, v in asdict(cfg.model).items() if k != "obs_dim"}
    theirs = {k: v for k, v in ModelConfig.from_dict(saved["model"]).to_dict().items() if k != "obs_dim"}
    if mine != theirs:
        diff = sorted(k for k in mine if mine[k] != theirs.get(k))
        raise TrainError(f"cannot resume {path}: its model config differs in {', '.join(diff)}")
