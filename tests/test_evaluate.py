import math
from pathlib import Path

import pytest

from dexgen.rl.evaluate import EvalExpertConfig, evaluate_expert, wilson_interval
from dexgen.rl.expert import Expert
from dexgen.rl.export import expert_from_checkpoint
from dexgen.rl.train import TrainExpertConfig, make_env, train_expert
from dexgen.sim.objects import SHAPE_CODE_DIM
from rl_helpers import tiny_config


def test_eval_json_has_every_key(tmp_path):
    run = train_expert(tiny_config(tmp_path, iterations=1, run_name="v"), progress=False)
    expert = expert_from_checkpoint(Path(run["run_dir"]) / "last.pt")
    cfg = EvalExpertConfig(episodes=2, seconds=0.5, objects="cube_60,sphere_r35", threads=1,
                           video=str(tmp_path / "ep.gif"))  # fmt: skip
    out = evaluate_expert(expert, cfg, progress_bar=False)
    for fig in (out["overall"], *out["per_object"].values()):
        assert {
            "angvel_rad_per_s",
            "angvel_rad_per_s_median",
            "drop_rate",
            "drop_rate_ci95",
            "holding_s_mean",
            "success_rate",
            "episodes",
        } <= set(fig)
        assert 0 <= fig["holding_s_mean"] <= 0.5
        lo, hi = fig["drop_rate_ci95"]
        assert 0 <= lo <= fig["drop_rate"] <= hi <= 1
    assert out["overall"]["episodes"] == 4 and set(out["per_object"]) == {"cube_60", "sphere_r35"}
    assert out["wrist"] == "palm_up"
    down = evaluate_expert(expert, EvalExpertConfig(episodes=1, seconds=0.2, objects="cube_60", threads=1,
                                                    wrist="palm_down"), progress_bar=False)  # fmt: skip
    assert down["wrist"] == "palm_down"
    assert Path(out["video"]).exists()
    with pytest.raises(ValueError, match="trained for task 'rotate'"):
        evaluate_expert(expert, EvalExpertConfig(task="translate", axis="+x"), progress_bar=False)


def test_an_expert_trained_with_object_weights_is_evaluated_on_equal_episodes(tmp_path):
    run = train_expert(tiny_config(tmp_path, iterations=1, object_weights="sphere_r30=3"), progress=False)
    expert = expert_from_checkpoint(Path(run["run_dir"]) / "last.pt")
    out = evaluate_expert(expert, EvalExpertConfig(episodes=2, seconds=0.2, objects="cube_60,sphere_r30", threads=1),
                          progress_bar=False)  # fmt: skip
    assert {k: v["episodes"] for k, v in out["per_object"].items()} == {"cube_60": 2, "sphere_r30": 2}


def test_time_to_success_is_the_median_over_the_episodes_that_succeeded():
    import numpy as np

    from dexgen.rl.evaluate import _summary

    fig = _summary(np.array([5.0, 5.0, 5.0]), np.zeros(3, bool), np.zeros(3), np.array([True, False, True]), 5.0,
                   np.array([0.5, 5.0, 1.5]))  # fmt: skip
    assert fig["success_rate"] == 2 / 3 and fig["success_s_median"] == 1.0
    assert _summary(np.ones(1), np.ones(1, bool), np.zeros(1), np.zeros(1, bool), 5.0, np.ones(1))[
        "success_s_median"] is None  # fmt: skip


def test_wilson_interval():
    lo, hi = wilson_interval(9, 80)  # the shipped +z expert's 11.25 %: 10 % is inside
    assert lo == pytest.approx(0.0603, abs=1e-4) and hi == pytest.approx(0.2002, abs=1e-4)
    assert wilson_interval(0, 80)[0] == 0.0 and wilson_interval(80, 80)[1] == pytest.approx(1.0)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(32, 320)[1] - wilson_interval(32, 320)[0] < hi - lo  # more episodes, narrower


@pytest.mark.parametrize(
    ("drops", "episodes", "percent"),
    [(112, 1280, (7.3, 10.4)), (74, 720, (8.3, 12.7)), (25, 320, (5.3, 11.3)), (21, 224, (6.2, 13.9))],
)
def test_wilson_interval_gives_the_published_figures(drops, episodes, percent):
    """The intervals in docs/results.md, computed before scipy's interval replaced a hand-written one."""
    assert tuple(round(100 * x, 1) for x in wilson_interval(drops, episodes)) == percent


def test_wilson_interval_is_the_score_interval():
    z = 1.959963984540054  # the normal distribution's 97.5 % point
    for k, n in [(0, 1), (1, 3), (9, 80), (40, 80), (112, 1280), (999, 1000)]:
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        assert wilson_interval(k, n) == pytest.approx((max(0.0, centre - half), min(1.0, centre + half)), abs=1e-12)


def test_an_expert_that_sees_the_shape_code_is_evaluated_with_it(tmp_path):
    run = train_expert(tiny_config(tmp_path, iterations=1, shape_obs=True), progress=False)
    expert = expert_from_checkpoint(Path(run["run_dir"]) / "last.pt")
    expert.save(tmp_path / "coded.safetensors")  # as export-expert ships it: the record carries the flag
    shipped = Expert.load(tmp_path / "coded.safetensors")
    assert shipped.record["env"]["shape_obs"] is True
    plain = make_env(tiny_config(tmp_path), num_envs=1).obs_dims
    assert shipped.record["obs_dims"] == {"policy": plain["policy"], "privileged": plain["privileged"] + SHAPE_CODE_DIM}
    out = evaluate_expert(shipped, EvalExpertConfig(episodes=1, seconds=0.2, objects="cube_60,sphere_r35", threads=1),
                          progress_bar=False)  # fmt: skip
    assert out["overall"]["episodes"] == 2


def test_zero_environments_are_refused_not_replaced_by_the_training_count():
    with pytest.raises(ValueError, match="num_envs must be at least 1, got 0"):
        make_env(TrainExpertConfig(envs=512, objects="cube_60"), num_envs=0)  # not 512 environments
    for field, value, message in (("episodes", 0, "episodes must be at least 1, got 0"),
                                  ("episodes", -7, "episodes must be at least 1, got -7"),
                                  ("seconds", float("nan"), "seconds must be finite and > 0"),
                                  ("wrist", "bogus", "wrist must be one of")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            EvalExpertConfig(**{field: value})


def test_training_settings_are_refused_by_their_own_names():
    for field, value, message in (("envs", -7, "envs must be at least 1, got -7"),
                                  ("episode_seconds", float("nan"), "episode_seconds must be finite and > 0"),
                                  ("wrist", "bogus", "wrist must be one of"),
                                  ("grasp_dir", "/nowhere", "grasp_dir '/nowhere' has no palm_up/")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            TrainExpertConfig(**{field: value})


@pytest.mark.parametrize("axis", ["nan,0,1", "0,0,0", "+w"])
def test_a_bad_axis_is_named_when_the_config_is_made(axis):
    from dexgen.rl.evaluate import EvalExpertConfig

    with pytest.raises(ValueError, match="axis"):
        EvalExpertConfig(task="rotate", axis=axis)


def test_several_axes_are_evaluated_one_by_one(tmp_path):
    from dexgen.rl.evaluate import evaluate_axes

    run = train_expert(tiny_config(tmp_path, iterations=1, run_name="a", axis="all", sphere_share=0.5), progress=False)
    expert = expert_from_checkpoint(Path(run["run_dir"]) / "last.pt")
    cfg = EvalExpertConfig(axis="+x,-z", episodes=2, seconds=0.3, objects="cube_60", threads=1)
    out = evaluate_axes(expert, cfg, progress_bar=False)
    assert set(out["per_axis"]) == {"+x", "-z"} and out["axis"] == "+x,-z"
    single = evaluate_expert(expert, EvalExpertConfig(axis="-z", episodes=2, seconds=0.3, objects="cube_60",
                                                      threads=1), progress_bar=False)  # fmt: skip
    assert out["per_axis"]["-z"]["overall"] == single["overall"]  # each axis as if evaluated alone
    one = EvalExpertConfig(axis="0,0,1", episodes=1, seconds=0.2, objects="cube_60", threads=1)
    assert evaluate_axes(expert, one, progress_bar=False)["overall"]["episodes"] == 1


def test_translate_figures_read_reaching_and_final_error_off_the_distances():
    import numpy as np

    from dexgen.rl.evaluate import _translate_summary, translate_figures

    nan = np.nan
    distance = np.array([[0.010, 0.020, 0.008, nan],  # four episodes over five 0.1 s steps, metres
                         [0.006, 0.012, 0.004, nan],
                         [0.004, 0.009, nan, nan],    # the third drops here, the fourth never held
                         [0.005, 0.007, nan, nan],
                         [0.0052, 0.006, nan, nan]])  # fmt: skip
    fig = translate_figures(distance, 0.1, 0.005)
    np.testing.assert_array_equal(fig["reached"], [True, False, True, False])
    np.testing.assert_allclose(fig["reach_s"], [0.3, nan, 0.2, nan])
    np.testing.assert_allclose(fig["closest"], [0.004, 0.006, 0.004, nan])
    np.testing.assert_allclose(fig["final"], [0.0052, 0.006, nan, nan])  # a drop leaves no final error
    summary = _translate_summary({}, np.array([0.004, 0.006, nan]), np.array([True, False, True]), 0.005)
    assert summary == {"reached_share": pytest.approx(2 / 3), "at_target_share": pytest.approx(1 / 3),
                       "final_error_mm_median": pytest.approx(5.0), "final_error_episodes": 2}  # fmt: skip


def _zero_action_translate_expert(tmp_path):
    """A translation expert of a one-iteration run whose last layer is zeroed: it never moves the fingers, so its
    objects stay about where they start, at their commanded offsets (12-20 mm) from their targets."""
    import torch

    cfg = tiny_config(tmp_path, iterations=1, task="translate", axis="all", objects="cube_60", translate_min=0.012,
                      translate_max=0.02, run_name="tr")  # fmt: skip
    run = train_expert(cfg, progress=False)
    expert = expert_from_checkpoint(Path(run["run_dir"]) / "last.pt")
    last = [m for m in expert.actor.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
    return expert


def test_eval_expert_reports_translation_reaching_and_final_error(tmp_path):
    from dexgen.rl.evaluate import evaluate_axes

    expert = _zero_action_translate_expert(tmp_path)
    cfg = EvalExpertConfig(task="translate", axis="all", episodes=2, seconds=1.0, objects="cube_60", threads=1)
    out = evaluate_axes(expert, cfg, progress_bar=False)  # 'all': one evaluation over offsets at any angle
    fig = out["overall"]
    assert fig["episodes"] == 2 and fig["drop_rate"] == 0.0
    assert fig["reached_share"] == 0.0 == fig["success_rate"] and fig["success_s_median"] is None
    assert fig["at_target_share"] == 0.0
    assert fig["final_error_episodes"] == 2 and 9.0 < fig["final_error_mm_median"] < 23.0  # held where it was
    assert 9.0 < fig["closest_mm_median"] <= fig["final_error_mm_median"] + 1e-9
    assert out["per_object"]["cube_60"] == fig
    near = evaluate_axes(expert, EvalExpertConfig(task="translate", axis="all", episodes=2, seconds=1.0,
                                                  objects="cube_60", threads=1, reach_tolerance=0.05),
                         progress_bar=False)["overall"]  # fmt: skip
    assert near["reached_share"] == 1.0 and near["success_s_median"] == pytest.approx(0.05)  # at the first step
    assert near["at_target_share"] == 1.0
    assert near["final_error_mm_median"] == fig["final_error_mm_median"]  # the same episodes
    per_axis = evaluate_axes(expert, EvalExpertConfig(task="translate", axis="+x,-y", episodes=1, seconds=0.2,
                                                      objects="cube_60", threads=1), progress_bar=False)  # fmt: skip
    assert set(per_axis["per_axis"]) == {"+x", "-y"}
    with pytest.raises(ValueError, match="reach_tolerance must be finite and > 0"):
        EvalExpertConfig(task="translate", axis="all", reach_tolerance=0.0)


def test_hold_still_keeps_the_grasp_and_gravity_scales_the_physics():
    from dataclasses import replace

    from dexgen.rl.evaluate import load_expert_for_eval

    cfg = EvalExpertConfig(axis="+z", wrist="palm_down", episodes=1, seconds=0.5, objects="cube_60,sphere_r30",
                           threads=1)  # fmt: skip
    expert = load_expert_for_eval(cfg)
    turns = evaluate_expert(expert, replace(cfg, gravity=0.0), progress_bar=False)
    still = evaluate_expert(expert, replace(cfg, gravity=0.0, hold_still=True), progress_bar=False)
    heavy = evaluate_expert(expert, replace(cfg, hold_still=True), progress_bar=False)
    assert turns["overall"]["angvel_rad_per_s"] > 0.5  # the shipped +z expert turns the objects
    assert abs(still["overall"]["angvel_rad_per_s"]) < 0.05  # fixed targets: the grasp only settles
    assert still["gravity"] == 0.0 and still["hold_still"] is True
    assert heavy["overall"]["angvel_rad_per_s"] != still["overall"]["angvel_rad_per_s"]  # gravity acts
    with pytest.raises(ValueError, match="gravity"):
        EvalExpertConfig(gravity=1.5)


def test_training_starts_from_the_grasp_dir_and_evaluation_from_the_shipped_grasps(tmp_path):
    from dexgen.sim.grasps import GraspCache, cache_path, load_grasps

    shipped = load_grasps("cube_60", "palm_up")
    first_two = (getattr(shipped, k)[:2] for k in ("hand_q", "targets", "object_pos", "object_quat"))
    GraspCache("cube_60", "palm_up", *first_two, meta=dict(shipped.meta)).save(
        cache_path("cube_60", "palm_up", root=tmp_path)
    )
    cfg = TrainExpertConfig(envs=1, objects="cube_60", threads=1, grasp_dir=str(tmp_path))
    assert len(make_env(cfg).grasps["cube_60"]) == 2
    tiny = tiny_config(tmp_path / "runs", iterations=1, run_name="g", objects="cube_60", grasp_dir=str(tmp_path))
    run = train_expert(tiny, progress=False)
    from dexgen.rl.evaluate import expert_env

    env = expert_env(expert_from_checkpoint(Path(run["run_dir"]) / "last.pt"), objects="cube_60", episodes=1,
                     seconds=0.5, seed=0, threads=1)  # fmt: skip
    assert len(env.grasps["cube_60"]) == len(shipped)
