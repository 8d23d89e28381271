"""``dexgen serve``: the policy server's requests and replies, bad input, a stalled or lost operator, and the
websocket transport with its Python client."""

import threading
import time

import msgpack
import numpy as np
import pytest
import torch

from dexgen.cli import main
from dexgen.controller.dexgen_controller import ControllerConfig
from dexgen.sim.constants import JOINT_NAMES
from dexgen.sim.hand import joint_range, wrist_gravity_dir
from dexgen.teleop.client import PolicyClient, ServerError
from dexgen.teleop.human_hand import HUMAN_CALIBRATION, HUMAN_DEMO, load_keypoints
from dexgen.teleop.protocol import PROTOCOL_VERSION, pack, unpack
from dexgen.teleop.server import PolicyServer, WebsocketServer
from model_helpers import tiny_model

RANGE = joint_range()
HORIZON = tiny_model().cfg.horizon


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _server(clock=None, **kw) -> PolicyServer:
    torch.manual_seed(0)
    return PolicyServer(tiny_model(), config=ControllerConfig(alpha=0.3), joint_range=RANGE,
                        clock=clock or time.monotonic, **kw)  # fmt: skip


def _frame(seed: int = 0) -> np.ndarray:
    """A plausible observation frame (44,): joints mid-range, fingertips near the palm."""
    rng = np.random.default_rng(seed)
    mid = RANGE.mean(1)
    tips = np.array([[0.09, -0.03, 0.08], [0.1, 0.0, 0.08], [0.09, 0.03, 0.08], [0.03, -0.05, 0.07]])
    return np.concatenate([mid + rng.normal(0, 0.05, 16), mid, (tips + rng.normal(0, 0.002, (4, 3))).ravel()])


def _ask(server: PolicyServer, conn="driver", **fields) -> dict:
    return unpack(server.handle(pack({"v": PROTOCOL_VERSION, "id": 7, **fields}), conn))


def _command(speed: float = 0.02) -> np.ndarray:
    """(T, 4, 3) every fingertip moving along +y at ``speed`` m/s."""
    steps = 0.05 * np.arange(1, HORIZON + 1)
    return np.broadcast_to(speed * steps[:, None, None] * np.array([0.0, 1.0, 0.0]), (HORIZON, 4, 3)).copy()


def test_metadata_names_the_joints_limits_rate_and_horizon():
    reply = _ask(_server(), op="metadata")
    assert reply["ok"] and reply["id"] == 7 and reply["v"] == PROTOCOL_VERSION
    assert reply["joint_names"] == list(JOINT_NAMES)
    np.testing.assert_allclose(reply["joint_lower"], RANGE[:, 0])
    np.testing.assert_allclose(reply["joint_upper"], RANGE[:, 1])
    assert reply["control_hz"] == 20.0 and reply["horizon"] == HORIZON and reply["frame_dim"] == 44
    assert reply["method"]["alpha"] == 0.3 and reply["keypoints"] is False


def test_act_returns_targets_within_limits_and_the_same_seed_repeats():
    runs = []
    for _ in range(2):
        server = _server()
        runs.append([_ask(server, op="act", observation=_frame(t), command=_command())["targets"] for t in range(4)])
    out = np.array(runs[0])
    assert out.shape == (4, 16) and np.isfinite(out).all()
    assert (out >= RANGE[:, 0] - 1e-9).all() and (out <= RANGE[:, 1] + 1e-9).all()
    np.testing.assert_array_equal(out, np.array(runs[1]))
    lists = _ask(_server(), op="act", observation=_frame(0).tolist(), command=_command().tolist())  # no NumPy needed
    np.testing.assert_allclose(lists["targets"], out[0], atol=1e-6)


def _req(**fields) -> bytes:
    return pack({"v": PROTOCOL_VERSION, **fields})


def _act(**fields) -> bytes:
    return _req(op="act", observation=_frame(), **fields)


BAD_ARRAY = {"__ndarray__": True, "dtype": "<f4", "shape": [44], "data": b"\x00"}


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"\xc1\x00garbage", "undecodable"),
        ("text", "text frame"),
        (msgpack.packb([1, 2, 3]), "must be a msgpack map"),
        (pack({"v": 99, "op": "act"}), "protocol version 99"),
        (pack({"op": "act"}), "protocol version None"),
        (_req(op="fly"), "unknown op 'fly'"),
        (_req(op="act"), "'observation' is missing"),
        (_req(op="act", observation=np.zeros(10)), "shape (44,)"),
        (_req(op="act", observation="abc"), "array of numbers"),
        (_req(op="act", observation=BAD_ARRAY), "malformed array"),
        (_req(op="act", observation=np.full(44, np.nan)), "NaN"),
        (_req(op="act", observation=np.full(44, 1e4)), "beyond"),
        (_act(command=np.zeros((3, 4, 3))), f"command must have shape ({HORIZON}, 4, 3)"),
        (_act(command=np.full((HORIZON, 4, 3), 5.0)), "command"),
        (_act(keypoints=np.zeros((20, 3))), "21 landmarks"),
        (_act(keypoints=np.full((21, 3), np.nan)), "NaN"),
        (_act(keypoints=np.zeros((21, 3))), "need a calibration"),
        (_act(command=_command(), intent=np.zeros(6)), "not command and intent"),
        (_act(intent=np.zeros(6)), "no intent input"),
        (_req(op="command"), "needs one of"),
        (_req(op="reset", gravity_dir=np.zeros(3)), "non-zero"),
    ],
)
def test_bad_requests_get_a_one_line_error_and_the_server_goes_on(raw, says):
    server = _server()
    reply = unpack(server.handle(raw, "c"))
    assert reply["ok"] is False and says in reply["error"] and "\n" not in reply["error"]
    assert reply["v"] == PROTOCOL_VERSION
    assert _ask(server, op="act", observation=_frame())["ok"]
    assert server.calls["errors"] == 1


def test_an_internal_error_is_reported_not_raised(monkeypatch):
    server = _server()
    monkeypatch.setattr(server.ctrl, "act", lambda *a, **k: 1 / 0)
    reply = _ask(server, op="act", observation=_frame())
    assert reply["ok"] is False and "internal error (ZeroDivisionError" in reply["error"]


def test_a_stalled_or_lost_operator_holds_the_last_safe_targets():
    clock = Clock()
    server = _server(clock, command_timeout_s=0.25)
    assert _ask(server, "operator", op="command", command=_command())["ok"]
    first = _ask(server, op="act", observation=_frame(0))
    assert first["held"] is False
    clock.t = 0.2  # the operator's command is 0.2 s old: still followed
    live = _ask(server, op="act", observation=_frame(1))
    assert live["held"] is False
    clock.t = 0.3  # silent for 0.3 s > 0.25 s: hold
    held = _ask(server, op="act", observation=_frame(2))
    assert held["held"] is True and "silent" in held["reason"]
    np.testing.assert_array_equal(held["targets"], live["targets"])
    assert _ask(server, "operator", op="command", command=_command())["ok"]  # it speaks again: followed again
    back = _ask(server, op="act", observation=_frame(3))
    assert back["held"] is False
    server.disconnected("operator")
    clock.t = 0.35
    lost = _ask(server, op="act", observation=_frame(4))
    assert lost["held"] is True and lost["reason"] == "operator disconnected"
    np.testing.assert_array_equal(lost["targets"], back["targets"])
    server.disconnected("someone else")
    assert _ask(server, op="reset")["ok"]  # a new episode forgets the operator: unguided until one speaks
    assert _ask(server, op="act", observation=_frame(5))["held"] is False
    assert server.calls["held"] == 2


def test_a_held_hand_before_any_targets_holds_the_targets_in_force():
    clock = Clock()
    server = _server(clock)
    _ask(server, "operator", op="command", command=_command())
    clock.t = 1.0
    frame = _frame(0)
    frame[16] = RANGE[0, 1] + 0.5  # a target in force beyond the limit is clamped
    reply = _ask(server, op="act", observation=frame)
    assert reply["held"]
    np.testing.assert_allclose(reply["targets"], np.clip(frame[16:32], RANGE[:, 0], RANGE[:, 1]))


def test_a_gap_in_the_drivers_calls_starts_the_history_over():
    clock = Clock()
    server = _server(clock, restart_after_s=0.5)
    assert _ask(server, op="act", observation=_frame(0))["restarted"] is False
    clock.t = 0.05
    assert _ask(server, op="act", observation=_frame(1))["restarted"] is False
    clock.t = 1.0
    assert _ask(server, op="act", observation=_frame(2))["restarted"] is True


def test_keypoints_inline_and_streamed_after_a_calibration():
    calib, _, robot = load_keypoints(HUMAN_CALIBRATION)
    demo, _, _ = load_keypoints(HUMAN_DEMO)
    server = _server()
    fit = _ask(server, op="calibrate", keypoints=calib, robot_tips=robot)
    assert fit["ok"] and fit["residual_mm"] < 2.0
    assert _ask(server, op="metadata")["keypoints"] is True
    for t in range(3):
        reply = _ask(server, op="act", observation=_frame(t), keypoints=demo[t])
        assert reply["ok"] and reply["held"] is False
    assert _ask(server, "operator", op="command", keypoints=demo[3])["ok"]
    assert _ask(server, op="act", observation=_frame(3))["held"] is False
    bad = _ask(server, op="calibrate", keypoints=calib[:, :5], robot_tips=robot)
    assert bad["ok"] is False and "21 landmarks" in bad["error"]


def test_a_model_that_observes_gravity_takes_its_direction():
    torch.manual_seed(0)
    model = tiny_model(obs_dim=47, gravity_obs=True)
    with pytest.raises(ValueError, match="gravity"):
        PolicyServer(model, config=ControllerConfig(), joint_range=RANGE)
    server = PolicyServer(model, config=ControllerConfig(), joint_range=RANGE, gravity_dir=wrist_gravity_dir("palm_up"))
    assert _ask(server, op="act", observation=_frame(), gravity_dir=[0.0, 1.0, 0.0])["ok"]
    np.testing.assert_allclose(wrist_gravity_dir("palm_up"), [0, 0, -1], atol=1e-9)


@pytest.mark.parametrize("wrist", ["palm_up", "palm_down", "sideways"])
def test_a_wrists_gravity_direction_is_the_simulators(wrist):
    from dexgen.sim.env import EnvConfig, HandEnv

    env = HandEnv(EnvConfig(num_envs=1, objects="cube_60", wrist=wrist, num_threads=1))
    np.testing.assert_allclose(wrist_gravity_dir(wrist), env.sims.gravity_dir, atol=1e-9)


def test_the_client_over_websockets():
    server = _server()
    with WebsocketServer(server) as ws, PolicyClient(ws.url, timeout_s=5.0) as client:
        meta = client.metadata()
        assert meta["joint_names"] == list(JOINT_NAMES)
        client.reset()
        targets = [client.act(_frame(t), command=_command()) for t in range(5)]
        assert all(t.shape == (16,) for t in targets) and not client.last_held
        with pytest.raises(ServerError, match="shape"):
            client.act(np.zeros(3))
        assert client.act(_frame(5)).shape == (16,)  # the connection survives an error reply


def test_garbage_frames_and_stalled_clients_cost_nothing_but_an_error_reply():
    from websockets.sync.client import connect

    server = _server()
    with WebsocketServer(server) as ws:
        stalled = connect(ws.url, proxy=None)  # opens and never sends
        raw = connect(ws.url, proxy=None)
        raw.send("hello")
        assert "text frame" in unpack(raw.recv(timeout=5))["error"]
        raw.send(b"\x00\xff\xfe")
        assert unpack(raw.recv(timeout=5))["ok"] is False
        raw.close()
        with PolicyClient(ws.url, timeout_s=5.0) as client:
            start = time.perf_counter()
            client.act(_frame())
            assert time.perf_counter() - start < 2.0
        stalled.close()


def test_an_operator_connection_that_drops_holds_the_drivers_targets():
    server = _server()
    with WebsocketServer(server) as ws, PolicyClient(ws.url, timeout_s=5.0) as driver:
        operator = PolicyClient(ws.url, timeout_s=5.0)
        operator.send_command(command=_command())
        last = driver.act(_frame(0))
        assert not driver.last_held
        operator.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # until the server has seen the connection close
            out = driver.act(_frame(1))
            if driver.last_held:
                break
            last = out
        assert driver.last_held and driver.last_reply["reason"] == "operator disconnected"
        np.testing.assert_array_equal(out, last)


def test_a_late_reply_gives_the_last_targets_again_and_is_skipped_later():
    server = _server()
    slow = threading.Event()
    handle = server.handle

    def delayed(data, conn=None):
        if slow.is_set():
            slow.clear()
            time.sleep(0.5)
        return handle(data, conn)

    server.handle = delayed
    with WebsocketServer(server) as ws, PolicyClient(ws.url, timeout_s=0.2) as client:
        with pytest.raises(TimeoutError):
            slow.set()
            client.act(_frame(0))  # no targets yet to hold
        time.sleep(0.6)
        first = client.act(_frame(1))
        slow.set()
        again = client.act(_frame(2))
        assert client.last_held
        np.testing.assert_array_equal(again, first)
        time.sleep(0.6)
        assert client.act(_frame(3)).shape == (16,) and not client.last_held


def test_cli_refuses_bad_settings_in_one_line(capsys):
    assert main(["serve", "--port", "70000"]) != 0
    assert "port must be at most 65535" in capsys.readouterr().err
    assert main(["serve", "--keypoint-calibration", "/nonexistent.npz"]) != 0
    assert "no keypoint calibration file" in capsys.readouterr().err


def test_bench_serve_times_round_trips_to_a_server_process(tmp_path):
    from dexgen.eval.serve_bench import BenchServeConfig, bench_serve
    from dexgen.model.checkpoint import save_model

    path = save_model(tiny_model(mode="primitive", mode_dropout=0.2), tmp_path / "m.safetensors")
    out = bench_serve(BenchServeConfig(checkpoint=str(path), calls=20, warmup=2))
    assert out["errors"] == 0 and out["held"] == 0 and out["server_errors"] == 0
    assert out["server_requests"] == 2 + 22  # metadata, reset, then every act
    assert 0 < out["compute_ms_p50"] < out["roundtrip_ms_p50"] <= out["roundtrip_ms_p95"]
    assert out["server_threads"] == 1 and out["candidates"] == 8


def test_served_targets_equal_the_in_process_controllers():
    from dexgen.controller.dexgen_controller import DexGenController

    ctrl = DexGenController(tiny_model(), config=ControllerConfig(alpha=0.3), joint_range=RANGE)
    local = [ctrl.act(_frame(t), _command()) for t in range(4)]
    with WebsocketServer(_server()) as ws, PolicyClient(ws.url, timeout_s=5.0) as client:
        served = [client.act(_frame(t), command=_command()) for t in range(4)]
    np.testing.assert_array_equal(np.array(served), np.array(local))


def test_the_serve_command_serves_a_checkpoint_until_its_time_is_up(tmp_path):
    import socket

    from dexgen.model.checkpoint import save_model
    from dexgen.teleop.server import ServeConfig, run_serve

    path = save_model(tiny_model(), tmp_path / "m.safetensors")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = ServeConfig(port=port, checkpoint=str(path), keypoint_calibration=str(HUMAN_CALIBRATION), seconds=4.0)
    result = {}
    thread = threading.Thread(target=lambda: result.update(run_serve(cfg)))
    thread.start()
    deadline = time.monotonic() + 30
    while True:
        try:
            client = PolicyClient(f"ws://127.0.0.1:{port}", timeout_s=5.0, connect_timeout_s=1.0)
            break
        except ServerError:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
    with client:
        assert client.metadata()["keypoints"] is True and client.metadata()["model"] == "m.safetensors"
        demo, _, _ = load_keypoints(HUMAN_DEMO)
        assert client.act(_frame(), keypoints=demo[0]).shape == (16,)
    thread.join(timeout=30)
    assert result["requests"] == 3 and result["errors"] == 0


def test_act_from_joint_readings_adds_the_fingertips_by_forward_kinematics():
    from dexgen.sim.ik import FingertipIK

    frame = _frame(0)
    frame[32:44] = FingertipIK().forward(frame[:16]).ravel()
    whole = _ask(_server(), op="act", observation=frame)
    readings = _ask(_server(), op="act", joints=frame[:16], targets=frame[16:32])
    np.testing.assert_allclose(readings["targets"], whole["targets"], atol=1e-6)
    bad = _ask(_server(), op="act", joints=frame[:12], targets=frame[16:32])
    assert bad["ok"] is False and "joints must have shape (16,)" in bad["error"]
    missing = _ask(_server(), op="act", joints=frame[:16])
    assert missing["ok"] is False and "'targets' is missing" in missing["error"]
    assert _ask(_server(), op="metadata")["hand"] == "legacy"
    with pytest.raises(ValueError, match="one of them"):
        PolicyClient.act(None, frame, joints=frame[:16])
