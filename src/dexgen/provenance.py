"""Where results come from: the code revision recorded beside generated files and trained weights."""

from __future__ import annotations

import subprocess
from pathlib import Path


def revision() -> str:
    """The git revision of the code ("<sha>" or "<sha>-dirty"), or "unknown" outside a checkout."""
    here = Path(__file__).parent
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True, text=True
        )
    except OSError:
        return "unknown"
    if sha.returncode != 0:
        return "unknown"
    return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
