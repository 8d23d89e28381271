import json
import subprocess
import sys

import numpy as np
import pytest

from dexgen.rl.expert import EXPERT_DIR, Expert
from dexgen.rl.expert_files import ExpertError
from dexgen.rl.numpy_actor import NumpyActor


def _observations(record, n=7, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.normal(size=(n, d)).astype(np.float32) for k, d in record["obs_dims"].items()}


@pytest.mark.parametrize("name", ["rotate+z", "rotate-z_palm_down"])
def test_matches_the_torch_actor_of_a_shipped_expert(name):
    path = EXPERT_DIR / f"{name}.safetensors"
    torch_actor, numpy_actor = Expert.load(path), NumpyActor.load(path)
    obs = _observations(torch_actor.record)
    expected = torch_actor.act(obs)
    got = numpy_actor.act(obs)
    assert got.shape == expected.shape == (7, 16) and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_matches_the_torch_actor_without_privileged_input(tmp_path):
    from collect_helpers import make_random_expert

    path = make_random_expert(tmp_path / "p.safetensors", "rotate", "+z", hidden=(24, 8))
    record = json.loads(path.with_suffix(".json").read_text())
    record["ppo"]["actor_privileged"] = False
    record["ppo"]["activation"] = "tanh"
    path.with_suffix(".json").write_text(json.dumps(record))
    from dexgen.rl.config import PPOConfig
    from dexgen.rl.expert import make_actor

    # weights for the policy-only layout, written by the torch side so the two are compared on the same numbers
    hidden = {"actor_hidden": (24, 8), "critic_hidden": tuple(record["ppo"]["critic_hidden"])}
    ppo = PPOConfig(**{**record["ppo"], **hidden})
    Expert(make_actor(record["obs_dims"], 16, ppo), record).save(path)
    obs = _observations(record, seed=1)
    np.testing.assert_allclose(NumpyActor.load(path).act(obs), Expert.load(path).act(obs), rtol=1e-4, atol=1e-5)


def test_bad_files_are_one_line_errors(tmp_path):
    from collect_helpers import make_random_expert

    with pytest.raises(ExpertError, match="no expert weights"):
        NumpyActor.load(tmp_path / "none.safetensors")
    path = make_random_expert(tmp_path / "x.safetensors", "rotate", "+z")
    record_path = path.with_suffix(".json")
    record = json.loads(record_path.read_text())
    record_path.write_text(json.dumps({**record, "ppo": {**record["ppo"], "actor_hidden": [64]}}))
    with pytest.raises(ExpertError, match=r"does not match its record: mlp\.0\.weight"):
        NumpyActor.load(path)
    record_path.write_text(json.dumps({**record, "ppo": {**record["ppo"], "activation": "selu"}}))
    with pytest.raises(ExpertError, match="activation 'selu'"):
        NumpyActor.load(path)
    record_path.write_text(json.dumps({k: v for k, v in record.items() if k != "obs_dims"}))
    with pytest.raises(ExpertError, match="is incomplete"):
        NumpyActor.load(path)
    record_path.write_text(json.dumps(record))
    path.write_bytes(b"garbage")
    with pytest.raises(ExpertError, match="corrupt expert"):
        NumpyActor.load(path)


def test_does_not_import_torch():
    code = "import sys; import dexgen.rl.numpy_actor; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_an_input_that_never_varied_in_training_is_pinned_to_its_training_value(tmp_path):
    """A held-out object of a shape family no training object has sets a shape-code entry whose running std is 0:
    both actors act as if it had its training value, where the bare normalizer would scale it by 100."""
    import torch

    from collect_helpers import make_random_expert

    path = make_random_expert(tmp_path / "s.safetensors", "rotate", "+z", hidden=(24,), shape_obs=True)
    expert = Expert.load(path)
    norm = expert.actor.obs_normalizer
    width = norm._std.shape[1]
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        norm._mean.copy_(torch.randn(1, width, generator=gen))
        norm._std.copy_(torch.rand(1, width, generator=gen) + 0.1)
        norm._std[0, -4] = 0.0  # the ellipsoid's entry of the shape code: never set by a training object
    expert.save(path)
    torch_actor, numpy_actor = Expert.load(path), NumpyActor.load(path)
    obs = _observations(torch_actor.record, seed=2)
    privileged = torch_actor.record["obs_dims"]["privileged"]
    trained_value = float(norm._mean[0, -4])
    as_trained = {**obs, "privileged": obs["privileged"].copy()}
    as_trained["privileged"][:, privileged - 4] = trained_value
    expected = torch_actor.act(as_trained)
    np.testing.assert_allclose(torch_actor.act(obs), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(numpy_actor.act(obs), expected, rtol=1e-4, atol=1e-5)
    # the other inputs still count
    moved = {**obs, "privileged": obs["privileged"].copy()}
    moved["privileged"][:, privileged - 5] += 1.0
    assert np.abs(torch_actor.act(moved) - torch_actor.act(obs)).max() > 1e-3
