"""Where results come from: the code revision recorded beside generated files and trained weights."""

from __future__ import annotations

import os
import subprocess
from dataclasses import MISSING, fields
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


def command_line(command: str, cfg, *, always: tuple[str, ...] = ()) -> str:
    """The command line that gives the dataclass config ``cfg`` to ``command`` (e.g. "dexgen collect"): a flag for
    every field that differs from its default, and for the fields named in ``always``."""
    words = command.split()
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        flag = "--" + f.name.replace("_", "-")
        if f.name in always or f.default is MISSING or value != f.default:
            if isinstance(value, bool):
                words.append(flag if value else f"--no-{flag[2:]}")
            elif value is not None:  # a value that starts with "-" must be joined to its flag, or it reads as one
                words += [f"{flag}={value}"] if str(value).startswith("-") else [flag, str(value)]
    return " ".join(words)
