"""``dexgen serve``: the DexGen controller as a policy server for a real hand or a remote machine.

One server drives one hand. Its clients speak ``dexgen.teleop.protocol`` (msgpack over websockets; a Python client
is ``dexgen.teleop.client.PolicyClient``):

- the hand's driver sends ``act`` once per control step (20 Hz) with the hand's observation frame and gets the
  joint targets back;
- the operator's command comes inline with ``act`` (``command``: fingertip motion; ``keypoints``: a tracked human
  hand; ``intent``: an object twist, for a model with an intent input) or from another connection, an operator
  client streaming ``command`` messages (a hand tracker on another machine). Without any command the hand runs the
  unguided prior;
- an operator stream that stalls (no message for ``command_timeout_s``) or disconnects makes ``act`` hold the last
  safe targets (``held`` in the reply) until it sends again or a ``reset``; a driver whose calls stop for
  ``restart_after_s`` starts its observation history over at its next call (``restarted``), since the model was
  trained on a contiguous one;
- ``metadata`` gives the joint order and limits, the control rate, the horizon and the frame layout; ``reset``
  starts an episode; ``calibrate`` fits the human-hand retargeting from a calibration sequence.

A malformed or out-of-range request gets an error reply naming the problem; the connection and the server go on.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from dexgen.checks import check_int, check_number
from dexgen.controller.dexgen_controller import (
    SHIPPED_METHOD,
    TARGETS,
    TIPS,
    ControllerConfig,
    DexGenController,
    fit_to_model,
)
from dexgen.controller.observation import FRAME_DIM, check_frames
from dexgen.data.schema import CONTROL_HZ
from dexgen.data.windows import OBS_FIELDS
from dexgen.model.checkpoint import load_model, model_hand, model_wrists, shipped_model_path
from dexgen.model.dexgen_model import DexGenModel
from dexgen.sim import constants as C
from dexgen.sim.hand import check_wrist, wrist_gravity_dir
from dexgen.teleop.human_hand import HumanHandSource, Retarget, check_keypoints, fit_retarget, load_keypoints
from dexgen.teleop.protocol import PROTOCOL_VERSION, ProtocolError, array_field, check_request, pack, unpack

OPS = ("metadata", "reset", "act", "command", "calibrate")
"""Requests the server answers (see the module docstring)."""
log = logging.getLogger("dexgen.serve")


class PolicyServer:
    """The request handler of ``dexgen serve``, free of any transport: ``handle(data, conn)`` answers one request
    from connection ``conn`` (any hashable id), ``disconnected(conn)`` tells it a connection closed. Thread-safe
    (one request at a time).

    Args:
        model: the DexGen model.
        config: the controller's method (fitted to the model).
        joint_range: (16, 2) joint limits, radians; None: those of the hand the model was trained on.
        gravity_dir: (3,) gravity in the palm frame for a model that observes it (``reset`` may change it).
        retarget: the operator's human-hand retargeting, for ``keypoints`` commands (``calibrate`` may set it).
        command_timeout_s: an operator stream silent this long counts as stalled.
        restart_after_s: a gap this long between ``act`` calls starts the observation history over.
        clock: monotonic time in seconds (tests pass a fake one).
    """

    def __init__(self, model: DexGenModel, *, config: ControllerConfig, joint_range: np.ndarray | None = None,
                 gravity_dir: np.ndarray | None = None, retarget: Retarget | None = None,
                 command_timeout_s: float = 0.25, restart_after_s: float = 0.5, clock=time.monotonic,
                 model_name: str = "") -> None:  # fmt: skip
        check_number("command_timeout_s", command_timeout_s, gt=0)
        check_number("restart_after_s", restart_after_s, gt=0)
        self.hand = model_hand(model)
        if joint_range is None:
            from dexgen.sim.hand import joint_range as hand_joint_range

            joint_range = hand_joint_range(self.hand)
        self.model, self.joint_range = model, np.asarray(joint_range, dtype=np.float64)
        self._fk = None  # forward kinematics of the model's hand, made at the first request that needs it
        if model.cfg.gravity_obs and gravity_dir is None:
            raise ValueError("this model observes gravity: give the server a gravity direction (or a wrist)")
        self.ctrl = DexGenController(model, config=config, joint_range=self.joint_range, gravity_dir=gravity_dir)
        self.config, self.retarget, self.model_name = config, retarget, model_name
        self.command_timeout_s, self.restart_after_s, self.clock = command_timeout_s, restart_after_s, clock
        self._lock = threading.Lock()
        self.calls = {"requests": 0, "errors": 0, "held": 0}
        """Counts of requests answered, error replies and ``act`` replies that held the last safe targets."""
        self._start_episode()

    # -- transport-facing -------------------------------------------------------------------------------------
    def handle(self, data: bytes | str, conn=None) -> bytes:
        """The reply (msgpack bytes) to one request; never raises for bad input (an error reply instead)."""
        request_id = None
        with self._lock:
            self.calls["requests"] += 1
            try:
                message = unpack(data)
                request_id = message.get("id")
                op = check_request(message, OPS)
                reply = getattr(self, f"_op_{op}")(message, conn)
                reply.update(ok=True)
            except ValueError as e:  # bad input: ProtocolError, a check's ValueError
                self.calls["errors"] += 1
                reply = {"ok": False, "error": str(e).splitlines()[0] if str(e) else type(e).__name__}
            except Exception as e:  # a bug must not take the hand's server down: report it, log it, go on
                self.calls["errors"] += 1
                log.exception("internal error")
                reply = {"ok": False, "error": f"internal error ({type(e).__name__}: {e})".splitlines()[0]}
            reply.update(v=PROTOCOL_VERSION, id=request_id)
            try:
                return pack(reply)
            except (TypeError, ValueError):  # an id the client sent that msgpack cannot echo
                return pack({"v": PROTOCOL_VERSION, "id": None, "ok": False, "error": "unusable request id"})

    def disconnected(self, conn) -> None:
        """Connection ``conn`` closed: if it was streaming the operator's command, hold from now on."""
        with self._lock:
            if self._operator is not None and self._operator["conn"] == conn:
                self._operator["lost"] = True

    # -- state --------------------------------------------------------------------------------------------------
    def _start_episode(self) -> None:
        self.ctrl.reset()
        self._last_act: float | None = None
        self._last_targets: np.ndarray | None = None
        self._holding = False
        self._operator: dict | None = None  # {"kind", "value", "t", "conn", "lost"} of the latest operator command
        self._human: HumanHandSource | None = None
        self._step = 0

    def _human_source(self, tips: np.ndarray) -> HumanHandSource:
        if self.retarget is None:
            raise ValueError("keypoints need a calibration: start the server with --keypoint-calibration FILE or "
                             "send a 'calibrate' request first")  # fmt: skip
        if self._human is None:
            self._human = HumanHandSource(self.retarget, horizon=self.model.cfg.horizon)
            self._human.reset(tips[None])
        return self._human

    # -- ops ------------------------------------------------------------------------------------------------------
    def _op_metadata(self, message: dict, conn) -> dict:
        record = getattr(self.model, "record", {})
        cfg = self.model.cfg
        return {
            "protocol": PROTOCOL_VERSION, "model": self.model_name, "model_revision": record.get("revision"),
            "hand": self.hand, "wrists": model_wrists(self.model), "joint_names": list(C.JOINT_NAMES),
            "joint_lower": self.joint_range[:, 0].tolist(), "joint_upper": self.joint_range[:, 1].tolist(),
            "control_hz": CONTROL_HZ, "horizon": cfg.horizon, "history": cfg.history, "frame_dim": FRAME_DIM,
            "frame_fields": [f"{name}[{n}]" for name, n in zip(OBS_FIELDS, (16, 16, 12))],
            "fingers": list(C.FINGERS), "gravity_obs": bool(cfg.gravity_obs), "intent_input": bool(cfg.intent),
            "keypoints": self.retarget is not None, "command_timeout_s": self.command_timeout_s,
            "method": {k: v for k, v in asdict(self.config).items() if not isinstance(v, tuple)},
        }  # fmt: skip

    def _op_reset(self, message: dict, conn) -> dict:
        gravity = array_field(message, "gravity_dir")
        if gravity is not None:
            self.ctrl.set_gravity_dir(gravity)
        self._start_episode()
        return {}

    def _op_calibrate(self, message: dict, conn) -> dict:
        keypoints = check_keypoints(array_field(message, "keypoints", required=True), "calibration keypoints")
        robot_tips = array_field(message, "robot_tips", required=True)
        self.retarget = fit_retarget(keypoints, robot_tips)
        self._human = None
        return {"residual_mm": self.retarget.residual_mm, "scale": self.retarget.scale}

    def _op_command(self, message: dict, conn) -> dict:
        kind, value = self._command_of(message)
        if kind is None:
            raise ProtocolError("a 'command' request needs one of 'command', 'keypoints' or 'intent'")
        if kind == "keypoints":  # fed as they come, at the control rate
            if self._last_act is None:
                raise ValueError("keypoints before the first 'act': the retargeted hand needs the robot's fingertips")
            self._human_source(self._tips_now).feed(value)
        self._operator = {"kind": kind, "value": value, "t": self.clock(), "conn": conn, "lost": False}
        return {}

    def _command_of(self, message: dict) -> tuple[str | None, np.ndarray | None]:
        given = [k for k in ("command", "keypoints", "intent") if message.get(k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of command, keypoints and intent, not {' and '.join(given)}")
        if not given:
            return None, None
        kind = given[0]
        value = array_field(message, kind)
        if kind == "keypoints":
            value = check_keypoints(value)
            if value.shape != (21, 3):
                raise ValueError(f"keypoints must be one frame (21, 3), got {value.shape}")
        elif kind == "command":
            want = (self.model.cfg.horizon, 4, 3)
            if value.shape != want:
                raise ValueError(f"command must have shape {want} (fingertip motion over the horizon, metres, palm "
                                 f"frame), got {value.shape}")  # fmt: skip
        return kind, value

    def _op_act(self, message: dict, conn) -> dict:
        now = self.clock()
        frame = self._frame(message)
        kind, value = self._command_of(message)
        gravity = array_field(message, "gravity_dir")
        if gravity is not None:
            self.ctrl.set_gravity_dir(gravity)
        restarted = self._last_act is not None and now - self._last_act > self.restart_after_s
        self._last_act, self._tips_now = now, frame[TIPS].reshape(4, 3).astype(np.float64)
        reason = None
        if kind is None and self._operator is not None:  # the operator's stream, if it is alive
            op = self._operator
            if op["lost"]:
                reason = "operator disconnected"
            elif now - op["t"] > self.command_timeout_s:
                reason = f"operator silent for {now - op['t']:.2f} s"
            else:
                kind, value = op["kind"], op["value"]
                if kind == "keypoints":
                    value = None  # fed on arrival
        if reason is not None:
            self._holding = True
            self.calls["held"] += 1
            targets = self._held_targets(frame)
            return {"targets": targets, "held": True, "reason": reason, "restarted": False, "step": self._step}
        if restarted or self._holding:  # start the history over: it has a gap
            self.ctrl.reset()
            self._holding = False
        command = intent = command_tips = None
        if kind == "keypoints":
            human = self._human_source(self._tips_now)
            if value is not None:
                human.feed(value)
            command = human.command(self._step, self._tips_now[None])[0]
            command_tips = human.command_tips()[0]
        elif kind == "command":
            command = value
        elif kind == "intent":
            intent = value
        rejected = self.ctrl.rejected
        targets = self.ctrl.act(frame, command, intent=intent, command_tips=command_tips)
        self._last_targets = targets
        self._step += 1
        return {"targets": targets, "held": False, "restarted": bool(restarted),
                "rejected": self.ctrl.rejected > rejected, "step": self._step - 1,
                "compute_ms": 1e3 * self.ctrl.latencies_s[-1]}  # fmt: skip

    def _frame(self, message: dict) -> np.ndarray:
        """The observation frame (44,) of an ``act`` request: given whole (``observation``), or from the joint
        readings (``joints`` and the ``targets`` in force, (16,) each, radians) with the fingertips by the forward
        kinematics of the model's hand."""
        if message.get("observation") is None and message.get("joints") is not None:
            joints = array_field(message, "joints")
            targets = array_field(message, "targets", required=True)
            for name, value in (("joints", joints), ("targets", targets)):
                if value.shape != (C.NUM_JOINTS,):
                    raise ValueError(f"{name} must have shape ({C.NUM_JOINTS},) (radians, joint_names order), got "
                                     f"{value.shape}")  # fmt: skip
            check_frames(np.concatenate([joints, targets, np.zeros(12)])[None], batch=1)  # finite, in range
            if self._fk is None:
                from dexgen.sim.ik import FingertipIK

                self._fk = FingertipIK(hand=self.hand)
            obs = np.concatenate([joints, targets, self._fk.forward(joints).ravel()])
        else:
            obs = array_field(message, "observation", required=True)
        if obs.shape != (FRAME_DIM,):
            raise ValueError(f"observation must have shape ({FRAME_DIM},) (joint positions, joint targets in force, "
                             f"fingertips), got {obs.shape}")  # fmt: skip
        return check_frames(obs[None], batch=1)[0]

    def _held_targets(self, frame: np.ndarray) -> np.ndarray:
        """The last targets sent, or before any, the targets in force, within the joint limits."""
        held = self._last_targets if self._last_targets is not None else frame[TARGETS].astype(np.float64)
        return np.clip(held, self.joint_range[:, 0], self.joint_range[:, 1])


@dataclass
class ServeConfig:
    """Serve the DexGen controller to a hand driver and an operator over websockets (msgpack): reset, act, metadata."""

    host: str = "127.0.0.1"
    """Address to listen on (0.0.0.0: every interface; the protocol has no authentication, so only on a trusted
    network)."""
    port: int = 8765
    """Port to listen on (0: any free port, printed at start)."""
    wrist: str = "palm_up"
    """Wrist orientation of the hand (picks the shipped model, and gravity's direction for a model that observes
    it)."""
    checkpoint: str | None = None
    """Model weights; None: the shipped model of the wrist orientation."""
    guided: ControllerConfig = field(default_factory=lambda: SHIPPED_METHOD)
    """The method: the shipped one unless a flag here changes a setting, fitted to the model; its seed is
    ``--seed``."""
    keypoint_calibration: str | None = None
    """An operator's human-hand calibration (a keypoint file with ``robot_tips``) for ``keypoints`` commands."""
    command_timeout_s: float = 0.25
    """An operator stream silent this long holds the hand's last safe targets."""
    restart_after_s: float = 0.5
    """A gap this long between a driver's ``act`` calls starts the observation history over."""
    threads: int = 1
    """Torch threads."""
    seconds: float | None = None
    """Stop after this long (None: until interrupted)."""
    seed: int = 0
    """Seed of the sampling noise."""
    json: bool = False
    """Print one JSON object (the request counts) when the server stops."""

    def __post_init__(self) -> None:
        check_wrist("wrist", self.wrist)
        check_int("port", self.port, ge=0)
        if self.port > 65535:
            raise ValueError(f"port must be at most 65535, got {self.port}")
        check_int("threads", self.threads, ge=1)
        check_number("command_timeout_s", self.command_timeout_s, gt=0)
        check_number("restart_after_s", self.restart_after_s, gt=0)
        check_number("seconds", self.seconds, gt=0, optional=True)
        if self.keypoint_calibration is not None and not Path(self.keypoint_calibration).is_file():
            raise ValueError(f"no keypoint calibration file at {self.keypoint_calibration}")


def make_policy_server(cfg: ServeConfig) -> PolicyServer:
    """The handler ``cfg`` describes: model, method, gravity and calibration loaded and checked."""
    path = cfg.checkpoint or shipped_model_path(cfg.wrist)
    model = load_model(path, wrist=cfg.wrist)
    retarget = None
    if cfg.keypoint_calibration is not None:
        keypoints, _, robot_tips = load_keypoints(cfg.keypoint_calibration)
        if robot_tips is None:
            raise ValueError(f"{cfg.keypoint_calibration} is not a calibration: it has no robot_tips")
        retarget = fit_retarget(keypoints, robot_tips)
    gravity = wrist_gravity_dir(cfg.wrist) if model.cfg.gravity_obs else None
    return PolicyServer(model, config=replace(fit_to_model(cfg.guided, model), seed=cfg.seed), gravity_dir=gravity,
                        retarget=retarget, command_timeout_s=cfg.command_timeout_s,
                        restart_after_s=cfg.restart_after_s, model_name=Path(path).name)  # fmt: skip


class WebsocketServer:
    """``policy`` served over websockets on (host, port) in a background thread; ``close()`` stops it."""

    def __init__(self, policy: PolicyServer, host: str = "127.0.0.1", port: int = 0) -> None:
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.server import serve

        self.policy = policy

        def connection(ws) -> None:
            conn = id(ws)
            try:
                for data in ws:
                    ws.send(policy.handle(data, conn))
            except ConnectionClosed:
                pass
            finally:
                policy.disconnected(conn)

        try:
            self._server = serve(connection, host, port, compression=None, max_size=8 * 2**20)
        except OSError as e:
            raise ValueError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
        self.host, self.port = host, self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="dexgen-serve", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)

    def __enter__(self) -> WebsocketServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_serve(cfg: ServeConfig) -> dict:
    """The serve command: serve until interrupted (or ``--seconds``); returns the request counts."""
    torch.set_num_threads(cfg.threads)
    policy = make_policy_server(cfg)
    server = WebsocketServer(policy, cfg.host, cfg.port)
    print(f"dexgen serve: {server.url} ({policy.model_name}, protocol {PROTOCOL_VERSION}); Ctrl-C stops", flush=True)
    start = time.monotonic()
    try:
        while cfg.seconds is None or time.monotonic() - start < cfg.seconds:
            time.sleep(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return {"url": server.url, "seconds": round(time.monotonic() - start, 1), **policy.calls}
