import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from data_helpers import marker_episode, write_synthetic_dataset
from dexgen.data.store import EpisodeWriter
from dexgen.data.windows import MotionWindows, compute_stats, load_stats, split_episodes

LENGTHS = (1, 2, 5, 13, 9, 30)
"""Episode lengths of the marker dataset: shorter and longer than history and horizon."""


@pytest.fixture(scope="module")
def marker_path(tmp_path_factory):
    """Episode e holds 1000 * (e + 1) + t in every float field at its step t."""
    path = tmp_path_factory.mktemp("windows") / "marker.h5"
    with EpisodeWriter(path, chunk_rows=8) as w:
        for e, n in enumerate(LENGTHS):
            w.append_episode(marker_episode(1000.0 * (e + 1), n), object_name="cube_60", wrist="palm_up")
    return path


def test_windows_never_cross_episodes_and_pad_at_edges(marker_path):
    H, T = 3, 8
    ds = MotionWindows(marker_path, history=H, horizon=T, val_fraction=0.0)
    assert len(ds) == sum(n - 1 for n in LENGTHS)  # every step but each episode's last
    starts = np.concatenate(([0], np.cumsum(LENGTHS)[:-1]))
    for i in range(len(ds)):
        t = ds.step_of(i)
        e = int(np.searchsorted(np.cumsum(LENGTHS), t, side="right"))
        n, k = LENGTHS[e], t - starts[e]  # episode length, step within it
        base = 1000.0 * (e + 1)
        item = ds[i]
        assert item["obs"].shape == (H, 44) and item["dx"].shape == (T, 4, 3) and item["action"].shape == (16,)
        # history: steps k-2, k-1, k, the ones before the episode's start repeat its first frame
        expected_obs = base + np.maximum(np.arange(k - H + 1, k + 1), 0)
        np.testing.assert_array_equal(item["obs"].numpy(), np.repeat(expected_obs[:, None], 44, axis=1))
        # future: k+1 .. k+T, steps past the end repeat the last position, so padded dx stays constant
        ahead = np.arange(k + 1, k + T + 1)
        np.testing.assert_array_equal(item["dx_mask"].numpy(), ahead <= n - 1)
        expected_dx = np.minimum(ahead, n - 1) - k
        np.testing.assert_array_equal(item["dx"].numpy(), np.broadcast_to(expected_dx[:, None, None], (T, 4, 3)))
        np.testing.assert_array_equal(item["action"].numpy(), np.full(16, base + k + 1))  # next joint targets
        expected_angvel = base + np.minimum(np.arange(k, k + T), n - 1).mean()  # mean over steps k .. k+T-1
        np.testing.assert_allclose(item["angvel"].numpy(), np.full(3, expected_angvel), rtol=1e-6)
        assert item["dx_mask"].dtype == torch.bool and item["primitive_id"].dtype == torch.int64


def test_split_is_by_episode_disjoint_and_deterministic(tmp_path):
    train, val = split_episodes(20, val_fraction=0.2, seed=3)
    assert len(val) == 4 and not set(train) & set(val) and set(train) | set(val) == set(range(20))
    again = split_episodes(20, val_fraction=0.2, seed=3)
    np.testing.assert_array_equal(again[1], val)
    assert len(split_episodes(3, val_fraction=0.01)[1]) == 1 and len(split_episodes(1, val_fraction=0.5)[1]) == 0

    path = write_synthetic_dataset(tmp_path / "d.h5", episodes=10, steps=(6, 12), seed=0)
    tr = MotionWindows(path, split="train", val_fraction=0.3, seed=1)
    va = MotionWindows(path, split="val", val_fraction=0.3, seed=1)
    assert len(va.episodes) == 3 and not set(tr.episodes) & set(va.episodes)
    with h5py.File(path) as f:
        ends = f["episode_ends"][:]
    episode_of = lambda ds: {int(np.searchsorted(ends, ds.step_of(i), side="right")) for i in range(len(ds))}  # noqa: E731
    assert episode_of(tr) == set(tr.episodes) and episode_of(va) == set(va.episodes)


def test_stats_are_computed_once_stored_and_reloaded(tmp_path):
    path = write_synthetic_dataset(tmp_path / "d.h5", episodes=8, steps=(10, 20), seed=2)
    assert load_stats(path) is None
    ds = MotionWindows(path, val_fraction=0.25, seed=5, horizon=4)
    with h5py.File(path) as f:
        assert f["stats"].attrs["split"] == "train" and f["stats"].attrs["seed"] == 5
        assert f["stats"]["dx_std"].shape == (4, 4, 3)
    stored = load_stats(path, val_fraction=0.25, seed=5, horizon=4)
    for k, v in ds.stats.items():
        np.testing.assert_array_equal(stored[k], v)
    assert load_stats(path, val_fraction=0.25, seed=6, horizon=4) is None  # other split: stale
    # reference: moments over the train split's samples
    batch = ds.batch(np.arange(len(ds)))
    np.testing.assert_allclose(ds.stats["action_mean"], batch["action"].mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ds.stats["dx_std"], batch["dx"].std(0).clip(1e-6), rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(ds.stats["obs_mean"], batch["obs"][:, -1].mean(0), rtol=1e-5, atol=1e-6)
    val = MotionWindows(path, split="val", val_fraction=0.25, seed=5, horizon=4)
    for k, v in ds.stats.items():
        np.testing.assert_array_equal(val.stats[k], v)  # the train split's statistics
    recomputed = compute_stats(path, val_fraction=0.25, seed=5, horizon=4)
    np.testing.assert_allclose(recomputed["obs_std"], ds.stats["obs_std"])


def test_windows_batch_through_a_dataloader(tmp_path):
    path = write_synthetic_dataset(tmp_path / "d.h5", episodes=4, steps=15, seed=4)
    ds = MotionWindows(path, history=2, horizon=5, val_fraction=0.0)
    batch = next(iter(DataLoader(ds, batch_size=16, shuffle=True)))
    assert batch["obs"].shape == (16, 2, ds.obs_dim) and batch["dx"].shape == (16, 5, 4, 3)
    assert batch["dx_mask"].shape == (16, 5) and batch["action"].shape == (16, 16)
    assert batch["obs"].dtype == torch.float32
    assert torch.isfinite(batch["dx"]).all()
    with pytest.raises(IndexError):
        ds[len(ds)]
    with pytest.raises(ValueError, match="split"):
        MotionWindows(path, split="test")


def test_drop_margin_leaves_out_the_steps_before_a_drop_only(tmp_path):
    path = tmp_path / "drops.h5"
    with EpisodeWriter(path, chunk_rows=8) as w:
        for e, (n, drop) in enumerate(((12, True), (12, False), (3, True))):
            ep = marker_episode(1000.0 * (e + 1), n)
            ep["dropped"][-1] = drop
            w.append_episode(ep, object_name="cube_60", wrist="palm_up")
    every = MotionWindows(path, val_fraction=0.0)
    cut = MotionWindows(path, val_fraction=0.0, drop_margin=4)
    assert len(every) == 11 + 11 + 2
    steps = {cut.step_of(i) for i in range(len(cut))}
    assert steps == set(range(0, 7)) | set(range(12, 23))  # the dropped episodes lose their last 4 samples
    # the kept windows still see the cut steps as their future
    last = cut.batch(np.array([6]))
    np.testing.assert_array_equal(last["dx"][0, :, 0, 0], np.minimum(np.arange(7, 15), 11) - 6)
    assert load_stats(path, val_fraction=0.0, drop_margin=4) is not None
    assert load_stats(path, val_fraction=0.0, drop_margin=2) is None  # stats of another margin are stale
    with pytest.raises(ValueError, match="drop_margin"):
        MotionWindows(path, drop_margin=-1)


def test_intent_is_the_mean_realized_twist_of_the_real_future_steps(marker_path):
    T = 8
    ds = MotionWindows(marker_path, history=1, horizon=T, val_fraction=0.0)
    assert ds.has_intent
    ends = np.cumsum(LENGTHS)
    for i in range(len(ds)):
        t = ds.step_of(i)
        e = int(np.searchsorted(ends, t, side="right"))
        n, k = LENGTHS[e], t - (ends[e] - LENGTHS[e])
        real = np.arange(k, min(k + T, n))  # steps k .. k+T-1 of the episode, none past its end
        expected = 1000.0 * (e + 1) + real.mean()
        np.testing.assert_allclose(ds[i]["intent"].numpy(), np.full(6, expected), rtol=1e-6)
        assert ds[i]["intent"].dtype == torch.float32


def test_gravity_joins_every_observation_frame(marker_path):
    ds = MotionWindows(marker_path, history=3, horizon=4, val_fraction=0.0, gravity=True)
    plain = MotionWindows(marker_path, history=3, horizon=4, val_fraction=0.0)
    assert ds.obs_dim == 47 and plain.obs_dim == 44 and ds.stats["obs_mean"].shape == (47,)
    w, p = ds.batch(np.arange(len(ds))), plain.batch(np.arange(len(ds)))
    np.testing.assert_array_equal(w["obs"][..., :44], p["obs"])
    np.testing.assert_array_equal(w["obs"][..., 44:], p["obs"][..., :3])  # the marker's value, as every field


def test_a_file_of_the_first_schema_version_gives_windows_without_intent_or_gravity(tmp_path):
    from dexgen.data.store import DatasetError
    from model_helpers import SAMPLE_DATASET

    p = tmp_path / "v1.h5"
    p.write_bytes(SAMPLE_DATASET.read_bytes())
    ds = MotionWindows(p, history=3, horizon=8)
    assert not ds.has_intent and "intent" not in ds.batch(np.arange(4)) and ds.obs_dim == 44
    with pytest.raises(DatasetError, match="no gravity_dir .schema version 1."):
        MotionWindows(p, gravity=True)
