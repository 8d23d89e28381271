import dataclasses

import numpy as np
import pytest
import torch

from dexgen.rl.train import CheckpointError, TrainExpertConfig, load_checkpoint, reward_scales, train_expert
from rl_helpers import TINY_PPO, tiny_config


def _actor(run_dir):
    return load_checkpoint(run_dir / "last.pt")["alg"]["actor_state_dict"]


def test_default_run_names_keep_the_two_wrists_apart():
    assert TrainExpertConfig(axis="-z", seed=1).name == "rotate-z_s1"
    assert TrainExpertConfig(axis="-z", seed=1, wrist="palm_down").name == "rotate-z_palm_down_s1"
    assert TrainExpertConfig(task="grasp_to_grasp", wrist="palm_down").name == "grasp_to_grasp_palm_down_s0"
    assert TrainExpertConfig(wrist="palm_down", run_name="pd").name == "pd"


def test_ppo_iterations_change_the_weights(tmp_path):
    out = train_expert(tiny_config(tmp_path, iterations=1, run_name="a"), progress=False)
    assert out["iterations"] == 1 and out["env_steps"] == 6 * 8
    ckpt = load_checkpoint(tmp_path / "a" / "last.pt")
    assert ckpt["iteration"] == 1 and ckpt["command"] and ckpt["revision"]
    # compare with the untrained actor of the same seed
    from dexgen.rl.train import build_ppo, make_env
    from dexgen.rl.vec_env import RslVecEnv

    cfg = tiny_config(tmp_path)
    torch.manual_seed(cfg.seed)
    fresh = build_ppo(RslVecEnv(make_env(cfg)), cfg.ppo, "cpu").save()["actor_state_dict"]
    trained = ckpt["alg"]["actor_state_dict"]
    assert any(not torch.equal(fresh[k], trained[k]) for k in fresh if k.startswith("mlp"))


def test_checkpoints_log_each_objects_drops_over_the_segment(tmp_path):
    # large untrained actions drop the sphere; segments of one iteration, so the per-object rates (four
    # environments each) average to the iteration's overall rate
    cfg = tiny_config(tmp_path, iterations=3, save_interval=1, envs=8, episode_seconds=0.5, action_scale=0.3)
    train_expert(cfg, progress=False)
    stats = load_checkpoint(tmp_path / cfg.name / "last.pt")["stats"]
    per_object = {k.split("/")[1]: v for k, v in stats.items() if k.startswith("object_drops_per_1k_steps/")}
    assert set(per_object) == {"cube_60", "sphere_r30"}
    assert stats["drops_per_1k_steps"] > 0 and per_object["cube_60"] != per_object["sphere_r30"]
    assert sum(per_object.values()) / 2 == pytest.approx(stats["drops_per_1k_steps"])


def test_interrupted_and_resumed_training_equals_uninterrupted(tmp_path):
    train_expert(tiny_config(tmp_path, iterations=4, run_name="straight"), progress=False)
    train_expert(tiny_config(tmp_path, iterations=2, run_name="split"), progress=False)
    train_expert(tiny_config(tmp_path, iterations=4, run_name="split", resume=True), progress=False)
    a, b = _actor(tmp_path / "straight"), _actor(tmp_path / "split")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    assert load_checkpoint(tmp_path / "split" / "last.pt")["env_steps"] == 4 * 6 * 8


def test_resume_refuses_mismatch_and_bad_files(tmp_path):
    train_expert(tiny_config(tmp_path, iterations=2, run_name="r"), progress=False)
    with pytest.raises(CheckpointError, match="already holds a run"):
        train_expert(tiny_config(tmp_path, iterations=2, run_name="r"), progress=False)
    with pytest.raises(CheckpointError, match="trained with envs=6"):
        train_expert(tiny_config(tmp_path, iterations=4, run_name="r", envs=4, resume=True), progress=False)
    (tmp_path / "caches" / "palm_up").mkdir(parents=True)
    with pytest.raises(CheckpointError, match="trained with grasp_dir=None"):  # other starts: not an exact resume
        train_expert(tiny_config(tmp_path, iterations=4, run_name="r", grasp_dir=str(tmp_path / "caches"),
                                 resume=True), progress=False)  # fmt: skip
    with pytest.raises(CheckpointError, match="no checkpoint"):
        train_expert(tiny_config(tmp_path, run_name="missing", resume=True), progress=False)
    (tmp_path / "r" / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt checkpoint"):
        train_expert(tiny_config(tmp_path, iterations=4, run_name="r", resume=True), progress=False)


def test_time_limit_stops_at_a_checkpoint_and_history_records_each_process(tmp_path):
    out = train_expert(tiny_config(tmp_path, iterations=6, run_name="t", max_minutes=1e-9), progress=False)
    assert out["iterations"] == 2  # stopped at the first checkpoint, not mid-segment
    train_expert(tiny_config(tmp_path, iterations=6, run_name="t", resume=True), progress=False)
    history = load_checkpoint(tmp_path / "t" / "last.pt")["history"]
    assert [(h["from_iteration"], h["to_iteration"]) for h in history] == [(0, 2), (2, 6)]
    assert all(h["command"].startswith("dexgen") and h["revision"] for h in history)


def test_resume_refuses_other_reward_scales(tmp_path):
    train_expert(tiny_config(tmp_path, iterations=2, run_name="s"), progress=False)
    path = tmp_path / "s" / "last.pt"
    ckpt = load_checkpoint(path)
    ckpt["reward_scales"] = {**ckpt["reward_scales"], "drop": -1.0}
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="reward scales"):
        train_expert(tiny_config(tmp_path, iterations=4, run_name="s", resume=True), progress=False)
    # a run saved before a term existed resumes: a term at scale 0 changes nothing
    ckpt["reward_scales"] = {k: v for k, v in ckpt["reward_scales"].items() if k not in ("drop", "overspeed")}
    ckpt["reward_scales"]["drop"] = reward_scales(tiny_config(tmp_path))["drop"]
    torch.save(ckpt, path)
    train_expert(tiny_config(tmp_path, iterations=4, run_name="s", resume=True), progress=False)


def test_init_from_starts_a_new_run_from_another_runs_networks(tmp_path):
    source = tmp_path / "src" / "last.pt"
    train_expert(tiny_config(tmp_path, iterations=2, run_name="src"), progress=False)
    faster = dataclasses.replace(TINY_PPO, learning_rate=1e-3)
    out = train_expert(tiny_config(tmp_path, run_name="dst", init_from=str(source), ppo=faster), progress=False)
    assert out["env_steps"] == 2 * 2 * 6 * 8  # the source's steps count toward the new run
    history = load_checkpoint(tmp_path / "dst" / "last.pt")["history"]
    assert len(history) == 2 and history[-1]["init_from"] == str(source)
    other_net = dataclasses.replace(TINY_PPO, actor_hidden=(16,))
    with pytest.raises(CheckpointError, match="networks do not match"):
        train_expert(tiny_config(tmp_path, run_name="bad", init_from=str(source), ppo=other_net), progress=False)
    # fine-tuning into another wrist orientation is allowed; the new run records its own
    train_expert(tiny_config(tmp_path, run_name="down", init_from=str(source), wrist="palm_down"), progress=False)
    assert load_checkpoint(tmp_path / "down" / "last.pt")["config"]["wrist"] == "palm_down"
    # so is a curriculum over the objects; resuming with other shares is not
    weighted = tiny_config(tmp_path, run_name="w", init_from=str(source), object_weights="sphere_r30=2")
    train_expert(weighted, progress=False)
    assert load_checkpoint(tmp_path / "w" / "last.pt")["config"]["object_weights"] == "sphere_r30=2"
    with pytest.raises(CheckpointError, match="trained with object_weights='sphere_r30=2'"):
        train_expert(dataclasses.replace(weighted, iterations=4, resume=True, object_weights=""), progress=False)
    ckpt = load_checkpoint(tmp_path / "src" / "last.pt")  # a run from before object_weights: equal shares
    del ckpt["config"]["object_weights"]
    torch.save(ckpt, tmp_path / "src" / "last.pt")
    with pytest.raises(CheckpointError, match="trained with object_weights=''"):
        train_expert(dataclasses.replace(weighted, run_name="src", iterations=4, resume=True), progress=False)
    resumed = train_expert(tiny_config(tmp_path, run_name="src", iterations=4, resume=True), progress=False)
    assert resumed["iterations"] == 4
    # the shape code changes the networks' inputs: no start from, or resume of, a run without it
    with pytest.raises(CheckpointError, match="trained with shape_obs=False"):
        train_expert(tiny_config(tmp_path, run_name="s", init_from=str(source), shape_obs=True), progress=False)
    coded = tiny_config(tmp_path, run_name="coded", shape_obs=True)
    train_expert(coded, progress=False)
    with pytest.raises(CheckpointError, match="trained with shape_obs=True"):
        train_expert(dataclasses.replace(coded, iterations=4, resume=True, shape_obs=False), progress=False)
    assert train_expert(dataclasses.replace(coded, iterations=3, resume=True), progress=False)["iterations"] == 3


def test_threads_cap_torch_during_the_run_and_are_restored(tmp_path, monkeypatch):
    calls = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (calls.append(n), real(n)))
    before = torch.get_num_threads()
    train_expert(tiny_config(tmp_path, iterations=1, run_name="t", threads=1), progress=False)
    assert calls == [1, before] and torch.get_num_threads() == before


def test_init_actor_starts_from_an_exported_expert_and_warmup_fits_only_the_critic(tmp_path, monkeypatch):
    import contextlib

    import dexgen.rl.train as train_module
    from dexgen.rl.export import expert_from_checkpoint

    critic_moved = []
    real_critic_only = train_module._critic_only

    @contextlib.contextmanager
    def watched(alg):  # record whether each warm-up update changes the critic
        before = [p.detach().clone() for p in alg.critic.parameters()]
        with real_critic_only(alg):
            yield
        critic_moved.append(any(not torch.equal(a, p) for a, p in zip(before, alg.critic.parameters())))

    monkeypatch.setattr(train_module, "_critic_only", watched)

    train_expert(tiny_config(tmp_path, iterations=2, run_name="src"), progress=False)
    exported = tmp_path / "rotate+z.safetensors"
    expert_from_checkpoint(tmp_path / "src" / "last.pt").save(exported)
    shipped = {k: v.clone() for k, v in expert_from_checkpoint(tmp_path / "src" / "last.pt").actor.state_dict().items()}

    cfg = dict(run_name="ft", init_actor=str(exported), critic_warmup=2)
    out = train_expert(tiny_config(tmp_path, iterations=2, **cfg), progress=False)
    assert out["env_steps"] == 2 * 2 * 6 * 8  # the expert's steps count toward the new run
    assert out["run_env_steps"] == 2 * 6 * 8 and out["run_wall_s"] > 0  # this run alone
    ckpt = load_checkpoint(tmp_path / "ft" / "last.pt")
    warm = ckpt["alg"]["actor_state_dict"]
    for k in shipped:
        if k.startswith(("mlp", "distribution")):
            torch.testing.assert_close(warm[k], shipped[k], rtol=0, atol=0)  # frozen during the warm-up
    assert ckpt["history"][-1]["init_from"] == str(exported) and len(ckpt["history"]) == 2
    assert ckpt["stats"]["learning_rate"] == TINY_PPO.learning_rate  # the warm-up does not adapt the rate
    assert critic_moved == [True, True]  # while the actor stays frozen, the critic is fitted

    train_expert(tiny_config(tmp_path, iterations=4, resume=True, **cfg), progress=False)
    tuned = _actor(tmp_path / "ft")
    assert any(not torch.equal(tuned[k], shipped[k]) for k in shipped if k.startswith("mlp"))


def test_init_actor_refuses_mismatch_and_missing_files(tmp_path):
    from dexgen.rl.export import expert_from_checkpoint

    train_expert(tiny_config(tmp_path, iterations=2, run_name="src"), progress=False)
    exported = tmp_path / "e.safetensors"
    expert_from_checkpoint(tmp_path / "src" / "last.pt").save(exported)
    other_net = dataclasses.replace(TINY_PPO, actor_hidden=(16,))
    with pytest.raises(CheckpointError, match="networks do not match"):
        train_expert(tiny_config(tmp_path, run_name="a", init_actor=str(exported), ppo=other_net), progress=False)
    with pytest.raises(CheckpointError, match="trained with seed=0"):
        train_expert(tiny_config(tmp_path, run_name="b", init_actor=str(exported), seed=3), progress=False)
    with pytest.raises(CheckpointError, match="no expert weights"):
        train_expert(tiny_config(tmp_path, run_name="c", init_actor=str(tmp_path / "none.safetensors")),
                     progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="not both"):
        train_expert(tiny_config(tmp_path, run_name="d", init_actor=str(exported),
                                 init_from=str(tmp_path / "src" / "last.pt")), progress=False)  # fmt: skip


def test_reward_overrides_reach_the_environment_and_bad_ones_are_named(tmp_path):
    from dexgen.rl.train import make_env, reward_scales

    cfg = tiny_config(tmp_path, run_name="w", reward="drop=-50, alive=0.2")
    assert make_env(cfg, num_envs=1).task.scales == {**reward_scales(tiny_config(tmp_path)), "drop": -50.0,
                                                      "alive": 0.2}  # fmt: skip
    train_expert(cfg, progress=False)
    assert load_checkpoint(tmp_path / "w" / "last.pt")["reward_scales"]["drop"] == -50.0
    for bad, message in (("speed=1", "unknown name 'speed'"), ("drop", "not name=<finite number>"),
                         ("drop=x", "not name=<finite number>")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            reward_scales(tiny_config(tmp_path, reward=bad))


def test_fixed_schedule_keeps_the_learning_rate_the_adaptive_one_moves(tmp_path):
    # a tiny KL target makes the adaptive rule lower the rate after the first update
    adaptive = dataclasses.replace(TINY_PPO, learning_rate=1e-3, desired_kl=1e-9)
    fixed = dataclasses.replace(adaptive, schedule="fixed")
    out_a = train_expert(tiny_config(tmp_path, ppo=adaptive, run_name="a"), progress=False)
    out_f = train_expert(tiny_config(tmp_path, ppo=fixed, run_name="f"), progress=False)
    assert out_a["learning_rate"] < 1e-3
    assert out_f["learning_rate"] == 1e-3


def test_action_std_sets_the_started_actors_noise_and_needs_a_source(tmp_path):
    from dexgen.rl.export import expert_from_checkpoint

    train_expert(tiny_config(tmp_path, iterations=1, run_name="src"), progress=False)
    exported = tmp_path / "rotate+z.safetensors"
    expert_from_checkpoint(tmp_path / "src" / "last.pt").save(exported)
    cfg = dict(run_name="ft", init_actor=str(exported), critic_warmup=1, action_std=0.2)
    train_expert(tiny_config(tmp_path, iterations=1, **cfg), progress=False)
    std = _actor(tmp_path / "ft")["distribution.std_param"]
    torch.testing.assert_close(std, torch.full_like(std, 0.2))  # frozen in the warm-up, so still as set
    with pytest.raises(ValueError, match="--init-actor or --init-from"):
        train_expert(tiny_config(tmp_path, iterations=1, run_name="x", action_std=0.2), progress=False)
    with pytest.raises(ValueError, match="positive"):
        train_expert(tiny_config(tmp_path, iterations=1, run_name="y", init_actor=str(exported), action_std=-1.0),
                     progress=False)  # fmt: skip


def test_gravity_curriculum_raises_gravity_when_drops_are_rare_and_reaches_full():
    from dexgen.rl.train import GravityCurriculum

    g = GravityCurriculum(start=0.5, step=0.2, max_drops=1.0, min_iterations=2)
    assert g.next_scale(0.5, [0.1]) == 0.5  # too few iterations at this gravity
    assert g.next_scale(0.5, [0.1, 3.0]) == 0.5  # too many drops
    assert g.next_scale(0.5, [9.0, 9.0, 0.1, 0.2]) == pytest.approx(0.7)  # the early drops at this gravity are past
    assert g.next_scale(0.5, [0.1, 0.2]) == pytest.approx(0.7)
    assert g.next_scale(0.9, [0.1, 0.2]) == 1.0 and g.next_scale(1.0, [0.0, 0.0]) == 1.0
    with pytest.raises(ValueError, match="gravity.start must be finite"):
        GravityCurriculum(start=float("nan"))
    with pytest.raises(ValueError, match="hand must be one of legacy, allegro"):
        TrainExpertConfig(hand="bogus")


def test_a_run_with_the_gravity_curriculum_reaches_full_gravity_and_resumes_exactly(tmp_path):
    from dexgen.rl.train import GravityCurriculum

    curriculum = GravityCurriculum(start=0.4, step=0.3, max_drops=1e9, min_iterations=1)  # raise every iteration
    cfg = dict(wrist="palm_down", gravity=curriculum)
    train_expert(tiny_config(tmp_path, iterations=4, run_name="straight", **cfg), progress=False)
    train_expert(tiny_config(tmp_path, iterations=2, run_name="split", **cfg), progress=False)
    assert load_checkpoint(tmp_path / "split" / "last.pt")["gravity_scale"] == pytest.approx(1.0)  # 0.4, 0.7, 1
    train_expert(tiny_config(tmp_path, iterations=4, run_name="split", resume=True, **cfg), progress=False)
    a, b = _actor(tmp_path / "straight"), _actor(tmp_path / "split")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    with pytest.raises(CheckpointError, match="trained with gravity="):
        train_expert(tiny_config(tmp_path, iterations=6, run_name="split", resume=True, wrist="palm_down"),
                     progress=False)  # fmt: skip


def test_the_hand_reaches_the_environment_the_record_and_the_evaluation(tmp_path):
    from dexgen.rl.evaluate import expert_env
    from dexgen.rl.export import expert_from_checkpoint

    cfg = tiny_config(tmp_path, iterations=2, run_name="a", hand="allegro", wrist="palm_down", objects="cube_60",
                      axis="all", sphere_share=0.5)  # fmt: skip
    train_expert(cfg, progress=False)
    expert = expert_from_checkpoint(tmp_path / "a" / "last.pt")
    assert expert.record["env"]["hand"] == "allegro"
    env = expert_env(expert, "cube_60", episodes=3, seconds=1.0, seed=0, axis="0,3,4")
    assert env.sims.hand == "allegro" and env.config.hand == "allegro"
    env.reset()
    np.testing.assert_allclose(env.task.command, np.tile([0.0, 0.6, 0.8], (3, 1)))  # only the axis asked for
    with pytest.raises(CheckpointError, match="trained with hand='allegro'"):
        train_expert(tiny_config(tmp_path, iterations=4, run_name="a", resume=True, wrist="palm_down",
                                 objects="cube_60", axis="all", sphere_share=0.5), progress=False)  # fmt: skip


def test_translation_settings_reach_the_task_and_a_resume_must_keep_them(tmp_path):
    from dexgen.rl.train import make_env

    cfg = tiny_config(tmp_path, task="translate", axis="+x,-y", translate_min=0.01, translate_max=0.015,
                      translate_tolerance=0.003, reward="hold=2", iterations=1, save_interval=1,
                      run_name="t")  # fmt: skip
    task = make_env(cfg, num_envs=2).task
    assert (task.config.axes, task.config.min_distance, task.config.max_distance, task.config.tolerance) == (
        "+x,-y", 0.01, 0.015, 0.003) and task.scales["hold"] == 2.0  # fmt: skip
    train_expert(cfg, progress=False)
    with pytest.raises(CheckpointError, match="trained with translate_max=0.015"):
        train_expert(tiny_config(tmp_path, task="translate", axis="+x,-y", translate_min=0.01, translate_max=0.02,
                                 translate_tolerance=0.003, reward="hold=2", iterations=2, save_interval=1,
                                 run_name="t", resume=True), progress=False)  # fmt: skip
