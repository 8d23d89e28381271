import json
from pathlib import Path

import pytest

from dexgen.cli import main
from dexgen.rl.export import ExportExpertConfig, export_expert
from dexgen.rl.train import train_expert
from dexgen.sim.objects import TRAIN_OBJECTS
from rl_helpers import tiny_config


def test_export_writes_weights_and_a_complete_record(tmp_path, capsys):
    run = train_expert(tiny_config(tmp_path, iterations=1, run_name="x"), progress=False)
    out = export_expert(ExportExpertConfig(run_dir=run["run_dir"], episodes=1, seconds=0.2, threads=1))
    path = Path(out["path"])
    assert path.exists() and path.parent == Path(run["run_dir"])
    record = json.loads(path.with_suffix(".json").read_text())
    for key in ("command", "seed", "revision", "env_steps", "wall_s", "iterations", "eval"):
        assert key in record, key
    assert set(record["eval"]["train"]["per_object"]) == {o.name for o in TRAIN_OBJECTS}
    assert record["eval"]["heldout"]["overall"]["episodes"] == 7  # one per held-out object
    # the exported weights evaluate through the command line
    assert main(["eval-expert", str(path), "--episodes", "1", "--seconds", "0.2", "--objects", "cube_60",
                 "--threads", "1", "--json"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["overall"]["episodes"] == 1


def test_eval_expert_without_weights_is_a_one_line_error(tmp_path, capsys):
    assert main(["eval-expert", str(tmp_path / "none.safetensors"), "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no expert weights" in err


def test_an_expert_of_another_wrist_is_named_and_evaluated_in_it(tmp_path):
    run = train_expert(tiny_config(tmp_path, iterations=1, run_name="d", wrist="palm_down"), progress=False)
    out = export_expert(ExportExpertConfig(run_dir=run["run_dir"], episodes=1, seconds=0.2, threads=1))
    assert Path(out["path"]).name == "rotate+z_palm_down.safetensors"
    record = json.loads(Path(out["path"]).with_suffix(".json").read_text())
    assert record["eval"]["train"]["wrist"] == "palm_down" and "--wrist palm_down" in record["eval"]["command"]


def test_eval_expert_picks_the_shipped_expert_of_the_wrist():
    from dexgen.rl.evaluate import EvalExpertConfig, load_expert_for_eval

    assert load_expert_for_eval(EvalExpertConfig(axis="-z", wrist="palm_down")).wrist == "palm_down"
    assert load_expert_for_eval(EvalExpertConfig(axis="-z")).wrist == "palm_up"


def test_the_record_names_a_command_that_trains_exactly_the_exported_iterations():
    from dexgen.rl.export import reproduce_command

    cmd = "dexgen train-expert --task rotate --axis=+z --iterations 3000 --seed 1 --max-minutes 15 --resume"
    assert reproduce_command(cmd, 175) == "dexgen train-expert --task rotate --axis=+z --seed 1 --iterations 175"
    assert reproduce_command("dexgen train-expert --iterations=50 --max-minutes=2.5", 25) == (
        "dexgen train-expert --iterations 25"
    )
    assert reproduce_command("", 10) == ""


def test_the_record_names_every_run_of_a_fine_tuned_expert():
    from dexgen.rl.export import reproduce_chain

    base = "dexgen train-expert --seed 0 --run-name a --max-minutes 20"
    tune = "dexgen train-expert --seed 0 --init-from runs/experts/a/last.pt --run-name b --max-minutes 60"
    history = [
        {"command": base, "from_iteration": 0, "to_iteration": 175},
        {"command": base + " --resume", "from_iteration": 175, "to_iteration": 1700},
        {"command": tune, "from_iteration": 0, "to_iteration": 1050, "init_from": "runs/experts/a/last.pt"},
    ]
    assert reproduce_chain(history) == [
        "dexgen train-expert --seed 0 --run-name a --iterations 1700",
        "dexgen train-expert --seed 0 --init-from runs/experts/a/last.pt --run-name b --iterations 1050",
    ]
    assert reproduce_chain([]) == []


def test_the_chain_retrains_a_moved_run_where_it_ended_and_exports_before_an_init_actor():
    from dexgen.rl.export import reproduce_chain

    gpu = "dexgen train-expert --axis=-z --seed 0 --device cuda --out /tmp/runs --run-name nz --max-minutes 8"
    tune = "dexgen train-expert --axis=-z --wrist palm_down --init-from runs/experts/rotate-z_s0/last.pt --run-name pd"
    again = "dexgen train-expert --axis=-z --wrist palm_down --init-actor src/shipped/rotate-z_palm_down.safetensors"
    history = [
        {"command": gpu, "from_iteration": 0, "to_iteration": 325},
        # copied to runs/experts/rotate-z_s0 (the default name) and resumed there
        {"command": "dexgen train-expert --axis=-z --seed 0 --resume", "from_iteration": 325, "to_iteration": 475},
        {"command": tune, "from_iteration": 0, "to_iteration": 350, "init_from": "runs/experts/rotate-z_s0/last.pt"},
        {"command": again, "from_iteration": 0, "to_iteration": 40, "init_from": "src/shipped/x.safetensors"},
    ]
    assert reproduce_chain(history) == [
        "dexgen train-expert --axis=-z --seed 0 --device cuda --iterations 475 --run-name rotate-z_s0",
        tune + " --iterations 350",
        "dexgen export-expert runs/experts/pd",
        "dexgen train-expert --axis=-z --wrist palm_down --iterations 40 "
        "--init-actor runs/experts/pd/rotate-z_palm_down.safetensors",
    ]
    # a run that ended where it started, and a start from that run's own export, are left as they were typed
    ok = "dexgen train-expert --seed 0 --init-actor runs/experts/rotate+z_s0/rotate+z.safetensors"
    history = [{"command": "dexgen train-expert --seed 0", "from_iteration": 0, "to_iteration": 5},
               {"command": ok, "from_iteration": 0, "to_iteration": 5}]  # fmt: skip
    assert reproduce_chain(history) == ["dexgen train-expert --seed 0 --iterations 5", ok + " --iterations 5"]


def test_a_grasp_to_grasp_expert_exports_without_an_axis(tmp_path):
    run = train_expert(tiny_config(tmp_path, iterations=1, run_name="g", task="grasp_to_grasp"), progress=False)
    out = export_expert(ExportExpertConfig(run_dir=run["run_dir"], episodes=1, seconds=0.2, threads=1))
    assert Path(out["path"]).name == "grasp_to_grasp.safetensors"
    record = json.loads(Path(out["path"]).with_suffix(".json").read_text())
    assert "--axis" not in record["eval"]["command"] and record["reproduce"].endswith("--iterations 1")
    assert record["reproduce_chain"] == [record["reproduce"]]
    fig = record["eval"]["train"]["overall"]
    assert "success_rate" in fig and (fig["success_s_median"] is None or 0 < fig["success_s_median"] <= 0.2)


def test_an_expert_still_below_full_gravity_is_not_shipped(tmp_path, monkeypatch):
    import dexgen.rl.export as export_mod
    from dexgen.rl.train import GravityCurriculum

    shipped = tmp_path / "shipped.safetensors"  # were the guard to fail, nothing shipped is overwritten
    monkeypatch.setattr(export_mod, "shipped_expert_path", lambda *a, **k: shipped)

    never = GravityCurriculum(start=0.5, max_drops=1e-9)  # drops never fall that low: it stays at half gravity
    train_expert(tiny_config(tmp_path, iterations=2, run_name="g", gravity=never), progress=False)
    with pytest.raises(ValueError, match="trains at 0.5 of full gravity so far"):
        export_expert(ExportExpertConfig(run_dir=str(tmp_path / "g"), ship=True, episodes=1, seconds=0.2))
    assert not shipped.exists()
