import numpy as np
import torch

from dexgen.controller.dexgen_controller import ControllerConfig, DexGenController
from dexgen.model.checkpoint import load_model, shipped_model_path
from dexgen.rl.evaluate import expert_env
from dexgen.rl.expert import Expert, shipped_expert_path
from dexgen.sim.rollout import rollout
from dexgen.sim.tasks import AXES
from script_helpers import load_script


def test_figures_read_the_executed_motion_and_the_plan():
    script = load_script("plan_vs_execution")
    expert = Expert.load(shipped_expert_path("rotate", "+z", "palm_down"))
    model = load_model(shipped_model_path("palm_down"))
    axis = np.array(AXES["+z"], dtype=np.float64)

    def env():
        return expert_env(expert, "cube_52,sphere_r35", seed=3, episodes=1, seconds=1.5, wrist="palm_down")

    e = env()
    logs = script.run_episodes(e, model, axis, expert=expert)
    r = rollout(env(), lambda obs, _t: expert.act(obs))  # the same initial states and actions
    assert logs["tips"].shape == (30, 2, 4, 3) and np.isnan(logs["plan1"]).all()
    np.testing.assert_array_equal(logs["alive"].sum(0), r.hold_steps)
    figures = script.windowed(logs, model, axis, e.joint_range)
    predicted, starts, _ = figures["predicted"]
    # the predictor read on the fingertips' motion over the 8 steps after the first stretch's start
    dx = torch.as_tensor(logs["tips"][1:9] - logs["tips"][0][None], dtype=torch.float32).transpose(0, 1)
    with torch.no_grad():
        want = model.predict_rotation(torch.as_tensor(logs["hist"][0]), dx).numpy() @ axis
    np.testing.assert_allclose(predicted[0], want, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(figures["actual"][0][0], logs["rate"][:8].mean(0))
    assert starts[1] == script.STRIDE and np.isnan(figures["tracking"][0]).all()

    e = env()  # the prior alone: the plan's first step is recorded and the fingertips roughly follow it
    ctrl = DexGenController(model, config=ControllerConfig(seed=3), batch=e.num_envs)
    logs = script.run_episodes(e, model, axis, ctrl=ctrl)
    tracking = script.windowed(logs, model, axis, e.joint_range)["tracking"][0]
    assert np.isfinite(logs["plan1"]).all() and 0.3 < np.nanmedian(tracking) < 1.5


def test_per_joint_figures_count_held_steps_after_10_s():
    script = load_script("plan_vs_execution")
    joint_range = np.stack([np.full(16, -1.0), np.full(16, 1.0)], 1)
    steps = 300
    targets = np.zeros((steps, 2, 16))
    targets[:, 0] = 1.0  # hand 0 holds every target at the upper limit, 0.1 rad beyond its joints
    q = targets - 0.1
    alive = np.ones((steps, 2), dtype=bool)
    alive[251:, 1] = False  # hand 1 (targets inside the limits) drops at step 250
    at_limit, squeeze = script.per_joint_late([{"targets": targets, "q": q, "alive": alive}], joint_range)
    share = 99 / (99 + 50)  # hand 0's steps 200..298 of 149 held ones in all
    np.testing.assert_allclose(at_limit, share)
    np.testing.assert_allclose(squeeze, 0.1)
