"""Writing files so that a crash never leaves half of one: write a temporary file beside it, then rename it."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path, *, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path in ``path``'s folder (created if missing) to write to; when the block ends normally it is
    renamed onto ``path`` (readable by everyone, as a plain file would be), otherwise removed.

    ``suffix`` ends the temporary name (e.g. ".tmp.npz" for writers that insist on an extension)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes the file private
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_torch_checkpoint(path: str | Path, *, keys: tuple[str, ...], kind: str, error: type[Exception]) -> dict:
    """A training checkpoint written by ``torch.save``: a dict holding ``keys``. Raises ``error`` with a one-line
    reason if it is missing, damaged, or not a ``kind`` checkpoint (e.g. "dexgen expert")."""
    import torch

    path = Path(path)
    if not path.exists():
        raise error(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many types for a damaged file
        raise error(f"corrupt checkpoint {path}: {type(e).__name__}: {e}") from None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in keys):
        raise error(f"{path} is not a {kind} checkpoint")
    return ckpt


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_weights_hash(path: str | Path, record: dict, *, record_path: str | Path, error: type[Exception]) -> None:
    """An ``error`` naming the file unless the weights at ``path`` have the SHA-256 that their JSON ``record``
    gives as ``weights_sha256`` (a record without one, written before records held it, is not checked): a damaged
    file, or another model's weights beside the record, would otherwise load and act."""
    want = record.get("weights_sha256")
    if want is None:
        return
    if not isinstance(want, str) or file_sha256(path) != want:
        raise error(f"{path} does not match its record {Path(record_path).name} (weights_sha256 differs): damaged, "
                    "or another model's weights")  # fmt: skip
