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
