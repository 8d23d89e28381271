"""The report of ``dexgen eval``'s teleoperation suites (``teleop_eval``): per-episode results (``Episodes``),
their summary (medians with bootstrap 95 % intervals per method, per source and per object, the guided/raw and
guided/expert ratios, the guidance-strength sweep), Markdown tables, the sweep plot and the side-by-side video."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dexgen.eval.holding_curve import held_fractions
from dexgen.eval.metrics import median_ci, median_ratio_ci


@dataclass
class Episodes:
    """Per-episode results of one method on one source (all axes and seeds concatenated)."""

    hold_s: list
    progress: list
    follow_mm: list

    def extend(self, hold_s, progress, follow_mm) -> None:
        self.hold_s += list(hold_s)
        self.progress += list(progress)
        self.follow_mm += list(follow_mm)


def side_by_side_video(left: list, right: list, path: Path) -> Path:
    """Write the frames ``left`` and ``right`` (lists of images, the shorter padded with its last frame) side by
    side to ``path`` at 20 frames per second; returns the path."""
    from dexgen.sim.render import write_video

    n = max(len(left), len(right))
    left, right = left + [left[-1]] * (n - len(left)), right + [right[-1]] * (n - len(right))
    return write_video(path, [np.concatenate((a, b), axis=1) for a, b in zip(left, right)], fps=20.0)


def _summary(e: Episodes, seconds: float, *, seed: int = 0) -> dict:
    out = {"episodes": len(e.hold_s)}
    for key, values in (("holding_s", e.hold_s), ("progress_rad_per_s", e.progress), ("follow_error", e.follow_mm)):
        ci = median_ci(np.array(values), seed=seed)
        out[f"{key}_median"] = ci["median"]
        out[f"{key}_ci95"] = [ci["ci_low"], ci["ci_high"]]
    out["holding_s_mean"] = float(np.mean(e.hold_s)) if e.hold_s else float("nan")
    out["drop_rate"] = float(np.mean(np.array(e.hold_s) < seconds - 1e-6)) if e.hold_s else float("nan")
    return out


def summarize(run: dict, *, suite: str, seconds: float) -> dict:
    """The JSON summary of a run's episodes (``run["results"]``, ``run["swept"]``) of the given suite and horizon
    (seconds, the cap on holding time): per method overall and per source, the guided/raw holding ratio, the
    sweep; and per object, when the run names the object of each hand (``run["hand_objects"]``: the episodes of
    every method and source are in the order axis, seed, hand). The caller adds the config."""
    results, swept = run["results"], run["swept"]
    overall = all_sources(results)
    methods = {m: _summary(e, seconds) for m, e in overall.items()}
    per_source = {s: {m: _summary(e, seconds) for m, e in pm.items()} for s, pm in results.items()}
    objects = run.get("hand_objects") or []

    def of(values: list, name: str) -> list:  # the episodes of hands holding object ``name``
        return [v for i, v in enumerate(values) if objects[i % len(objects)] == name]

    per_object = {}
    for o in dict.fromkeys(objects):
        f = {m: _summary(Episodes(of(e.hold_s, o), of(e.progress, o), of(e.follow_mm, o)), seconds)
             for m, e in overall.items()}  # fmt: skip
        f["progress_ratio_guided_vs_expert"] = _ratio(f["guided"]["progress_rad_per_s_median"],
                                                      f["expert"]["progress_rad_per_s_median"])  # fmt: skip
        per_object[o] = f

    return {
        "suite": suite,
        "methods": methods,
        "per_source": per_source,
        **({"per_object": per_object, "hand_objects": list(objects)} if objects else {}),
        "holding_ratio_guided_vs_raw": _ratio(
            methods["guided"]["holding_s_median"], methods["raw"]["holding_s_median"]
        ),
        "progress_ratio_guided_vs_expert": _ratio(
            methods["guided"]["progress_rad_per_s_median"], methods["expert"]["progress_rad_per_s_median"]
        ),
        # episode i of every method starts from the same initial state: the intervals resample them in pairs
        "holding_ratio_ci95": list(median_ratio_ci(overall["guided"].hold_s, overall["raw"].hold_s)),
        "progress_ratio_ci95": list(median_ratio_ci(overall["guided"].progress, overall["expert"].progress)),
        "sweep": {
            s: [{"alpha": a, **_point(_summary(e, seconds))} for a, e in sorted(per_alpha.items())]
            for s, per_alpha in swept.items()
        },
        "sweep_overall": _sweep_overall(swept, methods, seconds),
        "held_fraction": held_fractions({m: e.hold_s for m, e in overall.items()}, seconds=seconds),
    }  # fmt: skip


def all_sources(results: dict[str, dict[str, Episodes]]) -> dict[str, Episodes]:
    """Each method's episodes of every source ``results[source][method]``, pooled, sources in their order."""
    overall = {m: Episodes([], [], []) for m in next(iter(results.values()))}
    for per_method in results.values():
        for m, e in per_method.items():
            overall[m].extend(e.hold_s, e.progress, e.follow_mm)
    return overall


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b > 0 else float("inf")


def _sweep_overall(swept: dict, methods: dict, seconds: float) -> list[dict]:
    """Each sweep strength's figures pooled over every source, as the headline figures are for the chosen α: with
    the guided/raw holding ratio and the guided/expert progress ratio, so that one run compares strengths."""
    pooled: dict[float, Episodes] = {}
    for per_alpha in swept.values():
        for a, e in per_alpha.items():
            pooled.setdefault(a, Episodes([], [], [])).extend(e.hold_s, e.progress, e.follow_mm)
    raw, expert = methods["raw"]["holding_s_median"], methods["expert"]["progress_rad_per_s_median"]
    points = []
    for a, e in sorted(pooled.items()):
        f = _point(_summary(e, seconds))
        points.append({"alpha": a, **f, "holding_ratio_vs_raw": _ratio(f["holding_s_median"], raw),
                       "progress_ratio_vs_expert": _ratio(f["progress_rad_per_s_median"], expert)})  # fmt: skip
    return points


def _point(figures: dict) -> dict:
    """The figures of one sweep point: medians, the mean holding time and the drop rate."""
    return {k: v for k, v in figures.items() if k.endswith(("_median", "_mean", "drop_rate"))}


def markdown_table(summary: dict) -> str:
    """Markdown tables of the medians with their 95 % intervals: overall, then per source."""

    def table(per_method: dict) -> list[str]:
        rows = ["| method | holding s | progress rad/s | follow error mm | holding s, mean | drop rate | episodes |"]
        rows.append("|---|---|---|---|---|---|---|")
        for m, f in per_method.items():
            cells = [f"{f[f'{k}_median']:.3g} [{f[f'{k}_ci95'][0]:.3g}, {f[f'{k}_ci95'][1]:.3g}]"
                     for k in ("holding_s", "progress_rad_per_s", "follow_error")]  # fmt: skip
            rows.append(
                f"| {m} | {' | '.join(cells)} | {f['holding_s_mean']:.3g} | {f['drop_rate']:.2f} | {f['episodes']} |"
            )
        return rows

    lines = [f"## dexgen eval --suite {summary['suite']}", "", "Medians [bootstrap 95 % interval], all sources:", ""]
    lines += table(summary["methods"])
    hold_ci, prog_ci = summary.get("holding_ratio_ci95"), summary.get("progress_ratio_ci95")
    lines += ["", f"Guided / raw median holding: {summary['holding_ratio_guided_vs_raw']:.2f}x"
              + (f" (95 % CI {hold_ci[0]:.2f}-{hold_ci[1]:.2f}x)" if hold_ci else "")
              + f"; guided / expert median progress: {summary['progress_ratio_guided_vs_expert']:.2f}"
              + (f" ({prog_ci[0]:.2f}-{prog_ci[1]:.2f})" if prog_ci else ""), ""]  # fmt: skip
    if summary.get("held_fraction"):
        held = summary["held_fraction"]
        times = list(next(iter(held.values())))
        shares = "; ".join(f"{m} " + " / ".join(f"{v:.2f}" for v in h.values()) for m, h in held.items())
        lines += [f"Share of episodes still holding at {' / '.join(times)} s: {shares}", ""]
    if summary.get("rejected_outputs"):
        counts = "; ".join(f"{m} {c['rejected']} of {c['outputs']}" for m, c in summary["rejected_outputs"].items())
        lines += [f"Controller outputs rejected as not finite (the last safe targets held instead): {counts}", ""]
    if len(summary.get("sweep_overall", [])) > 1:
        lines += ["Guidance-strength sweep, all sources pooled (medians):", "",
                  "| α | holding s | progress rad/s | follow mm | drop rate | holding / raw | progress / expert |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        for p in summary["sweep_overall"]:
            lines.append(f"| {p['alpha']:g} | {p['holding_s_median']:.3g} | {p['progress_rad_per_s_median']:.3g} | "
                         f"{p['follow_error_median']:.3g} | {p['drop_rate']:.2f} | {p['holding_ratio_vs_raw']:.2f}x | "
                         f"{p['progress_ratio_vs_expert']:.2f} |")  # fmt: skip
        lines.append("")
    if summary.get("per_object"):
        lines += ["Per object, all sources pooled (medians; the expert's progress is what it makes of that object, "
                  "and the ratio is not given where that is not positive):", "",
                  "| object | holding s raw / guided / expert | progress rad/s guided / expert | guided / expert | "
                  "episodes |", "|---|---|---|---|---|"]  # fmt: skip
        for o, f in summary["per_object"].items():
            hold = " / ".join(f"{f[m]['holding_s_median']:.3g}" for m in ("raw", "guided", "expert"))
            prog = " / ".join(f"{f[m]['progress_rad_per_s_median']:.3g}" for m in ("guided", "expert"))
            ratio = f["progress_ratio_guided_vs_expert"]
            lines.append(f"| {o} | {hold} | {prog} | {f'{ratio:.2f}' if np.isfinite(ratio) else '-'} | "
                         f"{f['guided']['episodes']} |")  # fmt: skip
        lines.append("")
    for s, pm in summary["per_source"].items():
        lines += [f"### {s}", ""] + table(pm) + [""]
    return "\n".join(lines)


def sweep_plot(summary: dict, path: Path) -> Path:
    """Holding time vs command-following error as the guidance strength varies, one line per source."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for s, points in summary["sweep"].items():
        x = [p["follow_error_median"] for p in points]
        y = [p["holding_s_mean"] for p in points]
        ax.plot(x, y, marker="o", label=s)
        for p, xi, yi in zip(points, x, y):
            ax.annotate(f"α={p['alpha']:g}", (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7)
    raw = summary["methods"]["raw"]
    ax.scatter([raw["follow_error_median"]], [raw["holding_s_mean"]], marker="x", color="k", label="raw teleop")
    ax.set_xlabel("command-following error, median (mm)")
    ax.set_ylabel(f"holding time, mean over episodes (s, horizon {summary['config']['seconds']:g})")
    ax.set_title("Guidance strength: holding vs following")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _figures_of(e: Episodes) -> dict:
    """One method's episodes as eval.json keeps them: holding_s, progress_rad_per_s, follow_error_mm."""
    return {"holding_s": e.hold_s, "progress_rad_per_s": e.progress, "follow_error_mm": e.follow_mm}


def episode_figures(results: dict[str, dict[str, Episodes]]) -> dict:
    """Every episode's figures ``[source][method]`` as eval.json keeps them (``per_episode``; each list in the order
    axis, seed, hand): holding_s, progress_rad_per_s, follow_error_mm."""
    return {s: {m: _figures_of(e) for m, e in pm.items()} for s, pm in results.items()}


def sweep_episode_figures(swept: dict[str, dict[float, Episodes]]) -> dict:
    """Every episode's figures of each swept guidance strength, ``[α as text][source]``, as eval.json keeps them
    (``per_episode_sweep``; each in ``episode_figures``' form and order)."""
    alphas = sorted({a for per_alpha in swept.values() for a in per_alpha})
    return {f"{a:g}": {s: _figures_of(pa[a]) for s, pa in swept.items() if a in pa} for a in alphas}
