import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dexgen.controller.dexgen_controller import SHIPPED_METHOD
from dexgen.eval.teleop_eval import METHODS, EvalConfig, run_eval
from dexgen.model.checkpoint import save_model
from model_helpers import tiny_model


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eval")
    path = save_model(tiny_model(), tmp / "m.safetensors")
    cfg = EvalConfig(checkpoint=str(path), objects="cube_60", axes="+z", seeds="1", seconds=0.5, sweep="0,0.3",
                     guided=replace(SHIPPED_METHOD, alpha=0.3), video=True, out=str(tmp / "out"),
                     json=True)  # fmt: skip
    return run_eval(cfg)


@pytest.fixture
def built_configs(monkeypatch):
    """The ControllerConfig of every controller the evaluation builds, in order."""
    import dexgen.eval.teleop_eval as teleop_eval

    seen = []

    class Recording(teleop_eval.DexGenController):
        def __init__(self, model, *, config, **kwargs):
            seen.append(config)
            super().__init__(model, config=config, **kwargs)

    monkeypatch.setattr(teleop_eval, "DexGenController", Recording)
    return seen


def test_every_method_is_reported_with_intervals(summary):
    assert set(summary["methods"]) == set(METHODS)
    for figures in summary["methods"].values():
        for key in ("holding_s_median", "progress_rad_per_s_median", "follow_error_median"):
            assert key in figures
        lo, hi = figures["holding_s_ci95"]
        assert lo <= figures["holding_s_median"] <= hi <= 0.5
        assert figures["episodes"] == 2  # one object, one episode, two sources
    assert set(summary["per_source"]) == {"kinematic", "corrupted:mixed"}
    assert summary["holding_ratio_guided_vs_raw"] > 0
    assert summary["config"]["wrist"] == "palm_down"  # the quick suite's orientation: its shipped experts ran
    assert summary["model_wrists"] == ["palm_up"]  # a record without a dataset: read as palm up
    assert summary["config"]["guided"]["candidates"] == 8  # the shipped best-of-candidates guided method


def test_a_model_without_a_rotation_predictor_samples_one_plan_unless_asked_for_more(tmp_path):
    path = save_model(tiny_model(rotation_hidden=0), tmp_path / "m.safetensors")
    base = dict(checkpoint=str(path), objects="cube_60", axes="+z", seeds="1", seconds=0.1, sweep="",
                out=str(tmp_path / "out"), json=True)  # fmt: skip
    assert run_eval(EvalConfig(**base))["config"]["guided"]["candidates"] == 1
    with pytest.raises(ValueError, match="candidates 4 needs a model with a rotation predictor"):
        run_eval(EvalConfig(**base, guided=replace(SHIPPED_METHOD, candidates=4)))


def test_a_wrist_without_shipped_experts_is_named(tmp_path):
    from dexgen.rl.expert import ExpertError

    path = save_model(tiny_model(), tmp_path / "m.safetensors")
    with pytest.raises(ExpertError, match="rotate\\+z_sideways.safetensors"):
        run_eval(EvalConfig(checkpoint=str(path), wrist="sideways", objects="cube_60", axes="+z", seconds=0.1,
                            out=str(tmp_path / "out"), json=True))  # fmt: skip


def test_files_are_written(summary):
    files = summary["files"]
    for key in ("json", "table", "sweep_plot", "holding_plot", "video"):
        assert Path(files[key]).exists(), key
    saved = json.loads(Path(files["json"]).read_text())
    assert saved["suite"] == "quick"
    episodes = saved["per_episode"]["kinematic"]["guided"]  # every episode's figures, for re-analysis
    assert (
        len(episodes["holding_s"])
        == len(episodes["progress_rad_per_s"])
        == summary["methods"]["guided"]["episodes"] // 2
    )
    assert float(np.median(saved["per_episode"]["kinematic"]["raw"]["holding_s"])) == pytest.approx(
        summary["per_source"]["kinematic"]["raw"]["holding_s_median"]
    )
    assert "| guided |" in Path(files["table"]).read_text()
    assert saved["hand_objects"] == ["cube_60"] and saved["per_object"]["cube_60"]["guided"]["episodes"] == 2
    assert "| cube_60 |" in Path(files["table"]).read_text()  # the per-object table
    low, high = summary["holding_ratio_ci95"]  # the ratios' bootstrap intervals
    assert low <= summary["holding_ratio_guided_vs_raw"] <= high and len(summary["progress_ratio_ci95"]) == 2
    assert "95 % CI" in Path(files["table"]).read_text()
    hold = (
        saved["per_episode"]["kinematic"]["guided"]["holding_s"]
        + saved["per_episode"]["corrupted:mixed"]["guided"]["holding_s"]
    )
    last = list(summary["held_fraction"]["guided"])[-1]  # the horizon: the share that never dropped the object
    assert summary["held_fraction"]["guided"][last] == pytest.approx(1 - summary["methods"]["guided"]["drop_rate"])
    assert summary["held_fraction"]["guided"][last] == pytest.approx(np.mean(np.array(hold) >= float(last) - 1e-6))
    assert "still holding at" in Path(files["table"]).read_text()
    assert [p["alpha"] for p in summary["sweep"]["kinematic"]] == [0.0, 0.3]
    swept = saved["per_episode_sweep"]  # every swept strength's episodes too: the chosen α's are the guided ones
    assert set(swept) == {"0", "0.3"} and swept["0.3"]["kinematic"] == episodes
    assert swept["0"]["kinematic"] == saved["per_episode"]["kinematic"]["unguided"]


def test_bad_suite_and_source_are_named(tmp_path):
    with pytest.raises(ValueError, match="unknown suite"):
        EvalConfig(suite="huge").resolved()
    path = save_model(tiny_model(), tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match="unknown command source"):
        run_eval(EvalConfig(checkpoint=str(path), objects="cube_60", axes="+z", seconds=0.1, sources="telepathy",
                            sweep="", out=str(tmp_path), json=True))  # fmt: skip


def test_a_guided_flag_reaches_the_controller_of_the_guided_method_only(tmp_path, built_configs, capsys):
    from dexgen.cli import main

    path = save_model(tiny_model(mode="primitive", mode_dropout=0.1), tmp_path / "m.safetensors")
    args = ["eval", "--checkpoint", str(path), "--objects", "cube_60", "--axes=+z", "--seconds", "0.2", "--sources",
            "kinematic", "--seeds", "1", "--sweep", "", "--out", str(tmp_path / "out"), "--json",
            "--guided.alpha", "0.3", "--guided.candidates", "2", "--guided.replan-every", "2"]  # fmt: skip
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["config"]["guided"]["candidates"] == 2
    guided = [c for c in built_configs if c.alpha > 0]
    assert guided and all(c == replace(SHIPPED_METHOD, alpha=0.3, candidates=2, replan_every=2, seed=1)
                          for c in guided)  # fmt: skip
    unguided = [c for c in built_configs if c.alpha == 0]  # the sampler's settings apply to it too, nothing else
    assert unguided and all(c.replan_every == 2 and c.candidates == 1 for c in unguided)


def test_pooled_sweep_matches_the_headline_figures_at_the_chosen_strength(summary):
    points = {p["alpha"]: p for p in summary["sweep_overall"]}
    assert sorted(points) == [0.0, 0.3]
    chosen, unguided = points[0.3], points[0.0]
    assert chosen["holding_s_median"] == summary["methods"]["guided"]["holding_s_median"]
    assert chosen["holding_ratio_vs_raw"] == pytest.approx(summary["holding_ratio_guided_vs_raw"])
    assert chosen["progress_ratio_vs_expert"] == pytest.approx(summary["progress_ratio_guided_vs_expert"])
    assert unguided["progress_rad_per_s_median"] == summary["methods"]["unguided"]["progress_rad_per_s_median"]
    assert "all sources pooled" in Path(summary["files"]["table"]).read_text()


def test_threads_caps_pytorch_too(tmp_path, monkeypatch):
    import torch

    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    path = save_model(tiny_model(), tmp_path / "m.safetensors")
    run_eval(EvalConfig(checkpoint=str(path), objects="cube_60", axes="+z", seeds="1", seconds=0.1, sources="kinematic",
                        sweep="", threads=1, out=str(tmp_path / "out"), json=True))  # fmt: skip
    assert calls == [1]


def test_mode_from_intent_is_on_for_a_model_with_an_unknown_mode_and_off_otherwise(tmp_path, built_configs):
    seen = built_configs
    moded = save_model(tiny_model(mode="primitive", mode_dropout=0.2), tmp_path / "mode.safetensors")
    base = dict(objects="cube_60", axes="+z,-z", seeds="1", seconds=0.1, sources="kinematic", sweep="",
                out=str(tmp_path / "out"), json=True)  # fmt: skip
    assert run_eval(EvalConfig(checkpoint=str(moded), **base))["config"]["guided"]["mode_from_intent"] is True
    guided = [c for c in seen if c.alpha > 0]
    # the modes come from the model (its training data's primitives), not from the suite's axes
    assert guided and all(c.mode_from_intent and c.intent_modes is None for c in guided)
    assert all(c.rigid_alpha_scale == SHIPPED_METHOD.rigid_alpha_scale for c in guided)
    assert all(not c.mode_from_intent for c in seen if c.alpha == 0)  # unguided: the unknown mode
    plain = save_model(tiny_model(), tmp_path / "plain.safetensors")
    assert run_eval(EvalConfig(checkpoint=str(plain), **base))["config"]["guided"]["mode_from_intent"] is False


@pytest.mark.parametrize(
    "field, value, message",
    [("episodes", 0, "episodes must be at least 1, got 0"),
     ("seconds", 0.0, "seconds must be finite and > 0, got 0.0"),
     ("sweep", "0,nan", "sweep entry must be finite and >= 0, got nan"),
     ("sources", "corrupted:bogus", "unknown corruption preset 'bogus'"),
     ("wrist", "bogus", "wrist must be one of palm_up"),
     ("seeds", ",", "seeds: none given")],
)  # fmt: skip
def test_bad_values_are_refused_when_the_config_is_made(field, value, message):
    with pytest.raises(ValueError, match=message):
        EvalConfig(**{field: value})


def test_a_bad_replay_recording_is_named_before_any_rollout(tmp_path, monkeypatch):
    import dexgen.eval.teleop_eval as teleop_eval

    rollouts = []
    real = teleop_eval.rollout
    monkeypatch.setattr(teleop_eval, "rollout", lambda *a, **k: rollouts.append(1) or real(*a, **k))
    np.savez(tmp_path / "huge_dt.npz", tips=np.zeros((3, 4, 3)) + 0.05, dt=np.array(1e6))
    path = save_model(tiny_model(), tmp_path / "m.safetensors")
    for source, message in ((f"replay:{tmp_path / 'missing.npz'}", "no such file"),
                            (f"replay:{tmp_path / 'huge_dt.npz'}", "longer than")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            run_eval(EvalConfig(checkpoint=str(path), suite="full", objects="cube_60", axes="+z", seeds="1",
                                sources=f"kinematic,{source}", out=str(tmp_path / "out"), json=True))  # fmt: skip
    assert rollouts == []


def test_a_model_that_never_acts_fails_loudly_and_rejections_are_counted(tmp_path, summary):
    import torch

    counts = summary["rejected_outputs"]
    assert set(counts) == {"unguided", "guided"}  # the sweep's α 0 is the unguided run
    assert counts["guided"]["outputs"] == 2 * 10 and counts["guided"]["rejected"] == 0  # two sources, 0.5 s
    model = tiny_model()
    with torch.no_grad():
        model.idm.net[-1].bias.fill_(float("nan"))
    path = save_model(model, tmp_path / "nan.safetensors")
    with pytest.raises(ValueError, match="the unguided method never acted"):
        run_eval(EvalConfig(checkpoint=str(path), objects="cube_60", axes="+z", seeds="1", seconds=0.1,
                            sources="kinematic", sweep="", out=str(tmp_path / "out"), json=True))  # fmt: skip


def test_eval_json_is_strict_json_where_a_ratio_is_infinite(tmp_path):
    from dexgen.eval.teleop_eval import write_report
    from dexgen.eval.teleop_report import Episodes

    def episodes(progress):
        return Episodes([1.0, 2.0], [progress, progress], [3.0, 4.0])

    results = {"kinematic": {"raw": episodes(0.1), "unguided": episodes(0.0), "guided": episodes(0.2),
                             "expert": episodes(0.0)}}  # fmt: skip
    cfg = EvalConfig(seconds=2.0, sweep="", out=str(tmp_path)).resolved()
    summary = write_report({"results": results, "swept": {}, "frames": {}}, cfg)
    assert summary["progress_ratio_guided_vs_expert"] == float("inf")  # the expert made no progress

    def refuse(constant):
        raise AssertionError(f"eval.json holds {constant}, which is not JSON")

    saved = json.loads(Path(summary["files"]["json"]).read_text(), parse_constant=refuse)
    assert saved["progress_ratio_guided_vs_expert"] is None


def test_a_model_that_observes_gravity_and_takes_an_intent_runs_in_the_suites(tmp_path):
    path = save_model(tiny_model(gravity_obs=True, obs_dim=47, intent=True), tmp_path / "m.safetensors")
    base = dict(checkpoint=str(path), objects="cube_60", axes="+z", seeds="1", seconds=0.1, sweep="",
                wrist="palm_down", out=str(tmp_path / "out"), json=True)  # fmt: skip
    out = run_eval(EvalConfig(**base))  # the controller is given the palm-frame gravity of the env's wrist
    for method in ("guided", "unguided"):
        assert out["methods"][method]["episodes"] == 2


def test_the_guided_controller_reads_a_command_about_the_sources_own_fingertips(tmp_path, monkeypatch):
    from dexgen.controller.dexgen_controller import DexGenController

    given = []
    act = DexGenController.act

    def recording_act(self, observation, command=None, **kw):
        if command is not None:
            given.append(kw.get("command_tips"))
        return act(self, observation, command, **kw)

    monkeypatch.setattr(DexGenController, "act", recording_act)
    path = save_model(tiny_model(gravity_obs=True, obs_dim=47, intent=True), tmp_path / "m.safetensors")
    cfg = EvalConfig(checkpoint=str(path), objects="cube_60", axes="+z", seeds="1", seconds=0.2, sweep="",
                     wrist="palm_down", sources="kinematic,human:tilted", out=str(tmp_path / "out"),
                     json=True)  # fmt: skip
    run_eval(cfg)
    own = [t for t in given if t is not None]
    assert any(t is None for t in given)  # the kinematic source turns the robot's own fingertips
    assert own and all(t.shape[1:] == (4, 3) and np.isfinite(t).all() for t in own)  # the person's hand


def test_tracked_human_hand_keypoints_are_a_command_source(tmp_path):
    from dexgen.teleop.human_hand import HUMAN_DEMO

    path = save_model(tiny_model(), tmp_path / "m.safetensors")
    base = dict(checkpoint=str(path), objects="cube_60", axes="+z", seeds="1", seconds=0.2, sweep="",
                wrist="palm_down", out=str(tmp_path / "out"), json=True)  # fmt: skip
    out = run_eval(EvalConfig(**base, sources=f"keypoints:{HUMAN_DEMO}"))
    assert out["methods"]["guided"]["episodes"] >= 1 and out["methods"]["raw"]["episodes"] >= 1
    with pytest.raises(ValueError, match="no keypoint file"):
        run_eval(EvalConfig(**base, sources=f"keypoints:{tmp_path / 'missing.npz'}"))
    with pytest.raises(ValueError, match="needs robot_tips"):
        run_eval(EvalConfig(**base, sources=f"keypoints:{HUMAN_DEMO}", keypoint_calibration=str(HUMAN_DEMO)))
