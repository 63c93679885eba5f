"""The bookkeeping every asset does: an MLflow run for the materialization, and its Dagster output.

With a tracking server (MLFLOW_TRACKING_URI=http...) each output links to its MLflow run's page.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg

from facecraft_pipeline.lineage import AssetRun
from facecraft_pipeline.mlflow_store import TAG_DAGSTER_JOB, TAG_DAGSTER_RUN, TAG_DATA_VERSION
from facecraft_pipeline.resources import HomeResource, MlflowResource


@contextmanager
def asset_run(
    context: dg.AssetExecutionContext,
    home: HomeResource,
    mlflow: MlflowResource,
    inputs: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
) -> Iterator[AssetRun]:
    """Open the nested MLflow run for this materialization, tagged with the Dagster run and inputs;
    nested `params` (settings sections) are logged as dotted names (detector.kind, quality.min_face_px)."""
    lineage = mlflow.lineage(home.home())
    asset = context.asset_key.to_user_string()
    code_version = context.assets_def.code_versions_by_key.get(context.asset_key) or "unversioned"
    with lineage.asset_run(context.run.run_id, asset, code_version, inputs) as run:
        run.set_tags({TAG_DAGSTER_RUN: context.run.run_id, TAG_DAGSTER_JOB: context.job_name})
        if params:
            run.log_params(_flat(params))
        yield run


def _flat(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def output(value: Any, run: AssetRun, digest: str, metadata: Mapping[str, Any]) -> dg.Output:
    """The asset's output: data version from a content digest, MLflow run linked in metadata."""
    run.set_tags({TAG_DATA_VERSION: digest})
    links = {"mlflow_run": dg.MetadataValue.url(run.url)} if run.url else {}
    return dg.Output(
        value,
        data_version=dg.DataVersion(digest),
        metadata={**metadata, "data_version": digest, "mlflow_run_id": run.run_id, **links},
    )


def preview(path: Path) -> dg.MetadataValue:
    """An image shown inline in the Dagster UI's metadata panel."""
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return dg.MetadataValue.md(f"![preview](data:image/png;base64,{data})")
