"""The shape of the code: imports point one way, libraries stay Dagster-free, every setting explains itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "facecraft_pipeline"
TESTS = Path(__file__).resolve().parent
# Modules that may use Dagster: the thin layer over the libraries.
DAGSTER_LAYER = ("assets", "config", "definitions", "resources", "automation", "cli", "retries", "deploy", "failure_report")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(path: Path, modules: set[str]) -> set[str]:
    """facecraft_pipeline modules `path` imports at run time (anywhere but under `if TYPE_CHECKING:`)."""
    tree = ast.parse(path.read_text())
    skipped = {id(node) for stmt in ast.walk(tree) if isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test)
               for body in stmt.body for node in ast.walk(body)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}  # `from pkg import submodule`
    return {name for name in found if name in modules}


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: runtime_imports(path, set(paths)) - {name} for name, path in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_imports_inside_the_package_form_no_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_libraries_import_no_dagster_and_nothing_imports_the_assets() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path)
        layer = name.split(".")[1] if "." in name else ""
        tree = ast.parse(path.read_text())
        imported = {alias.name for n in ast.walk(tree) if isinstance(n, ast.Import) for alias in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        if layer not in DAGSTER_LAYER and any(m == "dagster" or m.startswith(("dagster.", "dagster_")) for m in imported):
            offenders.append(f"{name} imports dagster")
        if layer not in ("assets", "definitions", "cli") and any(m.startswith("facecraft_pipeline.assets") for m in imported):
            offenders.append(f"{name} imports the assets")
    assert offenders == []


def private_dagster_uses(path: Path) -> list[str]:
    """Imports of Dagster's private modules (`dagster._...`) and calls of its internal constructors in `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found += [f"imports {name}" for name in names if name.startswith(("dagster._", "dagster_shared._"))]
        if isinstance(node, ast.Attribute) and node.attr == "dagster_internal_init":
            found.append("calls dagster_internal_init")
    return found


def test_the_private_dagster_finder_finds_a_planted_use(tmp_path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text("import dagster as dg\nfrom dagster._core.errors import X\nimport dagster._grpc.client\n"
                       "dg.OpDefinition.dagster_internal_init(name='x')\n")
    assert private_dagster_uses(planted) == ["imports dagster._core.errors", "imports dagster._grpc.client", "calls dagster_internal_init"]


def test_only_public_dagster_apis_are_used_by_the_package_and_its_tests() -> None:
    offenders = [f"{path.relative_to(PACKAGE.parent)} {use}" for root in (PACKAGE, TESTS) for path in sorted(root.rglob("*.py"))
                 for use in private_dagster_uses(path)]
    assert offenders == []


def test_modules_that_import_mlflow_import_mlflow_store_first() -> None:
    """mlflow_store switches MLflow's telemetry off on import; mlflow reads the switch when it is imported."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        order = []
        for node in ast.parse(path.read_text()).body:  # module-level imports, in order
            if isinstance(node, ast.Import):
                order += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                order += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        first_mlflow = next((i for i, name in enumerate(order) if name == "mlflow" or name.startswith("mlflow.")), None)
        if first_mlflow is not None and "facecraft_pipeline.mlflow_store" not in order[:first_mlflow]:
            offenders.append(module_name(path))
    assert offenders == []


def test_mlflow_names_are_written_once_in_mlflow_store() -> None:
    from facecraft_pipeline import mlflow_store

    names = {*mlflow_store.MODEL_OF_ASSET.values(), mlflow_store.TRACKING_URI_ENV, "MLFLOW_DISABLE_TELEMETRY", "mlflow.db"}
    written = {name: [] for name in names}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in written:
                written[node.value].append(module_name(path))
    assert written == {name: ["facecraft_pipeline.mlflow_store"] for name in names}


def launchpad_fields(config_type, prefix: str = ""):
    for name, field in getattr(config_type, "fields", {}).items():
        yield f"{prefix}{name}", field
        yield from launchpad_fields(_inner(field.config_type), f"{prefix}{name}.")


def _inner(config_type):
    while getattr(config_type, "inner_type", None) is not None:  # Noneable / Array wrappers
        config_type = config_type.inner_type
    return config_type


@pytest.fixture(scope="module")
def assets():
    from facecraft_pipeline.definitions import ASSETS

    return ASSETS


def test_every_launchpad_field_of_every_asset_has_a_description(assets) -> None:
    missing, seen = [], 0
    for asset in assets:
        schema = asset.op.config_schema
        if schema is None:
            continue
        for name, field in launchpad_fields(_inner(schema.config_type)):
            seen += 1
            if not (field.description or "").strip():
                missing.append(f"{asset.key.to_user_string()}.{name}")
    assert seen > 50 and missing == []
