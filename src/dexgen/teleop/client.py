"""``PolicyClient``: the Python client of ``dexgen serve`` (``dexgen.teleop.server``), for a hand driver or an
operator's input device on another process or machine.

    client = PolicyClient("ws://robot-pc:8765")
    meta = client.metadata()            # joint order and limits, control rate, horizon, frame layout
    client.reset()
    targets = hand.joints()             # at the start, hold the pose the hand is in
    while running:                      # at meta["control_hz"]
        targets = client.act(joints=hand.joints(), targets=targets)  # (16,) rad each; or act(frame), frame (44,)
        hand.command_joints(targets)    # (16,) radians, meta["joint_names"] order

A reply that does not come within ``timeout_s`` (a stalled network or server) returns the last targets again, with
``client.last_held`` set, rather than leaving the driver without targets; an error reply raises ``ServerError``.
"""

from __future__ import annotations

import itertools

import numpy as np

from dexgen.teleop.protocol import PROTOCOL_VERSION, pack, unpack


class ServerError(RuntimeError):
    """The server answered a request with an error (the message names the problem) or could not be reached."""


class PolicyClient:
    """A connection to a ``dexgen serve`` server at ``url`` (``ws://host:port``).

    Args:
        url: the server's address.
        timeout_s: how long ``act`` waits for targets before returning the last ones again (``last_held``); other
            requests wait this long before a ServerError.
        connect_timeout_s: how long to wait for the connection.
    """

    def __init__(self, url: str, *, timeout_s: float = 0.1, connect_timeout_s: float = 5.0) -> None:
        from websockets.sync.client import connect

        try:
            self._ws = connect(url, open_timeout=connect_timeout_s, compression=None, max_size=8 * 2**20,
                               proxy=None)  # fmt: skip
        except (OSError, TimeoutError) as e:
            raise ServerError(f"cannot reach a dexgen server at {url}: {e}") from None
        except Exception as e:  # websockets' handshake errors (another service on that port)
            raise ServerError(f"{url} is not a dexgen server ({type(e).__name__}: {e})") from None
        self.url, self.timeout_s = url, timeout_s
        self._ids = itertools.count()
        self._pending: set[int] = set()  # requests whose reply timed out: their late replies are skipped
        self.last_targets: np.ndarray | None = None
        """The last joint targets received (16,), radians."""
        self.last_held = False
        """Whether the last ``act`` returned held targets: the server held them (operator stalled) or no reply came
        in time and the client repeated its last ones."""
        self.last_reply: dict = {}
        """The last ``act`` reply as received (``held``, ``reason``, ``restarted``, ``step``, ``compute_ms``)."""

    def request(self, op: str, *, timeout_s: float | None = None, **fields) -> dict:
        """Send one request and return its reply's fields; ServerError for an error reply, TimeoutError if none
        came within ``timeout_s`` (default the client's)."""
        rid = next(self._ids)
        self._ws.send(pack({"v": PROTOCOL_VERSION, "op": op, "id": rid, **fields}))
        wait = self.timeout_s if timeout_s is None else timeout_s
        while True:
            try:
                reply = unpack(self._ws.recv(timeout=wait))
            except TimeoutError:
                self._pending.add(rid)
                raise
            except Exception as e:  # the connection closed
                raise ServerError(f"lost the connection to {self.url}: {e}") from None
            if reply.get("id") in self._pending:  # a late reply to a request given up on
                self._pending.discard(reply.get("id"))
                continue
            if not reply.get("ok"):
                raise ServerError(f"{op}: {reply.get('error', 'error reply without a message')}")
            return reply

    def metadata(self) -> dict:
        """The model's metadata: joint order and limits, control rate, horizon, frame layout, method."""
        return self.request("metadata", timeout_s=max(self.timeout_s, 2.0))

    def reset(self, *, gravity_dir=None) -> None:
        """Start an episode (forget the observation history and any operator stream); ``gravity_dir`` (3,) palm frame
        for a model that observes gravity."""
        fields = {} if gravity_dir is None else {"gravity_dir": np.asarray(gravity_dir, dtype=np.float64)}
        self.request("reset", timeout_s=max(self.timeout_s, 2.0), **fields)
        self.last_targets, self.last_held = None, False

    def act(self, observation=None, *, joints=None, targets=None, command=None, keypoints=None, intent=None,
            gravity_dir=None) -> np.ndarray:  # fmt: skip
        """Joint targets (16,) radians for the observation frame (44,), or for the hand's ``joints`` (16,) and the
        ``targets`` (16,) in force, radians (the server adds the fingertips by forward kinematics); optionally with
        the operator's command inline: ``command`` (T, 4, 3) fingertip motion, metres, palm frame; ``keypoints``
        (21, 3) a tracked human hand, metres, wrist frame; ``intent`` (6,) object twist. Without a reply in
        ``timeout_s`` the last targets again (``last_held``); a TimeoutError only if there are none yet."""
        if (observation is None) == (joints is None):
            raise ValueError("give the observation frame or the joints (with the targets in force), one of them")
        if observation is not None:
            fields = {"observation": np.asarray(observation, dtype=np.float32)}
        else:
            fields = {"joints": np.asarray(joints, dtype=np.float64), "targets": np.asarray(targets, dtype=np.float64)}
        for name, value in (("command", command), ("keypoints", keypoints), ("intent", intent),
                            ("gravity_dir", gravity_dir)):  # fmt: skip
            if value is not None:
                fields[name] = np.asarray(value, dtype=np.float32)
        try:
            reply = self.request("act", **fields)
        except TimeoutError:
            if self.last_targets is None:
                raise TimeoutError(f"no targets from {self.url} within {self.timeout_s} s") from None
            self.last_held = True
            return self.last_targets.copy()
        self.last_reply = reply
        self.last_targets = np.asarray(reply["targets"], dtype=np.float64)
        self.last_held = bool(reply.get("held"))
        return self.last_targets.copy()

    def send_command(self, *, command=None, keypoints=None, intent=None) -> None:
        """Operator side: stream the newest command (one of fingertip motion (T, 4, 3), keypoints (21, 3) or an
        intent (6,)); the driver's next ``act`` calls use it until a newer one comes."""
        fields = {name: np.asarray(v, dtype=np.float32) for name, v in
                  (("command", command), ("keypoints", keypoints), ("intent", intent)) if v is not None}  # fmt: skip
        self.request("command", **fields)

    def calibrate(self, keypoints, robot_tips) -> dict:
        """Fit the operator's human-hand retargeting from a calibration (keypoints (S, 21, 3) recorded while
        following ``robot_tips`` (S, 4, 3)); returns ``residual_mm`` and ``scale``."""
        return self.request("calibrate", timeout_s=max(self.timeout_s, 10.0),
                            keypoints=np.asarray(keypoints, dtype=np.float64),
                            robot_tips=np.asarray(robot_tips, dtype=np.float64))  # fmt: skip

    def close(self) -> None:
        self._ws.close()

    def __enter__(self) -> PolicyClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
