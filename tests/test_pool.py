import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from dexgen.cli import main
from dexgen.controller.dexgen_controller import SHIPPED_METHOD, ControllerConfig
from dexgen.eval.pool import GUIDED, REMOVED, PoolConfig, PoolError, pool_runs, run_pool
from dexgen.eval.teleop_eval import EvalConfig, for_model, run_eval, weights_sha256
from dexgen.model.checkpoint import load_model, save_model, shipped_model_path
from model_helpers import tiny_model

OLD_RECORD = Path(__file__).parent / "data" / "eval_full_s81-82_shipped.json"
"""A run of the shipped method recorded before its settings were nested under ``guided``, with options removed
since (``evals/full_s81-85_shipped``: its config, and its +z episodes of seeds 81 and 82)."""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two real tiny evaluations of one setting on seeds 1 and 2, two objects: their eval.json paths."""
    tmp = tmp_path_factory.mktemp("pool")
    path = save_model(tiny_model(), tmp / "m.safetensors")
    out = []
    for seed in (1, 2):
        cfg = EvalConfig(checkpoint=str(path), objects="cube_45,cube_60", axes="+z", seeds=str(seed), seconds=0.5,
                         sweep="", guided=replace(SHIPPED_METHOD, alpha=0.3), out=str(tmp / f"s{seed}"),
                         json=True)  # fmt: skip
        out.append(run_eval(cfg)["files"]["json"])
    return out


def _edited(path: str, tmp_path: Path, name: str, guided: dict | None = None, **config) -> str:
    """A copy of the record at ``path`` with settings changed: ``config`` at the top, ``guided`` in its nested
    ``guided`` settings."""
    record = json.loads(Path(path).read_text())
    record["config"].update(config)
    if guided:
        record["config"]["guided"].update(guided)
    p = tmp_path / name
    p.write_text(json.dumps(record))
    return str(p)


def test_pooled_figures_are_those_of_all_episodes_together(runs, tmp_path):
    summary, per_episode = pool_runs([str(Path(runs[0]).parent), runs[1]])  # a directory or its eval.json
    one = [json.loads(Path(p).read_text()) for p in runs]
    for source, per_method in per_episode.items():
        for method, figures in per_method.items():
            both = [x for r in one for x in r["per_episode"][source][method]["holding_s"]]
            assert figures["holding_s"] == both
            assert summary["per_source"][source][method]["holding_s_median"] == pytest.approx(float(np.median(both)))
    assert summary["methods"]["guided"]["episodes"] == sum(r["methods"]["guided"]["episodes"] for r in one)
    assert summary["config"]["seeds"] == "1,2"
    ratio = summary["methods"]["guided"]["holding_s_median"] / summary["methods"]["raw"]["holding_s_median"]
    assert summary["holding_ratio_guided_vs_raw"] == pytest.approx(ratio)


def test_per_object_figures_are_those_of_each_objects_episodes(runs, tmp_path):
    summary, per_episode = pool_runs(runs)
    assert summary["hand_objects"] == ["cube_45", "cube_60"]
    for i, name in enumerate(("cube_45", "cube_60")):
        for method in ("raw", "guided", "expert"):
            # every source's episodes in the order axis, seed, hand: the object alternates
            mine = [x for pm in per_episode.values() for x in pm[method]["progress_rad_per_s"][i::2]]
            figures = summary["per_object"][name][method]
            assert figures["episodes"] == len(mine) == 2 * len(per_episode)
            assert figures["progress_rad_per_s_median"] == pytest.approx(float(np.median(mine)))
    older = []  # runs from before hand_objects was recorded: read off their settings
    for k, path in enumerate(runs):
        record = json.loads(Path(path).read_text())
        del record["hand_objects"]
        older.append(tmp_path / f"old{k}.json")
        older[-1].write_text(json.dumps(record))
    assert pool_runs([str(p) for p in older])[0]["per_object"] == summary["per_object"]


def test_the_command_writes_the_pooled_files(runs, tmp_path):
    out = run_pool(PoolConfig(runs=tuple(runs), out=str(tmp_path / "pooled"), json=True))
    saved = json.loads(Path(out["files"]["json"]).read_text())
    assert saved["pooled_from"] == runs and "per_episode" in saved
    assert Path(out["files"]["holding_plot"]).exists() and set(saved["held_fraction"]) == set(saved["methods"])
    assert "| guided |" in Path(out["files"]["table"]).read_text()
    assert main(["eval-pool", *runs, "--out", str(tmp_path / "cli"), "--json"]) == 0


def test_runs_that_do_not_pool_are_refused_with_the_reason(runs, tmp_path, capsys):
    with pytest.raises(PoolError, match="seed 1 is in both"):
        pool_runs([runs[0], runs[0]])
    with pytest.raises(PoolError, match="guided.alpha=0.45"):
        pool_runs([runs[0], _edited(runs[1], tmp_path, "a.json", guided={"alpha": 0.45})])
    assert pool_runs([runs[0], _edited(runs[1], tmp_path, "b.json", out="elsewhere", threads=1)])  # not a setting
    assert pool_runs([runs[0], _edited(runs[1], tmp_path, "seed.json", guided={"seed": 7})])  # each run's own
    with pytest.raises(PoolError, match="at least two"):
        pool_runs([runs[0]])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(PoolError, match="is not JSON"):
        pool_runs([runs[0], str(bad)])
    bad.write_text("{}")
    with pytest.raises(PoolError, match="not an eval.json"):
        pool_runs([runs[0], str(bad)])
    record = json.loads(Path(runs[1]).read_text())
    del record["per_episode"]["kinematic"]["guided"]["follow_error_mm"]
    bad.write_text(json.dumps(record))
    with pytest.raises(PoolError, match="malformed per_episode"):
        pool_runs([runs[0], str(bad)])
    assert main(["eval-pool", runs[0], str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dexgen eval-pool: error: cannot read") and "\n" not in err


def test_alpha_pools_the_guided_episodes_of_a_swept_strength(runs, tmp_path):
    path = save_model(tiny_model(), tmp_path / "m.safetensors")
    base = dict(checkpoint=str(path), objects="cube_60", axes="+z", seconds=0.5, json=True)
    at = {a: replace(SHIPPED_METHOD, alpha=a) for a in (0.3, 0.6)}
    swept = run_eval(EvalConfig(seeds="3", guided=at[0.3], sweep="0.6", out=str(tmp_path / "s3"), **base))
    own = run_eval(EvalConfig(seeds="4", guided=at[0.6], sweep="", out=str(tmp_path / "s4"), **base))
    swept, own = swept["files"]["json"], own["files"]["json"]
    summary, per_episode = pool_runs([swept, own], alpha=0.6)
    records = [json.loads(Path(p).read_text()) for p in (swept, own)]
    want = records[0]["per_episode_sweep"]["0.6"]["kinematic"]["holding_s"]
    want = want + records[1]["per_episode"]["kinematic"]["guided"]["holding_s"]
    assert per_episode["kinematic"]["guided"]["holding_s"] == want
    raw = [x for r in records for x in r["per_episode"]["kinematic"]["raw"]["holding_s"]]
    assert per_episode["kinematic"]["raw"]["holding_s"] == raw
    assert summary["config"]["guided"]["alpha"] == 0.6
    with pytest.raises(PoolError, match="alpha=0.6"):  # without --alpha the runs' own strengths differ
        pool_runs([swept, own])
    with pytest.raises(PoolError, match="no guided episodes at alpha 0.6"):
        pool_runs([runs[0], own], alpha=0.6)


def _shipped_now(tmp_path: Path, seeds: str) -> str:
    """A record of the shipped method as ``dexgen eval --suite full --sweep ""`` writes it now (settings of this
    code, the shipped palm-down model), with the old record's figures (pooling reads only settings and figures)."""
    path = shipped_model_path("palm_down")
    cfg = for_model(EvalConfig(suite="full", seeds=seeds, sweep="", out="runs/now", json=True), load_model(path))
    old = json.loads(OLD_RECORD.read_text())
    record = {**old, "config": asdict(cfg) | {"model_sha256": weights_sha256(path)}}
    (tmp_path / "now.json").write_text(json.dumps(record))
    return str(tmp_path / "now.json")


def test_an_older_record_of_the_shipped_method_pools_with_one_of_this_code(tmp_path):
    now = _shipped_now(tmp_path, "1,2")
    assert json.loads(OLD_RECORD.read_text())["config"]["model_sha256"] == json.loads(Path(now).read_text())[
        "config"]["model_sha256"]  # fmt: skip
    summary, per_episode = pool_runs([str(OLD_RECORD), now])
    assert summary["config"]["seeds"] == "1,2,81,82" and len(per_episode["kinematic"]["guided"]["holding_s"]) == 28
    # a setting the older record lacks was ControllerConfig's default: the behaviour before the setting existed
    older = json.loads(OLD_RECORD.read_text())
    del older["config"]["command_gain"]
    (tmp_path / "gain.json").write_text(json.dumps(older))
    with pytest.raises(PoolError, match="guided.command_gain=1.0, .* with 1.5"):
        pool_runs([now, str(tmp_path / "gain.json")])
    assert set(GUIDED) == {f for f in asdict(ControllerConfig())} - {"seed"}


@pytest.mark.parametrize(("option", "value"), [("rotation_weight", 1.0), ("rigid_follow_weight", 0.5),
                                               ("risk_threshold", 0.5), ("ranking", "onward"),
                                               ("partial_noise_step", 3)])  # fmt: skip
def test_a_removed_option_that_was_on_is_another_method(tmp_path, option, value):
    assert REMOVED[option] != value
    record = json.loads(OLD_RECORD.read_text())
    record["config"][option] = value
    (tmp_path / "on.json").write_text(json.dumps(record))
    with pytest.raises(PoolError, match=f"{option}=.* no longer has"):
        pool_runs([_shipped_now(tmp_path, "1,2"), str(tmp_path / "on.json")])
    record["config"]["seeds"] = "83,84"
    (tmp_path / "on2.json").write_text(json.dumps(record))
    assert pool_runs([str(tmp_path / "on.json"), str(tmp_path / "on2.json")])  # runs of that method pool together


def test_runs_pool_by_the_model_s_weights_not_the_path_they_were_given_by(runs, tmp_path):
    first = json.loads(Path(runs[0]).read_text())["config"]
    assert first["model_sha256"] == weights_sha256(first["checkpoint"])
    # the same weights under another path pool; other weights, or weights unknown (an older run), do not
    assert pool_runs([runs[0], _edited(runs[1], tmp_path, "moved.json", checkpoint="elsewhere.safetensors")])
    with pytest.raises(PoolError, match="model_sha256="):
        pool_runs([runs[0], _edited(runs[1], tmp_path, "other.json", model_sha256="0" * 64)])
    older = json.loads(Path(runs[1]).read_text())
    del older["config"]["model_sha256"]
    (tmp_path / "older.json").write_text(json.dumps(older))
    with pytest.raises(PoolError, match="model_sha256="):
        pool_runs([runs[0], str(tmp_path / "older.json")])
