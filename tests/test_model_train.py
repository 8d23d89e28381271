import json

import numpy as np
import pytest
import torch

from dexgen.model.checkpoint import load_model
from dexgen.model.train import TrainError, TrainModelConfig, train_model
from model_helpers import SAMPLE_DATASET, TINY


def _cfg(tmp_path, dataset, **kw):
    base = dict(dataset=str(dataset), out=str(tmp_path / "runs"), name="t", steps=60, batch_size=64, lr=3e-3,
                warmup_steps=5, ema_decay=0.9, val_every=30, val_windows=512, model=TINY, progress=False)  # fmt: skip
    return TrainModelConfig(**{**base, **kw})


@pytest.fixture
def dataset(tmp_path):
    # a private copy: training stores normalization statistics in the file
    p = tmp_path / "sample.h5"
    p.write_bytes(SAMPLE_DATASET.read_bytes())
    return p


def test_training_reduces_the_loss_and_writes_a_usable_model(tmp_path, dataset):
    out = train_model(_cfg(tmp_path, dataset, steps=120, val_every=40))
    log = [json.loads(line) for line in (tmp_path / "runs/t/log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [40, 80, 120]
    assert log[-1]["val/diffusion"] < log[0]["val/diffusion"]
    assert log[-1]["val/idm"] < log[0]["val/idm"]
    assert log[-1]["val/rotation"] < log[0]["val/rotation"]
    assert log[-1]["val/rotation_r2_z"] > log[0]["val/rotation_r2_z"]
    model = load_model(out["model"])
    assert model.rotation is not None and float(model.angvel_norm.std.min()) > 0
    assert model.record["training"]["steps"] == 120
    assert model.record["dataset"]["episodes"] > 0
    assert model.record["dataset"]["wrists"] == ["palm_up"]  # read from the dataset's episodes
    assert model.record["dataset"]["hand"] == "legacy"  # the experts' hand, for the server's forward kinematics
    assert model.record["dataset"]["primitives_seen"] == ["rotate+z", "rotate-z"]  # the two experts' steps
    assert model.record["dataset"]["generated_by"]["command"].startswith("dexgen collect")
    assert (tmp_path / "runs/t/tb").is_dir()


def test_resume_continues_exactly(tmp_path, dataset):
    straight = train_model(_cfg(tmp_path, dataset, name="a"))
    train_model(_cfg(tmp_path, dataset, name="b", max_minutes=1e-6))  # stops at the first checkpoint (step 30)
    assert json.loads((tmp_path / "runs/b/log.jsonl").read_text().splitlines()[-1])["step"] == 30
    resumed = train_model(_cfg(tmp_path, dataset, name="b", resume=True))
    a, b = load_model(straight["model"]), load_model(resumed["model"])
    for (k, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), k


def test_refusals(tmp_path, dataset):
    train_model(_cfg(tmp_path, dataset, steps=30))
    with pytest.raises(TrainError, match="already holds a run"):
        train_model(_cfg(tmp_path, dataset, steps=30))
    with pytest.raises(TrainError, match="trained with lr"):
        train_model(_cfg(tmp_path, dataset, steps=60, lr=1e-4, resume=True))
    with pytest.raises(TrainError, match="no checkpoint"):
        train_model(_cfg(tmp_path, dataset, name="other", resume=True))
    with pytest.raises(TrainError, match="--only"):
        train_model(_cfg(tmp_path, dataset, name="x", only="denoiser"))
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"garbage")
    with pytest.raises(TrainError, match="cannot read dataset"):
        train_model(_cfg(tmp_path, bad, name="y"))


def test_only_idm_leaves_the_denoiser_untouched(tmp_path, dataset):
    out = train_model(_cfg(tmp_path, dataset, steps=30, only="idm", ema_decay=0.0))
    torch.manual_seed(0)
    from dexgen.model.dexgen_model import DexGenModel

    fresh = DexGenModel(TINY)
    trained = load_model(out["model"])
    for (k, a), b in zip(fresh.denoiser.state_dict().items(), trained.denoiser.state_dict().values()):
        assert torch.equal(a, b), k


def test_drop_margin_is_a_setting_of_the_run(tmp_path, dataset):
    train_model(_cfg(tmp_path, dataset, steps=30, drop_margin_s=0.5))
    with pytest.raises(TrainError, match="drop_margin_s"):
        train_model(_cfg(tmp_path, dataset, steps=60, resume=True))
    with pytest.raises(TrainError, match="drop-margin"):
        train_model(_cfg(tmp_path, dataset, name="neg", drop_margin_s=-1.0))


def test_mode_dropout_trains_the_unknown_mode(tmp_path, dataset):
    from dexgen.model.config import ModelConfig
    from dexgen.model.dexgen_model import DexGenModel

    cfg = ModelConfig(**{**TINY.to_dict(), "mode": "primitive", "mode_dropout": 0.3})
    out = train_model(_cfg(tmp_path, dataset, steps=30, ema_decay=0.0, val_every=15, model=cfg))
    log = [json.loads(line) for line in (tmp_path / "runs/t/log.jsonl").read_text().splitlines()]
    for r in log:  # the two readings of the mode are logged apart; the mixed loss lies between them
        known, unknown = r["val/diffusion_known_mode"], r["val/diffusion_unknown_mode"]
        assert known != unknown and min(known, unknown) * 0.8 < r["val/diffusion"] < max(known, unknown) * 1.2
    torch.manual_seed(0)
    fresh = DexGenModel(cfg).denoiser.mode_embed.weight
    trained = load_model(out["model"])
    rows = trained.denoiser.mode_embed.weight
    assert rows.shape[0] == cfg.num_modes + 1
    assert not torch.equal(fresh[cfg.unknown_mode], rows[cfg.unknown_mode])  # the unknown row was trained
    assert torch.equal(fresh[0], rows[0])  # rotate+x is not in the dataset: its row got no gradient
    obs = torch.zeros(1, cfg.history, trained.cfg.obs_dim)
    assert trained.sample(obs, generator=torch.Generator().manual_seed(0)).shape == (1, cfg.horizon, 4, 3)


def test_the_record_names_every_later_opening_of_the_dataset(tmp_path):
    from data_helpers import write_synthetic_dataset
    from dexgen.data.store import EpisodeWriter, open_dataset

    dataset = write_synthetic_dataset(tmp_path / "d.h5", episodes=40, steps=(20, 60), seed=0)

    with open_dataset(dataset) as r:
        before = len(json.loads(r.attrs["history"]))
    with EpisodeWriter(dataset, command="dexgen collect --resume --grasp-dir D", seed=5, resume=True, meta={}):
        pass  # an extension that added nothing still belongs to the recipe
    out = train_model(_cfg(tmp_path, dataset, steps=30))
    made = load_model(out["model"]).record["dataset"]["generated_by"]
    assert len(made["then"]) == before  # the openings after the first
    assert made["then"][-1]["command"] == "dexgen collect --resume --grasp-dir D" and made["then"][-1]["seed"] == 5


def test_intent_dropout_replaces_that_share_of_intents_by_the_null_intent():
    from dexgen.model.train import _losses
    from model_helpers import random_obs, tiny_model

    model = tiny_model(intent=True, intent_dropout=0.3)
    model.intent_norm.set(torch.zeros(6), 0.5 * torch.ones(6))
    seen = []
    model.denoiser.cond[0].register_forward_hook(lambda m, args, out: seen.append(args[0][:, -7:].clone()))
    n, g = 20_000, torch.Generator().manual_seed(0)
    intent = torch.randn(n, 6, generator=g)
    batch = {"obs": random_obs(n, model.cfg), "dx": 0.01 * torch.randn(n, model.cfg.horizon, 4, 3, generator=g),
             "dx_mask": torch.ones(n, model.cfg.horizon, dtype=torch.bool), "intent": intent}  # fmt: skip
    _losses(model, batch, "diffusion", g)
    values, flag = seen[0][:, :6], seen[0][:, 6]
    dropped = flag == 0
    assert bool(((flag == 0) | (flag == 1)).all())
    assert abs(float(dropped.float().mean()) - 0.3) < 0.015  # binomial sd 0.003
    assert bool((values[dropped] == 0).all())
    torch.testing.assert_close(values[~dropped], intent[~dropped] / 0.5)


def test_a_model_conditioned_on_opposite_intents_turns_opposite_ways(tmp_path):
    from dataclasses import replace

    from dexgen.data.windows import MotionWindows
    from model_helpers import turn_rate, write_turning_dataset

    dataset = write_turning_dataset(tmp_path / "turn.h5", episodes=80, steps=24, omega=1.0, seed=0)
    # wider than the sample (4 x 12) so the tiny denoiser can pass it through; a new config's sampler (clean-sample
    # prediction, trailing spacing) shows the intent's effect within a few hundred steps
    cfg = replace(TINY, history=1, horizon=4, hidden=64, cond_dim=64, prediction_type="sample",
                  timestep_spacing="trailing", intent=True, gravity_obs=True, rotation_hidden=0)  # fmt: skip
    out = train_model(_cfg(tmp_path, dataset, model=cfg, steps=400, val_every=400, val_fraction=0.1, threads=1))
    model = load_model(out["model"])
    assert model.cfg.obs_dim == 47 and out["val/diffusion_intent"] < 0.5 * out["val/diffusion_null_intent"]
    val = MotionWindows(dataset, history=1, horizon=cfg.horizon, split="val", val_fraction=0.1, gravity=True)
    obs = torch.from_numpy(val.batch(np.arange(len(val)))["obs"])
    rates = {}
    for name, w in (("+z", 1.0), ("-z", -1.0), ("none", None)):
        intent = None if w is None else torch.tensor([0.0, 0.0, w, 0.0, 0.0, 0.0])
        dx = model.sample(obs, intent=intent, generator=torch.Generator().manual_seed(0))
        rates[name] = float(turn_rate(obs, dx).mean())
    assert rates["+z"] > 0.5 and rates["-z"] < -0.5, rates  # the data turn at 1 rad/s
    assert rates["-z"] < rates["none"] < rates["+z"], rates
