import json
from pathlib import Path

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
    # the docstring of EvalConfig.sources breaks its source line after "(a"
    assert "replay:<file.npz> (a recording, e.g. from dexgen teleop" in out


@pytest.mark.parametrize(
    "args, words",
    [(["eval", "--guided.alpha", "nan"], "alpha must be finite and >= 0, got nan"),
     (["eval", "--guided.alpha", "-1"], "alpha must be finite and >= 0, got -1.0"),
     (["eval", "--episodes", "0"], "episodes must be at least 1, got 0"),
     (["eval", "--suite", "full", "--sources", "kinematic,replay:/nonexistent/rec.npz"], "no such file"),
     (["eval-expert", "--episodes", "0"], "episodes must be at least 1, got 0"),
     (["eval-expert", "--episodes", "-7"], "episodes must be at least 1, got -7"),
     (["teleop", "--seconds", "0"], "seconds must be finite and > 0, got 0.0"),
     (["teleop", "--guided.alpha", "nan"], "alpha must be finite and >= 0, got nan"),
     (["teleop", "--wrist", "bogus"], "wrist must be one of palm_up"),
     (["demo", "--alpha", "-0.5"], "alpha must be finite and >= 0, got -0.5"),
     (["bench", "controller", "--decisions", "0"], "decisions must be at least 1, got 0"),
     (["bench", "sim", "--envs", "-7"], "envs must be at least 1, got -7"),
     (["train-expert", "--envs", "-7"], "envs must be at least 1, got -7"),
     (["train-expert", "--task", "translate", "--axis", "all", "--translate-min", "-0.01"],
      "translate_min must be finite and >= 0, got -0.01"),
     (["train-expert", "--task", "translate", "--axis", "all", "--translate-min", "0.03"],
      "translate_min 0.03 exceeds translate_max 0.02"),
     (["train-expert", "--task", "translate", "--axis", "all", "--translate-tolerance", "0"],
      "translate_tolerance must be finite and > 0, got 0.0"),
     (["train-expert", "--task", "translate", "--axis", "+z"], "unknown axis '+z'; expected 'all' or"),
     (["eval-expert", "--task", "translate", "--axis", "all", "--reach-tolerance", "-1"],
      "reach_tolerance must be finite and > 0, got -1.0"),
     (["collect", "--out", "never.h5", "--transitions", "10", "--episode-seconds", "nan"],
      "--episode-seconds must be")],
)  # fmt: skip
def test_bad_values_exit_2_with_one_line_before_any_work(args, words, capsys, tmp_path, monkeypatch):
    import time

    monkeypatch.chdir(tmp_path)
    start = time.monotonic()
    assert main(args) == 2
    assert time.monotonic() - start < 5.0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"dexgen {args[0]}") and words in err, err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_ctrl_c_on_collect_exits_130_with_one_line(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "data.h5"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "dexgen.cli", "collect", "--out", str(out), "--transitions",
                             "1000000", "--workers", "1", "--envs-per-worker", "2", "--json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2.0)  # the worker is starting or collecting
        os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C in a terminal: the whole process group
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130 and err.strip() == "dexgen collect: interrupted", err
