"""JSON output that every reader accepts: Python's ``json`` writes NaN and infinity as the bare words ``NaN`` and
``Infinity``, which are not JSON; here they become null."""

from __future__ import annotations

import json
import math

import numpy as np


def json_safe(obj):
    """``obj`` (dicts, lists, tuples, numbers, strings, numpy scalars and arrays) as plain JSON values, every
    number that is not finite replaced by None."""
    if isinstance(obj, dict):
        return {str(k) if not isinstance(k, str) else k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        return json_safe(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def dumps(obj, **kwargs) -> str:
    """``json.dumps`` of ``json_safe(obj)``: valid JSON, NaN and infinity written as null; other values that JSON
    cannot hold are written as ``float(value)`` (numbers of other types) or refused (a TypeError)."""
    return json.dumps(json_safe(obj), allow_nan=False, default=lambda v: json_safe(float(v)), **kwargs)
