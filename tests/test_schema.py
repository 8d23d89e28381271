import json

import numpy as np
import pytest

from data_helpers import write_synthetic_dataset
from dexgen.data import schema
from dexgen.data.store import open_dataset
from dexgen.sim import constants as C
from dexgen.sim.tasks import AXES, TranslateTask


def test_primitives_match_the_simulator_tasks():
    assert schema.ROTATE_AXES == tuple(AXES)
    assert schema.TRANSLATE_AXES == TranslateTask.allowed_axes
    assert len(schema.PRIMITIVES) == len(set(schema.PRIMITIVES)) == 11
    assert len(schema.PRIMITIVES) <= np.iinfo(np.int8).max
    assert schema.NUM_JOINTS == C.NUM_JOINTS and schema.NUM_FINGERTIPS == C.NUM_FINGERTIPS
    assert schema.primitive_id(schema.primitive_name("rotate", "-z")) == schema.PRIMITIVES.index("rotate-z")
    assert schema.primitive_name("grasp_to_grasp") == "grasp_to_grasp"
    with pytest.raises(ValueError, match="unknown primitive"):
        schema.primitive_name("translate", "+z")
    for name, vector in AXES.items():
        np.testing.assert_array_equal(schema.axis_vector(name), vector)


def test_primitive_param_pads_commands():
    axis = schema.primitive_param(schema.axis_vector("-y"))
    assert axis.shape == (schema.PARAM_DIM,) and axis.dtype == np.float32
    np.testing.assert_array_equal(axis[:4], [0, -1, 0, 0])
    batch = schema.primitive_param(np.ones((5, 16)))
    assert batch.shape == (5, 16) and np.all(batch == 1)
    with pytest.raises(ValueError):
        schema.primitive_param(np.ones(17))


def test_description_round_trips_through_json():
    parsed = schema.parse_description(json.dumps(schema.describe()))
    assert parsed["steps"] == schema.STEP_FIELDS and parsed["episodes"] == schema.EPISODE_FIELDS
    assert parsed["version"] == schema.SCHEMA_VERSION and parsed["control_hz"] == schema.CONTROL_HZ
    assert tuple(parsed["primitives"]) == schema.PRIMITIVES


def test_file_round_trips_schema_attributes_and_values(tmp_path):
    path = write_synthetic_dataset(tmp_path / "d.h5", episodes=3, steps=(4, 9), seed=1)
    from data_helpers import synthetic_episode

    rng = np.random.default_rng(1)
    with open_dataset(path) as r:
        assert r.schema["steps"] == schema.STEP_FIELDS
        attrs = r.attrs
        assert attrs["schema_version"] == schema.SCHEMA_VERSION and attrs["control_hz"] == schema.CONTROL_HZ
        assert attrs["command"] == "tests" and attrs["seed"] == 1 and attrs["revision"] and attrs["created"]
        assert json.loads(attrs["primitives"]) == list(schema.PRIMITIVES)
        for name, f in schema.STEP_FIELDS.items():
            ds = r.file["steps"][name]
            assert ds.attrs["unit"] == f.unit and ds.dtype == np.dtype(f.dtype) and ds.compression == "gzip"
        for i in range(r.num_episodes):
            n = int(rng.integers(4, 10))
            expected = synthetic_episode(rng, n)
            got = r.episode(i)
            assert got["fingertip_pos"].shape == (n, 4, 3)
            for name, f in schema.STEP_FIELDS.items():
                np.testing.assert_array_equal(got[name], np.asarray(expected[name]).astype(f.dtype))
        assert r.episode_info("object_name") == ["cube_60"] * 3 and r.episode_info("wrist") == ["palm_up"] * 3


def test_fields_by_version():
    assert schema.SCHEMA_VERSION in schema.READABLE_VERSIONS
    assert schema.step_fields() == schema.STEP_FIELDS
    new = set(schema.STEP_FIELDS) - set(schema.step_fields(1))
    assert new == {"realized_angvel", "realized_linvel", "gravity_dir"}
    assert all(schema.STEP_FIELDS[k].since == 2 for k in new)
    with pytest.raises(ValueError, match="schema version 0"):
        schema.step_fields(0)
    old = json.loads(json.dumps(schema.describe()))
    for k in new:  # a version-1 description: no such fields and no "since" key
        del old["steps"][k]
    for f in old["steps"].values():
        del f["since"]
    assert schema.parse_description(json.dumps(old))["steps"] == schema.step_fields(1)
