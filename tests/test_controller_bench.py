import numpy as np

from dexgen.controller.bench import BenchControllerConfig, bench_controller, rotation_command
from dexgen.model.checkpoint import save_model
from model_helpers import tiny_model


def test_bench_reports_guided_and_unguided_latency(tmp_path):
    path = save_model(tiny_model(), tmp_path / "m.safetensors")
    out = bench_controller(BenchControllerConfig(checkpoint=str(path), decisions=10, warmup=2))
    for key in ("latency_ms_p50", "latency_ms_p95", "unguided_latency_ms_p50", "unguided_latency_ms_p95"):
        assert out[key] > 0
    assert out["latency_ms_p95"] >= out["latency_ms_p50"]
    assert out["threads"] == 1 and out["batch"] == 1


def test_rotation_command_turns_fingertips_about_the_grasp_centre():
    frame = np.zeros(44, dtype=np.float32)
    frame[32:44] = np.tile([0.07, 0.0, 0.055], 4)  # 5 cm from the centre along +x
    cmd = rotation_command(frame, 4, omega=1.0, dt=0.05)
    assert cmd.shape == (4, 4, 3)
    # one step turns the tip, 5 cm from the centre, by 0.05 rad: about 2.5 mm toward +y
    np.testing.assert_allclose(cmd[0, 0], [0.05 * (np.cos(0.05) - 1), 0.05 * np.sin(0.05), 0.0], atol=1e-7)
