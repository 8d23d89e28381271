"""Reading a saved expert (safetensors weights with a JSON record beside them) without importing torch.

Both the torch actor (``dexgen.rl.expert.Expert``) and the numpy one (``dexgen.rl.numpy_actor.NumpyActor``) load
through here, so a missing, corrupt or incomplete expert gets the same one-line error from either.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dexgen.files import check_weights_hash


class ExpertError(ValueError):
    """Expert weights are missing, unreadable or do not match their record."""


def read_expert_files(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """The JSON record and the weights (name -> array) of the expert at ``path`` (.safetensors); an ExpertError
    with a one-line reason if either file is missing or unreadable, or if the weights do not have the hash their
    record gives (``weights_sha256``)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = Path(path)
    record_path = path.with_suffix(".json")
    if not path.is_file():
        raise ExpertError(f"no expert weights at {path}")
    if not record_path.is_file():
        raise ExpertError(f"expert {path} has no JSON record at {record_path}")
    try:
        record = json.loads(record_path.read_text())
        state = load_file(str(path))
    except (json.JSONDecodeError, SafetensorError, OSError) as e:
        raise ExpertError(f"corrupt expert {path}: {' '.join(str(e).split())}") from None
    if not isinstance(record, dict):
        raise ExpertError(f"expert record {record_path} is not a JSON object")
    check_weights_hash(path, record, record_path=record_path, error=ExpertError)
    return record, state
