"""The package's layering: data flows one way, sim -> rl -> data -> model -> controller -> teleop -> eval, with the
cli on top and the helper modules directly under ``dexgen/`` (files, provenance, ...) below every stage. A module
may import its own stage and earlier ones only, and no group of modules may import each other in a cycle. Imports
are read from the source with ``ast``, those inside functions included, since a deferred import is still a
dependency."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
STAGES = ("sim", "rl", "data", "model", "controller", "teleop", "eval", "cli")


def _modules(src: Path) -> dict[str, Path]:
    out = {}
    for path in sorted((src / "dexgen").rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that module ``name`` (at ``path``) imports anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}  # `from pkg import module`
    return {m for m in found if m in known and m != name}


def _stage(module: str) -> int:
    """0 for ``dexgen`` and its helper modules, then 1 + the stage's index in STAGES."""
    parts = module.split(".")
    return STAGES.index(parts[1]) + 1 if len(parts) > 1 and parts[1] in STAGES else 0


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    known = _modules(src)
    return {name: _imports(name, path, known) for name, path in known.items()}


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return [f"{m} imports {d}" for m in sorted(graph) for d in sorted(graph[m]) if _stage(d) > _stage(m)]


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each cycle as the list of modules on it (one per strongly connected component of more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_every_stage_is_known():
    stages = {p.name for p in (SRC / "dexgen").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert stages <= set(STAGES), f"a package outside the stage order: {sorted(stages - set(STAGES))}"


def test_no_stage_imports_a_later_one():
    assert upward_imports(import_graph()) == []


def test_no_import_cycle():
    assert import_cycles(import_graph()) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "def f():\n    from dexgen.teleop.commands import C\n",
            ["dexgen.controller.x imports dexgen.teleop.commands"],
        ),
        (
            "from ..eval import demo\n",
            ["dexgen.controller.x imports dexgen.eval", "dexgen.controller.x imports dexgen.eval.demo"],
        ),
        ("from dexgen.model import checkpoint\nimport dexgen.sim.env\n", []),
    ],
)
def test_the_check_reads_deferred_relative_and_module_imports(tmp_path, source, expected):
    for module in ("controller/x", "teleop/commands", "eval/demo", "model/checkpoint", "sim/env"):
        path = tmp_path / "dexgen" / f"{module}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "__init__.py").touch()
        path.touch()
    (tmp_path / "dexgen" / "__init__.py").touch()
    (tmp_path / "dexgen" / "controller" / "x.py").write_text(source)
    assert upward_imports(import_graph(tmp_path)) == expected


def test_the_check_finds_a_cycle(tmp_path):
    (tmp_path / "dexgen" / "rl").mkdir(parents=True)
    (tmp_path / "dexgen" / "__init__.py").touch()
    (tmp_path / "dexgen" / "rl" / "__init__.py").touch()
    (tmp_path / "dexgen" / "rl" / "a.py").write_text("def f():\n    from dexgen.rl import b\n")
    (tmp_path / "dexgen" / "rl" / "b.py").write_text("from dexgen.rl.a import f\n")
    assert import_cycles(import_graph(tmp_path)) == [["dexgen.rl.a", "dexgen.rl.b"]]
