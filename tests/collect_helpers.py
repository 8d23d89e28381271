"""Random-weight experts for the collector's tests (and for measuring its throughput without trained experts)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path


def make_random_expert(path: str | Path, task: str, axis: str, *, hidden=(32,), seed: int = 0,
                       shape_obs: bool = False) -> Path:  # fmt: skip
    """Save an expert of ``task``/``axis`` with random actor weights of the given hidden widths to ``path``
    (.safetensors, with a JSON record like ``dexgen export-expert`` writes); ``shape_obs``: one that sees the
    object's shape code."""
    import torch

    from dexgen.rl.config import PPOConfig
    from dexgen.rl.expert import Expert, make_actor
    from dexgen.rl.train import TrainExpertConfig, make_env

    ppo = PPOConfig(actor_hidden=tuple(hidden), critic_hidden=tuple(hidden))
    train = TrainExpertConfig(task=task, axis=axis, envs=1, objects="cube_60", threads=1, seed=seed, ppo=ppo,
                              shape_obs=shape_obs)  # fmt: skip
    env = make_env(train, num_envs=1)
    torch.manual_seed(seed)
    actor = make_actor(env.obs_dims, env.num_actions, ppo)
    record = {
        "task": task,
        "axis": axis,
        "obs_dims": env.obs_dims,
        "num_actions": env.num_actions,
        "ppo": asdict(ppo),
        "env": {k: v for k, v in asdict(train).items() if k != "ppo"},
        "command": "tests: random weights",
        "seed": seed,
        "revision": "tests",
    }
    path = Path(path)
    Expert(actor, record).save(path)
    return path


def make_random_experts(directory: str | Path, specs, **kwargs) -> list[Path]:
    """``make_random_expert`` for each (task, axis) in ``specs``, named like shipped experts, in ``directory``."""
    from dexgen.rl.expert import expert_name

    return [make_random_expert(Path(directory) / f"{expert_name(t, a).replace(',', '')}.safetensors", t, a,
                               seed=i, **kwargs) for i, (t, a) in enumerate(specs)]  # fmt: skip


def make_in_fork_server(directory: str | Path, specs, **kwargs) -> tuple[list[Path], tuple[Path, Path]]:
    """``make_random_experts`` run in a child of the collector's fork server (so the test process never imports
    torch); also returns ``dexgen.rl.expert.EXPERT_DIR`` and the collector's default
    expert directory as found without that module loaded."""
    from dexgen.data.collect_workers import _context

    ctx = _context()
    results = ctx.Queue()
    child = ctx.Process(target=_make_and_report, args=(results, str(directory), list(specs), kwargs))
    child.start()
    out = results.get(timeout=120)
    child.join()
    if isinstance(out, str):
        raise RuntimeError(out)
    return out


def _make_and_report(results, directory, specs, kwargs) -> None:
    import sys

    from dexgen.data.collect_experts import _default_expert_dir
    from dexgen.rl.expert import EXPERT_DIR

    try:
        paths = make_random_experts(directory, specs, **kwargs)
        module = sys.modules.pop("dexgen.rl.expert")
        fallback = _default_expert_dir()
        sys.modules["dexgen.rl.expert"] = module
        results.put((paths, (EXPERT_DIR, fallback)))
    except Exception as e:
        results.put(f"{type(e).__name__}: {e}")


if __name__ == "__main__":  # python tests/collect_helpers.py DIR: one full-size random expert per primitive
    import sys

    from dexgen.data.schema import ROTATE_AXES, TRANSLATE_AXES

    specs = [("rotate", a) for a in ROTATE_AXES] + [("translate", a) for a in TRANSLATE_AXES]
    paths = make_random_experts(sys.argv[1], [*specs, ("grasp_to_grasp", "+z")], hidden=(256, 256, 128))
    print(",".join(str(p) for p in paths))
