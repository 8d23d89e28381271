from pathlib import Path

from dexgen.eval.demo import DemoConfig, run_demo


def test_demo_on_the_shipped_models_writes_table_plot_and_video(tmp_path, capsys):
    out = run_demo(DemoConfig(objects="cube_60", seconds=0.3, out=str(tmp_path)))
    printed = capsys.readouterr().out
    assert "| guided |" in printed and "| raw |" in printed
    for key in ("table", "sweep_plot", "holding_plot", "video", "json"):
        assert Path(out["files"][key]).exists(), key
    assert out["holding_ratio_guided_vs_raw"] > 0
