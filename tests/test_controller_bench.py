from dataclasses import replace

from dexgen.controller.dexgen_controller import SHIPPED_METHOD
from dexgen.eval.controller_bench import BenchControllerConfig, bench_controller
from dexgen.model.checkpoint import save_model
from model_helpers import tiny_model


def test_bench_times_the_shipped_method_one_plan_and_unguided(tmp_path):
    path = save_model(tiny_model(mode="primitive", mode_dropout=0.2), tmp_path / "m.safetensors")
    out = bench_controller(BenchControllerConfig(checkpoint=str(path), decisions=10, warmup=2))
    for key in ("latency_ms_p50", "latency_ms_p95", "one_plan_latency_ms_p50", "unguided_latency_ms_p50"):
        assert out[key] > 0
    assert out["latency_ms_p95"] >= out["latency_ms_p50"]
    assert out["threads"] == 1 and out["batch"] == 1
    assert (out["alpha"], out["candidates"]) == (SHIPPED_METHOD.alpha, SHIPPED_METHOD.candidates)


def test_bench_times_the_method_fitted_to_the_model_or_as_the_flags_change_it(tmp_path):
    path = save_model(tiny_model(rotation_hidden=0), tmp_path / "m.safetensors")
    out = bench_controller(BenchControllerConfig(checkpoint=str(path), decisions=5, warmup=1))
    assert out["candidates"] == 1 and "one_plan_latency_ms_p50" not in out and out["latency_ms_p50"] > 0
    plain = save_model(tiny_model(), tmp_path / "p.safetensors")
    guided = replace(SHIPPED_METHOD, alpha=0.2, candidates=3)
    out = bench_controller(BenchControllerConfig(checkpoint=str(plain), decisions=5, warmup=1, guided=guided))
    assert (out["alpha"], out["candidates"]) == (0.2, 3)
