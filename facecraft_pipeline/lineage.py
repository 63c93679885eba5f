"""MLflow lineage: one parent run per pipeline run, one nested run per asset materialization.

Every nested run is tagged with the pipeline run id, the asset, its code and data versions and the
data versions of its inputs, so a LoRA file can be walked back to the photos it came from (see
`trace`). Uses `MlflowClient` only (no global active-run state), so several trackers can live in
one process and nothing depends on Dagster.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag  # noqa: E402

TAG_PIPELINE_RUN = "facecraft.pipeline_run_id"
TAG_KIND = "facecraft.kind"
TAG_ASSET = "facecraft.asset"
TAG_CODE_VERSION = "facecraft.code_version"
TAG_DATA_VERSION = "facecraft.data_version"
TAG_INPUT_PREFIX = "facecraft.input."
TAG_ARTIFACT_SHA = "facecraft.artifact_sha256"

# Words that mark a value as a secret: such params are never sent to MLflow.
_SECRET_WORDS = ("token", "secret", "password", "credential", "authorization")


def is_secret_key(key: str) -> bool:
    return any(word in key.lower() for word in _SECRET_WORDS)


@dataclass
class AssetRun:
    """A nested MLflow run open for one asset materialization."""

    client: MlflowClient
    run_id: str
    log_images: bool = True  # False keeps face images (crops, sheets, samples) out of the tracking store

    def log_params(self, params: Mapping[str, Any]) -> None:
        safe = [Param(k, str(v)[:6000]) for k, v in params.items() if not is_secret_key(k)]
        for start in range(0, len(safe), 100):
            self.client.log_batch(self.run_id, params=safe[start : start + 100])

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        import time

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        if batch:
            self.client.log_batch(self.run_id, metrics=batch)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
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

    def log_image(self, image: Any, artifact_file: str) -> None:
        self.client.log_image(self.run_id, image, artifact_file=artifact_file)

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

    def register_model(self, name: str, source: Path, aliases: tuple[str, ...] = ()) -> str:
        """Register a weights folder as a model version (the registry keeps a pointer, not a copy).

        MLflow resolves `models:/NAME/latest` itself ("latest" is a reserved alias).
        """
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(name)
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        version = self.client.create_model_version(name, source=source.resolve().as_uri(), run_id=self.run_id)
        for alias in aliases:
            self.client.set_registered_model_alias(name, alias, version.version)
        return version.version


def latest_model_version(client: MlflowClient, name: str) -> str | None:
    versions = client.search_model_versions(f"name = '{name}'", order_by=["version_number DESC"], max_results=1)
    return versions[0].version if versions else None


class Lineage:
    """Opens MLflow runs for pipeline runs and asset materializations on one tracking store."""

    def __init__(
        self, tracking_uri: str, experiment: str = "facecraft", artifact_location: Path | None = None, log_images: bool = True
    ):
        self.tracking_uri = tracking_uri
        self.log_images = log_images
        self.client = MlflowClient(tracking_uri=tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            location = artifact_location.resolve().as_uri() if artifact_location else None
            self.experiment_id = self.client.create_experiment(experiment, artifact_location=location)
        else:
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
        asset_run = AssetRun(self.client, run.info.run_id, self.log_images)
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
    rows: list[dict[str, str]] = []
    frontier = [runs[0]]
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
