from pathlib import Path

import pytest

from dexgen.rl.evaluate import EvalExpertConfig, evaluate_expert
from dexgen.rl.export import expert_from_checkpoint
from dexgen.rl.train import train_expert
from rl_helpers import tiny_config


def test_eval_json_has_every_key(tmp_path):
    run = train_expert(tiny_config(tmp_path, iterations=1, run_name="v"), progress=False)
    expert = expert_from_checkpoint(Path(run["run_dir"]) / "last.pt")
    cfg = EvalExpertConfig(episodes=2, seconds=0.5, objects="cube_60,sphere_r35", threads=1,
                           video=str(tmp_path / "ep.gif"))  # fmt: skip
    out = evaluate_expert(expert, cfg, progress_bar=False)
    for fig in (out["overall"], *out["per_object"].values()):
        assert {
            "angvel_rad_per_s",
            "angvel_rad_per_s_median",
            "drop_rate",
            "holding_s_mean",
            "success_rate",
            "episodes",
        } <= set(fig)
        assert 0 <= fig["holding_s_mean"] <= 0.5
    assert out["overall"]["episodes"] == 4 and set(out["per_object"]) == {"cube_60", "sphere_r35"}
    assert out["wrist"] == "palm_up"
    down = evaluate_expert(expert, EvalExpertConfig(episodes=1, seconds=0.2, objects="cube_60", threads=1,
                                                    wrist="palm_down"), progress_bar=False)  # fmt: skip
    assert down["wrist"] == "palm_down"
    assert Path(out["video"]).exists()
    with pytest.raises(ValueError, match="trained for task 'rotate'"):
        evaluate_expert(expert, EvalExpertConfig(task="translate", axis="+x"), progress_bar=False)
