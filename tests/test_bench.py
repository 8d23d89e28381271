from dexgen.sim.bench import BenchSimConfig, bench_sim


def test_bench_reports_every_key():
    out = bench_sim(BenchSimConfig(envs=4, seconds=0.2, threads=1))
    assert out["env_steps_per_s"] > 0 and out["raw_steps_per_s"] > 0
    # The reported rates are rounded to 0.1 step/s, the ratio is taken before rounding.
    assert abs(out["ratio"] - out["env_steps_per_s"] / out["raw_steps_per_s"]) < 2e-3
    assert out["control_hz"] == 20.0
