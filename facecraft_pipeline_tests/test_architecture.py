"""The shape of the code: imports point one way, libraries stay Dagster-free, assets read other assets' files only
through their declared inputs, every setting explains itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "facecraft_pipeline"
TESTS = Path(__file__).resolve().parent
# Modules that may use Dagster: the thin layer over the libraries.
DAGSTER_LAYER = ("assets", "settings.dagster_config", "definitions", "resources", "automation", "cli", "retries", "deploy",
                 "failure_report", "run_logs")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(path: Path, modules: set[str], type_checking: bool = False) -> set[str]:
    """facecraft_pipeline modules `path` imports: at module level or inside functions (lazily), and with
    `type_checking` also under `if TYPE_CHECKING:`."""
    tree = ast.parse(path.read_text())
    skipped = set() if type_checking else {
        id(node) for stmt in ast.walk(tree) if isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test)
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


def import_graph(type_checking: bool = False) -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: runtime_imports(path, set(paths), type_checking) - {name} for name, path in paths.items()}


def mutual_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Pairs of modules that import each other."""
    return sorted((a, b) for a, targets in graph.items() for b in targets if a < b and a in graph.get(b, set()))


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


def test_the_import_graph_counts_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import b\n")
    (tmp_path / "b.py").write_text("def draw():\n    from pkg.a import thing\n")
    modules = {"pkg.a", "pkg.b"}
    graph = {"pkg.a": runtime_imports(tmp_path / "a.py", modules, True), "pkg.b": runtime_imports(tmp_path / "b.py", modules, True)}
    assert mutual_imports(graph) == [("pkg.a", "pkg.b")]
    assert runtime_imports(tmp_path / "a.py", modules) == set()  # at run time a does not import b


def test_no_two_modules_import_each_other_not_even_lazily_or_for_type_checking() -> None:
    assert mutual_imports(import_graph(type_checking=True)) == []


def test_libraries_import_no_dagster_and_nothing_imports_the_assets() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path)
        layer = name.split(".")[1] if "." in name else ""
        dagster_layer = any(f"{name}.".startswith(f"facecraft_pipeline.{part}.") for part in DAGSTER_LAYER)
        tree = ast.parse(path.read_text())
        imported = {alias.name for n in ast.walk(tree) if isinstance(n, ast.Import) for alias in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        if not dagster_layer and any(m == "dagster" or m.startswith(("dagster.", "dagster_")) for m in imported):
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


HOME_PROPERTIES = {"models_cache": ("cache", "models"), "mlflow_artifacts": ("mlflow",)}


def data_root_folders(source: str) -> dict[str, set[tuple[str, ...]]]:
    """Per `@dg.asset` function: the data-root folders it (or a module function it calls) opens with `Home.dir(...)`
    or a Home property. A part that is not a literal is the asset's own name (`dir("models", asset)`)."""
    tree = ast.parse(source)
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}

    def calls(function: ast.FunctionDef) -> set[str]:
        return {n.func.id for n in ast.walk(function) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                and n.func.id in functions}

    def folders(function: ast.FunctionDef, asset: str) -> set[tuple[str, ...]]:
        found = set()
        for node in ast.walk(function):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "dir" and node.args:
                found.add(tuple(a.value if isinstance(a, ast.Constant) and isinstance(a.value, str) else asset for a in node.args))
            elif isinstance(node, ast.Attribute) and node.attr in HOME_PROPERTIES:
                found.add(HOME_PROPERTIES[node.attr])
        return found

    out = {}
    for name, function in functions.items():
        if not any("asset" in ast.unparse(d).split("(")[0].split(".")[-1] for d in function.decorator_list):
            continue
        seen, todo, used = {name}, [name], set()
        while todo:
            current = functions[todo.pop()]
            used |= folders(current, name)
            for callee in calls(current) - seen:
                seen.add(callee)
                todo.append(callee)
        out[name] = used
    return out


def shared_folders(by_asset: dict[str, set[tuple[str, ...]]], shared: tuple[tuple[str, ...], ...] = (("mlflow",),),
                   pairs: frozenset[tuple[str, str]] = frozenset()) -> list[str]:
    """Folders two assets open (one folder inside or equal to another's): an asset reading another's files off disk.
    `pairs`: (upstream, downstream) assets that share a folder by design, through a declared edge."""
    found = []
    owners = sorted((folder, asset) for asset, folders in by_asset.items() for folder in folders if folder not in shared)
    for i, (a, first) in enumerate(owners):
        for b, second in owners[i + 1:]:
            if (first, second) in pairs or (second, first) in pairs:
                continue
            if first != second and (b[:len(a)] == a or a[:len(b)] == b):
                found.append(f"{first} opens {'/'.join(a)} and {second} opens {'/'.join(b)}")
    return found


def test_the_folder_check_finds_an_asset_reading_another_assets_folder() -> None:
    source = """
@dg.asset
def crops(home):
    home.dir("faces")

def _view(home):
    return home.dir("faces") / "manifest.json"

@dg.asset(code_version="1")
def lora(home, context):
    _view(home)
    home.dir("models", asset)
"""
    assert data_root_folders(source) == {"crops": {("faces",)}, "lora": {("faces",), ("models", "lora")}}
    assert shared_folders(data_root_folders(source)) == ["crops opens faces and lora opens faces"]


def test_assets_open_only_their_own_data_root_folders() -> None:
    """Another asset's files are reached through the value of a declared input (a path it records), never by knowing
    where that asset writes: otherwise Dagster cannot tell that the reader went stale when the writer changed."""
    by_asset: dict[str, set[tuple[str, ...]]] = {}
    for path in (PACKAGE / "assets").glob("*.py"):
        by_asset |= data_root_folders(path.read_text())
    library_lock = ("state", "lock")  # holds no data: photos and face_crops take one lock so a sync never rewrites photos being read
    # face_shards fills the per-photo cache face_crops reads (a first pass split over machines): face_crops declares it upstream
    by_design = frozenset({("face_shards", "face_crops")})
    assert len(by_asset) >= 7 and shared_folders(by_asset, shared=(("mlflow",), library_lock), pairs=by_design) == []
    from dagster import AssetKey

    from facecraft_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    for upstream, downstream in by_design:
        assert AssetKey(upstream) in graph.get(AssetKey(downstream)).parent_keys


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
    from facecraft_pipeline.definitions import build_assets

    return build_assets()


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


# The process environment is read in one library module, and by the one function that builds the Definitions.
ENVIRONMENT_READERS = {"facecraft_pipeline.env", "facecraft_pipeline.definitions"}


def environment_reads(source: str) -> list[str]:
    """Where `source` touches the process environment: `os.environ`, `os.getenv`/`putenv`/`unsetenv`, or their import."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os" \
                and node.attr in ("environ", "environb", "getenv", "putenv", "unsetenv"):
            found.append(f"line {node.lineno}: os.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os" and any(
                alias.name in ("environ", "environb", "getenv", "putenv", "unsetenv") for alias in node.names):
            found.append(f"line {node.lineno}: from os import {', '.join(alias.name for alias in node.names)}")
    return sorted(found, key=lambda where: int(where.split()[1].rstrip(":")))


def test_the_environment_finder_finds_planted_reads() -> None:
    planted = "import os\nfrom os import environ\nA = os.environ.get('X')\nB = os.getenv('Y')\nos.path.join('a')\n"
    assert environment_reads(planted) == ["line 2: from os import environ", "line 3: os.environ", "line 4: os.getenv"]


def test_only_env_py_and_the_definitions_builder_read_the_environment() -> None:
    offenders = [f"{module_name(path)} {where}" for path in sorted(PACKAGE.rglob("*.py"))
                 if module_name(path) not in ENVIRONMENT_READERS for where in environment_reads(path.read_text())]
    assert offenders == []
