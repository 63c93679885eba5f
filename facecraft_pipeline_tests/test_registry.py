"""Model registration keys on the artifact digest: a re-used model re-uses its version (SQLite store;
the same against an MLflow server in infra/test_postgres.py)."""

from __future__ import annotations

from facecraft_pipeline.lineage import TAG_ARTIFACT_SHA, Lineage, model_version, trace_model


def _register(lineage: Lineage, pipeline_run: str, folder, sha: str | None, aliases=()) -> str:
    with lineage.asset_run(pipeline_run, "gan_checkpoint", "gan_checkpoint-2", {"curated_dataset": "d1"}) as run:
        if sha:
            run.set_tags({TAG_ARTIFACT_SHA: sha})
        return run.register_model("facecraft-test", folder, aliases)


def test_the_same_digest_registers_once_and_a_new_digest_registers_a_new_version(tmp_path):
    lineage = Lineage(f"sqlite:///{tmp_path / 'm.db'}", "registry", artifact_location=tmp_path / "artifacts")
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "checkpoint.pt").write_bytes(b"weights")
    assert _register(lineage, "run-1", folder, "aaa") == "1"
    assert _register(lineage, "run-2", folder, "aaa", aliases=("candidate",)) == "1"  # re-used: no new version
    assert _register(lineage, "run-3", folder, "bbb") == "2"
    versions = lineage.client.search_model_versions("name = 'facecraft-test'")
    assert sorted(str(v.version) for v in versions) == ["1", "2"]
    assert {str(v.version): v.tags[TAG_ARTIFACT_SHA] for v in versions} == {"1": "aaa", "2": "bbb"}
    assert str(model_version(lineage, "models:/facecraft-test@candidate").version) == "1"
    assert str(model_version(lineage, "models:/facecraft-test/latest").version) == "2"
    # the version points at the run that first produced it, and the walk starts there
    (row,) = [r for r in trace_model(lineage, "models:/facecraft-test/1") if r["asset"] == "gan_checkpoint"]
    assert row["pipeline_run_id"] == "run-1"


def test_without_a_digest_every_registration_is_a_new_version(tmp_path):
    lineage = Lineage(f"sqlite:///{tmp_path / 'm.db'}", "registry", artifact_location=tmp_path / "artifacts")
    folder = tmp_path / "model"
    folder.mkdir()
    assert _register(lineage, "run-1", folder, None) == "1"
    assert _register(lineage, "run-2", folder, None) == "2"
