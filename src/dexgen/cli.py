"""The ``dexgen`` command line. Each command is a typed dataclass config; tyro turns its fields into flags.

dexgen demo                           # raw teleop vs guided DexGen on the shipped models: table, plot, video
dexgen sim-check                      # hold a grasp, render a video
dexgen grasps generate --objects all  # build the grasp cache
dexgen grasps check --json            # hold every cached grasp for 10 s
dexgen bench sim --envs 128 --json    # simulator throughput
dexgen data check data.h5 --json      # validate a dataset file
dexgen collect --out data.h5 --transitions 1000000  # roll out the experts into a dataset
dexgen train --dataset data.h5        # train the diffusion model and the inverse dynamics model
dexgen eval-model --json              # the shipped model alone: IDM error and tracking, unguided control
dexgen bench controller --json        # latency of one control decision on one thread
dexgen eval --suite quick --json      # raw teleop vs DexGen unguided / guided vs the RL expert
dexgen eval-pool RUN_A RUN_B --json   # pool runs of one setting on disjoint seeds into one summary
dexgen teleop                         # drive the hand from the keyboard (axis and speed of a rotation)
dexgen web                            # teleoperate the simulated hand from a browser (http://127.0.0.1:8080)
dexgen serve --port 8765              # serve the controller to a hand driver and an operator (websockets)
dexgen bench serve --json             # round trip of one act request to a local server
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro

from dexgen.checks import check_int, check_number
from dexgen.sim.hand import check_wrist


class UserError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


def _check_objects_and_wrist(objects: str, wrist: str) -> None:
    """A ValueError naming an unknown object (or set) or wrist orientation."""
    from dexgen.sim.objects import resolve_objects

    resolve_objects(objects)
    check_wrist("wrist", wrist)


# ---- sim-check ----------------------------------------------------------------------------------------------------
@dataclass
class SimCheckConfig:
    """Hold cached grasps of a few objects with fixed targets, report whether they stay in hand, render a video."""

    objects: str = "cube_60,cylinder_r25_h60,pen_r6_l140,ellipsoid_35x25x20"
    """Object names or a set (train, heldout, all); the first one is rendered."""
    wrist: str = "palm_up"
    """Wrist orientation: palm_up, palm_down or sideways."""
    hand: str = "legacy"
    """Hand model: allegro (the Allegro Hand v4's kinematics) or legacy (the hand the shipped models know)."""
    seconds: float = 5.0
    """Simulated seconds."""
    out: str = "outputs/sim_check.mp4"
    """Video path (.mp4 or .gif); a PNG of the last frame is written beside it."""
    seed: int = 0
    """Seed for grasp choice and randomization."""
    json: bool = False
    """Print one JSON object instead of a table."""

    def __post_init__(self) -> None:
        _check_objects_and_wrist(self.objects, self.wrist)
        check_number("seconds", self.seconds, gt=0)


def run_sim_check(cfg: SimCheckConfig) -> dict:
    from tqdm import tqdm

    from dexgen.sim.env import EnvConfig, HandEnv
    from dexgen.sim.objects import resolve_objects
    from dexgen.sim.render import SimRenderer, write_image, write_video

    objects = resolve_objects(cfg.objects)
    env = HandEnv(
        EnvConfig(num_envs=len(objects), objects=",".join(o.name for o in objects), wrist=cfg.wrist,
                  hand=cfg.hand, seed=cfg.seed, episode_seconds=cfg.seconds + 1.0)
    )  # fmt: skip
    renderer = SimRenderer(env.sims, sim=0)
    frames, held = [renderer.frame()], np.ones(env.num_envs, dtype=bool)
    hold = np.zeros((env.num_envs, env.num_actions))
    steps = int(round(cfg.seconds / env.dt))
    for _ in tqdm(range(steps), desc="simulating", disable=cfg.json, leave=False):
        _, _, done, info = env.step(hold)
        held &= ~(done & ~info["time_outs"])
        frames.append(renderer.frame())
    renderer.close()
    video = write_video(cfg.out, frames, fps=1.0 / env.dt)
    image = write_image(Path(cfg.out).with_suffix(".png"), frames[-1])
    return {
        "held": {o.name: bool(h) for o, h in zip(env.env_objects, held)},
        "seconds": cfg.seconds,
        "video": str(video),
        "image": str(image),
    }


# ---- grasps -------------------------------------------------------------------------------------------------------
@dataclass
class GraspsGenerateConfig:
    """Generate the grasp cache: sample, settle and filter stable grasps per object (see dexgen.sim.grasps)."""

    objects: str = "all"
    """Object set (train, heldout, all) or comma-separated names."""
    wrist: str = "palm_up"
    """Wrist orientation the grasps are made for."""
    hand: str = "legacy"
    """Hand model: allegro (the Allegro Hand v4's kinematics) or legacy (the hand the shipped models know)."""
    candidates: int = 32768
    """Most candidate grasps simulated per object and grasp kind (sampling stops once --keep have passed)."""
    keep: int = 64
    """Grasps kept per object."""
    hold_s: float = 20.0
    """Seconds a grasp must hold with fixed targets to be kept (longer filters slow slips out: palm down, 20 s
    halves the drops of a hand held still against 2 s)."""
    max_creep: float = 0.001
    """Largest object displacement during the last second of the hold, metres (an object still sliding then tends
    to fall later)."""
    pinch_share: float = 0.0
    """Share of the kept grasps that hold the object between thumb and fingers away from the palm (the rest wrap
    the digits over an object on the palm); each kind gets --candidates. The shipped caches have none."""
    seed: int = 0
    """Seed (object i uses seed + i)."""
    out_dir: str | None = None
    """Cache root; None writes into the package's shipped cache."""
    threads: int = 0
    """Threads; 0 uses every core."""

    def __post_init__(self) -> None:
        _check_objects_and_wrist(self.objects, self.wrist)
        check_int("candidates", self.candidates, ge=1)
        check_int("keep", self.keep, ge=1)
        check_number("hold_s", self.hold_s, gt=0)
        check_number("max_creep", self.max_creep, ge=0)
        check_number("pinch_share", self.pinch_share, ge=0, le=1)
        check_int("threads", self.threads, ge=0)


def run_grasps_generate(cfg: GraspsGenerateConfig) -> dict:
    from tqdm import tqdm

    from dexgen.sim.grasps import GraspGenConfig, cache_path, generate_grasps
    from dexgen.sim.hand import hand_xml, wrist_quat
    from dexgen.sim.objects import resolve_objects

    wrist_quat(cfg.wrist)
    hand_xml(cfg.hand)
    objects = resolve_objects(cfg.objects)
    gen = GraspGenConfig(
        candidates=cfg.candidates,
        keep=cfg.keep,
        hold_s=cfg.hold_s,
        max_creep=cfg.max_creep,
        pinch_share=cfg.pinch_share,
    )
    root = Path(cfg.out_dir) if cfg.out_dir else None
    command = "dexgen " + " ".join(sys.argv[1:])
    out = {}
    for i, obj in enumerate(tqdm(objects, desc="objects")):
        cache = generate_grasps(
            obj, wrist=cfg.wrist, hand=cfg.hand, seed=cfg.seed + i, config=gen, num_threads=cfg.threads
        )
        cache.meta["command"] = command
        if len(cache) == 0:
            tqdm.write(f"warning: no grasp of {obj.name} passed; nothing written")
            continue
        path = cache_path(obj.name, cfg.wrist, root=root, hand=cfg.hand)
        cache.save(path)
        out[obj.name] = {"kept": len(cache), "passed": cache.meta["passed"], "path": str(path)}
        kinds = ", ".join(
            f"{k} {v['kept']} of {v['passed']} passing / {v['candidates']}" for k, v in cache.meta["kinds"].items()
        )
        tqdm.write(f"{obj.name}: kept {len(cache)} ({kinds})")
    return out


@dataclass
class GraspsCheckConfig:
    """Hold every cached grasp for a while with fixed targets and nominal physics; report the hold rate."""

    objects: str = "all"
    """Object set (train, heldout, all) or comma-separated names."""
    wrist: str = "palm_up"
    """Wrist orientation."""
    hand: str = "legacy"
    """Hand model: allegro (the Allegro Hand v4's kinematics) or legacy (the hand the shipped models know)."""
    seconds: float = 10.0
    """Simulated seconds each grasp must hold."""
    grasp_dir: str | None = None
    """Cache root; None uses the shipped cache."""
    threads: int = 0
    """Threads; 0 uses every core."""
    json: bool = False
    """Print one JSON object instead of a table."""

    def __post_init__(self) -> None:
        _check_objects_and_wrist(self.objects, self.wrist)
        check_number("seconds", self.seconds, gt=0)
        check_int("threads", self.threads, ge=0)


def run_grasps_check(cfg: GraspsCheckConfig) -> dict:
    from dexgen.sim.grasps import check_grasps, load_grasps
    from dexgen.sim.objects import resolve_objects

    objects = resolve_objects(cfg.objects)
    root = Path(cfg.grasp_dir) if cfg.grasp_dir else None
    caches = [load_grasps(o.name, cfg.wrist, root=root, hand=cfg.hand) for o in objects]
    return check_grasps(caches, objects={o.name: o for o in objects}, seconds=cfg.seconds, num_threads=cfg.threads)


# ---- dispatch -----------------------------------------------------------------------------------------------------
COMMANDS: dict[str, tuple[type | str, Callable | str]] = {
    "sim-check": (SimCheckConfig, run_sim_check),
    "grasps generate": (GraspsGenerateConfig, run_grasps_generate),
    "grasps check": (GraspsCheckConfig, run_grasps_check),
    "bench sim": ("dexgen.sim.bench:BenchSimConfig", "dexgen.sim.bench:bench_sim"),
    "train-expert": ("dexgen.rl.train:TrainExpertConfig", "dexgen.rl.train:train_expert"),
    "eval-expert": ("dexgen.rl.evaluate:EvalExpertConfig", "dexgen.rl.evaluate:run_eval_expert"),
    "export-expert": ("dexgen.rl.export:ExportExpertConfig", "dexgen.rl.export:export_expert"),
    "bench ppo": ("dexgen.rl.bench:BenchPPOConfig", "dexgen.rl.bench:bench_ppo"),
    "data check": ("dexgen.data.stats:DataCheckConfig", "dexgen.data.stats:run_data_check"),
    "data stats": ("dexgen.data.stats:DataStatsConfig", "dexgen.data.stats:run_data_stats"),
    "collect": ("dexgen.data.collect:CollectConfig", "dexgen.data.collect:run_collect"),
    "train": ("dexgen.model.train:TrainModelConfig", "dexgen.model.train:train_model"),
    "eval-model": ("dexgen.eval.model_eval:EvalModelConfig", "dexgen.eval.model_eval:run_eval_model"),
    "eval": ("dexgen.eval.teleop_eval:EvalConfig", "dexgen.eval.command:run_eval"),
    "reached-states": ("dexgen.eval.reached_states:ReachedStatesConfig", "dexgen.eval.reached_states:reached_states"),
    "eval-pool": ("dexgen.eval.pool:PoolConfig", "dexgen.eval.pool:run_pool"),
    "demo": ("dexgen.eval.demo:DemoConfig", "dexgen.eval.demo:run_demo"),
    "teleop": ("dexgen.teleop.interactive:TeleopConfig", "dexgen.teleop.interactive:run_teleop"),
    "bench controller": (
        "dexgen.eval.controller_bench:BenchControllerConfig",
        "dexgen.eval.controller_bench:bench_controller",
    ),
    "serve": ("dexgen.teleop.server:ServeConfig", "dexgen.teleop.server:run_serve"),
    "web": ("dexgen.teleop.web:WebConfig", "dexgen.teleop.web:run_web"),
    "bench serve": ("dexgen.eval.serve_bench:BenchServeConfig", "dexgen.eval.serve_bench:bench_serve"),
}
"""Command words -> (config class, runner taking the config), either given directly or as "module:name" so that
heavy imports (torch, mujoco) stay out of ``dexgen --help``."""


def _resolve(ref):
    if not isinstance(ref, str):
        return ref
    module, name = ref.split(":")
    return getattr(importlib.import_module(module), name)


def _print_result(result: dict, *, as_json: bool) -> None:
    if as_json:
        from dexgen.strict_json import dumps

        print(dumps(result))
        return
    from rich.console import Console
    from rich.pretty import Pretty

    Console().print(Pretty(result))


def _usage() -> str:
    lines = ["usage: dexgen COMMAND [--help] [options]", "", "commands:"]
    for words, (config, _) in COMMANDS.items():
        doc = (_resolve(config).__doc__ or "").strip().splitlines()[0]
        lines.append(f"  {words:<18} {doc}")
    return "\n".join(lines)


def _join_help_lines() -> None:
    """Make ``--help`` join the lines of a multi-line field docstring. tyro (1.0.16) joins a line to the previous one
    only when it starts with a letter, and looks before removing the indentation, so each indented continuation
    line of our field docstrings began a new line of help. Remove the indentation first, as Python does for
    docstrings."""
    import inspect

    from tyro import _strings

    join = _strings.remove_single_line_breaks
    if getattr(join, "dexgen_cleans_first", False):
        return

    def cleaned_then_joined(text: str) -> str:
        return join(inspect.cleandoc(text))

    cleaned_then_joined.dexgen_cleans_first = True
    _strings.remove_single_line_breaks = cleaned_then_joined


def _parse(config: type, args: list[str], *, prog: str):
    """The config that tyro parses from ``args``. A value its ``__post_init__`` refuses (a ValueError) becomes a
    UserError with that one-line message, as errors found later are reported, instead of tyro's framed box."""
    from tyro import _errors  # private, as `_join_help_lines`' use of tyro's internals: tyro is pinned

    def refuse(event) -> None:
        if isinstance(event, _errors.InstantiationFailure):
            raise UserError(event.message)

    with _errors.on_parse_error(refuse):
        return tyro.cli(config, args=args, prog=prog)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _join_help_lines()
    for words in sorted(COMMANDS, key=lambda w: -len(w.split())):
        n = len(words.split())
        if argv[:n] == words.split():
            config, runner = COMMANDS[words]
            start = time.perf_counter()
            try:
                cfg = _parse(_resolve(config), argv[n:], prog=f"dexgen {words}")
                result = _resolve(runner)(cfg)
            except (UserError, ValueError, OSError) as e:
                print(f"dexgen {words}: error: {e}", file=sys.stderr)
                return 2
            except KeyboardInterrupt:
                print(f"dexgen {words}: interrupted", file=sys.stderr)
                return 130
            if isinstance(result, dict):
                result.setdefault("wall_s", round(time.perf_counter() - start, 2))
                _print_result(result, as_json=getattr(cfg, "json", False))
            return 0
    if argv and argv[0] not in ("-h", "--help"):
        print(f"dexgen: unknown command {' '.join(argv[:2])!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    print(_usage())
    return 0


if __name__ == "__main__":
    sys.exit(main())
