import json

import h5py
import numpy as np

from data_helpers import write_synthetic_dataset
from dexgen.cli import main
from dexgen.data.schema import PRIMITIVES
from dexgen.data.stats import fingertip_speeds, summarize


def test_data_check_json_reports_a_sound_file(tmp_path, capsys):
    path = write_synthetic_dataset(tmp_path / "d.h5", episodes=3, steps=10, seed=0)
    assert main(["data", "check", str(path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"ok", "episodes", "transitions", "path", "problems"} <= set(result)
    assert result["ok"] and result["episodes"] == 3 and result["transitions"] == 30


def test_data_check_rejects_truncated_and_nan_files_in_one_line(tmp_path, capsys):
    path = write_synthetic_dataset(tmp_path / "d.h5", episodes=3, steps=10, seed=0)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with h5py.File(path, "r+") as f:
        f["steps"]["joint_pos"][3, 0] = np.inf
    for bad, words in ((truncated, "truncated"), (path, "joint_pos has 1 non-finite"),
                       (tmp_path / "none.h5", "no such file")):  # fmt: skip
        assert main(["data", "check", str(bad), "--json"]) == 2
        captured = capsys.readouterr()
        err = captured.err.strip()
        assert err.count("\n") == 0 and err.startswith("dexgen data check: error:") and words in err, err
        assert captured.out == ""


def test_data_stats_counts_and_plot(tmp_path, capsys):
    path = write_synthetic_dataset(tmp_path / "d.h5", episodes=6, steps=(5, 25), seed=1)
    plot = tmp_path / "speeds.png"
    assert main(["data", "stats", str(path), "--plot", str(plot), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert plot.exists() and plot.read_bytes()[:4] == b"\x89PNG" and result["plot"] == str(plot)
    assert result["episodes"] == 6 and set(result["per_primitive"]) <= set(PRIMITIVES)
    assert sum(p["transitions"] for p in result["per_primitive"].values()) == result["transitions"]
    assert sum(p["episodes"] for p in result["per_primitive"].values()) == 6  # one primitive per episode here
    assert abs(result["duration_s_mean"] - result["transitions"] / 6 / 20.0) < 1e-9
    assert 0 < result["fingertip_speed_m_s"]["p50"] <= result["fingertip_speed_m_s"]["max"]
    assert main(["data", "stats", str(tmp_path / "none.h5")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_fingertip_speeds_skip_episode_boundaries():
    tips = np.zeros((5, 4, 3))
    tips[:, 0, 0] = [0.0, 0.01, 0.02, 5.0, 5.02]  # episodes [0, 3) and [3, 5): the jump is not a motion
    speeds = fingertip_speeds(tips, np.array([3, 5]), control_hz=20.0)
    np.testing.assert_allclose(speeds[:, 0], [0.2, 0.2, 0.4])


def test_summary_counts_primitive_segments_within_episodes(tmp_path):
    from data_helpers import episode_for
    from dexgen.data.store import EpisodeWriter

    path = tmp_path / "switch.h5"
    with EpisodeWriter(path) as w:
        for i in range(2):  # each episode: rotate+x for 10 steps, then grasp_to_grasp to its end
            steps = episode_for(i)
            g2g = PRIMITIVES.index("grasp_to_grasp")
            steps["primitive_id"] = np.where(np.arange(len(steps["joint_pos"])) < 10, 0, g2g)
            w.append_episode(steps, object_name="cube_60", wrist="palm_up")
    result = summarize(path)
    rotate, g2g = result["per_primitive"]["rotate+x"], result["per_primitive"]["grasp_to_grasp"]
    assert rotate == {"transitions": 20, "episodes": 2, "segments": 2, "segment_s_mean": 0.5}
    assert g2g["transitions"] == result["transitions"] - 20 and g2g["segments"] == 2
