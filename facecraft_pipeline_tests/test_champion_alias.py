"""The champion alias lands on the registered version that was scored (not the newest) and leaves the old holder."""

from __future__ import annotations

import pytest

from facecraft_pipeline.lineage import Lineage
from facecraft_pipeline.mlflow_store import ScoredModel, find_version, move_champion_alias

NAMES = ["facecraft-gan-checkpoint", "facecraft-lora"]


@pytest.fixture()
def registry(tmp_path):
    lineage = Lineage(f"sqlite:///{tmp_path / 'mlflow.db'}", "registry", tmp_path / "artifacts")
    folders = {name: tmp_path / "models" / name for name in ("gan-run", "lora-run-a", "lora-run-b")}
    for folder in folders.values():
        folder.mkdir(parents=True)
    with lineage.asset_run("dagster-1", "gan_checkpoint", "v1") as run:
        gan = run.register_model("facecraft-gan-checkpoint", folders["gan-run"])
    with lineage.asset_run("dagster-1", "lora_weights", "v1") as run:
        scored = run.register_model("facecraft-lora", folders["lora-run-a"])
        scored_run = run.run_id
    with lineage.asset_run("dagster-2", "lora_weights", "v1") as run:
        newest = run.register_model("facecraft-lora", folders["lora-run-b"])  # newer, from another run
    lineage.client.set_registered_model_alias("facecraft-gan-checkpoint", "champion", gan)
    return lineage.client, folders, {"gan": gan, "scored": scored, "newest": newest, "scored_run": scored_run}


def test_the_alias_lands_on_the_scored_version_and_leaves_the_previous_holder(registry):
    client, folders, versions = registry
    assert versions["newest"] != versions["scored"]
    winner = ScoredModel("facecraft-lora", folders["lora-run-a"])
    said = move_champion_alias(client, NAMES, winner, step=50, reason="lora@50: highest identity")
    assert str(client.get_model_version_by_alias("facecraft-lora", "champion").version) == versions["scored"]
    with pytest.raises(Exception):
        client.get_model_version_by_alias("facecraft-gan-checkpoint", "champion")
    tags = client.get_model_version("facecraft-lora", versions["scored"]).tags
    assert tags["facecraft.champion_step"] == "50" and "highest identity" in tags["facecraft.champion_reason"]
    assert f"v{versions['scored']}" in said and "facecraft-gan-checkpoint" in said


def test_the_version_is_found_by_run_id_when_the_source_differs_and_none_is_invented(registry, tmp_path):
    client, folders, versions = registry
    moved = ScoredModel("facecraft-lora", tmp_path / "elsewhere", run_id=versions["scored_run"])
    assert find_version(client, moved) == versions["scored"]
    assert find_version(client, ScoredModel("facecraft-lora", tmp_path / "never-registered")) is None
    said = move_champion_alias(client, NAMES, ScoredModel("facecraft-lora", tmp_path / "never-registered"))
    assert "alias not set" in said
    with pytest.raises(Exception):
        client.get_model_version_by_alias("facecraft-lora", "champion")


def test_no_champion_removes_the_alias_everywhere(registry):
    client, _, _ = registry
    assert "facecraft-gan-checkpoint" in move_champion_alias(client, NAMES, None)
    with pytest.raises(Exception):
        client.get_model_version_by_alias("facecraft-gan-checkpoint", "champion")
