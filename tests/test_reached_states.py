import json
from pathlib import Path

import numpy as np
import pytest

from dexgen.cli import main
from dexgen.eval.reached_states import ReachedStatesConfig, reached_states
from dexgen.model.checkpoint import save_model
from dexgen.sim.env import EnvConfig, HandEnv
from dexgen.sim.grasps import load_grasps
from model_helpers import tiny_model


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reached")
    path = save_model(tiny_model(), tmp / "m.safetensors")
    cfg = ReachedStatesConfig(out=str(tmp / "states"), objects="cube_60,cube_45", axes="+z", sources="kinematic",
                              seconds=1.0, after_s=0.25, every_s=0.25, checkpoint=str(path), threads=1)  # fmt: skip
    return cfg, reached_states(cfg, progress=False)


def test_snapshots_of_held_objects_are_written_as_grasp_caches(written):
    cfg, summary = written
    assert summary["episodes"] == 2 and set(summary["states"]) <= {"cube_60", "cube_45"}
    assert summary["total"] == sum(summary["states"].values()) > 0
    for name, count in summary["states"].items():
        cache = load_grasps(name, "palm_down", root=Path(cfg.out))
        # snapshots at 0.25, 0.5, 0.75 and 1 s (the last step) of one episode, while it still holds the object
        assert 1 <= len(cache) == count <= 4
        assert cache.meta["command"].startswith("dexgen reached-states --out ")
        assert "--axes=+z" not in cache.meta["command"] and cache.meta["method"]["alpha"] > 0
        assert np.allclose(np.linalg.norm(cache.object_quat, axis=1), 1.0, atol=1e-6)


def test_an_environment_starts_from_the_recorded_states(written):
    cfg, summary = written
    name = sorted(summary["states"])[0]
    cache = load_grasps(name, "palm_down", root=Path(cfg.out))
    env = HandEnv(EnvConfig(num_envs=2, objects=name, wrist="palm_down", grasp_dir=cfg.out, num_threads=1))
    env.reset()
    q = env.sims.hand_q
    pos, _ = env.sims.object_pose()
    for i in range(2):
        assert np.abs(cache.hand_q - q[i]).max(axis=1).min() < 1e-9
        assert np.abs(cache.object_pos - pos[i]).max(axis=1).min() < 1e-9


def test_bad_snapshot_times_are_named(tmp_path):
    with pytest.raises(ValueError, match="after_s"):
        reached_states(ReachedStatesConfig(out=str(tmp_path), seconds=1.0, after_s=2.0), progress=False)


def test_cli_runs_it(written, tmp_path, capsys):
    cfg, _ = written
    rc = main(["reached-states", "--out", str(tmp_path / "s"), "--objects", "cube_60", "--axes=+z", "--sources",
               "kinematic", "--seconds", "0.5", "--after-s", "0.25", "--checkpoint",
               str(Path(cfg.out).parent / "m.safetensors"), "--threads", "1", "--json"])  # fmt: skip
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["out"] == str(tmp_path / "s") and out["episodes"] == 1
