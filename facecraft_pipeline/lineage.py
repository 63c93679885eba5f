"""MLflow lineage: one parent run per pipeline run, one nested run per asset materialization.

Every nested run is tagged with the pipeline run id, the asset, its code and data versions and the
data versions of its inputs, so a LoRA file can be walked back to the photos it came from (see
`trace`). Uses `MlflowClient` only (no global active-run state), so several trackers can live in
one process and nothing depends on Dagster. Names, tags, the registry and `models:/` URIs are
`mlflow_store`'s; an `AssetRun` registers its model through it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facecraft_pipeline import mlflow_store  # first: it switches MLflow's telemetry off before mlflow is imported
from facecraft_pipeline.log_safety import is_secret_name
from facecraft_pipeline.mlflow_store import (TAG_ARTIFACT_SHA, TAG_ASSET, TAG_CODE_VERSION, TAG_DATA_VERSION, TAG_INPUT_PREFIX,
                                             TAG_KIND, TAG_PIPELINE_RUN, ModelUri, ScoredModel, is_remote_uri)
from mlflow import MlflowClient  # isort: skip  (after mlflow_store)
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag  # isort: skip
from mlflow.exceptions import MlflowException  # isort: skip

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif"}


def run_url(tracking_uri: str, experiment_id: str, run_id: str) -> str | None:
    """The run's page on a tracking server's UI (None for a local store: there is no server to link to)."""
    from urllib.parse import urlsplit, urlunsplit

    if not tracking_uri.lower().startswith(("http://", "https://")):
        return None
    parts = urlsplit(tracking_uri)
    host = parts.netloc.rsplit("@", 1)[-1]  # never copy credentials in the URI into a link
    base = urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


@dataclass
class AssetRun:
    """A nested MLflow run open for one asset materialization."""

    client: MlflowClient
    run_id: str
    log_images: bool = True  # False keeps face images (crops, sheets, samples) out of the tracking store
    remote: bool = False  # a tracking server: the registry can't point at this machine's files
    artifact_sha256: str | None = None  # set through set_tags(TAG_ARTIFACT_SHA): registration keys on it
    url: str | None = None  # the run's page when the store is a tracking server

    def log_params(self, params: Mapping[str, Any]) -> None:
        safe = [Param(k, str(v)[:6000]) for k, v in params.items() if not is_secret_name(k)]
        for start in range(0, len(safe), 100):
            self.client.log_batch(self.run_id, params=safe[start : start + 100])

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        import time

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        if batch:
            self.client.log_batch(self.run_id, metrics=batch)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        if TAG_ARTIFACT_SHA in tags:
            self.artifact_sha256 = str(tags[TAG_ARTIFACT_SHA])
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path)
        else:
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_picture(self, path: Path, artifact_path: str | None = None) -> None:
        """An image of faces: logged only where the tracking store may hold personal images."""
        if self.log_images:
            self.log_artifact(path, artifact_path)

    def log_dict(self, data: dict[str, Any], artifact_file: str) -> None:
        self.client.log_dict(self.run_id, data, artifact_file)

    def log_image(self, image: Any, artifact_file: str | None = None, key: str | None = None, step: int | None = None) -> None:
        """An image as a file, or as step `step` of the image series `key` (MLflow's image slider)."""
        self.client.log_image(self.run_id, image, artifact_file=artifact_file, key=key, step=step)

    def log_dataset(self, name: str, digest: str, source: str, profile: Mapping[str, Any] | None = None) -> None:
        """Record a dataset this run consumed (shows under the run's 'Datasets used')."""
        dataset = Dataset(
            name=name,
            digest=digest[:36],
            source_type="local",
            source=json.dumps({"uri": source}),
            profile=json.dumps(dict(profile or {})),
        )
        self.client.log_inputs(self.run_id, [DatasetInput(dataset, [InputTag("mlflow.data.context", "training")])])

    def register_model(self, name: str, source: Path, aliases: tuple[str, ...] = (), description: str | None = None,
                       tags: Mapping[str, Any] | None = None) -> str:
        """Register a weights folder as a model version, once per artifact digest; give it `description`,
        `tags` and `aliases`.

        When the run carries an artifact digest (TAG_ARTIFACT_SHA) and a version of `name` with
        that digest exists, that version is returned and nothing new is registered: re-using a
        trained model re-uses its version. On a local store the registry keeps a pointer to the
        folder; on a tracking server the folder's files are uploaded to this run's artifacts
        (`model/`) and the version points there.
        """
        version = mlflow_store.version_with_digest(self.client, name, self.artifact_sha256)
        if version is None:
            if self.remote:
                for path in self._model_files(Path(source)):
                    self.client.log_artifact(self.run_id, str(path), "model")
                uri = f"runs:/{self.run_id}/model"
            else:
                uri = Path(source).resolve().as_uri()
            version = mlflow_store.create_version(self.client, name, uri, self.run_id, self.artifact_sha256)
        mlflow_store.describe_version(self.client, name, version, description, tags, aliases)
        return version

    def move_champion_alias(self, names: list[str], winner: ScoredModel | None, step: int | None, reason: str) -> str:
        """`mlflow_store.move_champion_alias` on this run's store."""
        return mlflow_store.move_champion_alias(self.client, names, winner, step, reason)

    def _model_files(self, folder: Path) -> list[Path]:
        """What a tracking server gets for a model: the folder's top-level files (facts, weights) and,
        from its subfolders, the file whose digest is the run's artifact digest (the final checkpoint),
        not every intermediate checkpoint; sample images only where face images may go."""
        import hashlib

        def digest(path: Path) -> str:
            h = hashlib.sha256()
            with path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            return h.hexdigest()

        keep = lambda p: self.log_images or p.suffix.lower() not in IMAGE_SUFFIXES  # noqa: E731
        files = [p for p in sorted(folder.iterdir()) if p.is_file() and keep(p)]
        if self.artifact_sha256 and not any(digest(p) == self.artifact_sha256 for p in files):
            nested = [p for p in sorted(folder.rglob("*")) if p.is_file() and p.parent != folder and keep(p)]
            files += [p for p in nested if digest(p) == self.artifact_sha256][:1]
        return files


class Lineage:
    """Opens MLflow runs for pipeline runs and asset materializations on one tracking store."""

    def __init__(
        self, tracking_uri: str, experiment: str = "facecraft", artifact_location: Path | None = None, log_images: bool = True
    ):
        self.tracking_uri = tracking_uri
        self.log_images = log_images
        self.remote = is_remote_uri(tracking_uri)
        self.client = mlflow_store.client(tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            # A tracking server keeps artifacts in its own artifact root (--artifacts-destination).
            location = artifact_location.resolve().as_uri() if artifact_location and not self.remote else None
            try:
                self.experiment_id = self.client.create_experiment(experiment, artifact_location=location)
            except MlflowException:  # another process (a shard of the same backfill) created it since we looked
                found = self.client.get_experiment_by_name(experiment)
                if found is None:
                    raise
        if found is not None:
            self.experiment_id = found.experiment_id

    def parent_run(self, pipeline_run_id: str, run_name: str | None = None) -> str:
        """The MLflow run standing for one pipeline (Dagster) run: found by tag, else created."""
        existing = self.client.search_runs(
            [self.experiment_id],
            f"tags.`{TAG_PIPELINE_RUN}` = '{pipeline_run_id}' and tags.`{TAG_KIND}` = 'pipeline-run'",
            max_results=1,
        )
        if existing:
            return existing[0].info.run_id
        run = self.client.create_run(
            self.experiment_id,
            tags={TAG_PIPELINE_RUN: pipeline_run_id, TAG_KIND: "pipeline-run"},
            run_name=run_name or f"pipeline-{pipeline_run_id[:8]}",
        )
        return run.info.run_id

    @contextmanager
    def asset_run(
        self,
        pipeline_run_id: str,
        asset: str,
        code_version: str,
        input_data_versions: Mapping[str, str] | None = None,
    ) -> Iterator[AssetRun]:
        """A nested run for one asset; FAILED if the body raises, FINISHED otherwise."""
        parent_id = self.parent_run(pipeline_run_id)
        tags = {
            "mlflow.parentRunId": parent_id,
            TAG_PIPELINE_RUN: pipeline_run_id,
            TAG_KIND: "asset",
            TAG_ASSET: asset,
            TAG_CODE_VERSION: code_version,
        }
        tags.update({TAG_INPUT_PREFIX + name: version for name, version in (input_data_versions or {}).items()})
        run = self.client.create_run(self.experiment_id, tags=tags, run_name=asset)
        asset_run = AssetRun(self.client, run.info.run_id, self.log_images, remote=self.remote, url=self.run_url(run.info.run_id))
        try:
            yield asset_run
        except BaseException:
            self.client.set_terminated(run.info.run_id, "FAILED")
            self.client.set_terminated(parent_id, "FAILED")
            raise
        self.client.set_terminated(run.info.run_id, "FINISHED")
        # The parent closes with its latest child (a pipeline run has no "all done" hook here);
        # once a child failed, the parent stays FAILED.
        if self.client.get_run(parent_id).info.status != "FAILED":
            self.client.set_terminated(parent_id, "FINISHED")

    def run_url(self, run_id: str) -> str | None:
        return run_url(self.tracking_uri, self.experiment_id, run_id)

    def find_asset_runs(self, asset: str, data_version: str | None = None, artifact_sha256: str | None = None) -> list[Any]:
        """Finished asset runs, newest first, optionally by data version or by an artifact's hash."""
        query = f"tags.`{TAG_ASSET}` = '{asset}' and attributes.status = 'FINISHED'"
        if data_version:
            query += f" and tags.`{TAG_DATA_VERSION}` = '{data_version}'"
        if artifact_sha256:
            query += f" and tags.`{TAG_ARTIFACT_SHA}` = '{artifact_sha256}'"
        return list(self.client.search_runs([self.experiment_id], query, order_by=["attributes.start_time DESC"]))


def trace(lineage: Lineage, asset: str, data_version: str | None = None, artifact_sha256: str | None = None) -> list[dict[str, str]]:
    """Walk from an asset version (or an artifact file's hash) back to the photos it came from.

    Follows the input tags each asset run carries, so it needs no copy of the graph. Returns one
    row per asset reached: asset, data version, MLflow run id, pipeline run id. Raises LookupError
    when the starting point is unknown to the tracking store.
    """
    runs = lineage.find_asset_runs(asset, data_version=data_version, artifact_sha256=artifact_sha256)
    if not runs:
        raise LookupError(f"no finished MLflow run of {asset!r} matches {data_version or artifact_sha256}")
    return trace_run(lineage, runs[0])


def trace_run(lineage: Lineage, start: Any) -> list[dict[str, str]]:
    """The walk of `trace`, from one MLflow asset run (an mlflow.entities.Run)."""
    rows: list[dict[str, str]] = []
    frontier = [start]
    seen: set[str] = set()
    while frontier:
        run = frontier.pop(0)
        tags = run.data.tags
        name = tags[TAG_ASSET]
        if name in seen:
            continue
        seen.add(name)
        rows.append(
            {
                "asset": name,
                "data_version": tags.get(TAG_DATA_VERSION, ""),
                "mlflow_run_id": run.info.run_id,
                "pipeline_run_id": tags.get(TAG_PIPELINE_RUN, ""),
            }
        )
        for key, version in sorted(tags.items()):
            if key.startswith(TAG_INPUT_PREFIX):
                found = lineage.find_asset_runs(key[len(TAG_INPUT_PREFIX) :], data_version=version)
                frontier.extend(found[:1])
    return rows


def trace_model(lineage: Lineage, uri: str) -> list[dict[str, str]]:
    """Walk from a registered model version back to the photos (the version's run starts the walk)."""
    version = mlflow_store.resolve(lineage.client, ModelUri.parse(uri))
    if not version.run_id:
        raise LookupError(f"{uri} (version {version.version}) names no MLflow run")
    return trace_run(lineage, lineage.client.get_run(version.run_id))


def dataset_photo_ids(lineage: Lineage, rows: list[dict[str, str]]) -> list[str]:
    """The photo ids of the curated dataset reached by a walk (from its logged manifest.json)."""
    import tempfile

    for row in rows:
        if row["asset"] != "curated_dataset":
            continue
        with tempfile.TemporaryDirectory() as folder:
            try:
                path = lineage.client.download_artifacts(row["mlflow_run_id"], "manifest.json", folder)
            except Exception:  # noqa: BLE001 - an older run without the artifact: no ids to show
                return []
            manifest = json.loads(Path(path).read_text())
        return sorted({r["photo_id"] for r in manifest.get("images", []) if r.get("photo_id")})
    return []
