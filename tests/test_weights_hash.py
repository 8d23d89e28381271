"""Weights are what their record says: the SHA-256 in the record is checked on loading, for models and experts,
and a record for another wrist orientation or primitive is refused, each with one line naming the file."""

import json
import shutil

import pytest

from dexgen.files import file_sha256
from dexgen.model.checkpoint import SHIPPED_DIR, ModelCheckpointError, load_model, save_model, shipped_model_path
from dexgen.rl.expert import EXPERT_DIR, Expert, shipped_expert_path
from dexgen.rl.expert_files import ExpertError
from dexgen.rl.numpy_actor import NumpyActor
from model_helpers import tiny_model

SHIPPED = sorted(SHIPPED_DIR.glob("*.safetensors")) + sorted(EXPERT_DIR.glob("*.safetensors"))


@pytest.mark.parametrize("weights", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_record_gives_its_weights_hash(weights):
    record = json.loads(weights.with_suffix(".json").read_text())
    assert record["weights_sha256"] == file_sha256(weights)


def _copy(weights, to_dir, name=None):
    name = name or weights.name
    dst = to_dir / name
    shutil.copyfile(weights, dst)
    shutil.copyfile(weights.with_suffix(".json"), dst.with_suffix(".json"))
    return dst


def _damage(path, size=1 << 20):
    """Overwrite the first ``size`` bytes of tensor data (past the safetensors header) with 0xFF: the file still
    parses, and the tensors hold NaN."""
    data = bytearray(path.read_bytes())
    start = 8 + int.from_bytes(data[:8], "little")
    data[start : start + size] = b"\xff" * len(data[start : start + size])
    path.write_bytes(bytes(data))


def test_damaged_or_swapped_model_weights_are_refused_naming_the_file(tmp_path):
    down = _copy(shipped_model_path("palm_down"), tmp_path)
    load_model(down, wrist="palm_down")  # as shipped: loads
    _damage(down)
    with pytest.raises(ModelCheckpointError, match=r"dexgen_palm_down.safetensors does not match its record") as e:
        load_model(down)
    assert "\n" not in str(e.value)
    shutil.copyfile(shipped_model_path("palm_up"), down)  # palm-up weights beside the palm-down record
    with pytest.raises(ModelCheckpointError, match="weights_sha256 differs"):
        load_model(down)


def test_a_model_for_another_wrist_is_refused_naming_the_file(tmp_path):
    with pytest.raises(ModelCheckpointError, match=r"dexgen.safetensors was trained for wrist orientation palm_up, "
                                                   "not palm_down"):  # fmt: skip
        load_model(shipped_model_path("palm_up"), wrist="palm_down")
    saved = save_model(tiny_model(), tmp_path / "m.safetensors")  # a record without a dataset: not checked
    assert json.loads(saved.with_suffix(".json").read_text())["weights_sha256"] == file_sha256(saved)
    load_model(saved, wrist="palm_down")


def test_damaged_expert_weights_and_a_wrong_primitive_or_wrist_are_refused(tmp_path):
    expert = _copy(shipped_expert_path("rotate", "+z", "palm_down"), tmp_path)
    Expert.load(expert, task="rotate", axis="+z", wrist="palm_down")
    for kw, words in (({"axis": "-z"}, r"trained for axis \+z, not -z"),
                      ({"wrist": "palm_up"}, "trained for wrist palm_down, not palm_up"),
                      ({"task": "translate"}, "trained for task rotate, not translate")):  # fmt: skip
        with pytest.raises(ExpertError, match=words):
            Expert.load(expert, **kw)
    _damage(expert, size=4096)
    for load in (Expert.load, NumpyActor.load):
        with pytest.raises(ExpertError, match=r"rotate\+z_palm_down.safetensors does not match its record"):
            load(expert)


def test_an_expert_saved_here_records_its_hash(tmp_path):
    expert = Expert.load(shipped_expert_path("rotate", "+z"))
    expert.save(tmp_path / "e.safetensors")
    assert Expert.load(tmp_path / "e.safetensors").record["weights_sha256"] == file_sha256(tmp_path / "e.safetensors")
