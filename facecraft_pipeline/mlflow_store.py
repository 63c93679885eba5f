"""The MLflow store and its registry: every MLflow name FaceCraft uses, written once.

- The store: `MLFLOW_TRACKING_URI`, else a SQLite file in the data root (`store_uri`). MLflow's
  telemetry is switched off when this module is imported; modules here that import mlflow import
  this module first (test_architecture checks it).
- The registered model of each model kind (`GAN_MODEL`, `WGAN_GP_MODEL`, `LORA_MODEL`) and the
  `champion` alias the gallery moves onto the version it scored (`move_champion_alias`).
- `models:/NAME@ALIAS` and `models:/NAME/VERSION` URIs (`ModelUri`), resolved to registry versions.
- Registration: one version per artifact digest, with its description and tags.
- The tags lineage writes on runs (`TAG_*`).

Dagster-free; mlflow itself is imported only by the functions that talk to a store.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facecraft_pipeline.env import env_optional, set_default

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

set_default("MLFLOW_DISABLE_TELEMETRY", "true")  # read once, when mlflow is imported

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"

# The registered models, one per model kind, and the asset that registers each.
GAN_MODEL = "facecraft-gan-checkpoint"
WGAN_GP_MODEL = "facecraft-wgan-gp-checkpoint"
LORA_MODEL = "facecraft-lora"
MODEL_OF_ASSET = {"gan_checkpoint": GAN_MODEL, "wgan_gp_checkpoint": WGAN_GP_MODEL, "lora_weights": LORA_MODEL}
GAN_MODELS = (GAN_MODEL, WGAN_GP_MODEL)  # the generators the explorer can draw
CHAMPION = "champion"

# Tags on MLflow runs (lineage) and model versions.
TAG_PIPELINE_RUN = "facecraft.pipeline_run_id"
TAG_KIND = "facecraft.kind"
TAG_ASSET = "facecraft.asset"
TAG_CODE_VERSION = "facecraft.code_version"
TAG_DATA_VERSION = "facecraft.data_version"
TAG_INPUT_PREFIX = "facecraft.input."
TAG_ARTIFACT_SHA = "facecraft.artifact_sha256"  # on runs and versions: one version per artifact digest
TAG_DAGSTER_RUN = "dagster.run_id"
TAG_DAGSTER_JOB = "dagster.job"
TAG_CHAMPION_STEP = "facecraft.champion_step"
TAG_CHAMPION_REASON = "facecraft.champion_reason"


# --- the store ---------------------------------------------------------------------------------


STORE_FOLDER = "mlflow"  # in the data root: mlflow.db and artifacts/


def local_store(root: Path) -> Path:
    """The SQLite file of the store kept in the data root."""
    return Path(root) / STORE_FOLDER / "mlflow.db"


def configured_uri(env: Mapping[str, str] | None = None) -> str | None:
    """MLFLOW_TRACKING_URI, if set (in `env`, else in this process)."""
    return env_optional(TRACKING_URI_ENV, env)


def store_uri(root: Path, configured: str | None = None) -> str:
    """The tracking URI: `configured` (a resource's setting, MLFLOW_TRACKING_URI), else the SQLite store in the data root."""
    return configured or f"sqlite:///{local_store(root)}"


def is_remote_uri(tracking_uri: str | None) -> bool:
    """A tracking server (http/https/databricks...) rather than a store on this machine (sqlite, file, a path)."""
    if not tracking_uri:
        return False
    scheme = tracking_uri.split(":", 1)[0].lower() if "://" in tracking_uri or tracking_uri.startswith("databricks") else ""
    return scheme not in {"", "file", "sqlite"}


def client(tracking_uri: str) -> MlflowClient:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


# --- models:/ URIs -----------------------------------------------------------------------------

_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>[^/@]+))?$")


@dataclass(frozen=True)
class ModelUri:
    """`models:/NAME@ALIAS`, `models:/NAME/VERSION` or `models:/NAME/latest` (also plain `models:/NAME`)."""

    name: str
    alias: str | None = None
    version: str | None = None  # None or "latest": the newest version

    def __str__(self) -> str:
        return f"models:/{self.name}@{self.alias}" if self.alias else f"models:/{self.name}/{self.version or 'latest'}"

    @classmethod
    def parse(cls, uri: str) -> ModelUri:
        match = _MODEL_URI.match(uri)
        if not match:
            raise ValueError(f"{uri!r} is not a model URI: use models:/NAME@ALIAS or models:/NAME/VERSION")
        return cls(match["name"], match["alias"], match["version"])


def is_model_uri(text: str) -> bool:
    return text.startswith("models:/")


def versions(store: MlflowClient, name: str) -> list[ModelVersion]:
    """Every version of `name`, newest first ([] for an unknown model)."""
    return list(store.search_model_versions(f"name = '{name}'", order_by=["version_number DESC"]))


def latest_version(store: MlflowClient, name: str) -> ModelVersion | None:
    found = store.search_model_versions(f"name = '{name}'", order_by=["version_number DESC"], max_results=1)
    return found[0] if found else None


def has_alias(store: MlflowClient, name: str, alias: str) -> bool:
    """Whether registered model `name` exists and one of its versions holds `alias`."""
    from mlflow.exceptions import MlflowException

    try:
        return alias in (store.get_registered_model(name).aliases or {})
    except MlflowException:
        return False


def resolve(store: MlflowClient, uri: ModelUri) -> ModelVersion:
    """The registry's version a URI names; LookupError (saying why) when there is none."""
    from mlflow.exceptions import MlflowException

    try:
        if uri.alias:
            return store.get_model_version_by_alias(uri.name, uri.alias)
        if uri.version in (None, "latest"):
            found = latest_version(store, uri.name)
            if found is None:
                raise LookupError(f"{uri}: model {uri.name!r} has no versions")
            return found
        return store.get_model_version(uri.name, uri.version)
    except MlflowException as error:
        raise LookupError(f"{uri}: {error.message.splitlines()[0]}") from error


# --- registration ------------------------------------------------------------------------------


def version_with_digest(store: MlflowClient, name: str, digest: str | None) -> str | None:
    """The version of `name` registered for the artifact digest `digest`, if any."""
    if not digest:
        return None
    query = f"name = '{name}' and tags.`{TAG_ARTIFACT_SHA}` = '{digest}'"
    found = store.search_model_versions(query, order_by=["version_number ASC"], max_results=1)
    return str(found[0].version) if found else None


def create_version(store: MlflowClient, name: str, source_uri: str, run_id: str, digest: str | None) -> str:
    """A new version of `name` (registered on first use) pointing at `source_uri`, tagged with its digest."""
    from mlflow.exceptions import MlflowException

    try:
        store.create_registered_model(name)
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    tags = {TAG_ARTIFACT_SHA: digest} if digest else None
    return str(store.create_model_version(name, source=source_uri, run_id=run_id, tags=tags).version)  # SQLite answers an int


def describe_version(store: MlflowClient, name: str, version: str, description: str | None = None,
                     tags: Mapping[str, Any] | None = None, aliases: Iterable[str] = ()) -> None:
    """Give a version its description (what it is: trigger word, base model...), tags and aliases."""
    if description is not None:
        store.update_model_version(name, version, description=description)
    for key, value in (tags or {}).items():
        store.set_model_version_tag(name, version, key, str(value))
    for alias in aliases:
        store.set_registered_model_alias(name, alias, version)


# --- the champion ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoredModel:
    """What identifies the run a champion checkpoint came from."""

    registered_name: str
    run_folder: Path
    artifact_sha256: str | None = None
    run_id: str | None = None


def find_version(store: MlflowClient, model: ScoredModel) -> str | None:
    """The version registered for this run: by digest tag, else by source folder, else by run id; None if absent.

    Never "the newest": a re-used run registers nothing new, and the newest version may belong to another run.
    """
    candidates = store.search_model_versions(f"name = '{model.registered_name}'")
    source = Path(model.run_folder).resolve().as_uri()
    tests = [lambda v: model.artifact_sha256 is not None and (v.tags or {}).get(TAG_ARTIFACT_SHA) == model.artifact_sha256,
             lambda v: v.source == source or v.source.rstrip("/") == source.rstrip("/"),
             lambda v: model.run_id is not None and v.run_id == model.run_id]
    for test in tests:
        matches = [v for v in candidates if test(v)]
        if matches:
            return str(max(matches, key=lambda v: int(v.version)).version)
    return None


def move_champion_alias(store: MlflowClient, names: Iterable[str], winner: ScoredModel | None, step: int | None = None,
                        reason: str = "") -> str:
    """Point `champion` at the winner's version (None: at nothing) and off every other model; says what it did.
    The version gets tags saying which kept checkpoint won and why."""
    from mlflow.exceptions import MlflowException

    version = find_version(store, winner) if winner else None
    removed = []
    for name in names:
        if winner is not None and version is not None and name == winner.registered_name:
            continue
        try:
            holder = store.get_model_version_by_alias(name, CHAMPION)
        except MlflowException:
            continue  # no such model, or no alias on it
        store.delete_registered_model_alias(name, CHAMPION)
        removed.append(f"{name} v{holder.version}")
    if winner is None:
        return "no champion: alias removed from " + (", ".join(removed) or "nothing")
    if version is None:
        return f"no registered version of {winner.registered_name} for {winner.run_folder}: alias not set"
    describe_version(store, winner.registered_name, version, tags={TAG_CHAMPION_STEP: step, TAG_CHAMPION_REASON: reason[:5000]},
                     aliases=(CHAMPION,))
    return f"{CHAMPION} -> {winner.registered_name} v{version}" + (f" (removed from {', '.join(removed)})" if removed else "")
