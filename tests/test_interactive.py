import json
from dataclasses import replace

import numpy as np
import pytest

from dexgen.cli import main
from dexgen.controller.dexgen_controller import SHIPPED_METHOD
from dexgen.teleop.commands import load_recording
from dexgen.teleop.interactive import TeleopConfig, parse_keys, run_teleop


def test_parse_keys():
    assert parse_keys("0:z, 0:+,10:space") == {0: ["z", "+"], 10: [" "]}
    with pytest.raises(ValueError, match="bad key entry 'z'"):
        parse_keys("z")


def test_scripted_teleop_records_a_replayable_trajectory(tmp_path):
    rec = tmp_path / "rec.npz"
    out = run_teleop(TeleopConfig(method="raw", keys="0:z,0:+,5:r", seconds=0.5, record=str(rec)))
    assert out["command"] == "rotate about -z at 0.25 rad/s"
    assert sum(out["episodes_held_s"]) == pytest.approx(0.5)
    recording = load_recording(rec)
    assert recording.tips.shape == (11, 4, 3) and recording.dt == pytest.approx(0.05)
    assert np.isfinite(recording.tips).all()


def test_guided_teleop_and_replay_in_eval(tmp_path, capsys):
    rec = tmp_path / "rec.npz"
    assert main(["teleop", "--keys", "0:z,0:+", "--seconds", "0.3", "--record", str(rec), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["method"] == "guided"
    args = ["eval", "--objects", "cube_60", "--axes=+z", "--seconds", "0.2", "--sources", f"replay:{rec}",
            "--sweep", "", "--out", str(tmp_path / "ev"), "--json"]  # fmt: skip
    assert main(args) == 0
    assert f"replay:{rec}" in json.loads(capsys.readouterr().out)["per_source"]


def test_best_of_candidates_needs_a_model_with_a_predictor(tmp_path, capsys):
    from dexgen.model.checkpoint import save_model
    from model_helpers import tiny_model

    bare = save_model(tiny_model(rotation_hidden=0), tmp_path / "bare.safetensors")
    args = ["teleop", "--keys", "0:z", "--seconds", "0.1", "--checkpoint", str(bare), "--guided.candidates", "4"]
    assert main(args) == 2
    assert "rotation predictor" in capsys.readouterr().err


def test_the_shipped_method_fitted_to_the_model_reaches_the_controller(monkeypatch, tmp_path):
    from dexgen.model.checkpoint import save_model
    from dexgen.teleop import interactive
    from model_helpers import tiny_model

    seen = {}
    real = interactive.DexGenController

    def spy(model, *, config, **kwargs):
        seen["config"] = config
        return real(model, config=config, **kwargs)

    monkeypatch.setattr(interactive, "DexGenController", spy)
    for wrist in ("palm_down", "palm_up"):  # both shipped models have a rotation predictor and mode dropout
        run_teleop(TeleopConfig(wrist=wrist, keys="0:z", seconds=0.1, seed=3))
        assert seen["config"] == replace(SHIPPED_METHOD, seed=3)
    guided = replace(SHIPPED_METHOD, intent="rigid", candidates=2)
    run_teleop(TeleopConfig(wrist="palm_down", keys="0:z", seconds=0.1, guided=guided))
    assert seen["config"] == guided
    plain = save_model(tiny_model(rotation_hidden=0), tmp_path / "plain.safetensors")
    run_teleop(TeleopConfig(wrist="palm_up", keys="0:z", seconds=0.1, checkpoint=str(plain)))
    assert seen["config"] == replace(SHIPPED_METHOD, candidates=1, mode_from_intent=False)  # no predictor, no mode


@pytest.mark.parametrize(
    "field, value, message",
    [("seconds", 0.0, "seconds must be finite and > 0, got 0.0"),
     ("wrist", "bogus", "wrist must be one of palm_up"),
     ("object", "teapot", "unknown object 'teapot'"),
     ("method", "psychic", "method must be one of guided, raw"),
     ("keys", "z", "bad key entry 'z'")],
)  # fmt: skip
def test_bad_settings_are_refused_when_the_config_is_made(field, value, message):
    with pytest.raises(ValueError, match=message):
        TeleopConfig(**{field: value})


def test_rejected_outputs_are_reported_and_a_controller_that_never_acted_is_an_error(tmp_path):
    import torch

    from dexgen.model.checkpoint import save_model
    from model_helpers import tiny_model

    out = run_teleop(TeleopConfig(keys="0:z", seconds=0.2, checkpoint=str(save_model(tiny_model(), tmp_path / "m"))))
    assert out["rejected_outputs"] == {"rejected": 0, "outputs": 4}
    model = tiny_model()
    with torch.no_grad():
        model.idm.net[-1].bias.fill_(float("nan"))
    path = save_model(model, tmp_path / "nan.safetensors")
    with pytest.raises(ValueError, match="the guided controller never acted: it rejected all 4 of its outputs"):
        run_teleop(TeleopConfig(keys="0:z", seconds=0.2, checkpoint=str(path)))
