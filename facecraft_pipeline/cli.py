"""`facecraft`: materialize the graph, log in to OneDrive, trace a model back to its photos.

    facecraft materialize [--select 'photos*'] [--set gan_checkpoint.run.steps=50]
    facecraft login [--browser]
    facecraft lineage data/models/lora_weights/<run>/pytorch_lora_weights.safetensors
    facecraft lineage models:/facecraft-lora@champion      (or models:/NAME/VERSION)
    facecraft trace PATH                                   (the old name of `lineage`)
    facecraft manifest photos|faces --out FILE.json         (the stored listing / face manifest as JSON)
    facecraft explore [--model models:/facecraft-gan-checkpoint@champion] [--port 8765]
    facecraft export-site DIR | facecraft render CHARACTER.json --scale 4
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facecraft_pipeline.env import env_optional, env_str, process_env, set_default
from facecraft_pipeline.home import PROJECT_ROOT, default_home
from facecraft_pipeline.log_safety import redact
from facecraft_pipeline.mlflow_store import configured_uri, is_model_uri, is_remote_uri, store_uri  # also: MLflow telemetry off


def _instance_env() -> None:
    """Point Dagster at the project's instance: dagster.yaml copied into the data root."""
    import shutil

    dagster_home = Path(set_default("DAGSTER_HOME", str(default_home() / "dagster")))
    dagster_home.mkdir(parents=True, exist_ok=True)
    # FACECRAFT_DAGSTER_YAML=deploy/dagster-postgres.yaml: Dagster's storage on PostgreSQL.
    shutil.copyfile(env_optional("FACECRAFT_DAGSTER_YAML") or PROJECT_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    for name in ("DIFFUSERS_VERBOSITY", "TRANSFORMERS_VERBOSITY"):
        set_default(name, "error")
    set_default("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _parse_sets(pairs: list[str]) -> dict[str, Any]:
    """`asset.field=value` pairs -> run config ops section (values parsed as JSON when they can be)."""
    ops: dict[str, Any] = {}
    for pair in pairs:
        key, equals, raw = pair.partition("=")
        asset, dot, field = key.partition(".")
        if not (equals and dot and asset and field):
            raise SystemExit(f"--set wants asset.field=value, got {pair!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        section = ops.setdefault(asset, {"config": {}})["config"]
        *parents, leaf = field.split(".")  # nested settings: asset.detector.kind=retinaface
        for parent in parents:
            section = section.setdefault(parent, {})
        section[leaf] = value
    return {"ops": ops}


def materialize(select: str, sets: list[str], step_processes: int | None) -> int:
    _instance_env()
    import dagster as dg

    from facecraft_pipeline.resources import ComputeResource

    compute = ComputeResource.from_env(process_env())
    try:
        on_cpu = compute.torch_device().type == "cpu"
    except dg.Failure:  # the device asked for is missing: each step that needs it says so
        on_cpu = False
    if on_cpu:  # before the definitions are built: no accelerator pool to queue the trainers in
        set_default("FACECRAFT_DEVICE", "cpu")
    from facecraft_pipeline.definitions import WHOLE_GRAPH, check_run_config, defs
    from facecraft_pipeline.run_logs import everything_with_logs, run_config as logs_and_executor
    from facecraft_pipeline.settings.profiles import DEFAULT_PROFILE

    sets_config = _parse_sets(sets)
    try:
        check_run_config(env_str("FACECRAFT_PROFILE", DEFAULT_PROFILE), sets_config)
    except ValueError as error:
        raise SystemExit(f"--set: {error}") from None

    home = default_home()
    log_path = home / "logs" / f"materialize-{uuid.uuid4()}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    instance = dg.DagsterInstance.get()
    graph = defs.resolve_asset_graph()
    wanted = (WHOLE_GRAPH if select == "*" else dg.AssetSelection.from_string(select)).resolve(graph)
    selection = wanted & WHOLE_GRAPH.resolve(graph)  # '+face_crops' names face_shards too: face_crops does its work itself
    if wanted and not selection:
        raise SystemExit(f"--select {select}: face_shards is partitioned (one shard of the library a run): backfill it with "
                         "`dagster job backfill -j extract_face_shards --all` or from the Dagster UI (README, 'A big library on Kubernetes')")
    step_processes = step_processes or compute.step_processes()
    run_config = sets_config | logs_and_executor(str(log_path), step_processes)
    if sys.stderr.isatty() and step_processes == 1:  # training assets draw a progress bar on a terminal (assets/training.py)
        run_config["resources"] = {"compute": {"config": {"progress_bar": True}}}
    with dg.execute_job(dg.reconstructable(everything_with_logs), instance, run_config=run_config,
                        asset_selection=None if select == "*" else list(selection)) as result:
        return _report(result, selection, home, log_path)


def _report(result: Any, wanted: Any, home: Path, log_path: Path) -> int:
    """What the run made, where it lies, and each failure in one line."""
    print()
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        where = mat.metadata.get("location") or mat.metadata.get("manifest")
        summary = mat.metadata.get("summary")
        line = f"  {mat.asset_key.to_user_string():<20}"
        if summary is not None:
            line += f" {summary.value}"
        if where is not None:
            line += f"\n  {'':<20} -> {where.value}"
        print(line)
    failures = failed_steps(result.all_events)
    for failure in failures:
        print(f"  {failure.step:<20} FAILED: {failure.reason}")
        if failure.hint:
            print(f"  {'':<20} hint: {failure.hint}")
    done = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()} | {f.step for f in failures}
    skipped = sorted(key.to_user_string() for key in wanted if key.to_user_string() not in done)
    if failures and skipped:
        print(f"  {'not run':<20} {', '.join(skipped)} (upstream failed)")
    store = redact(store_uri(home, configured_uri()))  # a server's URI may hold a password
    print(f"\n  data root: {home}\n  MLflow store: {store}" + ("" if is_remote_uri(store) else f"  (mlflow ui --backend-store-uri {store})"))
    print(f"  Dagster run {result.run_id}: {'SUCCESS' if result.success else 'FAILURE'}")
    if failures or not result.success:
        print(f"  full log with tracebacks: {log_path}")
    return 0 if result.success else 1


@dataclass(frozen=True)
class StepFailure:
    step: str
    reason: str
    hint: str


def failed_steps(events: Sequence[Any]) -> list[StepFailure]:
    """Each failed step with a one-line reason and, where the error gives one, a hint (from `dg.Failure` metadata)."""
    out = []
    for event in events:
        if not event.is_step_failure:
            continue
        data = event.step_failure_data
        user = data.user_failure_data
        hint = ""
        if user is not None and user.description:
            reason = user.description
            value = user.metadata.get("hint")
            hint = str(getattr(value, "value", value) or "")
        else:
            error = data.error
            while error is not None and error.cause is not None and error.cls_name in _WRAPPERS:
                error = error.cause  # the user's exception, not Dagster's wrapper around it
            reason = f"{error.cls_name}: {error.message.strip()}" if error is not None else "unknown error"
        reason = " ".join(reason.split())  # one line
        out.append(StepFailure(event.step_key or "?", reason if len(reason) <= 400 else reason[:397] + "...", hint))
    return out


_WRAPPERS = {"DagsterExecutionStepExecutionError", "DagsterUserCodeExecutionError", "DagsterExecutionInterruptedError"}


def login(browser: bool) -> int:
    from facecraft_pipeline.home import Home
    from facecraft_pipeline.resources import OneDriveResource
    from facecraft_pipeline.sources.onedrive_auth import login as onedrive_login
    from facecraft_pipeline.sources.onedrive_auth import resolve_auth_dir

    source = OneDriveResource.from_env(process_env())
    settings = source.onedrive_settings()
    if not settings.client_id:
        raise SystemExit("set FACECRAFT_ONEDRIVE_CLIENT_ID to your app registration's client id (see README)")
    auth_dir = resolve_auth_dir(settings, source.state_dir(Home(default_home())))
    account = onedrive_login(settings, auth_dir, use_device_code=not browser)
    print(f"logged in as {account}; scheduled runs will now sync silently")
    return 0


def lineage(target: str) -> int:
    """Print the chain from a weights file or a registered model back to the photos it came from."""
    from facecraft_pipeline.digest import sha256_file
    from facecraft_pipeline.home import Home
    from facecraft_pipeline.lineage import dataset_photo_ids, trace, trace_model
    from facecraft_pipeline.resources import MlflowResource

    tracker = MlflowResource.from_env(process_env()).lineage(Home(default_home()))
    rows = None
    if is_model_uri(target):
        try:
            rows = trace_model(tracker, target)
        except LookupError as error:
            print(str(error), file=sys.stderr)
            return 1
    else:
        path = Path(target)
        if not path.is_file():
            print(f"{path}: no such file", file=sys.stderr)
            return 1
        digest = sha256_file(path)
        for asset in ("lora_weights", "gan_checkpoint", "wgan_gp_checkpoint", "sample_galleries"):
            try:
                rows = trace(tracker, asset, artifact_sha256=digest)
                break
            except LookupError:
                continue
        if rows is None:
            print(f"{path}: no tracked asset produced a file with sha256 {digest}", file=sys.stderr)
            return 1
    for row in rows:
        url = tracker.run_url(row["mlflow_run_id"])
        print(
            f"{row['asset']:<20} data {row['data_version'][:16]}  mlflow {row['mlflow_run_id']}  dagster {row['pipeline_run_id']}"
            + (f"  {url}" if url else "")
        )
    photo_ids = dataset_photo_ids(tracker, rows)
    if photo_ids:
        print(f"photos ({len(photo_ids)}): {', '.join(photo_ids)}")
    return 0


def export_manifest(which: str, out: str) -> int:
    """Write the photo listing or the face-crops manifest, as kept in the data root's stores, as JSON."""
    from facecraft_pipeline.faces.crops_manifest import StoredCropsManifest
    from facecraft_pipeline.faces.crops_store import STORE_NAME as CROPS_STORE
    from facecraft_pipeline.sources.manifest import STORE_NAME as PHOTO_STORE
    from facecraft_pipeline.sources.manifest import PhotoManifest, PhotoStore

    home = default_home()
    store = home / "photos" / PHOTO_STORE if which == "photos" else home / "faces" / CROPS_STORE
    if not store.is_file():
        print(f"no {which} store at {store}: materialize {'photos' if which == 'photos' else 'face_crops'} first", file=sys.stderr)
        return 1
    target = Path(out).expanduser().resolve()
    if which == "photos":
        stored = PhotoStore(store).manifest()
        PhotoManifest(stored.source, stored.records, stored.digest).write_json(target)
    else:
        StoredCropsManifest.open(store).write_json(target)
    print(f"{which} manifest written to {target}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="facecraft", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("materialize", help="materialize the asset graph on this machine (demo profile by default)")
    run.add_argument("--select", default="*", help="Dagster asset selection, e.g. 'photos+' (default: everything)")
    run.add_argument("--steps-at-once", type=int, default=None, metavar="N",
                     help="independent steps (the trainers) run in up to N processes (default: CPU cores / FACECRAFT_CPU_THREADS)")
    run.add_argument("--set", action="append", default=[], metavar="ASSET.FIELD=VALUE", help="override one asset config field")
    log_in = sub.add_parser("login", help="log in to OneDrive once, so scheduled syncs are silent")
    log_in.add_argument("--browser", action="store_true", help="interactive browser login instead of a device code")
    for name, text in (("lineage", "walk back from a model file or models:/NAME@ALIAS to the photos"), ("trace", "alias of lineage")):
        walk = sub.add_parser(name, help=text)
        walk.add_argument("target", metavar="PATH|models:/NAME@ALIAS")
    export = sub.add_parser("manifest", help="export the photo listing or the face-crops manifest of the data root as JSON")
    export.add_argument("which", choices=("photos", "faces"))
    export.add_argument("--out", required=True, help="JSON file to write (faces: a version-1 manifest, crop paths relative to it)")
    from facecraft_pipeline.explorer.cli import add_commands
    from facecraft_pipeline.explorer.cli import run as run_explorer

    add_commands(sub)  # explore, export-site, render
    args = parser.parse_args(argv)
    from facecraft_pipeline.log_safety import install as install_log_safety

    install_log_safety()
    if hasattr(args, "explorer_command"):
        return run_explorer(args)
    if args.command == "materialize":
        return materialize(args.select, args.set, args.steps_at_once)
    if args.command == "login":
        return login(args.browser)
    if args.command == "manifest":
        return export_manifest(args.which, args.out)
    return lineage(args.target)


if __name__ == "__main__":
    sys.exit(main())
