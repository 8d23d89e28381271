from dexgen.eval.controller_bench import BenchControllerConfig, bench_controller
from dexgen.model.checkpoint import save_model
from model_helpers import tiny_model


def test_bench_reports_guided_unguided_and_joint_limit_latency(tmp_path):
    path = save_model(tiny_model(), tmp_path / "m.safetensors")
    out = bench_controller(BenchControllerConfig(checkpoint=str(path), decisions=10, warmup=2))
    for key in (
        "latency_ms_p50",
        "latency_ms_p95",
        "unguided_latency_ms_p50",
        "unguided_latency_ms_p95",
        "joint_limit_latency_ms_p50",
        "rotation_latency_ms_p50",
        "candidates_latency_ms_p50",
    ):
        assert out[key] > 0
    assert out["latency_ms_p95"] >= out["latency_ms_p50"]
    assert out["threads"] == 1 and out["batch"] == 1
    assert out["alpha"] == 0.45  # the evaluated guided method's strength


def test_bench_skips_the_rotation_variant_for_a_model_without_a_predictor(tmp_path):
    path = save_model(tiny_model(rotation_hidden=0), tmp_path / "m.safetensors")
    out = bench_controller(BenchControllerConfig(checkpoint=str(path), decisions=5, warmup=1))
    assert "rotation_latency_ms_p50" not in out and out["latency_ms_p50"] > 0


def test_bench_times_the_suites_method_for_a_model_with_an_unknown_mode(tmp_path):
    path = save_model(tiny_model(mode="primitive", mode_dropout=0.2), tmp_path / "m.safetensors")
    out = bench_controller(BenchControllerConfig(checkpoint=str(path), decisions=5, warmup=1))
    assert out["candidates_mode_latency_ms_p50"] > 0
    plain = save_model(tiny_model(), tmp_path / "p.safetensors")
    assert "candidates_mode_latency_ms_p50" not in bench_controller(
        BenchControllerConfig(checkpoint=str(plain), decisions=5, warmup=1)
    )
