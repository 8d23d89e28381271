import math

import pytest

from dexgen.eval.model_eval import EvalModelConfig, evaluate_model, run_eval_model
from dexgen.model.checkpoint import load_model, save_model
from model_helpers import SAMPLE_DATASET, tiny_model


@pytest.fixture
def checkpoint(tmp_path):
    dataset = tmp_path / "sample.h5"
    dataset.write_bytes(SAMPLE_DATASET.read_bytes())
    record = {"dataset": {"path": str(dataset), "val_fraction": 0.2, "split_seed": 0}}
    return save_model(tiny_model(), tmp_path / "m.safetensors", record=record)


def test_every_part_reports_its_figures(checkpoint):
    cfg = EvalModelConfig(str(checkpoint), objects="cube_60", episodes=1, seconds=0.5, experts="+z", json=True)
    out = run_eval_model(cfg)
    assert out["idm_open_loop"]["windows"] > 0
    assert out["idm_open_loop"]["idm_rmse_rad"] > 0
    reading = out["intent_reading"]
    for key in ("rigid_corr_xyz", "predicted_corr_xyz"):
        assert len(reading[key]) == 3 and all(-1 <= c <= 1 for c in reading[key])
    fractions = reading["rigid_fraction_quantiles"]
    assert 0 <= fractions[0] <= fractions[2] <= fractions[4] <= 1 + 1e-6
    res = out["cube_60"]
    assert set(res) == {"expert+z", "idm_tracking+z", "unguided"}
    assert res["idm_tracking+z"]["tracking_error_mm"] >= 0
    assert res["idm_tracking+z"]["expert_repeat_error_mm"] >= 0
    tracking, expert = res["idm_tracking+z"], res["expert+z"]
    ref, ratio = expert["angvel_rad_per_s_pooled"], tracking["angvel_ratio_vs_expert"]
    # half a second may not turn the cube the commanded way: a ratio to no progress is undefined, not a number
    assert ratio == tracking["angvel_rad_per_s_pooled"] / ref if ref > 0 else math.isnan(ratio)
    assert 0 < res["unguided"]["holding_s_median"] <= 0.5
    assert "eval" not in load_model(checkpoint).record


def test_record_flag_writes_the_figures_into_the_model_record(checkpoint):
    cfg = EvalModelConfig(str(checkpoint), parts="idm", record=True, json=True)
    run_eval_model(cfg)
    record = load_model(checkpoint).record
    assert record["eval"]["idm_open_loop"]["idm_rmse_rad"] > 0
    assert record["dataset"]["val_fraction"] == 0.2


def test_unknown_part_and_missing_dataset_are_named(checkpoint, tmp_path):
    model = load_model(checkpoint)
    with pytest.raises(ValueError, match="unknown parts"):
        evaluate_model(model, EvalModelConfig(parts="idm,speed"))
    with pytest.raises(ValueError, match="not found"):
        evaluate_model(model, EvalModelConfig(parts="idm", dataset=str(tmp_path / "none.h5")))


def test_the_wrist_defaults_to_the_models_training_data(tmp_path):
    path = save_model(tiny_model(), tmp_path / "d.safetensors", record={"dataset": {"wrists": ["palm_down"]}})
    cfg = EvalModelConfig(str(path), parts="controller", objects="cube_60", episodes=1, seconds=0.2, experts="+z",
                          json=True)  # fmt: skip
    assert run_eval_model(cfg)["wrist"] == "palm_down"  # and the palm-down experts were found and run
    assert run_eval_model(EvalModelConfig(**{**cfg.__dict__, "wrist": "palm_up"}))["wrist"] == "palm_up"


def test_the_intent_reading_of_a_model_without_a_rotation_predictor_has_only_the_rigid_turn(tmp_path):
    dataset = tmp_path / "sample.h5"
    dataset.write_bytes(SAMPLE_DATASET.read_bytes())
    path = save_model(tiny_model(rotation_hidden=0), tmp_path / "m.safetensors",
                      record={"dataset": {"path": str(dataset), "val_fraction": 0.2, "split_seed": 0}})  # fmt: skip
    out = evaluate_model(load_model(path), EvalModelConfig(parts="intent"))
    assert "rigid_corr_xyz" in out["intent_reading"] and "predicted_corr_xyz" not in out["intent_reading"]


def test_threads_caps_pytorch_too(checkpoint, monkeypatch):
    import torch

    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    run_eval_model(EvalModelConfig(str(checkpoint), parts="idm", threads=1, json=True))
    assert calls == [1]
    run_eval_model(EvalModelConfig(str(checkpoint), parts="idm", json=True))  # 0: every core, left as it is
    assert calls == [1]
