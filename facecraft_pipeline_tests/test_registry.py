"""Model registration keys on the artifact digest: a re-used model re-uses its version (SQLite store;
the same against an MLflow server in infra/test_postgres.py); each version carries its description and tags;
`models:/` URIs resolve to the registry's versions."""

from __future__ import annotations

import pytest

from facecraft_pipeline.lineage import Lineage, trace_model
from facecraft_pipeline.mlflow_store import LORA_MODEL, TAG_ARTIFACT_SHA, ModelUri, resolve


def _register(lineage: Lineage, pipeline_run: str, folder, sha: str | None, aliases=(), **described) -> str:
    with lineage.asset_run(pipeline_run, "gan_checkpoint", "gan_checkpoint-2", {"curated_dataset": "d1"}) as run:
        if sha:
            run.set_tags({TAG_ARTIFACT_SHA: sha})
        return run.register_model(described.pop("name", "facecraft-test"), folder, aliases, **described)


@pytest.fixture()
def lineage(tmp_path) -> Lineage:
    return Lineage(f"sqlite:///{tmp_path / 'm.db'}", "registry", artifact_location=tmp_path / "artifacts")


@pytest.fixture()
def folder(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "checkpoint.pt").write_bytes(b"weights")
    return folder


def test_the_same_digest_registers_once_and_a_new_digest_registers_a_new_version(lineage, folder):
    assert _register(lineage, "run-1", folder, "aaa") == "1"
    assert _register(lineage, "run-2", folder, "aaa", aliases=("candidate",)) == "1"  # re-used: no new version
    assert _register(lineage, "run-3", folder, "bbb") == "2"
    versions = lineage.client.search_model_versions("name = 'facecraft-test'")
    assert sorted(str(v.version) for v in versions) == ["1", "2"]
    assert {str(v.version): v.tags[TAG_ARTIFACT_SHA] for v in versions} == {"1": "aaa", "2": "bbb"}
    assert str(resolve(lineage.client, ModelUri.parse("models:/facecraft-test@candidate")).version) == "1"
    assert str(resolve(lineage.client, ModelUri.parse("models:/facecraft-test/latest")).version) == "2"
    # the version points at the run that first produced it, and the walk starts there
    (row,) = [r for r in trace_model(lineage, "models:/facecraft-test/1") if r["asset"] == "gan_checkpoint"]
    assert row["pipeline_run_id"] == "run-1"


def test_without_a_digest_every_registration_is_a_new_version(lineage, folder):
    assert _register(lineage, "run-1", folder, None) == "1"
    assert _register(lineage, "run-2", folder, None) == "2"


def test_a_version_carries_its_description_and_tags_and_a_reused_one_is_found_by_its_digest(lineage, folder):
    tags = {"trigger": "sks", "base_model": "tiny", "steps": 40}
    first = _register(lineage, "run-1", folder, "a" * 64, name=LORA_MODEL, description="LoRA of sks on tiny", tags=tags)
    again = _register(lineage, "run-2", folder, "a" * 64, name=LORA_MODEL, description="LoRA of sks on tiny", tags=tags)
    other = _register(lineage, "run-3", folder, "b" * 64, name=LORA_MODEL, description="LoRA of sks on tiny", tags=tags)
    assert (first, again, other) == ("1", "1", "2")
    version = lineage.client.get_model_version(LORA_MODEL, "1")
    assert version.tags[TAG_ARTIFACT_SHA] == "a" * 64 and version.tags["trigger"] == "sks" and version.tags["steps"] == "40"
    assert version.description == "LoRA of sks on tiny"


def test_unknown_versions_are_a_lookup_error_that_says_which(lineage, folder):
    _register(lineage, "run-1", folder, "aaa")
    with pytest.raises(LookupError, match="models:/facecraft-test@nobody"):
        resolve(lineage.client, ModelUri.parse("models:/facecraft-test@nobody"))
    with pytest.raises(LookupError, match="no versions"):
        resolve(lineage.client, ModelUri("facecraft-nothing"))
    with pytest.raises(LookupError):
        trace_model(lineage, "models:/facecraft-test/7")
