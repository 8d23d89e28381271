import re
import subprocess

from dexgen import provenance


def test_revision_in_a_checkout_is_a_sha():
    assert re.fullmatch(r"[0-9a-f]{7,40}(-dirty)?|unknown", provenance.revision())


def test_revision_of_a_copied_tree_comes_from_the_environment(monkeypatch):
    def no_git(*args, **kwargs):
        return subprocess.CompletedProcess(args, 128, "", "fatal: not a git repository")

    monkeypatch.setattr(provenance.subprocess, "run", no_git)
    monkeypatch.delenv("DEXGEN_REVISION", raising=False)
    assert provenance.revision() == "unknown"
    monkeypatch.setenv("DEXGEN_REVISION", "abc1234")
    assert provenance.revision() == "abc1234"


def test_command_line_gives_changed_fields_and_joins_values_that_start_with_a_dash():
    from dataclasses import dataclass

    @dataclass
    class Config:
        out: str
        axes: str = "+z"
        steps: int = 10
        resume: bool = False
        checkpoint: str | None = None
        colour: bool = True

    cfg = Config(out="o", axes="-z", resume=True, colour=False)
    assert provenance.command_line("dexgen x", cfg) == "dexgen x --out o --axes=-z --resume --no-colour"
    assert provenance.command_line("dexgen x", Config(out="o"), always=("steps",)) == "dexgen x --out o --steps 10"
