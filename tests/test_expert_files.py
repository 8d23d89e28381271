import pytest

from dexgen.rl.expert import EXPERT_DIR
from dexgen.rl.expert_files import ExpertError, read_expert_files


def test_reads_a_shipped_expert_as_numpy():
    record, state = read_expert_files(EXPERT_DIR / "rotate+z.safetensors")
    assert record["task"] == "rotate" and record["axis"] == "+z"
    assert state["mlp.0.weight"].shape[1] == sum(record["obs_dims"].values())


def test_missing_corrupt_and_non_object_records(tmp_path):
    weights = tmp_path / "e.safetensors"
    with pytest.raises(ExpertError, match="no expert weights at"):
        read_expert_files(weights)
    weights.write_bytes((EXPERT_DIR / "rotate+z.safetensors").read_bytes())
    with pytest.raises(ExpertError, match="has no JSON record"):
        read_expert_files(weights)
    weights.with_suffix(".json").write_text("{not json")
    with pytest.raises(ExpertError, match="corrupt expert"):
        read_expert_files(weights)
    weights.with_suffix(".json").write_text("[1, 2]")
    with pytest.raises(ExpertError, match="not a JSON object"):
        read_expert_files(weights)
