import json

import pytest

from dexgen.cli import main


def test_help_lists_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    commands = ("sim-check", "grasps generate", "grasps check", "bench sim", "train", "eval-model", "bench controller")
    for words in commands:
        assert words in out


def test_unknown_command_and_bad_object_are_one_line_errors(capsys):
    assert main(["fly"]) == 2
    assert "unknown command" in capsys.readouterr().err
    assert main(["grasps", "check", "--objects", "teapot"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown object 'teapot'" in err


def test_sim_check_writes_video_and_reports(tmp_path, capsys):
    out = tmp_path / "check.gif"
    assert main(["sim-check", "--objects", "cube_60", "--seconds", "0.5", "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["held"] == {"cube_60": True}
    assert out.exists() and out.with_suffix(".png").exists()


def test_grasps_check_json(capsys):
    assert main(["grasps", "check", "--objects", "cube_60", "--seconds", "0.5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0.0 <= result["hold_rate"] <= 1.0 and result["grasps"] >= 8


def test_model_commands_give_one_line_errors(tmp_path, capsys):
    assert main(["train", "--dataset", str(tmp_path / "missing.h5"), "--out", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cannot read dataset" in err
    assert main(["eval-model", str(tmp_path / "none.safetensors")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no model weights" in err


def test_help_joins_the_lines_of_a_multi_line_field_docstring(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # wide enough that no line is wrapped
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    out = capsys.readouterr().out
    # the docstring of EvalConfig.ranking breaks its source line after "or"
    assert "closest (the nearest) or onward (turning further" in out
