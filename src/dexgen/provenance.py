"""Where results come from: the code revision recorded beside generated files and trained weights."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

GENERATED = ("src/dexgen/sim/assets/grasps", "src/dexgen/rl/experts", "src/dexgen/model/weights")
"""Generated artifacts, which do not make the code dirty (a generator rewrites them while it runs)."""


def revision() -> str:
    """The git revision of the code ("<sha>", or "<sha>-dirty" if tracked code differs from it); outside a checkout,
    the revision a copy of the tree was made from as given by $DEXGEN_REVISION, else "unknown"."""
    outside = os.environ.get("DEXGEN_REVISION", "unknown")
    here = Path(__file__).parent
    excludes = [f":(top,exclude){p}" for p in GENERATED]
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ":/", *excludes],
            cwd=here, capture_output=True, text=True,
        )  # fmt: skip
    except OSError:
        return outside
    if sha.returncode != 0:
        return outside
    return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
