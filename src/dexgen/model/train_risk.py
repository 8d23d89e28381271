"""``dexgen train-risk``: add a drop-risk critic to a trained model.

The critic reads the observation history alone (no object state) and gives the probability that the object leaves
the hand within ``window_s`` seconds. It is fitted on every window of a dataset, the last seconds before a drop
included (the prior leaves those out: they are what the critic must recognise), on the model's own train / validation
split of episodes. Every other tensor of the model is copied unchanged, so the prior, the inverse dynamics and the
rotation predictor of the result are bit-identical to the input's. The job takes minutes: it writes its result
atomically at the end rather than checkpointing.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from dexgen.checks import check_int, check_number
from dexgen.data.store import DatasetError, open_dataset
from dexgen.data.windows import MotionWindows
from dexgen.model.checkpoint import load_model, read_record, save_model
from dexgen.model.dexgen_model import DexGenModel
from dexgen.provenance import revision

RECORD_KEY = "drop_risk_critic"
"""Where a model record keeps how its critic was trained and how well it ranks validation windows."""


@dataclass
class TrainRiskConfig:
    """Add a drop-risk critic (probability of a drop within a window, from proprioception) to a trained model."""

    checkpoint: str
    """Trained model weights (.safetensors with its .json record)."""
    dataset: str
    """Dataset file (.h5) written by ``dexgen collect`` (usually the one the model was trained on)."""
    out: str
    """Where to write the model with its critic (.safetensors and .json)."""
    window_s: float = 2.0
    """The label: the episode ends in a drop within this many seconds."""
    hidden: int = 256
    """Width of the critic."""
    steps: int = 8000
    """Optimizer steps."""
    batch_size: int = 1024
    """Windows per step."""
    lr: float = 1e-3
    """Learning rate (Adam)."""
    val_windows: int = 50_000
    """Validation windows scored at the end (a fixed random subset of the validation episodes' windows)."""
    seed: int = 0
    """Seed of initialization and batch order."""
    threads: int = 0
    """Torch threads; 0 leaves PyTorch's default."""
    progress: bool = True
    """Show a progress bar."""
    json: bool = False
    """Print one JSON object at the end."""

    def __post_init__(self) -> None:
        if not (np.isfinite(self.window_s) and self.window_s > 0) or min(self.hidden, self.steps, self.batch_size) < 1:
            raise TrainRiskError("--window-s, --hidden, --steps and --batch-size must be positive")
        check_number("lr", self.lr, gt=0)
        check_int("val_windows", self.val_windows, ge=1)
        check_int("threads", self.threads, ge=0)


class TrainRiskError(ValueError):
    """The critic cannot be trained as asked."""


def ranking_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """The probability that a random positive window scores above a random negative one (ties count half; the
    Mann-Whitney form of the ROC AUC); NaN without both classes. scores (N,), labels (N,) bool."""
    from scipy.stats import rankdata

    labels = np.asarray(labels, dtype=bool)
    pos, neg = int(labels.sum()), int((~labels).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = rankdata(scores)  # tied scores share their mean rank
    return float((ranks[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


def with_critic(model: DexGenModel, *, hidden: int, window: int) -> DexGenModel:
    """A copy of ``model`` with a fresh drop-risk critic (``hidden`` wide, label window ``window`` steps) and every
    other tensor the same."""
    cfg = replace(model.cfg, risk_hidden=hidden, risk_window=window)
    out = DexGenModel(cfg)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("risk.")}
    missing, unexpected = out.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("risk.") for k in missing):
        raise TrainRiskError(f"cannot copy the model: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return out


def train_risk(cfg: TrainRiskConfig) -> dict:
    """Train the critic and write the model with it; returns a summary (paths, validation figures)."""
    from tqdm import tqdm

    weights = Path(cfg.checkpoint).with_suffix(".safetensors").resolve()
    if Path(cfg.out).with_suffix(".safetensors").resolve() == weights:
        raise TrainRiskError("--out must differ from --checkpoint (the input model is kept as it is)")
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    base = load_model(cfg.checkpoint)
    record = read_record(cfg.checkpoint)
    split = record.get("dataset", {})
    val_fraction, split_seed = split.get("val_fraction", 0.05), split.get("split_seed", 0)
    try:
        with open_dataset(cfg.dataset) as r:
            hz = float(r.attrs["control_hz"])
        kw = {"history": base.cfg.history, "horizon": base.cfg.horizon, "val_fraction": val_fraction,
              "seed": split_seed, "gravity": base.cfg.gravity_obs}  # fmt: skip
        train = MotionWindows(cfg.dataset, split="train", **kw)
        val = MotionWindows(cfg.dataset, split="val", **kw)
    except (DatasetError, OSError, KeyError) as e:
        raise TrainRiskError(f"cannot read dataset {cfg.dataset}: {e}") from None
    if train.obs_dim != base.cfg.obs_dim:
        raise TrainRiskError(f"dataset {cfg.dataset} has {train.obs_dim} features per frame, the model "
                             f"{base.cfg.obs_dim}")  # fmt: skip
    if len(train) == 0 or len(val) == 0:
        raise TrainRiskError(f"dataset {cfg.dataset} has too few episodes for a train and a validation split")
    window = max(1, int(round(cfg.window_s * hz)))
    labels = train.drops_within(window)
    if not labels.any():
        raise TrainRiskError(f"dataset {cfg.dataset} has no drop in its train split: nothing to learn risk from")

    torch.manual_seed(cfg.seed)
    model = with_critic(base, hidden=cfg.hidden, window=window)
    opt = torch.optim.Adam(model.risk.parameters(), lr=cfg.lr)  # the critic's loss reaches no other weight
    rng = np.random.default_rng(cfg.seed)
    start = time.perf_counter()
    model.train()
    running = None
    bar = tqdm(range(cfg.steps), desc="drop-risk critic", disable=not cfg.progress, unit="step")
    for step in bar:
        idx = rng.integers(len(train), size=cfg.batch_size)
        obs = torch.from_numpy(train.histories(idx))
        loss = model.risk_loss(obs, torch.from_numpy(labels[idx]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = loss.item()
        running = value if running is None else 0.98 * running + 0.02 * value
        if step % 100 == 0:
            bar.set_postfix(loss=f"{running:.4f}")
    bar.close()
    model.eval()
    figures = validate_risk(model, val, window=window, windows=cfg.val_windows, seed=cfg.seed)
    wall = time.perf_counter() - start
    summary = {
        "command": "dexgen " + " ".join(sys.argv[1:]),
        "revision": revision(),
        "seed": cfg.seed,
        "checkpoint": cfg.checkpoint,
        "dataset": cfg.dataset,
        "window_s": cfg.window_s,
        "window_steps": window,
        "hidden": cfg.hidden,
        "steps": cfg.steps,
        "train_positive_share": round(float(labels.mean()), 4),
        "wall_s": round(wall, 1),
        "validation": figures,
    }
    kept = {k: v for k, v in record.items() if k not in ("format", "format_version", "config", "data")}
    path = save_model(model, cfg.out, record={**kept, RECORD_KEY: summary})
    return {"model": str(path), **summary}


@torch.no_grad()
def validate_risk(model: DexGenModel, val: MotionWindows, *, window: int, windows: int, seed: int) -> dict:
    """The critic on a fixed random subset of ``val``'s windows: ranking AUC, the share of positive windows, the
    share scored above 0.5 and the share of those that are positive."""
    idx = np.sort(np.random.default_rng(seed + 1).choice(len(val), size=min(windows, len(val)), replace=False))
    labels = val.drops_within(window)[idx]
    scores = np.concatenate([model.predict_drop_risk(torch.from_numpy(val.histories(idx[i : i + 4096]))).numpy()
                             for i in range(0, len(idx), 4096)])  # fmt: skip
    above = scores > 0.5
    return {
        "windows": int(len(idx)),
        "auc": round(ranking_auc(scores, labels), 4),
        "positive_share": round(float(labels.mean()), 4),
        "share_above_0.5": round(float(above.mean()), 4),
        "precision_above_0.5": round(float(labels[above].mean()), 4) if above.any() else None,
    }
