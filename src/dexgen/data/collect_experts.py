"""The experts a collection rolls out (``dexgen.data.collect``), read from their JSON records only (the parent
process never imports torch): their tasks, axes, wrist orientations and observation sizes, the primitive each one
performs per wrist orientation, and the primitive weights of ``--primitive-weights``."""

from __future__ import annotations

import math
from pathlib import Path

from dexgen.data.schema import PRIMITIVES, ROTATE_AXES, TRANSLATE_AXES, primitive_name
from dexgen.name_values import non_negative_float, parse_name_values
from dexgen.sim.constants import DEFAULT_HAND, DEFAULT_WRIST

COMMAND_DIMS = {"rotate": 3, "translate": 3, "grasp_to_grasp": 16}
"""Length of each task's command in the expert's observation."""


class CollectError(ValueError):
    """A collection that cannot start or whose worker failed; the message is one line."""


def _default_expert_dir() -> Path:
    """``dexgen.rl.expert.EXPERT_DIR``, found without importing torch when that module is not loaded yet."""
    import importlib.util
    import sys

    module = sys.modules.get("dexgen.rl.expert")
    if module is not None:
        return Path(module.EXPERT_DIR)
    spec = importlib.util.find_spec("dexgen.rl")
    return Path(list(spec.submodule_search_locations)[0]) / "experts"


def _expert_axes(task: str, axis: str) -> tuple[str, ...]:
    if task == "grasp_to_grasp":
        return ("",)
    allowed = ROTATE_AXES if task == "rotate" else TRANSLATE_AXES
    return allowed if axis == "all" else tuple(a.strip() for a in axis.split(","))


def _read_expert(path: Path) -> dict:
    """What the collector needs of an expert, from its JSON record (the workers load the weights again to act)."""
    from dexgen.rl.expert_files import ExpertError, read_expert_files

    try:
        record, _ = read_expert_files(path)
    except ExpertError as e:
        raise CollectError(str(e)) from None
    record_path = path.with_suffix(".json")
    try:
        task, axis, obs_dims = record["task"], record["axis"], record["obs_dims"]
        scale = float(record["env"]["action_scale"])
    except (KeyError, TypeError, ValueError) as e:
        raise CollectError(f"expert record {record_path} is incomplete: {e!r}") from None
    if task not in COMMAND_DIMS:
        raise CollectError(f"expert {path}: unknown task {task!r}")
    if not isinstance(obs_dims, dict) or set(obs_dims) != {"policy", "privileged"}:
        raise CollectError(f"expert record {record_path}: obs_dims must give the policy and privileged sizes")
    try:
        names = [primitive_name(task, a) for a in _expert_axes(task, axis)]
    except ValueError as e:
        raise CollectError(f"expert {path}: {e}") from None
    wrist = record["env"].get("wrist", DEFAULT_WRIST)
    hand = record["env"].get("hand", DEFAULT_HAND)  # records from before the hand was recorded: the default hand
    offsets = _translate_offsets(record["env"], axis, path) if task == "translate" else None
    return {"path": str(path), "task": task, "axis": axis, "wrist": wrist, "hand": hand, "primitives": names,
            "command_dim": COMMAND_DIMS[task], "obs_dims": obs_dims, "action_scale": scale, "offsets": offsets,
            "shape_obs": bool(record["env"].get("shape_obs", False)),
            "revision": record.get("revision", "unknown")}  # fmt: skip


def _translate_offsets(env: dict, axis: str, path: Path) -> dict:
    """How the collector draws a translation expert's commands, from its training settings: offset lengths in
    [min_distance, max_distance] metres, and ``spread``, the largest angle (radians) between an offset and its
    primitive's axis: an expert trained on offsets at any angle ('all') covers each of its four primitives with the
    quarter circle around that primitive's axis, one trained on named directions gets offsets along them exactly."""
    try:
        low, high = float(env["translate_min"]), float(env["translate_max"])
    except (KeyError, TypeError, ValueError):
        raise CollectError(f"translation expert {path} records no offset lengths (translate_min, translate_max): "
                           f"it was not trained to reach commanded offsets; retrain it") from None  # fmt: skip
    return {"min_distance": low, "max_distance": high, "spread": math.pi / 4 if axis == "all" else 0.0}


def resolve_experts(spec: str | None) -> list[dict]:
    """The experts to roll out: those named in ``spec`` (comma-separated .safetensors paths) or, if None, every
    shipped one; a one-line CollectError if there are none or one is unusable."""
    if spec is None:
        directory = _default_expert_dir()
        paths = sorted(directory.glob("*.safetensors")) if directory.is_dir() else []
        if not paths:
            raise CollectError(f"no shipped experts in {directory}: ship some (dexgen export-expert RUN_DIR --ship) "
                               f"or name them with --experts PATH[,PATH...]")  # fmt: skip
    else:
        paths = [Path(p.strip()) for p in spec.split(",") if p.strip()]
        if not paths:
            raise CollectError("--experts names no file")
    return [_read_expert(p) for p in paths]


def parse_primitive_weights(spec: str) -> dict[str, float]:
    """``--primitive-weights`` as ``{primitive: weight}``; a one-line CollectError for a bad entry."""
    try:
        return parse_name_values(spec, allowed=PRIMITIVES, convert=non_negative_float, what="primitive weight",
                                 form="non-negative number")  # fmt: skip
    except ValueError as e:
        raise CollectError(str(e)) from None


def primitive_table(experts: list[dict], wrist: str | None = None, *,
                    weights: dict[str, float] | None = None) -> list[dict]:  # fmt: skip
    """One entry per primitive available in wrist orientation ``wrist`` (None: any), in ``PRIMITIVES`` order: name,
    id, expert index, command dim, action scale, weight (``weights``, default 1; weight 0 leaves it out), offsets
    (translate: how its commands are drawn, see ``_translate_offsets``; None otherwise). Only
    experts trained in that orientation act in it. Where several experts cover a primitive, the one covering fewest
    primitives (the most specialized) acts, the first named among equals."""
    weights = weights or {}
    best: dict[str, int] = {}
    for e, ex in enumerate(experts):
        if wrist is not None and ex["wrist"] != wrist:
            continue
        for name in ex["primitives"]:
            if name not in best or len(ex["primitives"]) < len(experts[best[name]]["primitives"]):
                best[name] = e
    return [{"name": name, "id": PRIMITIVES.index(name), "expert": best[name],
             "command_dim": experts[best[name]]["command_dim"], "action_scale": experts[best[name]]["action_scale"],
             "weight": weights.get(name, 1.0), "offsets": experts[best[name]].get("offsets")}
            for name in PRIMITIVES if name in best and weights.get(name, 1.0) > 0]  # fmt: skip
