"""Figures of an evaluation: medians with bootstrap confidence intervals, and command following."""

from __future__ import annotations

import numpy as np


def median_ci(values: np.ndarray, *, confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> dict:
    """Median of ``values`` (n,) with a percentile bootstrap confidence interval (scipy.stats.bootstrap):
    {"median", "ci_low", "ci_high", "n"}. With fewer than two distinct values the interval is the median itself."""
    from scipy.stats import bootstrap

    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return {"median": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "n": 0}
    med = float(np.median(v))
    if len(np.unique(v)) < 2:
        return {"median": med, "ci_low": med, "ci_high": med, "n": int(len(v))}
    res = bootstrap((v,), np.median, confidence_level=confidence, n_resamples=resamples, method="percentile",
                    rng=np.random.default_rng(seed))  # fmt: skip
    ci = res.confidence_interval
    return {"median": med, "ci_low": float(ci.low), "ci_high": float(ci.high), "n": int(len(v))}


def median_ratio_ci(
    numerator: np.ndarray, denominator: np.ndarray, *, confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``median(numerator) / median(denominator)`` (e.g. guided vs raw
    holding time). Arrays of one length are taken as paired, episode i of each from the same initial state, and
    resampled together (pairs with a non-finite value dropped); otherwise each is resampled on its own. A resample
    whose denominator median is not positive gives an infinite ratio. (Not scipy.stats.bootstrap, as ``median_ci``
    uses: its percentile interpolation turns such infinite resamples into NaN.)"""
    a, b = np.asarray(numerator, dtype=np.float64), np.asarray(denominator, dtype=np.float64)
    rng = np.random.default_rng(seed)
    if len(a) == len(b):
        keep = np.isfinite(a) & np.isfinite(b)
        a, b = a[keep], b[keep]
        if len(a) == 0:
            return float("nan"), float("nan")
        idx = rng.integers(len(a), size=(resamples, len(a)))
        top, bottom = np.median(a[idx], axis=1), np.median(b[idx], axis=1)
    else:
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        if len(a) == 0 or len(b) == 0:
            return float("nan"), float("nan")
        top = np.median(a[rng.integers(len(a), size=(resamples, len(a)))], axis=1)
        bottom = np.median(b[rng.integers(len(b), size=(resamples, len(b)))], axis=1)
    ratio = np.full(resamples, np.inf)
    np.divide(top, bottom, out=ratio, where=bottom > 0)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(ratio, [tail, 1.0 - tail], method="inverted_cdf")
    return float(low), float(high)


def follow_error(tips: np.ndarray, commands: np.ndarray, held_steps: np.ndarray) -> np.ndarray:
    """Per-hand command-following error, metres: the mean over held steps t and horizon steps k of the mean over
    fingertips of ``|| (x_(t+k) - x_t) - Δx_cmd,k(t) ||``, counting only (t, k) with t + k still held.

    tips (S + 1, N, 4, 3) executed fingertip positions; commands (S, N, T, 4, 3) the command given at each step;
    held_steps (N,) steps the object stayed in hand. Returns (N,) (NaN for a hand that held no step)."""
    s, n, horizon = commands.shape[0], commands.shape[1], commands.shape[2]
    total = np.zeros(n)
    count = np.zeros(n)
    t = np.arange(s)
    for k in range(1, horizon + 1):
        valid = (t[:, None] + k) <= np.minimum(held_steps, s)[None, :]  # (S, N)
        if not valid[: s - k + 1].any():
            continue
        executed = tips[k : s + 1] - tips[: s + 1 - k]  # (S + 1 - k, N, 4, 3)
        err = np.linalg.norm(executed - commands[: s + 1 - k, :, k - 1], axis=-1).mean(-1)  # (S + 1 - k, N)
        v = valid[: s + 1 - k]
        total += np.where(v, err, 0.0).sum(0)
        count += v.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)
