"""faces/ and dataset/ have no import cycles (TYPE_CHECKING and function-level imports count) and no Dagster."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import facecraft_pipeline.dataset as dataset_pkg
import facecraft_pipeline.faces as faces_pkg


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
    modules = {
        f"{package.__name__}.{path.stem}": path
        for package in (faces_pkg, dataset_pkg)
        for path in Path(package.__file__).parent.glob("*.py")
        if path.stem != "__init__"
    }
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def test_faces_and_dataset_modules_import_each_other_without_cycles() -> None:
    graph = _graph()
    assert "facecraft_pipeline.faces.detect" not in graph["facecraft_pipeline.faces.dlib_detector"]
    assert "facecraft_pipeline.faces.detect" not in graph["facecraft_pipeline.faces.retinaface_detector"]
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        if node in stack:
            cycles.append(stack[stack.index(node) :] + [node])
            return
        for target in sorted(graph[node]):
            visit(target, [*stack, node])

    for start in sorted(graph):
        visit(start, [])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(m.rsplit(".", 1)[1] for m in c) for c in cycles[:5])


@pytest.mark.parametrize("package", [faces_pkg, dataset_pkg], ids=["faces", "dataset"])
def test_the_libraries_import_no_dagster(package) -> None:
    for path in Path(package.__file__).parent.glob("*.py"):
        assert not any(m == "dagster" or m.startswith("dagster.") for m in _imports(path)), path.name
