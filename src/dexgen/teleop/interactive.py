"""``dexgen teleop``: drive the simulated hand from the keyboard, through the guided DexGen controller or raw IK.

With a display, MuJoCo's viewer shows the hand and its key presses steer the command (``dexgen.teleop.keyboard``);
``--keys`` scripts the presses instead (headless: for recordings and tests). ``--record`` saves the executed
fingertip trajectory as a replay recording (``dexgen.teleop.commands``), ``--video`` renders it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from dexgen.checks import check_choice, check_number
from dexgen.controller.dexgen_controller import (
    SHIPPED_METHOD,
    ControllerConfig,
    DexGenController,
    fit_to_model,
    frame_from_policy_obs,
)
from dexgen.model.checkpoint import load_model, shipped_model_path
from dexgen.sim.hand import check_wrist
from dexgen.sim.objects import resolve_objects
from dexgen.teleop.commands import save_recording
from dexgen.teleop.keyboard import KeyboardIntent


@dataclass
class TeleopConfig:
    """Drive the hand interactively: keys set the rotation axis and speed; guided DexGen or raw IK executes them."""

    method: str = "guided"
    """guided (the DexGen controller) or raw (damped least-squares IK of the command)."""
    object: str = "cube_60"
    """Object in the hand."""
    wrist: str = "palm_up"
    """Wrist orientation."""
    guided: ControllerConfig = field(default_factory=lambda: SHIPPED_METHOD)
    """The guided method: the shipped one unless a flag here changes a setting (e.g. ``--guided.alpha 0.3``),
    fitted to the model (``dexgen.controller.dexgen_controller.fit_to_model``); its seed is ``--seed``. The keys
    make rigid turns, which the shipped method reads as rigid."""
    seconds: float = 60.0
    """Length of the teleoperation, seconds of simulated time (the episode restarts after a drop)."""
    keys: str | None = None
    """Scripted key presses instead of a window: 'STEP:KEY,...', KEY a letter, +, - or space (e.g. '0:z,0:+')."""
    checkpoint: str | None = None
    """Model weights; None: the shipped model of the wrist orientation."""
    record: str | None = None
    """Save the executed fingertip trajectory here (.npz replay recording)."""
    video: str | None = None
    """Render the teleoperation to this path (.mp4 or .gif)."""
    seed: int = 0
    """Seed of the grasp, physics and sampling."""
    json: bool = False
    """Print one JSON object at the end."""

    def __post_init__(self) -> None:
        check_choice("method", self.method, ("guided", "raw"))
        resolve_objects(self.object)
        check_wrist("wrist", self.wrist)
        check_number("seconds", self.seconds, gt=0)
        if self.keys is not None:
            parse_keys(self.keys)


def parse_keys(spec: str) -> dict[int, list[str]]:
    """'STEP:KEY,...' -> {step: [key, ...]}; a ValueError naming a malformed entry."""
    out: dict[int, list[str]] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        step, sep, key = item.partition(":")
        if not sep or not step.strip().isdigit() or not key:
            raise ValueError(f"bad key entry {item!r}; expected STEP:KEY, e.g. 20:z")
        out.setdefault(int(step), []).append(" " if key == "space" else key)
    return out


def run_teleop(cfg: TeleopConfig) -> dict:
    """The teleop command: returns the holding time of each episode and where the outputs went."""
    from dexgen.sim.env import EnvConfig, HandEnv

    scripted = parse_keys(cfg.keys) if cfg.keys is not None else None
    env = HandEnv(EnvConfig(num_envs=1, objects=cfg.object, wrist=cfg.wrist, action_mode="absolute", seed=cfg.seed,
                            episode_seconds=cfg.seconds + 1.0, num_threads=1))  # fmt: skip
    source = KeyboardIntent()
    if cfg.method == "guided":
        model = load_model(cfg.checkpoint or shipped_model_path(cfg.wrist), wrist=cfg.wrist)
        ctrl = DexGenController(
            model, config=replace(fit_to_model(cfg.guided, model), seed=cfg.seed), gravity_dir=env.sims.gravity_dir
        )

        def act(frame, cmd):
            return ctrl.act(frame[0], cmd[0])[None]
    else:
        from dexgen.sim.ik import FingertipIK

        ik = FingertipIK()

        def act(frame, cmd):
            return ik.follow(frame, cmd)

    viewer = data = None
    if scripted is None:
        import mujoco
        import mujoco.viewer

        model = env.sims.batch.get_model(0)
        data = mujoco.MjData(model)
        viewer = mujoco.viewer.launch_passive(model, data, key_callback=source.press)
    renderer, frames = None, []
    if cfg.video:
        from dexgen.sim.render import SimRenderer

        renderer = SimRenderer(env.sims, sim=0)
    steps = int(round(cfg.seconds / env.dt))
    tips, holds, held = [env.fingertips()[0].copy()], [], 0
    obs = env.get_observations()
    for t in range(steps):
        tick = time.perf_counter()
        for key in (scripted or {}).get(t, []):
            source.press(key)
        cmd = source.command(t, env.fingertips())
        obs, _, done, info = env.step(act(frame_from_policy_obs(obs["policy"]), cmd))
        held += 1
        tips.append(env.fingertips()[0].copy())
        if done[0]:
            holds.append(held * env.dt)
            held = 0
            if cfg.method == "guided":
                ctrl.reset()
        if renderer is not None:
            frames.append(renderer.frame())
        if viewer is not None:
            if not viewer.is_running():
                break
            env.sims.batch.get_data(0, data)
            mujoco.mj_forward(model, data)
            viewer.sync()
            time.sleep(max(0.0, env.dt - (time.perf_counter() - tick)))  # real time
    holds.append(held * env.dt)
    out = {"method": cfg.method, "object": cfg.object, "command": source.status(), "episodes_held_s": holds}
    if viewer is not None:
        viewer.close()
    if cfg.method == "guided":  # outputs not finite, replaced by the last safe targets
        outputs = len(ctrl.latencies_s)
        out["rejected_outputs"] = {"rejected": ctrl.rejected, "outputs": outputs}
        if outputs and ctrl.rejected == outputs:
            raise ValueError(f"the guided controller never acted: it rejected all {outputs} of its outputs as not "
                             "finite; the model gives no usable joint targets")  # fmt: skip
    if cfg.record:
        out["recording"] = str(save_recording(cfg.record, np.array(tips), dt=env.dt))
    if renderer is not None:
        from dexgen.sim.render import write_video

        renderer.close()
        out["video"] = str(write_video(cfg.video, frames, fps=1.0 / env.dt))
    return out
