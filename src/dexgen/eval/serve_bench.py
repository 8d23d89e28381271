"""``dexgen bench serve``: the round trip of one ``act`` request to ``dexgen serve`` on localhost, the server in its
own process on one thread running the guided method, the client sending recorded observations and a turn command,
with one more client connected that never sends (a stalled client must cost nothing)."""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass, field, replace

import numpy as np

from dexgen.checks import check_int
from dexgen.controller.dexgen_controller import SHIPPED_METHOD, ControllerConfig
from dexgen.sim.hand import check_wrist


@dataclass
class BenchServeConfig:
    """Measure roundtrip_ms_p50 / _p95 of ``act`` requests to a local ``dexgen serve`` (one thread, the guided
    method) over websockets, and count errors."""

    checkpoint: str | None = None
    """Model weights; None: the shipped model of the wrist orientation."""
    wrist: str = "palm_up"
    """Wrist orientation of the hand whose observations are replayed (and of the shipped model)."""
    calls: int = 1000
    """Timed act requests (after a warm-up)."""
    warmup: int = 30
    """Untimed requests first."""
    guided: ControllerConfig = field(default_factory=lambda: SHIPPED_METHOD)
    """The method the server runs: the shipped one unless a flag here changes a setting."""
    seed: int = 0
    """Seed of the recorded observations and of sampling."""
    json: bool = False
    """Print one JSON object."""

    def __post_init__(self) -> None:
        check_wrist("wrist", self.wrist)
        check_int("calls", self.calls, ge=1)
        check_int("warmup", self.warmup, ge=0)


def _serve(cfg, pipe) -> None:
    """The server process: serve ``cfg`` (a ServeConfig) on a free port, send the port, stop when told."""
    import torch

    from dexgen.teleop.server import WebsocketServer, make_policy_server

    torch.set_num_threads(cfg.threads)
    policy = make_policy_server(cfg)
    with WebsocketServer(policy, cfg.host, 0) as server:
        pipe.send(server.port)
        pipe.recv()
        pipe.send(dict(policy.calls))


def bench_serve(cfg: BenchServeConfig) -> dict:
    import torch

    from dexgen.eval.controller_bench import BenchControllerConfig, recorded_frames
    from dexgen.model.checkpoint import load_model, shipped_model_path
    from dexgen.teleop.client import PolicyClient, ServerError
    from dexgen.teleop.commands import KinematicIntent
    from dexgen.teleop.server import ServeConfig

    torch.set_num_threads(1)
    path = cfg.checkpoint or shipped_model_path(cfg.wrist)
    model = load_model(path, wrist=cfg.wrist)
    frames = recorded_frames(model, BenchControllerConfig(wrist=cfg.wrist, seed=cfg.seed), 100)
    intent = KinematicIntent("+z", 1.0, horizon=model.cfg.horizon, centre="nominal")
    serve_cfg = ServeConfig(port=0, wrist=cfg.wrist, checkpoint=str(path), guided=replace(cfg.guided), seed=cfg.seed,
                            command_timeout_s=10.0, restart_after_s=10.0)  # fmt: skip
    ours, theirs = mp.get_context("spawn").Pipe()
    proc = mp.get_context("spawn").Process(target=_serve, args=(serve_cfg, theirs), daemon=True)
    proc.start()
    try:
        if not ours.poll(120):
            raise RuntimeError("the server process did not start within 120 s")
        url = f"ws://127.0.0.1:{ours.recv()}"
        from websockets.sync.client import connect

        stalled = connect(url, proxy=None)  # connected, never sends
        roundtrip, compute, errors, held = [], [], 0, 0
        with PolicyClient(url, timeout_s=5.0) as client:
            meta = client.metadata()
            client.reset()
            for i in range(cfg.warmup + cfg.calls):
                frame = frames[i % len(frames)]
                command = intent.command(i, frame[None, 32:44].reshape(1, 4, 3))[0]
                start = time.perf_counter()
                try:
                    client.act(frame, command=command)
                except (ServerError, TimeoutError):
                    errors += 1
                    continue
                if i < cfg.warmup:
                    continue
                roundtrip.append(time.perf_counter() - start)
                compute.append(client.last_reply["compute_ms"])
                held += bool(client.last_held)
        stalled.close()
        ours.send("stop")
        calls = ours.recv() if ours.poll(10) else {}
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.terminate()
    if not roundtrip:
        raise RuntimeError(f"every one of the {cfg.calls} timed requests failed")
    rt = 1e3 * np.array(roundtrip)
    comp = np.array(compute)
    return {"checkpoint": str(path), "wrist": cfg.wrist, "server_threads": serve_cfg.threads,
            "alpha": meta["method"]["alpha"], "candidates": meta["method"]["candidates"], "calls": cfg.calls,
            "errors": errors, "held": held, "server_requests": calls.get("requests"),
            "server_errors": calls.get("errors"),
            "roundtrip_ms_p50": float(np.percentile(rt, 50)), "roundtrip_ms_p95": float(np.percentile(rt, 95)),
            "roundtrip_ms_max": float(rt.max()), "compute_ms_p50": float(np.percentile(comp, 50)),
            "compute_ms_p95": float(np.percentile(comp, 95)),
            "transport_ms_p50": float(np.percentile(rt - comp, 50))}  # fmt: skip
