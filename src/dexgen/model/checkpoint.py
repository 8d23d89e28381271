"""Model weights on disk: ``NAME.safetensors`` (every parameter and normalizer buffer) and ``NAME.json`` beside it
(format, model config, the weights' SHA-256, the dataset's schema, provenance and metrics). Loading checks both
against this code, and the weights against the hash their record gives."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from dexgen.data.schema import PRIMITIVES, READABLE_VERSIONS, SCHEMA_VERSION
from dexgen.data.windows import OBS_FIELDS
from dexgen.files import atomic_path, check_weights_hash, file_sha256
from dexgen.model.config import ModelConfig
from dexgen.model.dexgen_model import DexGenModel
from dexgen.sim.constants import DEFAULT_HAND, DEFAULT_WRIST
from dexgen.strict_json import dumps

FORMAT = "dexgen-model"
FORMAT_VERSION = 1
SHIPPED_DIR = Path(__file__).parent / "weights"
DEFAULT_MODEL = SHIPPED_DIR / "dexgen.safetensors"
"""The shipped default model (palm up)."""


class ModelCheckpointError(ValueError):
    """A model checkpoint is missing, damaged, or does not fit this code or the given data."""


def shipped_model_path(wrist: str = DEFAULT_WRIST) -> Path:
    """The shipped model for a wrist orientation: ``dexgen.safetensors`` (palm up) or ``dexgen_<wrist>.safetensors``;
    a one-line ModelCheckpointError if none ships."""
    path = DEFAULT_MODEL if wrist == DEFAULT_WRIST else SHIPPED_DIR / f"dexgen_{wrist}.safetensors"
    if not path.is_file():
        have = sorted(p.stem for p in SHIPPED_DIR.glob("dexgen*.safetensors"))
        raise ModelCheckpointError(f"no shipped model for wrist orientation {wrist!r} (shipped: {', '.join(have)}); "
                                   "pass --checkpoint")  # fmt: skip
    return path


def model_wrists(model: DexGenModel) -> list[str]:
    """The wrist orientations of the model's training data (records from before they were stored: palm up)."""
    return list(getattr(model, "record", {}).get("dataset", {}).get("wrists", [DEFAULT_WRIST]))


def model_hand(model: DexGenModel) -> str:
    """The hand model (``constants.HANDS``) whose experts made the model's training data (records from before it was
    stored: the default hand)."""
    return str(getattr(model, "record", {}).get("dataset", {}).get("hand", DEFAULT_HAND))


def model_primitives(model: DexGenModel) -> list[str] | None:
    """The primitives (names in ``PRIMITIVES``) that the model's training data executes, or None for a record from
    before they were stored."""
    seen = getattr(model, "record", {}).get("dataset", {}).get("primitives_seen")
    return None if seen is None else list(seen)


def data_signature() -> dict:
    """What a model assumes about its data: schema version, observation fields and primitive names."""
    return {"schema_version": SCHEMA_VERSION, "obs_fields": list(OBS_FIELDS), "primitives": list(PRIMITIVES)}


def check_data_signature(found: dict, *, where: str) -> None:
    """A ModelCheckpointError naming the first difference between ``found`` and this code's data signature (a model
    trained on a dataset of any schema version this code reads passes: the versions differ only in fields added
    since, and the observation fields are the same)."""
    want = data_signature()
    for key, value in want.items():
        if key == "schema_version" and found.get(key) in READABLE_VERSIONS:
            continue
        if found.get(key) != value:
            raise ModelCheckpointError(f"{where}: data {key} {found.get(key)!r} does not match this code's {value!r}")


def save_model(model: DexGenModel, path: str | Path, *, record: dict | None = None) -> Path:
    """Write ``path`` (.safetensors) and its JSON record atomically; returns the weights path."""
    from safetensors.torch import save_file

    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp))
        digest = file_sha256(tmp)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "weights_sha256": digest,
            "config": model.cfg.to_dict(), "data": data_signature(),
            **{k: v for k, v in (record or {}).items() if k != "weights_sha256"}}  # fmt: skip
    with atomic_path(path.with_suffix(".json")) as tmp:
        tmp.write_text(dumps(meta, indent=2) + "\n")
    return path


def read_record(path: str | Path) -> dict:
    """The JSON record of model weights ``path`` (checked for format and data signature)."""
    path = Path(path)
    meta_path = path.with_suffix(".json")
    if not path.with_suffix(".safetensors").exists():
        raise ModelCheckpointError(f"no model weights at {path.with_suffix('.safetensors')}")
    if not meta_path.exists():
        raise ModelCheckpointError(f"model weights {path} have no record {meta_path.name} beside them")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelCheckpointError(f"corrupt model record {meta_path}: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelCheckpointError(f"{meta_path} is not a dexgen model record")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelCheckpointError(
            f"{meta_path}: format version {meta.get('format_version')} is not this code's {FORMAT_VERSION}"
        )
    check_data_signature(meta.get("data", {}), where=str(meta_path))
    return meta


def load_state(model: DexGenModel, state: dict[str, torch.Tensor], *, where: str) -> None:
    """Load ``state`` into ``model`` after checking names and shapes; a ModelCheckpointError naming the first
    mismatch (missing or unexpected tensor, or wrong shape) otherwise."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ModelCheckpointError(f"{where}: tensors missing {missing[:3]}, unexpected {unexpected[:3]}")
    for k, v in own.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise ModelCheckpointError(
                f"{where}: tensor {k} has shape {tuple(state[k].shape)}, the config gives {tuple(v.shape)}"
            )
    model.load_state_dict(state, strict=True)


def load_model(path: str | Path | None = None, *, wrist: str | None = None) -> DexGenModel:
    """The model stored at ``path`` (.safetensors with its .json record; None: the shipped default), in eval mode;
    a one-line ModelCheckpointError naming the file if its weights do not have the hash its record gives, or, with
    ``wrist``, if its record says it was trained for other wrist orientations."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path) if path is not None else DEFAULT_MODEL
    meta = read_record(path)
    weights = path.with_suffix(".safetensors")
    trained = meta.get("dataset", {}).get("wrists") if isinstance(meta.get("dataset"), dict) else None
    if wrist is not None and trained is not None and wrist not in trained:
        raise ModelCheckpointError(f"{weights} was trained for wrist orientation {', '.join(trained)}, not {wrist}; "
                                   "pass the model of that orientation")  # fmt: skip
    try:
        cfg = ModelConfig.from_dict(meta["config"])
    except (KeyError, TypeError, ValueError) as e:
        raise ModelCheckpointError(f"{path}: bad model config in its record: {e}") from None
    try:
        state = load_file(str(path.with_suffix(".safetensors")))
    except (SafetensorError, OSError) as e:
        raise ModelCheckpointError(f"corrupt model weights {path}: {e}") from None
    check_weights_hash(weights, meta, record_path=path.with_suffix(".json"), error=ModelCheckpointError)
    model = DexGenModel(cfg)
    load_state(model, state, where=str(path))
    model.record = meta
    return model.eval()
