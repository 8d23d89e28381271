"""``dexgen eval-pool``: one summary from the episodes of several ``dexgen eval`` runs of one setting on other seeds.

A run's medians move by 5-10 points of progress between seed sets (three seeds of the full suite are 336 episodes
per method, and progress is spread widely), which is as much as the changes being compared. Every ``eval.json``
keeps each episode's figures (``per_episode``), so runs of the same setting on disjoint seeds can be pooled into
one larger sample, with medians and bootstrap intervals over all of it, without rerunning anything.

Runs pool only if their settings are the same except for the seeds (and where their outputs went); a seed in two
runs would count its episodes twice and is refused. Records written before the guided method's settings were nested
under ``guided`` carry them as flat fields of the same names, and may carry options this code no longer has
(``REMOVED``): at the value that switched it off such an option changed nothing, and the run pools with later runs
of the same method; at any other value the run is of another method and pools only with runs of that method.

``--alpha A`` pools the guided method at another guidance strength A instead: each run's episodes at A, from its
sweep (eval.json keeps every swept strength's episodes, ``per_episode_sweep``) or its own α; the runs' α and sweep
may then differ.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import tyro

from dexgen.checks import check_number
from dexgen.controller.dexgen_controller import ControllerConfig
from dexgen.eval.holding_curve import holding_curve_plot
from dexgen.eval.teleop_report import Episodes, episode_figures, markdown_table, summarize
from dexgen.sim.env import objects_of_envs
from dexgen.sim.objects import resolve_objects
from dexgen.strict_json import dumps

IGNORED = ("seeds", "out", "video", "threads", "json", "sweep")
"""Settings that may differ between pooled runs (they change which episodes run or where outputs go, not how). The
``checkpoint`` path may differ too where every run records the weights' ``model_sha256``; a run that records none
(one older than that key) pools only with runs that record none either (of one ``checkpoint`` path)."""
REMOVED = {
    "rotation_weight": 0.0,
    "consistency": 0.0,
    "intent_smoothing": 0.0,
    "ranking": "closest",
    "command_component": "full",
    "rigid_follow_weight": 0.0,
    "mode_scale": 1.0,
    "risk_threshold": None,
    "workspace_radius": 0.0,
    "joint_limit_margin": None,
    "partial_noise_step": None,
}
"""Settings of older runs' records that this code no longer has (docs/results.md, "Removed options"), each with the
value that switched it off."""
GUIDED = tuple(f.name for f in fields(ControllerConfig) if f.name != "seed")
"""The guided method's settings (``EvalConfig.guided``; its seed is each run's). A setting missing from an older
run's record had ``ControllerConfig``'s default, the behaviour before the setting existed (a setting added later
must default to that, or runs from before it will not pool with runs after it)."""


class PoolError(ValueError):
    """A run that cannot be read or pooled."""


@dataclass
class PoolConfig:
    """Pool the episodes of several ``dexgen eval`` runs (one setting, disjoint seeds) into one summary."""

    runs: tyro.conf.Positional[tuple[str, ...]] = ()
    """eval.json files written by ``dexgen eval`` (or the directories holding them), at least two."""
    out: str = "outputs/eval_pool"
    """Directory of the pooled eval.json (summary, every episode, the runs pooled) and eval.md."""
    alpha: float | None = None
    """Pool the guided method at this guidance strength, taken from each run's sweep (or its own α); None: the
    runs' own α, which must then be the same."""
    json: bool = False
    """Print one JSON object (the summary) instead of the table."""

    def __post_init__(self) -> None:
        check_number("alpha", self.alpha, ge=0, optional=True)


def _read(path: str) -> tuple[Path, dict]:
    p = Path(path)
    if p.is_dir():
        p = p / "eval.json"
    try:
        record = json.loads(p.read_text())
    except OSError as e:
        raise PoolError(f"cannot read {p}: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise PoolError(f"{p} is not JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(record, dict) or not {"config", "per_episode"} <= set(record):
        raise PoolError(f"{p} is not an eval.json of dexgen eval (no config or per_episode)")
    return p, record


def settings(config: dict) -> dict:
    """A run's settings (its record's ``config``) in one form whatever code wrote them: the guided method's as
    ``guided.<name>`` (from the nested ``guided`` of a newer record, the flat fields of an older one, the default
    where an older one has none; see ``GUIDED``), the others as recorded, and options of ``REMOVED`` left out where
    they were off."""
    guided = dict(config.get("guided") or {})
    out = {}
    for key, value in config.items():
        if key == "guided" or (key in REMOVED and value == REMOVED[key]):
            continue
        if key in GUIDED:
            guided.setdefault(key, value)
        else:
            out[key] = value
    defaults = ControllerConfig()
    for name in GUIDED:
        value = guided.get(name, getattr(defaults, name))
        out[f"guided.{name}"] = list(value) if isinstance(value, tuple) else value  # as JSON reads it back
    return out


def _guided_at(record: dict, path: Path, alpha: float) -> dict:
    """A run's guided episodes ``[source]`` at guidance strength ``alpha``: its own, or its sweep's."""
    own = settings(record["config"])["guided.alpha"]
    if float(own) == alpha:
        return {s: pm["guided"] for s, pm in record["per_episode"].items()}
    for text, per_source in record.get("per_episode_sweep", {}).items():
        if float(text) == alpha:
            return per_source
    swept = ", ".join(record.get("per_episode_sweep", {})) or "none kept"
    raise PoolError(f"{path} has no guided episodes at alpha {alpha:g} (its alpha {own}, swept episodes: "
                    f"{swept})")  # fmt: skip


def _hand_objects(config: dict) -> list[str] | None:
    """The object of each hand of a run from before eval.json recorded them (``hand_objects``), from its settings
    (objects, episodes per object) as the environment assigns them; None where the settings do not say."""
    try:
        objects = resolve_objects(config["objects"])
        return [o.name for o in objects_of_envs(objects, len(objects) * int(config["episodes"]))]
    except (KeyError, TypeError, ValueError):
        return None


def pool_runs(paths: list[str] | tuple[str, ...], *, alpha: float | None = None) -> tuple[dict, dict]:
    """The pooled summary (as ``dexgen eval``'s, seeds joined, no sweep, with ``pooled_from``) and the pooled
    per-episode figures ``[source][method]`` of the eval.json files ``paths``; a PoolError naming the run and the
    setting when they do not pool. ``alpha``: pool the guided method at this strength (see ``PoolConfig``)."""
    if len(paths) < 2:
        raise PoolError(f"give at least two runs to pool, got {len(paths)}")
    runs = [_read(p) for p in paths]
    first_path, first = runs[0]
    ignored = IGNORED + (("guided.alpha",) if alpha is not None else ())
    if all("model_sha256" in r["config"] for _, r in runs):
        ignored += ("checkpoint",)  # the weights' hash says which model; the path it was given by does not matter
    base = {k: v for k, v in settings(first["config"]).items() if k not in ignored}
    seen: dict[int, Path] = {}
    results: dict[str, dict[str, Episodes]] = {}
    for path, record in runs:
        cfg = settings(record["config"])
        for key in sorted(set(base) | (set(cfg) - set(ignored))):
            value, want = cfg.get(key), base.get(key)
            if value != want:
                why = " (an option this code no longer has: docs/results.md, Removed options)" if key in REMOVED else ""
                raise PoolError(f"{path} was run with {key}={value!r}, {first_path} with {want!r}{why}: only runs "
                                "of one setting on other seeds pool")  # fmt: skip
        for seed in (int(s) for s in str(cfg["seeds"]).split(",") if s.strip()):
            if seed in seen:
                raise PoolError(f"seed {seed} is in both {seen[seed]} and {path}: its episodes would count twice")
            seen[seed] = path
        try:
            episodes = record["per_episode"]
            if alpha is not None:
                guided = _guided_at(record, path, alpha)
                episodes = {s: {**pm, "guided": guided[s]} for s, pm in episodes.items()}
            for source, per_method in episodes.items():
                for method, figures in per_method.items():
                    e = results.setdefault(source, {}).setdefault(method, Episodes([], [], []))
                    e.extend(
                        *(
                            [np.nan if v is None else v for v in figures[k]]  # null: not a number
                            for k in ("holding_s", "progress_rad_per_s", "follow_error_mm")
                        )
                    )
        except (AttributeError, KeyError, TypeError) as e:
            raise PoolError(f"{path} has malformed per_episode figures ({type(e).__name__}: {e})") from None
    methods = {tuple(pm) for pm in results.values()}
    if len(methods) != 1:
        raise PoolError("the runs' sources do not all have the same methods")
    config = {**first["config"], "seeds": ",".join(str(s) for s in sorted(seen)), "sweep": ""}
    if alpha is not None and "guided" in config:
        config["guided"] = {**config["guided"], "alpha": alpha}
    elif alpha is not None:
        config["alpha"] = alpha  # an older record's flat field
    hands = [record.get("hand_objects") or _hand_objects(record["config"]) for _, record in runs]
    hand_objects = hands[0] if hands[0] and all(h == hands[0] for h in hands) else None
    summary = {"config": config, **summarize({"results": results, "swept": {}, "hand_objects": hand_objects},
                                              suite=base["suite"], seconds=float(base["seconds"]))}  # fmt: skip
    summary["pooled_from"] = [str(p) for p, _ in runs]
    return summary, episode_figures(results)


def run_pool(cfg: PoolConfig) -> dict:
    """The eval-pool command: write the pooled eval.json and eval.md into ``cfg.out``; print the table."""
    summary, per_episode = pool_runs(cfg.runs, alpha=cfg.alpha)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    summary["files"] = {"json": str(out / "eval.json"), "table": str(out / "eval.md")}
    held: dict[str, list[float]] = {}
    for per_method in per_episode.values():
        for m, figures in per_method.items():
            held.setdefault(m, []).extend(figures["holding_s"])
    seconds = float(summary["config"]["seconds"])
    summary["files"]["holding_plot"] = str(holding_curve_plot(held, out / "holding.png", seconds=seconds))
    table = markdown_table(summary)
    Path(summary["files"]["table"]).write_text(table + "\n")
    Path(summary["files"]["json"]).write_text(dumps({**summary, "per_episode": per_episode}, indent=2) + "\n")
    if cfg.json:
        return summary
    print(table)
    keys = (
        "holding_ratio_guided_vs_raw",
        "holding_ratio_ci95",
        "progress_ratio_guided_vs_expert",
        "progress_ratio_ci95",
        "pooled_from",
        "files",
    )
    return {k: summary[k] for k in keys}
