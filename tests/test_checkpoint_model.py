import json

import pytest
import torch

from dexgen.model.checkpoint import ModelCheckpointError, load_model, read_record, save_model
from model_helpers import random_obs, tiny_model


def test_save_load_round_trips_exactly(tmp_path):
    model = tiny_model(seed=3)
    path = save_model(model, tmp_path / "m.safetensors", record={"seed": 3})
    loaded = load_model(path)
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    obs = random_obs(2, model.cfg)
    g = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    assert torch.equal(model.sample(obs, generator=g()), loaded.sample(obs, generator=g()))
    assert loaded.cfg == model.cfg
    assert read_record(path)["seed"] == 3


def test_mismatched_shapes_are_refused_with_the_tensor_named(tmp_path):
    path = save_model(tiny_model(), tmp_path / "m.safetensors")
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["config"]["hidden"] = 48
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ModelCheckpointError, match=r"tensor denoiser\..* has shape .* the config gives"):
        load_model(path)


def test_missing_record_corrupt_weights_and_foreign_schema(tmp_path):
    with pytest.raises(ModelCheckpointError, match="no model weights"):
        load_model(tmp_path / "none.safetensors")
    path = save_model(tiny_model(), tmp_path / "m.safetensors")
    meta = json.loads(path.with_suffix(".json").read_text())

    path.with_suffix(".json").write_text(json.dumps({**meta, "data": {**meta["data"], "obs_fields": ["q"]}}))
    with pytest.raises(ModelCheckpointError, match="obs_fields"):
        load_model(path)
    path.with_suffix(".json").write_text(json.dumps({**meta, "data": {**meta["data"], "schema_version": 1}}))
    load_model(path)  # a model trained on data of an earlier schema version that this code reads
    path.with_suffix(".json").write_text(json.dumps({**meta, "data": {**meta["data"], "schema_version": 9}}))
    with pytest.raises(ModelCheckpointError, match="schema_version 9"):
        load_model(path)
    path.with_suffix(".json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(ModelCheckpointError, match="format version 99"):
        load_model(path)
    path.with_suffix(".json").write_text(json.dumps(meta))
    path.write_bytes(b"not safetensors")
    with pytest.raises(ModelCheckpointError, match="corrupt model weights"):
        load_model(path)
    path.with_suffix(".json").unlink()
    with pytest.raises(ModelCheckpointError, match="no record"):
        load_model(path)


def test_shipped_model_per_wrist_and_a_missing_one_named():
    from dexgen.model.checkpoint import DEFAULT_MODEL, ModelCheckpointError, model_wrists, shipped_model_path

    assert shipped_model_path("palm_up") == DEFAULT_MODEL
    with pytest.raises(ModelCheckpointError, match="no shipped model for wrist orientation 'upside_down'"):
        shipped_model_path("upside_down")
    assert model_wrists(load_model(DEFAULT_MODEL)) == ["palm_up"]
