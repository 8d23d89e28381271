import numpy as np
import pytest

from dexgen.rl.expert import EXPERT_DIR, Expert, ExpertError, expert_name, shipped_expert_path
from dexgen.rl.export import expert_from_checkpoint, reproduce_chain
from dexgen.rl.train import TrainExpertConfig, make_env, train_expert
from dexgen.sim.env import HandEnv
from rl_helpers import tiny_config


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return train_expert(tiny_config(out, iterations=1, run_name="e"), progress=False)["run_dir"]


def test_save_load_round_trip_acts_identically(run_dir, tmp_path):
    from pathlib import Path

    expert = expert_from_checkpoint(Path(run_dir) / "last.pt")
    path = tmp_path / "x.safetensors"
    expert.save(path)
    loaded = Expert.load(path)
    assert loaded.record["task"] == "rotate" and loaded.record["env_steps"] == 48
    env_obs = {k: np.random.default_rng(0).normal(size=(5, d)).astype(np.float32)
               for k, d in expert.record["obs_dims"].items()}  # fmt: skip
    np.testing.assert_array_equal(expert.act(env_obs), loaded.act(env_obs))
    assert expert.act(env_obs).shape == (5, 16)


def test_missing_and_mismatched_files(run_dir, tmp_path):
    from pathlib import Path

    with pytest.raises(ExpertError, match="no expert weights"):
        Expert.load(tmp_path / "none.safetensors")
    expert = expert_from_checkpoint(Path(run_dir) / "last.pt")
    path = tmp_path / "y.safetensors"
    expert.save(path)
    record = path.with_suffix(".json").read_text().replace('"actor_hidden": [\n      32\n    ]', '"actor_hidden": [64]')
    path.with_suffix(".json").write_text(record)
    with pytest.raises(ExpertError, match="does not match its record"):
        Expert.load(path)
    path.write_bytes(b"garbage")
    with pytest.raises(ExpertError, match="corrupt expert"):
        Expert.load(path)


def test_expert_drives_the_env(run_dir):
    from pathlib import Path

    from dexgen.rl.train import make_env

    expert = expert_from_checkpoint(Path(run_dir) / "last.pt")
    env: HandEnv = make_env(tiny_config("unused"), num_envs=2)
    obs, *_ = env.step(expert.act(env.get_observations()))
    assert np.isfinite(obs["policy"]).all()


def test_every_shipped_expert_loads_and_acts_in_its_env():
    paths = sorted(EXPERT_DIR.glob("*.safetensors"))
    assert {p.stem for p in paths} >= {"rotate+z", "rotate-z", "grasp_to_grasp", "grasp_to_grasp_palm_down"}
    for path in paths:
        expert = Expert.load(path)
        assert expert.record["eval"]["train"]["overall"]["episodes"] > 0 and expert.record["training_history"]
        # every run the expert was fine-tuned from is named, ending with the one that made it
        chain = expert.record["reproduce_chain"]
        assert chain == reproduce_chain(expert.record["training_history"]) and len(chain) >= 1, path.name
        assert chain[-1].startswith("dexgen train-expert") and "--resume" not in " ".join(chain)
        env = make_env(TrainExpertConfig(task=expert.task, axis=expert.axis, wrist=expert.wrist, objects="cube_60",
                                         shape_obs=expert.record["env"].get("shape_obs", False), threads=1),
                       num_envs=2)  # fmt: skip
        assert env.obs_dims == expert.record["obs_dims"]
        actions = expert.act(env.get_observations())
        assert actions.shape == (2, 16) and np.isfinite(actions).all()


def test_expert_names_carry_the_wrist_unless_palm_up(run_dir):
    from pathlib import Path

    assert expert_name("rotate", "+z") == "rotate+z" == expert_name("rotate", "+z", "palm_up")
    assert expert_name("rotate", "-z", "palm_down") == "rotate-z_palm_down"
    assert expert_name("grasp_to_grasp", "", "sideways") == "grasp_to_grasp_sideways"
    assert shipped_expert_path("rotate", "+z", "palm_down") == EXPERT_DIR / "rotate+z_palm_down.safetensors"
    assert expert_from_checkpoint(Path(run_dir) / "last.pt").wrist == "palm_up"
