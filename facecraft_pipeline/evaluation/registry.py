"""The `champion` alias: on exactly the registered model version that was scored, and nowhere else.

A model version stands for a training run (its folder; its final artifact's digest in the
`facecraft.artifact_sha256` tag where the registration sets one). The scored version is found by
that digest, else by its source (the run folder's URI), else by the MLflow run that registered it,
never as "the newest": a re-used run registers nothing new, and the newest version may belong
to another run. The alias is removed from every other registered model that held it, and the
version gets tags saying which checkpoint won and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from facecraft_pipeline.lineage import TAG_ARTIFACT_SHA

ALIAS = "champion"


@dataclass(frozen=True)
class ScoredModel:
    """What identifies the run a champion checkpoint came from."""

    registered_name: str
    run_folder: Path
    artifact_sha256: str | None = None
    run_id: str | None = None


def find_version(client, model: ScoredModel) -> str | None:
    """The version registered for this run: by digest tag, else by source folder, else by run id; None if absent."""
    versions = client.search_model_versions(f"name = '{model.registered_name}'")
    source = Path(model.run_folder).resolve().as_uri()
    tests = [lambda v: model.artifact_sha256 is not None and (v.tags or {}).get(TAG_ARTIFACT_SHA) == model.artifact_sha256,
             lambda v: v.source == source or v.source.rstrip("/") == source.rstrip("/"),
             lambda v: model.run_id is not None and v.run_id == model.run_id]
    for test in tests:
        matches = [v for v in versions if test(v)]
        if matches:
            return str(max(matches, key=lambda v: int(v.version)).version)
    return None


def move_champion_alias(client, names: list[str], winner: ScoredModel | None, step: int | None = None,
                        reason: str = "") -> str:
    """Point `champion` at the winner's version (None: at nothing) and off every other model; says what it did."""
    from mlflow.exceptions import MlflowException

    version = find_version(client, winner) if winner else None
    removed = []
    for name in names:
        if winner is not None and version is not None and name == winner.registered_name:
            continue
        try:
            holder = client.get_model_version_by_alias(name, ALIAS)
        except MlflowException:
            continue  # no such model, or no alias on it
        client.delete_registered_model_alias(name, ALIAS)
        removed.append(f"{name} v{holder.version}")
    if winner is None:
        return "no champion: alias removed from " + (", ".join(removed) or "nothing")
    if version is None:
        return f"no registered version of {winner.registered_name} for {winner.run_folder}: alias not set"
    client.set_registered_model_alias(winner.registered_name, ALIAS, version)
    client.set_model_version_tag(winner.registered_name, version, "facecraft.champion_step", str(step))
    client.set_model_version_tag(winner.registered_name, version, "facecraft.champion_reason", reason[:5000])
    return f"{ALIAS} -> {winner.registered_name} v{version}" + (f" (removed from {', '.join(removed)})" if removed else "")
