import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from collect_helpers import make_in_fork_server
from dexgen.cli import main
from dexgen.data import collect as collect_mod
from dexgen.data import collect_experts, collect_rollout, collect_workers
from dexgen.data.collect import CollectConfig, collect
from dexgen.data.schema import PRIMITIVES, STEP_FIELDS, axis_vector
from dexgen.data.store import check_dataset, open_dataset

SPECS = [("rotate", "+z,-x"), ("translate", "+x"), ("grasp_to_grasp", "+z")]
"""Test experts: one covering two rotation axes, one translation, one grasp_to_grasp (random weights)."""


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return make_in_fork_server(tmp_path_factory.mktemp("experts"), SPECS)


@pytest.fixture(scope="module")
def experts(made):
    return ",".join(str(p) for p in made[0])


def tiny(out, experts, **overrides) -> CollectConfig:
    base = dict(out=str(out), transitions=300, workers=1, envs_per_worker=4, objects="cube_60", episode_seconds=0.5,
                switch_prob_per_s=4.0, experts=experts, json=True)  # fmt: skip
    return CollectConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def collected(experts, tmp_path_factory):
    path = tmp_path_factory.mktemp("collect") / "c.h5"
    return path, collect(tiny(path, experts), progress=False)


def _read_all(path):
    with open_dataset(path) as r:
        return ({k: r.read(k) for k in STEP_FIELDS}, r.episode_ends.copy(), r.episode_info("object_name"),
                r.episode_info("wrist"), r.attrs)  # fmt: skip


def test_collect_writes_complete_consistent_episodes(collected):
    from dexgen.sim.grasps import load_grasps
    from dexgen.sim.hand import ModelIndex, build_model
    from dexgen.sim.objects import get_object

    path, result = collected
    report = check_dataset(path)
    assert report["ok"] and report["transitions"] == result["transitions"] >= 300, report
    assert result["episodes"] == result["new_episodes"] == report["episodes"]
    assert sum(result["per_primitive"].values()) == result["transitions"]
    assert set(result["per_primitive"]) == {"rotate+z", "rotate-x", "translate+x", "grasp_to_grasp"}
    steps, ends, objects, wrists, attrs = _read_all(path)
    n = len(steps["joint_pos"])
    for k, f in STEP_FIELDS.items():
        assert steps[k].shape == (n, *f.shape) and steps[k].dtype == np.dtype(f.dtype), k
    assert set(objects) == {"cube_60"} and set(wrists) == {"palm_up"}
    assert attrs["command"].startswith("dexgen collect --out") and attrs["seed"] == 0
    assert json.loads(attrs["action_scales"])["grasp_to_grasp"] == 0.05
    lengths = np.diff(ends, prepend=0)
    assert lengths.max() <= 10 and len(set(lengths.tolist())) > 1  # 0.5 s at 20 Hz; first episodes end early

    # every episode starts from a cached grasp (the state after the env's reset, not the previous episode's end)
    cache = load_grasps("cube_60", "palm_up").hand_q.astype(np.float32)
    starts = np.concatenate(([0], ends[:-1]))
    assert np.all(np.abs(steps["joint_pos"][starts][:, None] - cache[None]).max(-1).min(1) == 0)
    # joint_target[t + 1] is joint_target[t] + action_scale * action[t], clipped to the joint range
    joint_range = ModelIndex(build_model(get_object("cube_60"))).joint_range
    jt, a = steps["joint_target"].astype(np.float64), steps["action"].astype(np.float64)
    pred = np.clip(jt[:-1] + 0.05 * a[:-1], joint_range[:, 0], joint_range[:, 1])
    within = np.ones(n - 1, dtype=bool)
    within[ends[:-1] - 1] = False
    np.testing.assert_allclose(pred[within], jt[1:][within], atol=1e-5)

    # primitive_param matches primitive_id; within an episode the primitive changes only at switches
    ids, params = steps["primitive_id"], steps["primitive_param"]
    for name in ("rotate+z", "rotate-x"):
        rows = ids == PRIMITIVES.index(name)
        assert np.all(params[rows, :3] == axis_vector(name[-2:])) and np.all(params[rows, 3:] == 0)
    # a translation's command is its offset, metres: along +x (the expert's one direction), 0.5-2 cm long
    moved = params[ids == PRIMITIVES.index("translate+x")]
    assert len(moved) and np.all(moved[:, 1:] == 0) and np.all((moved[:, 0] >= 0.005) & (moved[:, 0] <= 0.02))
    g2g = ids == PRIMITIVES.index("grasp_to_grasp")
    assert np.all(np.abs(params[g2g][:, None] - cache[None]).max(-1).min(1) == 0)  # targets are cached grasps
    change = np.flatnonzero(np.diff(ids) != 0) + 1
    switches = np.setdiff1d(change, ends[:-1])
    assert len(switches) >= 5  # 4 switches/s over ~15 s of motion
    same = np.ones(n - 1, dtype=bool)
    same[np.concatenate((ends[:-1], switches)) - 1] = False  # steps that keep episode and primitive
    axis_rows = same & ~g2g[1:]
    assert np.all(params[1:][axis_rows] == params[:-1][axis_rows])

    # the realized twist of step t is the object's motion from t to t + 1 over the 50 ms control step, palm frame
    from dexgen.sim.rotations import quat_conj, quat_mul, quat_to_rotvec

    inside = np.ones(n - 1, dtype=bool)
    inside[ends[:-1] - 1] = False  # the last step's motion ends after the episode's stored poses
    pos, quat = steps["object_pos"].astype(np.float64), steps["object_quat"].astype(np.float64)
    np.testing.assert_allclose(steps["realized_linvel"][:-1][inside], ((pos[1:] - pos[:-1]) / 0.05)[inside],
                               atol=2e-5)  # fmt: skip
    turned = quat_to_rotvec(quat_mul(quat[1:], quat_conj(quat[:-1]))) / 0.05
    np.testing.assert_allclose(steps["realized_angvel"][:-1][inside], turned[inside], atol=2e-3)
    assert np.abs(steps["realized_angvel"]).max() > 0.01  # the object does move
    np.testing.assert_array_equal(steps["gravity_dir"], np.broadcast_to([0.0, 0.0, -1.0], (n, 3)))


@pytest.mark.parametrize("wrist, down", [("palm_up", [0, 0, -1]), ("palm_down", [0, 0, 1]), ("sideways", [0, 1, 0])])
def test_gravity_in_the_palm_frame_follows_the_wrist(wrist, down):
    from dexgen.sim.hand_batch import HandBatch
    from dexgen.sim.objects import get_object

    sims = HandBatch([get_object("cube_60")], wrist=wrist, num_threads=1)
    np.testing.assert_allclose(sims.gravity_dir, down, atol=1e-12)


def test_same_seed_same_file(collected, experts, tmp_path):
    path, _ = collected
    again = tmp_path / "again.h5"
    collect(tiny(again, experts), progress=False)
    a, b = _read_all(path), _read_all(again)
    for k in STEP_FIELDS:
        np.testing.assert_array_equal(a[0][k], b[0][k], err_msg=k)
    assert np.array_equal(a[1], b[1]) and a[2:4] == b[2:4]


def _descendants(pid: int) -> list[int]:
    """Processes below ``pid`` (children, grandchildren...), from /proc."""
    parents = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            parents[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    out, frontier = [], [pid]
    while frontier:
        frontier = [p for p, pp in parents.items() if pp in frontier]
        out += frontier
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _fingerprints(path) -> list[str]:
    """One hash per episode of its actions (which carry the exploration noise, so no two episodes share one)."""
    with open_dataset(path) as r:
        a, ends = r.read("action"), r.episode_ends
    return [hashlib.sha1(a[s:e].tobytes()).hexdigest() for s, e in zip(np.concatenate(([0], ends[:-1])), ends)]


def test_killed_collection_resumes_without_loss_or_duplicates(experts, tmp_path):
    path = tmp_path / "killed.h5"
    cmd = [sys.executable, "-m", "dexgen.cli", "collect", "--out", str(path), "--transitions", "1000000",
           "--workers", "1", "--envs-per-worker", "4", "--objects", "cube_60", "--episode-seconds", "0.5",
           "--switch-prob-per-s", "0", "--experts", experts, "--json"]  # fmt: skip
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300.0
        while not (path.exists() and check_dataset(path)["episodes"] >= 6):
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, "no episodes committed"
            time.sleep(0.1)
        below = _descendants(child.pid)
        assert below  # the fork server and the worker
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    deadline = time.monotonic() + 60.0
    while any(_alive(p) for p in below):  # orphaned workers notice and exit
        assert time.monotonic() < deadline, "workers outlived the killed collector"
        time.sleep(0.1)
    before = check_dataset(path)
    assert before["ok"] and before["unclosed"], before  # killed with the file open
    prints = _fingerprints(path)

    target = before["transitions"] + 150
    result = collect(tiny(path, experts, transitions=target, resume=True, switch_prob_per_s=0.0), progress=False)
    after = check_dataset(path)
    assert after["ok"] and not after["unclosed"] and after["transitions"] == result["transitions"] >= target
    assert result["new_transitions"] == after["transitions"] - before["transitions"] > 0
    prints_after = _fingerprints(path)
    assert prints_after[: len(prints)] == prints  # no committed episode lost or changed
    assert len(set(prints_after)) == len(prints_after)  # nor any episode drawn twice
    with open_dataset(path) as r:
        assert len(json.loads(r.attrs["history"])) == 2
        ids, ends = r.read("primitive_id"), r.episode_ends
    changes = np.flatnonzero(np.diff(ids) != 0) + 1
    assert np.all(np.isin(changes, ends))  # no switches: one primitive per episode
    done = collect(tiny(path, experts, transitions=100, resume=True), progress=False)  # already complete
    assert done["new_transitions"] == 0 and done["transitions"] == after["transitions"]


def test_missing_experts_and_bad_paths_are_one_line_errors(made, experts, tmp_path, monkeypatch, capsys):
    expert_dir, found_without_torch = made[1]
    assert found_without_torch == expert_dir
    out = tmp_path / "x.h5"
    monkeypatch.setattr(collect_experts, "_default_expert_dir", lambda: tmp_path / "no_experts")
    cases = (([], f"no shipped experts in {tmp_path / 'no_experts'}"),
             (["--experts", str(tmp_path / "none.safetensors")], "no expert weights at"),
             (["--experts", experts, "--wrists", "upside_down"], "unknown wrist orientation"),
             (["--experts", experts, "--wrists", "palm_up,palm_down"],
              "no expert was trained in wrist orientation palm_down"),
             (["--experts", experts, "--objects", "teapot"], "unknown object"),
             (["--experts", experts, "--primitive-weights", "spin=1"], "unknown name 'spin' in primitive weight"),
             (["--experts", experts, "--primitive-weights", "grasp_to_grasp=-1"], "is not name=<non-negative number>"),
             (["--experts", experts, "--primitive-weights", "rotate+y=2"], "names rotate+y, which no expert performs"),
             (["--experts", experts, "--primitive-weights", "rotate+z=0,rotate-x=0,translate+x=0,grasp_to_grasp=0"],
              "leaves no primitive with a positive weight in palm_up"))  # fmt: skip
    mismatched = tmp_path / "mismatched.safetensors"  # weights that do not fit their record: the worker finds out
    source = Path(experts.split(",")[1])
    mismatched.write_bytes(source.read_bytes())
    record = json.loads(source.with_suffix(".json").read_text())
    record["ppo"]["actor_hidden"] = [48]
    mismatched.with_suffix(".json").write_text(json.dumps(record))
    other_layout = tmp_path / "other_layout.safetensors"  # trained with observations the collector cannot give
    other_layout.write_bytes(source.read_bytes())
    record["obs_dims"] = {"policy": 50, "privileged": 71}
    other_layout.with_suffix(".json").write_text(json.dumps(record))
    one = ["--workers", "1", "--envs-per-worker", "2", "--objects", "cube_60"]
    cases += ((["--experts", str(mismatched), *one], "collect worker 0: ExpertError: expert"),
              (["--experts", str(other_layout), *one], "other_layout.safetensors expects observations"))  # fmt: skip
    for args, words in cases:
        assert main(["collect", "--out", str(out), "--transitions", "10", "--json", *args]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith("dexgen collect: error:") and words in err, err
        assert not out.exists()


def test_unknown_backend_and_missing_ray_are_one_line_errors(tmp_path, monkeypatch, capsys):
    out = tmp_path / "x.h5"
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed: importing it raises ImportError
    cases = ((["--backend", "spark"], "--backend must be one of local, ray, got 'spark'"),
             (["--backend", "ray"], "the ray backend needs Ray: pip install 'dexgen[ray]'"),
             (["--ray-address", "auto"], "--ray-address needs --backend ray"))  # fmt: skip
    for args, words in cases:
        assert main(["collect", "--out", str(out), "--transitions", "10", "--json", *args]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith("dexgen collect: error:") and words in err, err
        assert not out.exists()


def _ray_processes() -> list[int]:
    """This process's descendants that are Ray's (its GCS, raylet, workers and actors)."""
    found = []
    for pid in _descendants(os.getpid()):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if _alive(pid) and (cmdline.startswith("ray::") or "/site-packages/ray/" in cmdline):
            found.append(pid)
    return found


def test_ray_backend_writes_the_local_file_and_resumes(collected, experts, tmp_path):
    ray = pytest.importorskip("ray")
    path = tmp_path / "ray.h5"
    result = collect(tiny(path, experts, backend="ray"), progress=False)
    assert not ray.is_initialized()  # it shut down the Ray instance it started
    report = check_dataset(path)
    assert report["ok"] and not report["unclosed"] and report["transitions"] == result["transitions"] >= 300, report
    assert result["new_transitions"] == result["transitions"] and result["workers"] == 1 and result["startup_s"] > 0
    # one worker, seeded as a local one, stepping in the same order: the local backend's file
    local, remote = _read_all(collected[0]), _read_all(path)
    for k in STEP_FIELDS:
        np.testing.assert_array_equal(local[0][k], remote[0][k], err_msg=k)
    assert np.array_equal(local[1], remote[1]) and local[2:4] == remote[2:4]
    assert json.loads(remote[4]["collect_config"])["backend"] == "ray" and "--backend ray" in remote[4]["command"]
    prints = _fingerprints(path)

    target = report["transitions"] + 200
    grown = collect(tiny(path, experts, backend="ray", workers=2, transitions=target, resume=True), progress=False)
    after = check_dataset(path)
    assert after["ok"] and after["transitions"] == grown["transitions"] >= target and grown["workers"] == 2, after
    assert grown["new_transitions"] == after["transitions"] - report["transitions"] > 0
    prints_after = _fingerprints(path)
    assert prints_after[: len(prints)] == prints and len(set(prints_after)) == len(prints_after)
    with open_dataset(path) as r:
        assert [h["command"].count("--backend ray") for h in json.loads(r.attrs["history"])] == [1, 1]
    deadline = time.monotonic() + 30.0
    while left := _ray_processes():
        assert time.monotonic() < deadline, f"Ray processes left running: {left}"
        time.sleep(0.2)


def test_two_workers_give_the_same_file_for_the_same_seed(experts, tmp_path):
    # episodes are committed one from each worker in turn, so scheduling cannot reorder the file
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    collect(tiny(a, experts, workers=2), progress=False)
    collect(tiny(b, experts, workers=2), progress=False)
    assert _fingerprints(a) == _fingerprints(b)
    with open_dataset(a) as r:
        assert len(r.episode_ends) >= 2


def test_episodes_are_committed_one_from_each_worker_in_turn(tmp_path):
    from data_helpers import episode_for
    from dexgen.data.store import EpisodeWriter

    with EpisodeWriter(tmp_path / "o.h5", command="tests", seed=0) as writer:
        committer = collect_workers._Committer(writer, target=10**9)
        committer.set_workers(2)
        arrivals = [(1, 10), (1, 11), (0, 0), (1, 12), (0, 1)]  # worker 1 runs ahead of worker 0
        for worker, i in arrivals:
            committer.add(worker, (episode_for(i), "cube_60", "palm_up"))
        committed = writer.num_episodes
    # worker 0's first, worker 1's first, worker 0's second, worker 1's second; worker 1's third waits its turn
    assert committed == 4
    with open_dataset(tmp_path / "o.h5") as r:
        starts = np.concatenate(([0], r.episode_ends[:-1]))
        firsts = r.read("action")[starts]
    expected = [episode_for(i)["action"][0] for i in (0, 10, 1, 11)]
    np.testing.assert_allclose(firsts, np.array(expected), rtol=1e-6)


def test_each_wrist_orientation_uses_only_its_own_experts():
    from dexgen.data.collect import primitive_table

    def expert(axis, wrist):
        return {"wrist": wrist, "primitives": [f"rotate{axis}"], "command_dim": 3, "action_scale": 0.05}

    experts = [expert("+z", "palm_up"), expert("+z", "palm_down"), expert("-z", "palm_up")]
    down = primitive_table(experts, "palm_down")
    assert [(p["name"], p["expert"]) for p in down] == [("rotate+z", 1)]
    up = primitive_table(experts, "palm_up")
    assert [(p["name"], p["expert"]) for p in up] == [("rotate+z", 0), ("rotate-z", 2)]
    assert primitive_table(experts, "sideways") == []


def test_a_done_worker_is_passed_over_and_a_short_finish_is_noticed(tmp_path):
    from data_helpers import episode_for
    from dexgen.data.store import EpisodeWriter

    with EpisodeWriter(tmp_path / "d.h5", command="tests", seed=0) as writer:
        committer = collect_workers._Committer(writer, target=10**9)
        committer.set_workers(2)
        for worker, i in [(1, 10), (1, 11), (0, 0), (1, 12)]:
            committer.add(worker, (episode_for(i), "cube_60", "palm_up"))
        assert writer.num_episodes == 2  # 0 and 10; 11 waits for worker 0's second
        committer.finish(0)
        assert writer.num_episodes == 4 and not committer.starved  # worker 0 is passed over from now on
        committer.add(1, (episode_for(13), "cube_60", "palm_up"))
        assert writer.num_episodes == 5
        committer.finish(1)
        assert committer.starved  # both done, the target not reached: the collector raises rather than waits
    with open_dataset(tmp_path / "d.h5") as r:
        starts = np.concatenate(([0], r.episode_ends[:-1]))
        firsts = r.read("action")[starts]
    expected = [episode_for(i)["action"][0] for i in (0, 10, 11, 12, 13)]
    np.testing.assert_allclose(firsts, np.array(expected), rtol=1e-6)


def test_a_collection_writes_every_transition_it_steps(experts, tmp_path):
    # 4 simulations and a 32-transition target: the worker steps 8 control steps, then ends its open episodes (here
    # all of them, as episodes last 5 s) and writes them, rather than finishing episodes that overshoot the target
    summary = collect(tiny(tmp_path / "q.h5", experts, transitions=32, episode_seconds=5.0, switch_prob_per_s=0.0),
                      progress=False)  # fmt: skip
    assert summary["new_transitions"] == 32
    with open_dataset(tmp_path / "q.h5") as r:
        lengths = np.diff(np.concatenate(([0], r.episode_ends)))
    assert lengths.sum() == 32 and (lengths <= 8).all()


def test_step_worker_flushes_at_its_quota(experts):
    spec = {"experts": collect_mod.resolve_experts(experts), "objects": "cube_60", "wrists": ["palm_up"], "envs": 3,
            "episode_seconds": 5.0, "action_noise_std": 0.1, "switch_prob_per_s": 0.0}  # fmt: skip
    spec["primitives"] = {"palm_up": collect_mod.primitive_table(spec["experts"], "palm_up")}
    rollouts = collect_rollout.make_rollouts(spec, np.random.SeedSequence(0))
    ended, stepped, done = collect_rollout.step_worker(rollouts, stepped=0, quota=5)
    assert stepped == 3 and not done
    ended, stepped, done = collect_rollout.step_worker(rollouts, stepped=stepped, quota=5)
    assert stepped == 6 and done
    assert sorted(len(e[0]["action"]) for e in ended) == [2, 2, 2]  # every simulation's open episode, 2 steps each
    assert rollouts[0].flush() == []  # nothing is left open


def test_grasp_to_grasp_targets_are_drawn_away_from_the_hand(made):
    from dexgen.sim.tasks import joint_rms

    g2g_expert = str(made[0][[t for t, _ in SPECS].index("grasp_to_grasp")])
    spec = {"experts": collect_mod.resolve_experts(g2g_expert), "objects": "cube_60", "wrists": ["palm_up"],
            "envs": 6, "episode_seconds": 5.0, "action_noise_std": 0.1, "switch_prob_per_s": 0.0}  # fmt: skip
    spec["primitives"] = {"palm_up": collect_mod.primitive_table(spec["experts"], "palm_up")}
    (rollout,) = collect_rollout.make_rollouts(spec, np.random.SeedSequence(0))
    env = rollout.env
    cache = env.grasps["cube_60"].hand_q

    def far_enough() -> bool:  # each target at least the minimum from the hand, or its farthest cached grasp
        need = np.minimum(collect_rollout.G2G_MIN_TARGET_DISTANCE, [joint_rms(cache, q).max() for q in env.sims.hand_q])
        cached = np.abs(rollout.command[:, None] - cache[None]).max(-1).min(1) < 1e-6
        return bool(np.all(joint_rms(env.sims.hand_q, rollout.command) >= need - 1e-9) and cached.all())

    assert far_enough()  # the first targets, at the start
    for _ in range(3):
        rollout.step()
    # later targets are drawn away from where the hand is then: 240 draws, where a draw from the whole cache would
    # land within 0.3 rad about one time in 13 (cube_60's grasps)
    for _ in range(40):
        rollout._new_targets(np.arange(env.num_envs))
        assert far_enough()


def test_experts_with_and_without_the_shape_code_collect_together(experts, tmp_path):
    """An expert trained with the shape code gets it, the others get the observation they were trained with (a
    random actor fed the wrong width fails), and the file records which expert saw it."""
    coded = make_in_fork_server(tmp_path / "coded", [("rotate", "-z")], shape_obs=True)[0][0]
    path = tmp_path / "c.h5"
    summary = collect(tiny(path, f"{experts},{coded}"), progress=False)
    assert summary["new_transitions"] >= 300
    with open_dataset(path) as r:
        seen = {e["path"]: e["shape_obs"] for e in json.loads(r.attrs["experts"])}
        steps = r.read("primitive_id")
    assert seen[str(coded)] is True and sum(seen.values()) == 1
    assert PRIMITIVES.index("rotate-z") in set(steps.tolist())


def _weighted_rollout(experts, weights: dict[str, float], *, envs: int = 8):
    spec = {"experts": collect_mod.resolve_experts(experts), "objects": "cube_60", "wrists": ["palm_up"],
            "envs": envs, "episode_seconds": 5.0, "action_noise_std": 0.1, "switch_prob_per_s": 0.0}  # fmt: skip
    spec["primitives"] = {"palm_up": collect_mod.primitive_table(spec["experts"], "palm_up", weights=weights)}
    (rollout,) = collect_rollout.make_rollouts(spec, np.random.SeedSequence(0))
    return rollout


def test_primitive_weights_set_each_primitive_s_share_of_draws(experts):
    rollout = _weighted_rollout(experts, {"grasp_to_grasp": 4.0, "translate+x": 0.0})
    names = [PRIMITIVES[i] for i in rollout.prim_id]
    assert sorted(names) == ["grasp_to_grasp", "rotate+z", "rotate-x"]  # weight 0 leaves translate+x out
    rows, g2g, rotation = np.arange(rollout.n), names.index("grasp_to_grasp"), names.index("rotate+z")
    starts, switches = [], []
    for _ in range(400):
        rollout._assign(rows, switch=False)
        starts.append(rollout.current.copy())
        before = rollout.current.copy()
        rollout._assign(rows, switch=True)
        assert (rollout.current != before).all()  # a switch is always to another primitive
        switches.append(rollout.current[before == rotation])  # to the other rotation (1) or grasp_to_grasp (4)
    starts, switches = np.concatenate(starts), np.concatenate(switches)
    # 3,200 draws at 4/6 and about 1,100 at 4/5: the bounds are about 4 standard deviations wide
    assert abs(np.mean(starts == g2g) - 4 / 6) < 0.035
    assert abs(np.mean(switches == g2g) - 4 / 5) < 0.05


def test_equal_primitive_weights_draw_as_no_weights(experts):
    plain = _weighted_rollout(experts, {})
    equal = _weighted_rollout(experts, dict.fromkeys(("rotate+z", "rotate-x", "translate+x", "grasp_to_grasp"), 2.0))
    assert equal.prim_weight is None
    for switch in (False, True, False):
        plain._assign(plain.rows, switch=switch)
        equal._assign(equal.rows, switch=switch)
        np.testing.assert_array_equal(plain.current, equal.current)


def test_a_primitive_weighted_zero_is_not_collected(experts, tmp_path):
    summary = collect(tiny(tmp_path / "w.h5", experts, primitive_weights="grasp_to_grasp=0"), progress=False)
    assert summary["new_transitions"] >= 300 and "grasp_to_grasp" not in summary["per_primitive"]
    assert {"rotate+z", "rotate-x", "translate+x"} <= set(summary["per_primitive"])


def test_episodes_start_from_the_grasp_caches_of_grasp_dir(experts, tmp_path):
    from dexgen.sim.grasps import GraspCache, load_grasps

    shipped = load_grasps("cube_60", "palm_up")
    one = GraspCache("cube_60", "palm_up", hand_q=shipped.hand_q[3:4], targets=shipped.targets[3:4],
                     object_pos=shipped.object_pos[3:4], object_quat=shipped.object_quat[3:4])  # fmt: skip
    one.save(tmp_path / "states" / "palm_up" / "cube_60.npz")
    summary = collect(tiny(tmp_path / "g.h5", experts, grasp_dir=str(tmp_path / "states")), progress=False)
    with open_dataset(tmp_path / "g.h5") as r:
        starts = r.read("joint_pos")[r.episode_starts]
        command = r.attrs["command"]
    assert summary["episodes"] == len(starts) > 1
    np.testing.assert_allclose(starts, np.repeat(shipped.hand_q[3:4], len(starts), 0), atol=1e-9)
    assert f"--grasp-dir {tmp_path / 'states'}" in command


def test_a_grasp_dir_without_an_object_s_cache_is_a_one_line_error(experts, tmp_path):
    with pytest.raises(collect_mod.CollectError, match="dexgen reached-states --out"):
        collect(tiny(tmp_path / "m.h5", experts, grasp_dir=str(tmp_path / "empty")), progress=False)


def test_experts_of_different_hands_are_refused_in_one_line(made, tmp_path):
    import json
    import shutil

    source = made[0][0]
    other = tmp_path / source.name
    shutil.copy(source, other)
    record = json.loads(source.with_suffix(".json").read_text())
    record["env"]["hand"] = "allegro"
    other.with_suffix(".json").write_text(json.dumps(record))
    assert {e["hand"] for e in collect_mod.resolve_experts(f"{source},{other}")} == {"legacy", "allegro"}
    with pytest.raises(collect_mod.CollectError, match="trained on different hands"):
        collect(tiny(tmp_path / "x.h5", f"{source},{other}"), progress=False)


def _translate_rollout(made, tmp_path, axis: str, *, envs: int = 8):
    path = make_in_fork_server(tmp_path, [("translate", axis)])[0][0]
    spec = {"experts": collect_mod.resolve_experts(str(path)), "objects": "cube_60", "wrists": ["palm_up"],
            "envs": envs, "episode_seconds": 5.0, "action_noise_std": 0.0, "switch_prob_per_s": 0.0}  # fmt: skip
    spec["primitives"] = {"palm_up": collect_mod.primitive_table(spec["experts"], "palm_up")}
    (rollout,) = collect_rollout.make_rollouts(spec, np.random.SeedSequence(0))
    return rollout


def test_translation_offsets_cover_each_primitive_s_quarter_and_the_expert_sees_what_remains(made, tmp_path):
    from dexgen.sim.tasks import OFFSET_OBS_SCALE

    rollout = _translate_rollout(made, tmp_path, "all")
    assert sorted(PRIMITIVES[i] for i in rollout.prim_id) == ["translate+x", "translate+y", "translate-x",
                                                             "translate-y"]  # fmt: skip
    rows, pos = rollout.rows, rollout.env.object_pose()[0]
    angles = {name: [] for name in ("translate+x", "translate+y", "translate-x", "translate-y")}
    for _ in range(50):
        rollout._assign(rows, switch=False)
        offset = rollout.command[:, :3]
        np.testing.assert_allclose(rollout.target - pos, offset, atol=1e-12)  # from where the objects are
        length = np.linalg.norm(offset, axis=-1)
        assert np.all(offset[:, 2] == 0) and np.all((length >= 0.005) & (length <= 0.02)) and np.all(
            rollout.command[:, 3:] == 0)  # fmt: skip
        axis = rollout.prim_axis[rollout.current]
        for i, j in enumerate(rollout.current):
            cos = offset[i] @ axis[i] / length[i]
            angles[PRIMITIVES[rollout.prim_id[j]]].append(np.arccos(np.clip(cos, -1, 1)))
    for name, a in angles.items():  # within 45 degrees of the primitive's axis, uniformly (about 100 draws each)
        assert max(a) <= np.pi / 4 + 1e-9 and max(a) > 0.8 * np.pi / 4 and abs(np.mean(a) - np.pi / 8) < 0.1, name
    # the expert acts on the displacement that remains, scaled as in training, not on the recorded offset
    rollout.step()
    pos = rollout.env.object_pose()[0]
    policy, privileged = rollout.obs["policy"], rollout.obs["privileged"]
    seen = np.concatenate((policy[:, : rollout.base_dim], ((rollout.target - pos) * OFFSET_OBS_SCALE).astype(
        np.float32)), axis=1)  # fmt: skip
    expected = rollout.actors[0].act({"policy": seen, "privileged": np.concatenate(
        (seen, privileged[:, policy.shape[1]:]), axis=1)})  # fmt: skip
    np.testing.assert_allclose(rollout._actions(), expected, rtol=1e-5, atol=1e-6)


def test_an_expert_of_named_directions_gets_offsets_along_them(made, tmp_path):
    rollout = _translate_rollout(made, tmp_path, "-y")
    assert [PRIMITIVES[i] for i in rollout.prim_id] == ["translate-y"]
    offset = rollout.command[:, :3]
    assert np.all(offset[:, [0, 2]] == 0) and np.all((offset[:, 1] <= -0.005) & (offset[:, 1] >= -0.02))


def test_a_translation_expert_without_offset_lengths_is_refused_in_one_line(made, tmp_path):
    path = make_in_fork_server(tmp_path, [("translate", "+x")])[0][0]
    record_path = path.with_suffix(".json")
    record = json.loads(record_path.read_text())
    del record["env"]["translate_min"]
    record_path.write_text(json.dumps(record))
    with pytest.raises(collect_experts.CollectError, match="records no offset lengths") as e:
        collect_mod.resolve_experts(str(path))
    assert "\n" not in str(e.value)
