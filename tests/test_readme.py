"""The README's promises that can rot: its Python example runs as printed, and it stays short, with the quick
start near the top."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else None]


def test_the_python_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", _section("Python API"), re.S)
    assert len(blocks) == 1, "the README's Python API section should hold exactly one python block"
    exec(compile(blocks[0], str(README), "exec"), {"__name__": "readme_example"})
    assert re.fullmatch(r"held the object for \d\.\d\d s of 5\n", capsys.readouterr().out)


def test_the_quick_start_is_near_the_top_of_a_short_readme():
    lines = README.read_text().splitlines()
    assert len(lines) <= 250
    quick = lines.index("## Quick start")
    commands = [i for i, line in enumerate(lines) if line.startswith((".venv/bin/", "python3 -m venv"))]
    assert quick < 40 and len(commands) == 2 and max(commands) < 40
