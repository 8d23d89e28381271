from dataclasses import replace

import pytest

from dexgen.model.checkpoint import load_model
from dexgen.model.train import TrainModelConfig, train_model
from model_helpers import TINY, write_turning_dataset
from script_helpers import load_script


def test_a_model_that_follows_the_intent_is_measured_so(tmp_path):
    dataset = write_turning_dataset(tmp_path / "turn.h5", episodes=80, steps=24, omega=1.0, seed=0)
    cfg = replace(TINY, history=1, horizon=4, hidden=64, cond_dim=64, prediction_type="sample", intent=True)
    out = train_model(TrainModelConfig(dataset=str(dataset), out=str(tmp_path / "runs"), name="t", steps=400,
                                       batch_size=64, lr=3e-3, warmup_steps=5, ema_decay=0.9, val_every=400,
                                       val_fraction=0.1, model=cfg, threads=1, progress=False))  # fmt: skip
    script = load_script("intent_effect")
    r = script.main([out["model"], "--axis", "z", "--speed", "1.0", "--windows", "100", "--seed", "0"])
    assert r["windows"] == 100
    # the data turn both ways at 1 rad/s; the rigid turn of sampled fingertips follows the sign of the intent
    assert abs(r["data"]["rigid"]) < 0.3 and r["+"]["rigid"] > 0.5 and r["-"]["rigid"] < -0.5
    assert r["-"]["rigid"] < r["none"]["rigid"] < r["+"]["rigid"]
    assert r["+"]["against_windows"] > 10 and r["-"]["against_windows"] > 10
    assert r["+"]["predicted"] > r["none"]["predicted"] > r["-"]["predicted"]
    with pytest.raises(ValueError, match="no intent input"):
        script.measure(load_model(out["model"]).__class__(replace(TINY)), {}, axis="z", speed=1.0, seed=0)
