"""``dexgen web``: teleoperate the simulated hand from a browser.

A viser server (https://viser.studio) shows the hand and the object live and gives the operator the command: the
rotation axis and speed (or the keys X, Y, Z, R, arrow up / down and space, as in ``dexgen teleop``), the assist on
(the guided DexGen controller) or off (raw IK of the command), the guidance strength α, the object, the wrist
orientation and a reset. A readout shows how long the object has been held and how far it turned about the commanded
axis. The record button saves the executed fingertip trajectory as a replay recording for ``dexgen eval --sources
replay:FILE``. Several tabs may watch; the first one connected drives (its controls are live, the others' are
greyed out) until it leaves, then the next one does.

A thread steps the simulation in real time at the control rate (20 Hz); the page gets the bodies' poses after
every step.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from dexgen.checks import check_int, check_number
from dexgen.controller.config import SHIPPED_METHOD, ControllerConfig
from dexgen.controller.observation import FRAME_DIM
from dexgen.sim.constants import GRASP_CENTRE
from dexgen.sim.hand import check_wrist
from dexgen.sim.objects import resolve_objects
from dexgen.sim.rotations import quat_conj, quat_mul, quat_to_rotvec
from dexgen.teleop.commands import parse_axis, save_recording
from dexgen.teleop.keyboard import KeyboardIntent

AXES = ("+x", "-x", "+y", "-y", "+z", "-z")
WRISTS = ("palm_up", "palm_down", "sideways")
HOTKEYS = {"X": "X", "Y": "Y", "Z": "Z", "R": "R", "arrowup": "=", "arrowdown": "-", "space": " "}
"""Browser keys -> the ``KeyboardIntent`` key they press."""


@dataclass
class WebConfig:
    """Teleoperate the simulated hand from a browser: live 3D view, command controls and keys, assist on / off."""

    host: str = "127.0.0.1"
    """Address to listen on (0.0.0.0: every interface)."""
    port: int = 8080
    """Port of the page (http://HOST:PORT)."""
    object: str = "cube_60"
    """Object in the hand at the start (the page can change it)."""
    wrist: str = "palm_down"
    """Wrist orientation at the start (the page can change it; the assist needs a shipped model for it)."""
    axis: str = "+z"
    """Commanded rotation axis at the start."""
    speed: float = 0.0
    """Commanded rotation speed at the start, rad/s."""
    assist: bool = True
    """Start with the assist on (the guided DexGen controller; off: raw IK of the command)."""
    guided: ControllerConfig = field(default_factory=lambda: SHIPPED_METHOD)
    """The guided method: the shipped one unless a flag here changes a setting; the page's α slider sets its α."""
    checkpoint: str | None = None
    """Model weights; None: the shipped model of the wrist orientation."""
    record_dir: str = "recordings"
    """Where the record button writes its recordings."""
    seconds: float | None = None
    """Stop after this long (None: until interrupted)."""
    seed: int = 0
    """Seed of the grasps, physics and sampling."""
    json: bool = False
    """Print one JSON object (start time, control rate kept) when it stops."""

    def __post_init__(self) -> None:
        check_int("port", self.port, ge=0)
        resolve_objects(self.object)
        check_wrist("wrist", self.wrist)
        parse_axis(self.axis)
        check_number("speed", self.speed, ge=0, le=2.0)
        check_number("seconds", self.seconds, gt=0, optional=True)


class HandSession:
    """The simulated hand, its controller and the operator's command, one control step per ``step()``.

    Thread-safe: the page's callbacks change the command and the settings while a thread steps.
    """

    def __init__(self, cfg: WebConfig, *, background: bool = False) -> None:
        self.cfg = cfg
        self.lock = threading.RLock()
        self.source = KeyboardIntent(axis=cfg.axis, omega=cfg.speed)
        self.want_assist, self.alpha = cfg.assist, cfg.guided.alpha
        self.recording: list[np.ndarray] | None = None
        self.message = ""
        self.episodes = 0
        self._generation = 0
        self.model_ready_s: float | None = None
        """Seconds the first model took to load (None while it loads)."""
        self.load(cfg.object, cfg.wrist, background=background)

    @property
    def assist(self) -> bool:
        """Whether the guided controller drives the hand (on when asked for and its model is loaded)."""
        return self.want_assist and self.ctrl is not None

    def load(self, obj: str, wrist: str, *, background: bool = False) -> None:
        """Put ``obj`` in the hand at wrist orientation ``wrist`` (a new episode) and load the model for the wrist,
        in a thread with ``background`` (the hand runs raw IK until it is ready); where no model ships for the
        wrist, the assist stays off and ``message`` says why."""
        from dexgen.sim.env import EnvConfig, HandEnv
        from dexgen.sim.ik import FingertipIK

        with self.lock:
            self.env = HandEnv(EnvConfig(num_envs=1, objects=obj, wrist=wrist, action_mode="absolute",
                                         seed=self.cfg.seed, episode_seconds=3600.0, num_threads=1))  # fmt: skip
            self.object, self.wrist = obj, wrist
            self.ctrl = None
            self.ik = FingertipIK()
            self._generation += 1
            self._start_episode()
        if background:
            threading.Thread(target=self._load_model, args=(wrist, self._generation), daemon=True).start()
        else:
            self._load_model(wrist, self._generation)

    def _load_model(self, wrist: str, generation: int) -> None:
        start = time.perf_counter()
        self.message = "loading the model..."
        import torch

        from dexgen.controller.dexgen_controller import DexGenController, fit_to_model
        from dexgen.model.checkpoint import load_model, shipped_model_path

        torch.set_num_threads(1)
        try:
            model = load_model(self.cfg.checkpoint or shipped_model_path(wrist), wrist=wrist)
            config = replace(fit_to_model(self.cfg.guided, model), seed=self.cfg.seed, alpha=self.alpha)
        except ValueError as e:  # no model for the wrist, or a model that does not fit
            with self.lock:
                if generation == self._generation:
                    self.message = f"no assist for {wrist}: {e}"
            return
        with self.lock:
            if generation != self._generation:  # another object or wrist was chosen meanwhile
                return
            self.ctrl = DexGenController(model, config=config, gravity_dir=self.env.sims.gravity_dir)
            self.source.horizon = model.cfg.horizon
            self.message = ""
            if self.model_ready_s is None:
                self.model_ready_s = time.perf_counter() - start

    def _start_episode(self) -> None:
        self.obs = self.env.get_observations()
        self.t, self.held_steps = 0, 0
        self.turned = 0.0  # rad about the commanded axis, summed step by step
        if self.ctrl is not None:
            self.ctrl.reset()

    def reset(self) -> None:
        """A new episode: a fresh grasp of the same object."""
        with self.lock:
            self.env.reset()
            self._start_episode()

    def set_alpha(self, alpha: float) -> None:
        with self.lock:
            self.alpha = float(alpha)
            if self.ctrl is not None:
                self.ctrl.config = replace(self.ctrl.config, alpha=self.alpha)

    def set_assist(self, on: bool) -> bool:
        """Turn the assist on or off; returns whether it is on (it stays off without a model)."""
        with self.lock:
            self.want_assist = bool(on)
            if self.ctrl is not None:
                self.ctrl.reset()
            return self.assist

    def start_recording(self) -> None:
        with self.lock:
            self.recording = [self.env.fingertips()[0].copy()]

    def stop_recording(self) -> Path | None:
        """Save the recording (a replay recording of the executed fingertips); None if it is too short."""
        with self.lock:
            tips, self.recording = self.recording, None
        if tips is None or len(tips) < 2:
            return None
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path(self.cfg.record_dir) / f"web_{stamp}_{self.object}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        return save_recording(path, np.array(tips), dt=self.env.dt)

    def step(self) -> None:
        """One control step of the hand under the current command and method."""
        with self.lock:
            env = self.env
            frame = self.obs["policy"][:, :FRAME_DIM]
            cmd = self.source.command(self.t, env.fingertips())
            if self.assist:
                targets = self.ctrl.act(frame[0], cmd[0])[None]
            else:
                targets = self.ik.follow(frame, cmd)
            before = env.object_pose()[1][0].copy()
            self.obs, _, done, _ = env.step(targets)
            self.t += 1
            if done[0]:  # dropped (or timed out): the env started a new episode
                self.episodes += 1
                self._start_episode()
                return
            self.held_steps += 1
            after = env.object_pose()[1][0]
            self.turned += float(quat_to_rotvec(quat_mul(after, quat_conj(before))) @ parse_axis(self.source.axis))
            if self.recording is not None:
                self.recording.append(env.fingertips()[0].copy())

    def readout(self) -> dict:
        with self.lock:
            return {"held_s": self.held_steps * self.env.dt, "turned_deg": float(np.degrees(self.turned)),
                    "axis": self.source.axis, "speed": self.source.omega, "assist": self.want_assist,
                    "assist_ready": self.assist,
                    "alpha": self.alpha, "object": self.object, "wrist": self.wrist, "drops": self.episodes,
                    "recording": self.recording is not None}  # fmt: skip


def geom_meshes(model) -> list[tuple[int, np.ndarray, np.ndarray, tuple[int, int, int]]]:
    """(geom id, vertices (V, 3), faces (F, 3), colour) of every visible solid geom of a MuJoCo model, in the geom's
    own frame (planes and invisible geoms left out)."""
    import mujoco
    import trimesh

    out = []
    for g in range(model.ngeom):
        kind, size = int(model.geom_type[g]), model.geom_size[g]
        rgba = model.mat_rgba[model.geom_matid[g]] if model.geom_matid[g] >= 0 else model.geom_rgba[g]
        if rgba[3] < 0.05:
            continue
        if kind == mujoco.mjtGeom.mjGEOM_SPHERE:
            mesh = trimesh.creation.icosphere(subdivisions=2, radius=size[0])
        elif kind == mujoco.mjtGeom.mjGEOM_ELLIPSOID:
            mesh = trimesh.creation.icosphere(subdivisions=2, radius=1.0)
            mesh.apply_scale(size[:3])
        elif kind == mujoco.mjtGeom.mjGEOM_CAPSULE:
            mesh = trimesh.creation.capsule(height=2 * size[1], radius=size[0], count=[12, 12])
        elif kind == mujoco.mjtGeom.mjGEOM_CYLINDER:
            mesh = trimesh.creation.cylinder(radius=size[0], height=2 * size[1], sections=24)
        elif kind == mujoco.mjtGeom.mjGEOM_BOX:
            mesh = trimesh.creation.box(extents=2 * size[:3])
        else:  # planes, height fields, meshes: not in the hand or its objects
            continue
        colour = tuple(int(255 * c) for c in rgba[:3])
        out.append((g, np.asarray(mesh.vertices, np.float32), np.asarray(mesh.faces, np.uint32), colour))
    return out


class WebPage:
    """The page of a ``HandSession`` on a viser server: the 3D scene, each tab's controls and readout."""

    def __init__(self, session: HandSession, server) -> None:
        self.session, self.server = session, server
        self.lock = threading.RLock()
        self.tabs: list = []  # connected clients, oldest first: the first drives
        self.gui: dict[int, dict] = {}
        self._build_scene()
        server.initial_camera.look_at = tuple(self.centre)
        server.initial_camera.position = tuple(self.centre + np.array([0.22, -0.22, 0.1]))
        server.on_client_connect(self._connect)
        server.on_client_disconnect(self._disconnect)

    # -- scene --------------------------------------------------------------------------------------------------
    def _build_scene(self) -> None:
        import mujoco

        with self.lock:
            for handle in getattr(self, "meshes", {}).values():
                handle.remove()
            sims = self.session.env.sims
            self.mj_model = sims.batch.get_model(0)
            self.mj_data = mujoco.MjData(self.mj_model)
            self.meshes = {g: self.server.scene.add_mesh_simple(f"/hand/geom_{g}", v, f, color=c)
                           for g, v, f, c in geom_meshes(self.mj_model)}  # fmt: skip
            palm_rot = np.asarray(sims.palm_rot, dtype=np.float64).reshape(-1, 3, 3)[0]
            palm_pos = np.asarray(sims.palm_pos, dtype=np.float64).reshape(-1, 3)[0]
            self.centre = palm_pos + palm_rot @ np.array(GRASP_CENTRE)  # where the object is held, world frame
            self.update()

    def update(self) -> None:
        """Move every body to where the simulation has it now."""
        import mujoco

        with self.lock, self.session.lock:
            self.session.env.sims.batch.get_data(0, self.mj_data)
            mujoco.mj_kinematics(self.mj_model, self.mj_data)
            quat = np.empty(4)
            with self.server.atomic():
                for g, handle in self.meshes.items():
                    mujoco.mju_mat2Quat(quat, self.mj_data.geom_xmat[g])
                    handle.position = self.mj_data.geom_xpos[g].copy()
                    handle.wxyz = quat.copy()

    # -- tabs -----------------------------------------------------------------------------------------------------
    def _connect(self, client) -> None:
        with self.lock:
            self.tabs.append(client)
            self._add_gui(client)
            self._roles()

    def _disconnect(self, client) -> None:
        with self.lock:
            self.tabs = [c for c in self.tabs if c.client_id != client.client_id]
            self.gui.pop(client.client_id, None)
            self._roles()

    def drives(self, client) -> bool:
        """Whether ``client`` is the tab that drives (None, a change made from Python, is not)."""
        with self.lock:
            return client is not None and bool(self.tabs) and self.tabs[0].client_id == client.client_id

    def _roles(self) -> None:
        for i, client in enumerate(self.tabs):
            gui = self.gui.get(client.client_id)
            if gui is None:
                continue
            for name in ("assist", "alpha", "axis", "speed", "object", "wrist", "reset", "record"):
                gui[name].disabled = i > 0
            gui["role"].content = "**You drive.**" if i == 0 else "*Watching: another tab drives.*"

    def _add_gui(self, client) -> None:
        s = self.session
        r = s.readout()
        gui = client.gui
        names = [o.name for o in resolve_objects("all")]
        h = {
            "role": gui.add_markdown(""),
            "readout": gui.add_markdown(self._readout_text(r)),
            "assist": gui.add_checkbox("Assist (DexGen)", initial_value=r["assist"]),
            "alpha": gui.add_slider("Guidance α", min=0.0, max=1.0, step=0.05, initial_value=r["alpha"]),
            "axis": gui.add_dropdown("Axis (X, Y, Z, R)", AXES, initial_value=r["axis"]),
            "speed": gui.add_slider("Speed, rad/s (↑ ↓ space)", 0.0, 2.0, 0.05, r["speed"]),
            "object": gui.add_dropdown("Object", names, initial_value=r["object"]),
            "wrist": gui.add_dropdown("Wrist", WRISTS, initial_value=r["wrist"]),
            "reset": gui.add_button("Reset"),
            "record": gui.add_button("Record"),
            "message": gui.add_markdown(s.message),
        }
        self.gui[client.client_id] = h

        def driver_only(fn):
            def wrapped(event) -> None:
                if self.drives(event.client):
                    fn(event)
                    self._sync_controls()

            return wrapped

        h["assist"].on_update(driver_only(lambda e: s.set_assist(e.target.value)))
        h["alpha"].on_update(driver_only(lambda e: s.set_alpha(e.target.value)))
        h["axis"].on_update(driver_only(lambda e: setattr(s.source, "axis", e.target.value)))
        h["speed"].on_update(driver_only(lambda e: setattr(s.source, "omega", float(e.target.value))))
        h["object"].on_update(driver_only(lambda e: self._load(e.target.value, s.wrist)))
        h["wrist"].on_update(driver_only(lambda e: self._load(s.object, e.target.value)))
        h["reset"].on_click(driver_only(lambda e: s.reset()))
        h["record"].on_click(driver_only(lambda e: self._record()))
        for key, press in HOTKEYS.items():
            command = gui.add_command(f"command: {key}", hotkey=key)
            command.on_trigger(driver_only(lambda e, press=press: s.source.press(press)))

    def _load(self, obj: str, wrist: str) -> None:
        with self.lock:
            if (obj, wrist) == (self.session.object, self.session.wrist):
                return
            self.session.load(obj, wrist)
            self._build_scene()

    def _record(self) -> None:
        s = self.session
        if s.recording is None:
            s.start_recording()
            s.message = "recording..."
        else:
            path = s.stop_recording()
            s.message = f"saved `{path}` (for `dexgen eval --sources replay:{path}`)" if path else "nothing recorded"

    def _sync_controls(self) -> None:
        """Show every tab the settings in force (a key press or another tab may have changed them)."""
        r = self.session.readout()
        with self.lock:
            for h in self._connected_guis():
                for name in ("assist", "alpha", "axis", "speed", "object", "wrist"):
                    if h[name].value != r[name]:
                        h[name].value = r[name]
                h["record"].label = "Stop recording" if r["recording"] else "Record"
                h["message"].content = self.session.message

    def _connected_guis(self) -> list[dict]:
        """The controls of the tabs still connected (a tab may have gone before its disconnect callback ran)."""
        live = self.server.get_clients()
        return [h for cid, h in self.gui.items() if cid in live]

    @staticmethod
    def _readout_text(r: dict) -> str:
        if r["assist"] and not r["assist_ready"]:
            method = "assist waiting for its model (raw IK meanwhile)"
        else:
            method = f"assist on (α {r['alpha']:.2f})" if r["assist"] else "assist off (raw IK)"
        return (f"Held **{r['held_s']:.1f} s** · turned **{r['turned_deg']:.0f}°** about {r['axis']} · "
                f"command {r['speed']:.2f} rad/s · {method} · drops {r['drops']}")  # fmt: skip

    def refresh_readout(self) -> None:
        text = self._readout_text(self.session.readout())
        with self.lock:
            for h in self._connected_guis():
                h["readout"].content = text
        self._sync_controls()


def run_web(cfg: WebConfig, *, stop: threading.Event | None = None) -> dict:
    """The web command: serve the page and step the hand in real time until interrupted, ``--seconds`` have
    passed or ``stop`` is set."""
    import viser

    start = time.perf_counter()
    session = HandSession(cfg, background=True)  # the model loads (torch, diffusers) while the page starts
    try:
        server = viser.ViserServer(host=cfg.host, port=cfg.port, verbose=False)
    except OSError as e:
        raise ValueError(f"cannot listen on {cfg.host}:{cfg.port}: {e.strerror or e}") from None
    page = WebPage(session, server)
    url = f"http://{cfg.host}:{server.get_port()}"
    session.step()
    page.update()
    start_s = time.perf_counter() - start
    print(f"dexgen web: {url} (started in {start_s:.1f} s; the assist loads its model); Ctrl-C stops", flush=True)
    dt, steps, late, step_s, ready_at = session.env.dt, 0, 0, [], None  # figures count from the model's arrival
    begin = next_tick = time.perf_counter()
    try:
        while (cfg.seconds is None or time.perf_counter() - begin < cfg.seconds) and not (stop and stop.is_set()):
            tick = time.perf_counter()
            if ready_at is None and session.model_ready_s is not None:
                ready_at, steps, late, step_s = tick, 0, 0, []
            session.step()
            page.update()
            if steps % 5 == 0:
                page.refresh_readout()
            step_s.append(time.perf_counter() - tick)
            steps += 1
            next_tick += dt
            wait = next_tick - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            elif wait < -dt:  # more than a step behind (a reload, a stall): count it, do not try to catch up
                late += 1
                next_tick = time.perf_counter()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    elapsed = time.perf_counter() - (ready_at or begin)
    ms = 1e3 * np.array(step_s or [0.0])
    return {"url": url, "start_s": round(start_s, 2), "model_loaded": ready_at is not None, "steps": steps,
            "control_hz": round(steps / elapsed, 2),
            "step_ms_p50": float(np.percentile(ms, 50)), "step_ms_p95": float(np.percentile(ms, 95)),
            "late_steps": late, "model_ready_s": session.model_ready_s, **session.readout()}  # fmt: skip
