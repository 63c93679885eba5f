"""The sources package has no import cycles (TYPE_CHECKING and function-level imports count) and no Dagster."""

from __future__ import annotations

import ast
from pathlib import Path

import facecraft_pipeline.sources as sources_pkg

PACKAGE = "facecraft_pipeline.sources"


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return out


def _graph() -> dict[str, set[str]]:
    folder = Path(sources_pkg.__file__).parent
    modules = {f"{PACKAGE}.{path.stem}": path for path in folder.glob("*.py") if path.stem != "__init__"}
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def test_sources_modules_import_each_other_without_cycles() -> None:
    graph = _graph()
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        if node in stack:
            cycles.append(stack[stack.index(node):] + [node])
            return
        for target in sorted(graph[node]):
            visit(target, [*stack, node])

    for start in sorted(graph):
        visit(start, [])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(m.rsplit(".", 1)[1] for m in c) for c in cycles[:5])


def test_sources_import_no_dagster() -> None:
    folder = Path(sources_pkg.__file__).parent
    for path in folder.glob("*.py"):
        assert not any(m == "dagster" or m.startswith("dagster.") for m in _imports(path)), path.name
