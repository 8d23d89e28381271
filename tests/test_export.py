import json
from pathlib import Path

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
