import numpy as np

from dexgen.rl.evaluate import expert_env
from dexgen.rl.expert import Expert, shipped_expert_path
from dexgen.sim.rollout import rollout
from dexgen.sim.tasks import AXES
from script_helpers import load_script


def test_a_window_rate_is_the_progress_dexgen_eval_measures():
    # one 5-s episode is one window: its mean rate while held is the episode's progress (Rollout.rate_about)
    script = load_script("turning_over_time")
    expert = Expert.load(shipped_expert_path("rotate", "+z", "palm_down"))

    def env():
        return expert_env(expert, "cube_52,sphere_r35", seed=3, episodes=1, seconds=script.WINDOW_STEPS / 20,
                          wrist="palm_down")  # fmt: skip

    axis = np.array(AXES["+z"], dtype=np.float64)
    figures, held = script.windowed(env(), lambda obs, _t: expert.act(obs), axis)
    r = rollout(env(), lambda obs, _t: expert.act(obs))  # the same initial states and actions
    assert set(figures) == {"rate", "drift", "offset"} and figures["rate"].shape == (1, 2)
    np.testing.assert_array_equal(held, r.hold_steps)
    np.testing.assert_allclose(figures["rate"][0], r.rate_about(axis), rtol=1e-9, atol=1e-12)
    assert np.all(figures["drift"] > 0) and np.all(figures["offset"] > 0)
