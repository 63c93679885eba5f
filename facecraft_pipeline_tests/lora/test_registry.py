"""One `facecraft-lora` model version per distinct weights file: a re-used run registers nothing new."""

from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient

from facecraft_pipeline.assets.training import _register_once
from facecraft_pipeline.lineage import TAG_ARTIFACT_SHA, AssetRun


def test_the_same_file_digest_finds_its_version_and_a_new_one_gets_a_new_version(tmp_path: Path) -> None:
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("t", artifact_location=(tmp_path / "artifacts").as_uri())
    run = AssetRun(client, client.create_run(experiment).info.run_id)
    folder = tmp_path / "run"
    folder.mkdir()
    tags = {"trigger": "sks", "base_model": "tiny"}

    first = _register_once(run, "facecraft-lora", folder, "a" * 64, "LoRA of sks on tiny", tags)
    again = _register_once(run, "facecraft-lora", folder, "a" * 64, "LoRA of sks on tiny", tags)
    other = _register_once(run, "facecraft-lora", folder, "b" * 64, "LoRA of sks on tiny", tags)

    assert (first, again, other) == ("1", "1", "2")
    version = client.get_model_version("facecraft-lora", "1")
    assert version.tags[TAG_ARTIFACT_SHA] == "a" * 64 and version.tags["trigger"] == "sks"
    assert "sks" in version.description and "tiny" in version.description
