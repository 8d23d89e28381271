import json
import math
from pathlib import Path

import numpy as np
import pytest

from dexgen.cli import main
from dexgen.eval.command import run_eval
from dexgen.eval.operator_eval import METHODS, goal_error, goal_outcome, parse_goals, turn_about
from dexgen.eval.teleop_eval import EvalConfig
from dexgen.model.checkpoint import save_model
from dexgen.sim.rotations import axis_angle_quat, quat_mul
from model_helpers import tiny_model

DT = 0.05


def _errors(*points: tuple[float, float], rows: int = 101) -> np.ndarray:
    """(rows, 1) a goal-error trajectory, radians, linear between (time s, error rad) points, constant after."""
    t = np.arange(rows) * DT
    xs, ys = zip(*points)
    return np.interp(t, xs, ys)[:, None]


def _outcome(error: np.ndarray, *, drop_s: float | None = None) -> dict:
    rows = error.shape[0]
    hold_steps = np.array([rows - 1 if drop_s is None else int(round(drop_s / DT))])
    return goal_outcome(error, hold_steps, np.array([drop_s is not None]), DT)


def test_reaching_the_goal_and_holding_two_seconds_is_a_success():
    out = _outcome(_errors((0.0, 1.5), (1.2, 0.0)))  # within 0.3 rad from 0.96 s, held to the 5 s horizon
    assert out["success"][0] and out["reached_s"][0] == pytest.approx(0.96, abs=DT)
    # it still counts when the object wanders off the goal afterwards while staying in the hand
    assert _outcome(_errors((0.0, 1.5), (1.2, 0.0), (2.0, 1.0)))["success"][0]


def test_a_drop_within_two_seconds_of_reaching_the_goal_is_not_a_success():
    error = _errors((0.0, 1.5), (1.2, 0.0))
    assert not _outcome(error, drop_s=2.5)["success"][0]  # reached at 0.96 s, dropped at 2.5 s
    assert _outcome(error, drop_s=3.5)["success"][0]  # dropped 2.5 s after reaching it


def test_no_success_without_reaching_after_a_drop_or_without_two_seconds_left():
    assert np.isnan(_outcome(_errors((0.0, 1.5), (5.0, 0.31)))["reached_s"][0])  # never within 0.3 rad
    # at the goal only after the object dropped: not reached
    late = _outcome(_errors((0.0, 1.5), (3.0, 0.0)), drop_s=1.0)
    assert np.isnan(late["reached_s"][0]) and not late["success"][0]
    # reached 1 s before the horizon: cannot be checked 2 s later
    end = _outcome(_errors((0.0, 1.5), (4.0, 0.0)))
    assert end["reached_s"][0] < 5.0 - 2.0 + 1.0 and not end["success"][0]
    assert end["at_goal"][-1, 0] and not end["at_goal"][0, 0]


def test_the_turn_rule_counts_the_turn_about_the_axis_followed_through_every_step():
    z, x = np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0])
    tilt = axis_angle_quat(x, 0.5)
    k = np.arange(100)[:, None]
    forward = quat_mul(axis_angle_quat(z, 0.05 * k), tilt)  # (100, 1, 4): turned 0.05 rad a step, tilted 0.5 rad
    turned = turn_about(forward, z)
    assert turned[:, 0] == pytest.approx(0.05 * np.arange(100), abs=1e-9)  # past pi too
    goal = quat_mul(axis_angle_quat(z, math.pi / 2), tilt[None])[0]
    assert goal_error(
        quat_mul(axis_angle_quat(z, math.pi / 2), quat_mul(axis_angle_quat(x, 0.3), tilt)), goal
    ) == pytest.approx(0.3, abs=1e-9)  # the orientation rule counts a tilt
    backward = axis_angle_quat(z, -0.05 * k)  # 270 degrees the wrong way ends at the +90 degree orientation
    assert abs(math.pi / 2 - turn_about(backward, z)[95, 0]) > 6.0
    assert goal_error(backward[95], axis_angle_quat(z, math.pi / 2))[0] < 0.1


def test_passing_through_the_goal_is_a_success_but_not_settled():
    through = _outcome(_errors((0.0, 1.5), (1.5, 0.0), (3.0, 1.5)))  # spins past the goal, held throughout
    assert through["success"][0] and not through["settled"][0]
    assert _outcome(_errors((0.0, 1.5), (1.5, 0.0)))["settled"][0]


def test_goals_are_parsed_and_bad_ones_named():
    goals = parse_goals("+z:90, -z:45", "palm_down")
    assert [g.name for g in goals] == ["+z:90", "-z:45"] and goals[0].angle == pytest.approx(math.pi / 2)
    with pytest.raises(ValueError, match="the palm_down wrist has no rotation expert about \\+x .*about \\+z, -z"):
        parse_goals("+x:90", "palm_down")
    with pytest.raises(ValueError, match="is not <axis>:<degrees>"):
        parse_goals("+w:90", "palm_down")
    with pytest.raises(ValueError, match="the angle must be in \\(0, 180\\] degrees, got nan"):
        parse_goals("+z:nan", "palm_down")
    with pytest.raises(ValueError, match="the angle 'ninety' is not a number"):
        parse_goals("+z:ninety", "palm_down")
    with pytest.raises(ValueError, match="no goals given"):
        parse_goals("", "palm_down")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--goals", "+y:90"], "no rotation expert about \\+y"),
        (["--goals", "+z:0"], "the angle must be in"),
        (["--operators", "confirm"], "the confirm operators take seeds >= 1000"),
        (["--operators", "prod"], "unknown operator set 'prod'"),
        (["--goal-rule", "heading"], "unknown goal rule 'heading'"),
        (["--seconds", "nan"], "seconds must be finite"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_before_loading_anything(tmp_path, capsys, flags, message):
    missing = tmp_path / "no_model.safetensors"  # never read: the check comes first
    argv = ["eval", "--suite", "operator-quick", "--checkpoint", str(missing), "--out", str(tmp_path), *flags]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("dexgen eval: error:")
    assert __import__("re").search(message, err), err


def test_an_unknown_human_family_is_named_before_loading_anything(tmp_path, capsys):
    argv = ["eval", "--suite", "quick", "--sources", "kinematic,human:wobbly", "--checkpoint",
            str(tmp_path / "none.safetensors")]  # fmt: skip
    assert main(argv) == 2
    assert "unknown human-like family 'wobbly'" in capsys.readouterr().err


def test_a_tiny_operator_suite_writes_its_figures(tmp_path):
    path = save_model(tiny_model(), tmp_path / "m.safetensors")
    cfg = EvalConfig(suite="operator-quick", checkpoint=str(path), objects="cube_52", goals="+z:30,-z:30",
                     seeds="1", seconds=0.5, out=str(tmp_path / "out"), json=True)  # fmt: skip
    summary = run_eval(cfg)
    assert set(summary["methods"]) == set(METHODS) and set(summary["per_goal"]) == {"+z:30", "-z:30"}
    for f in summary["methods"].values():
        assert f["episodes"] == 2
        for key in ("success_rate", "success_rate_ci95", "time_to_goal_s_median", "holding_s_median",
                    "holding_s_ci95", "drop_rate", "turn_success_rate", "orientation_success_rate"):  # fmt: skip
            assert key in f
        lo, hi = f["success_rate_ci95"]
        assert 0.0 <= lo <= f["success_rate"] <= hi <= 1.0
    assert summary["success_ratio_guided_vs_raw"] > 0  # add-one smoothed: finite without a raw success
    for key in ("holding_ratio_guided_vs_raw", "success_ratio_guided_vs_raw_unsmoothed", "at_goal_fraction"):
        assert key in summary
    assert summary["goal_rule"] == "turn" and summary["operators"] == "dev"
    text = Path(summary["files"]["json"]).read_text()
    saved = json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in eval.json"))
    assert len(saved["per_episode"]["+z:30"]["guided"]["success"]) == 1
    for key in ("table", "goal_plot", "holding_plot"):
        assert Path(summary["files"][key]).exists()
    assert "video" not in summary["files"]  # only with --video


def test_unguided_runs_once_per_axis_and_scores_every_goal_of_it_as_a_run_of_its_own_would(tmp_path):
    path = save_model(tiny_model(), tmp_path / "m.safetensors")
    base = dict(suite="operator-quick", checkpoint=str(path), objects="sphere_r35", seeds="2", seconds=1.0,
                json=True)  # fmt: skip

    def episodes(goals: str) -> dict:
        summary = run_eval(EvalConfig(**base, goals=goals, out=str(tmp_path / goals.replace(":", "_"))))
        return json.loads(Path(summary["files"]["json"]).read_text())["per_episode"]

    both, alone = episodes("+z:10,+z:20"), episodes("+z:20")
    assert both["+z:20"]["unguided"] == alone["+z:20"]["unguided"]
    assert both["+z:10"]["unguided"]["holding_s"] == both["+z:20"]["unguided"]["holding_s"]


def test_human_families_run_in_the_regular_eval(tmp_path):
    path = save_model(tiny_model(), tmp_path / "m.safetensors")
    cfg = EvalConfig(checkpoint=str(path), objects="cube_60", axes="+z", seeds="1", seconds=0.3, sweep="",
                     sources="human:reversal,human:tilted", out=str(tmp_path / "out"), json=True)  # fmt: skip
    summary = run_eval(cfg)
    assert set(summary["per_source"]) == {"human:reversal", "human:tilted"}
    assert summary["methods"]["guided"]["episodes"] == 2
