import json

import numpy as np
import pytest

from dexgen.cli import main
from dexgen.controller.dexgen_controller import GUIDED_COMMAND_GAIN, GUIDED_TRANSLATION_WEIGHT
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


def test_rotation_guidance_needs_a_model_with_a_predictor(tmp_path, capsys):
    from dexgen.model.checkpoint import save_model
    from model_helpers import tiny_model

    bare = save_model(tiny_model(rotation_hidden=0), tmp_path / "bare.safetensors")
    for extra in (["--rotation-weight", "1"], ["--candidates", "4"]):
        args = ["teleop", "--keys", "0:z", "--seconds", "0.1", "--checkpoint", str(bare), *extra]
        assert main(args) != 0
        assert "rotation predictor" in capsys.readouterr().err


def test_intent_and_ranking_reach_the_controller(monkeypatch, tmp_path):
    from dexgen.model.checkpoint import save_model
    from dexgen.teleop import interactive
    from model_helpers import tiny_model

    seen = {}
    real = interactive.DexGenController

    def spy(model, *, config):
        seen["config"] = config
        return real(model, config=config)

    monkeypatch.setattr(interactive, "DexGenController", spy)
    run_teleop(TeleopConfig(wrist="palm_down", keys="0:z", seconds=0.1, candidates=2, intent="rigid", ranking="onward"))
    assert (seen["config"].intent, seen["config"].ranking, seen["config"].candidates) == ("rigid", "onward", 2)
    assert seen["config"].mode_from_intent  # the shipped palm-down model has an unknown mode
    assert seen["config"].rigid_alpha_scale == 0.1  # the keys' rigid turn, with the mode chosen from it
    assert seen["config"].command_gain == GUIDED_COMMAND_GAIN  # the evaluated method's motion scaling
    assert seen["config"].translation_weight == GUIDED_TRANSLATION_WEIGHT
    run_teleop(TeleopConfig(wrist="palm_down", keys="0:z", seconds=0.1, mode_from_intent=False))
    assert not seen["config"].mode_from_intent and seen["config"].rigid_alpha_scale == 1.0
    run_teleop(TeleopConfig(wrist="palm_down", keys="0:z", seconds=0.1, rigid_alpha_scale=0.5, command_gain=1.2))
    assert seen["config"].rigid_alpha_scale == 0.5 and seen["config"].command_gain == 1.2
    # by default the evaluated guided method: α 0.45, best of 8 for a model with a rotation predictor, each
    # decision reading the command afresh
    assert (seen["config"].alpha, seen["config"].candidates, seen["config"].intent_smoothing) == (0.45, 8, 0.0)
    run_teleop(TeleopConfig(wrist="palm_down", keys="0:z", seconds=0.1, intent_smoothing=0.5))
    assert seen["config"].intent_smoothing == 0.5
    run_teleop(TeleopConfig(wrist="palm_up", keys="0:z", seconds=0.1))  # the shipped palm-up model has both too
    assert (seen["config"].alpha, seen["config"].candidates, seen["config"].mode_from_intent) == (0.45, 8, True)
    plain = save_model(tiny_model(rotation_hidden=0), tmp_path / "plain.safetensors")
    run_teleop(TeleopConfig(wrist="palm_up", keys="0:z", seconds=0.1, checkpoint=str(plain)))
    assert (seen["config"].candidates, seen["config"].mode_from_intent) == (1, False)  # no predictor, no mode
    with pytest.raises(ValueError, match="ranking must be one of"):
        run_teleop(TeleopConfig(wrist="palm_down", keys="0:z", seconds=0.1, ranking="best"))


def test_risk_threshold_reaches_the_controller_and_needs_a_critic(tmp_path, capsys):
    from dexgen.model.checkpoint import save_model
    from model_helpers import tiny_model

    args = ["teleop", "--keys", "0:z,0:+", "--seconds", "0.2", "--json", "--risk-threshold"]
    assert main([*args, "0.5"]) != 0  # the shipped palm-up model has no critic
    assert "drop-risk critic" in capsys.readouterr().err
    critic = save_model(tiny_model(risk_hidden=16), tmp_path / "critic.safetensors")
    for threshold, held in (("0", 4), ("1.5", 0)):  # every decision held / none
        assert main([*args, threshold, "--checkpoint", str(critic)]) == 0
        assert json.loads(capsys.readouterr().out)["decisions_held_for_risk"] == [held, 4]


@pytest.mark.parametrize(
    "field, value, message",
    [("seconds", 0.0, "seconds must be finite and > 0, got 0.0"),
     ("alpha", float("nan"), "alpha must be finite and >= 0, got nan"),
     ("alpha", -0.1, "alpha must be finite and >= 0, got -0.1"),
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
