import numpy as np
import pytest
import torch

from dexgen.data.windows import MotionWindows
from dexgen.model.checkpoint import load_model, save_model
from dexgen.model.train_risk import RECORD_KEY, TrainRiskConfig, TrainRiskError, ranking_auc, train_risk
from model_helpers import SAMPLE_DATASET, tiny_model


@pytest.fixture
def dataset(tmp_path):
    # a private copy: the windows store normalization statistics in the file
    p = tmp_path / "sample.h5"
    p.write_bytes(SAMPLE_DATASET.read_bytes())
    return p


def test_ranking_auc_orders_positives_above_negatives():
    labels = np.array([0, 0, 1, 1], dtype=bool)
    assert ranking_auc(np.array([0.1, 0.2, 0.8, 0.9]), labels) == 1.0
    assert ranking_auc(np.array([0.9, 0.8, 0.2, 0.1]), labels) == 0.0
    assert ranking_auc(np.array([0.5, 0.5, 0.5, 0.5]), labels) == 0.5  # ties count half
    assert ranking_auc(np.array([0.1, 0.6, 0.5, 0.9]), labels) == 0.75
    assert np.isnan(ranking_auc(np.array([0.1, 0.2]), np.array([True, True])))


def test_critic_learns_and_leaves_the_rest_of_the_model_unchanged(tmp_path, dataset):
    base = tiny_model()
    base_path = save_model(base, tmp_path / "base.safetensors", record={"note": "kept"})
    cfg = TrainRiskConfig(checkpoint=str(base_path), dataset=str(dataset), out=str(tmp_path / "with_risk"),
                          hidden=32, steps=150, batch_size=256, val_windows=2000, progress=False)  # fmt: skip
    out = train_risk(cfg)
    model = load_model(out["model"])
    assert model.risk is not None and model.cfg.risk_window == 40  # 2 s at the dataset's 20 Hz
    before = load_model(base_path).state_dict()
    after = model.state_dict()
    assert set(after) - set(before) == {k for k in after if k.startswith("risk.")}
    for k, v in before.items():
        assert torch.equal(v, after[k]), k
    record = model.record
    assert record["note"] == "kept" and record[RECORD_KEY]["steps"] == 150
    assert record[RECORD_KEY]["validation"]["windows"] > 0
    # the critic learned the train windows' labels: lower loss than a fresh critic, and it ranks them
    train = MotionWindows(dataset, split="train", history=3, horizon=8, val_fraction=0.05, seed=0)
    labels = train.drops_within(40)
    obs = torch.from_numpy(train.batch(np.arange(len(train)))["obs"])
    fresh = tiny_model(risk_hidden=32)
    fresh.load_state_dict({**fresh.state_dict(), **before})
    with torch.no_grad():
        trained_loss = float(model.risk_loss(obs, torch.from_numpy(labels)))
        assert trained_loss < float(fresh.risk_loss(obs, torch.from_numpy(labels)))
        assert ranking_auc(model.predict_drop_risk(obs).numpy(), labels) > 0.75
        p = model.predict_drop_risk(obs)
    assert p.shape == (len(train),) and float(p.min()) >= 0 and float(p.max()) <= 1


def test_refusals(tmp_path, dataset):
    base_path = save_model(tiny_model(), tmp_path / "base.safetensors")
    ok = dict(checkpoint=str(base_path), dataset=str(dataset), out=str(tmp_path / "o"), steps=2, progress=False)
    with pytest.raises(TrainRiskError, match="--out must differ"):
        train_risk(TrainRiskConfig(**{**ok, "out": str(base_path)}))
    with pytest.raises(TrainRiskError, match="must be positive"):
        train_risk(TrainRiskConfig(**{**ok, "window_s": 0.0}))
    with pytest.raises(TrainRiskError, match="cannot read dataset"):
        train_risk(TrainRiskConfig(**{**ok, "dataset": str(tmp_path / "missing.h5")}))


def test_a_model_that_observes_gravity_gets_windows_with_it(tmp_path):
    from data_helpers import write_synthetic_dataset

    dataset = write_synthetic_dataset(tmp_path / "v2.h5", episodes=30, steps=(20, 60), seed=0)
    base_path = save_model(tiny_model(gravity_obs=True, obs_dim=47), tmp_path / "base.safetensors")
    out = train_risk(TrainRiskConfig(checkpoint=str(base_path), dataset=str(dataset), out=str(tmp_path / "o"),
                                     hidden=8, steps=2, val_windows=50, progress=False))  # fmt: skip
    assert load_model(out["model"]).cfg.gravity_obs
