import json
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from data_helpers import episode_for, write_synthetic_dataset
from dexgen.data.store import DatasetError, EpisodeWriter, check_dataset, open_dataset


def assert_episodes_exact(path: Path, n: int) -> None:
    """The file holds exactly episodes 0 .. n-1 of ``episode_for``: none lost, none duplicated, none altered."""
    with open_dataset(path) as r:
        assert r.num_episodes == n
        assert r.episode_info("object_name") == [f"obj{i}" for i in range(n)]
        for i in range(n):
            expected, got = episode_for(i), r.episode(i)
            for k, v in expected.items():
                np.testing.assert_array_equal(got[k], np.asarray(v).astype(got[k].dtype), err_msg=f"episode {i} {k}")


def test_append_read_and_bounds(tmp_path):
    path = tmp_path / "d.h5"
    with EpisodeWriter(path, command="dexgen collect", seed=7, meta={"action_scale": 0.1}) as w:
        for i in range(3):
            assert w.append_episode(episode_for(i), object_name=f"obj{i}", wrist="palm_up") == i
        lengths = [len(episode_for(i)["joint_pos"]) for i in range(3)]
        assert w.num_episodes == 3 and w.num_transitions == sum(lengths)
    assert_episodes_exact(path, 3)
    with open_dataset(path) as r:
        np.testing.assert_array_equal(r.episode_ends, np.cumsum(lengths))
        assert r.episode_slice(-1) == slice(lengths[0] + lengths[1], sum(lengths))
        assert r["joint_pos"].shape == (sum(lengths), 16) and r.attrs["action_scale"] == 0.1
        assert r.attrs["seed"] == 7 and r.attrs["command"] == "dexgen collect"


def test_writer_refuses_existing_file_and_bad_episodes(tmp_path):
    path = write_synthetic_dataset(tmp_path / "d.h5", episodes=1, steps=5, seed=0)
    with pytest.raises(DatasetError, match="exists"):
        EpisodeWriter(path)
    with pytest.raises(DatasetError, match="meta may not set"):
        EpisodeWriter(tmp_path / "other.h5", meta={"seed": 3})
    good = episode_for(0)
    bad_cases = {
        "missing": {k: v for k, v in good.items() if k != "action"},
        "shape": good | {"fingertip_pos": good["fingertip_pos"][:, :3]},
        "non-finite": good | {"joint_pos": np.where(np.arange(16) == 3, np.nan, good["joint_pos"])},
        "primitive_id": good | {"primitive_id": np.full(len(good["joint_pos"]), 99)},
        "at least one": {k: v[:0] for k, v in good.items()},
    }
    with EpisodeWriter(path, resume=True) as w:
        for match, steps in bad_cases.items():
            with pytest.raises(DatasetError, match=match):
                w.append_episode(steps, object_name="cube", wrist="palm_up")
        with pytest.raises(DatasetError, match="object_name"):
            w.append_episode(good, object_name="x" * 65, wrist="palm_up")
        assert w.num_episodes == 1
    assert check_dataset(path)["ok"]


def test_partly_written_episode_is_invisible_and_discarded_on_resume(tmp_path):
    path = tmp_path / "d.h5"
    with EpisodeWriter(path) as w:
        for i in range(2):
            w.append_episode(episode_for(i), object_name=f"obj{i}", wrist="palm_up")
    # a writer killed mid-episode: some fields got rows of episode 2, episode_ends was never extended
    partial = episode_for(2)
    with h5py.File(path, "r+") as f:
        for k in ("joint_pos", "fingertip_pos"):
            ds = f["steps"][k]
            ds.resize(ds.shape[0] + 7, axis=0)
            ds[-7:] = partial[k][:7]
        f["episode_ends"].resize(3, axis=0)  # extended, but its value (fill -1) never written
    report = check_dataset(path)
    assert report["ok"] and report["episodes"] == 2, report
    assert_episodes_exact(path, 2)
    with EpisodeWriter(path, resume=True) as w:
        assert w.num_episodes == 2
        for i in range(2, 4):
            w.append_episode(episode_for(i), object_name=f"obj{i}", wrist="palm_up")
    assert_episodes_exact(path, 4)
    with h5py.File(path) as f:
        assert {f["steps"][k].shape[0] for k in f["steps"]} == {int(f["episode_ends"][-1])}
        history = json.loads(f.attrs["history"])
        assert [h["episodes_at_open"] for h in history] == [0, 2]


CHILD = """
import sys
sys.path.insert(0, {tests!r})
from data_helpers import episode_for
from dexgen.data.store import EpisodeWriter
with EpisodeWriter({path!r}, resume=True, chunk_rows=32) as w:
    i = w.num_episodes
    while True:
        w.append_episode(episode_for(i), object_name=f"obj{{i}}", wrist="palm_up")
        print(i, flush=True)
        i += 1
"""


def _run_and_kill(path: Path, after: int, *, while_running=None) -> int:
    """Start a writer that appends episodes forever, call ``while_running()`` once it has committed ``after`` more,
    then SIGKILL it; return the number of episodes it reported committed."""
    code = CHILD.format(tests=str(Path(__file__).parent), path=str(path))
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    reported = []
    try:
        while len(reported) < after:
            line = child.stdout.readline()
            assert line, "the writer exited early"
            reported.append(int(line))
        if while_running is not None:
            while_running()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    return reported[-1] + 1


def test_killed_writer_resumes_without_loss_or_duplicates(tmp_path):
    path = tmp_path / "killed.h5"

    def read_while_writing():
        report = check_dataset(path)  # readable while the writer appends, showing its committed episodes
        assert report["ok"] and report["writer_active"] and report["unclosed"] and report["episodes"] >= 4, report
        with pytest.raises(DatasetError, match="another writer"):
            EpisodeWriter(path, resume=True)

    reported = _run_and_kill(path, after=4, while_running=read_while_writing)
    report = check_dataset(path)
    assert report["ok"] and not report["writer_active"] and report["unclosed"], report
    assert report["episodes"] >= reported
    with EpisodeWriter(path, resume=True) as w:  # rebuilds the killed writer's file
        n = w.num_episodes
    assert n >= reported  # episodes committed after the last report and before the kill count too
    assert_episodes_exact(path, n)
    reported = _run_and_kill(path, after=3)
    with EpisodeWriter(path, resume=True) as w:
        n2 = w.num_episodes
        w.append_episode(episode_for(n2), object_name=f"obj{n2}", wrist="palm_up")
    assert n2 >= max(reported, n + 3)
    assert_episodes_exact(path, n2 + 1)
    report = check_dataset(path)
    assert report["ok"] and not report["writer_active"] and not report["unclosed"]
    with open_dataset(path) as r:
        history = json.loads(r.attrs["history"])
    assert [h["rebuilt"] for h in history] == [False, True, False, True]  # rebuilt after each kill only


def test_check_rejects_truncated_nan_and_broken_files(tmp_path):
    path = write_synthetic_dataset(tmp_path / "d.h5", episodes=4, steps=30, seed=3)
    report = check_dataset(path)
    assert report == {"ok": True, "path": str(path), "episodes": 4, "transitions": 120, "writer_active": False,
                      "unclosed": False, "problems": []}  # fmt: skip

    truncated = tmp_path / "truncated.h5"
    data = path.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    nan = tmp_path / "nan.h5"
    nan.write_bytes(data)
    with h5py.File(nan, "r+") as f:
        f["steps"]["fingertip_pos"][5, 1, 2] = np.nan
    unordered = tmp_path / "unordered.h5"
    unordered.write_bytes(data)
    with h5py.File(unordered, "r+") as f:
        f["episode_ends"][1] = 10
    text = tmp_path / "text.h5"
    text.write_text("not hdf5\n")
    expectations = {truncated: "truncated", nan: "fingertip_pos has 1 non-finite",
                    unordered: "not strictly increasing", text: "not a readable HDF5 file",
                    tmp_path / "missing.h5": "no such file"}  # fmt: skip
    for bad, words in expectations.items():
        report = check_dataset(bad)
        assert not report["ok"] and any(words in p for p in report["problems"]), report
        assert all("\n" not in p for p in report["problems"])
    for bad in (truncated, unordered, text):
        with pytest.raises(DatasetError) as e:
            open_dataset(bad)
        assert "\n" not in str(e.value)
    with pytest.raises(DatasetError, match="cannot resume"):
        EpisodeWriter(unordered, resume=True)


def test_a_truncated_file_is_named_truncated_not_locked_and_resume_fails_at_once(tmp_path):
    import time

    path = write_synthetic_dataset(tmp_path / "d.h5", episodes=4, steps=30, seed=3)
    truncated = tmp_path / "truncated.h5"
    data = path.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    start = time.monotonic()
    with pytest.raises(DatasetError, match=r"not a readable HDF5 file \(truncated or corrupt\?\)") as e:
        EpisodeWriter(truncated, resume=True)
    assert time.monotonic() - start < 5.0 and "locked" not in str(e.value)
    with pytest.raises(DatasetError) as e:
        open_dataset(truncated)
    assert "locked" not in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.h5", "truncated.h5"]  # no .lock left behind


def test_a_link_to_a_file_being_written_is_that_file_for_the_lock(tmp_path):
    real = tmp_path / "real.h5"
    link = tmp_path / "link.h5"
    link.symlink_to(real)
    with EpisodeWriter(real) as w:
        w.append_episode(episode_for(0), object_name="obj0", wrist="palm_up")
        assert (tmp_path / "real.h5.lock").exists()
        with pytest.raises(DatasetError, match="another writer has it open"):
            EpisodeWriter(link, resume=True)
    with EpisodeWriter(link, resume=True) as w:  # once the first is done: appends to the file the link names
        w.append_episode(episode_for(1), object_name="obj1", wrist="palm_up")
    assert link.is_symlink() and link.resolve() == real
    assert_episodes_exact(real, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.h5", "real.h5"]  # the lock file went with the writer


def test_a_file_of_the_first_schema_version_is_read_but_not_appended_to(tmp_path):
    from dexgen.data.schema import SCHEMA_VERSION, STEP_FIELDS, step_fields
    from model_helpers import SAMPLE_DATASET

    path = tmp_path / "v1.h5"
    path.write_bytes(SAMPLE_DATASET.read_bytes())  # written by dexgen collect at schema version 1
    with open_dataset(path) as r:
        assert r.version == 1 < SCHEMA_VERSION and set(r.fields) == set(step_fields(1)) < set(STEP_FIELDS)
        assert r.has("object_angvel") and not r.has("realized_angvel") and r.num_transitions >= 10_000
        assert set(r.episode(0)) == set(step_fields(1))
        with pytest.raises(DatasetError, match="no field 'gravity_dir': its schema version 1 predates it"):
            r.read("gravity_dir")
    assert check_dataset(path)["ok"]
    with pytest.raises(DatasetError, match="schema version 1 lacks fields this code writes .* not appended to"):
        EpisodeWriter(path, resume=True)
    with h5py.File(path, "r+") as f:
        f.attrs["schema_version"] = 7
    with pytest.raises(DatasetError, match="schema version 7, this code reads versions 1, 2"):
        open_dataset(path)
