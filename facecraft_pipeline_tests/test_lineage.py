"""MLflow lineage on a real SQLite tracking store: nesting, tags, and walking back to the photos."""

from __future__ import annotations

import pytest

from facecraft_pipeline.lineage import Lineage, trace
from facecraft_pipeline.mlflow_store import TAG_ARTIFACT_SHA, TAG_DATA_VERSION


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One real SQLite store for the module (creating one costs seconds); one experiment per test."""
    root = tmp_path_factory.mktemp("mlflow")
    return f"sqlite:///{root / 'mlflow.db'}", root / "artifacts"


@pytest.fixture
def lineage(store, request):
    uri, artifacts = store
    return Lineage(uri, request.node.name, artifact_location=artifacts)


def materialize(lineage, pipeline_run, asset, version, inputs=None, artifact_sha=None):
    with lineage.asset_run(pipeline_run, asset, f"{asset}-1", inputs) as run:
        run.set_tags({TAG_DATA_VERSION: version} | ({TAG_ARTIFACT_SHA: artifact_sha} if artifact_sha else {}))
    return run.run_id


def test_asset_runs_nest_under_one_parent_per_pipeline_run(lineage):
    first = materialize(lineage, "run-a", "photos", "p1")
    second = materialize(lineage, "run-a", "face_crops", "c1", {"photos": "p1"})
    other = materialize(lineage, "run-b", "photos", "p2")
    parent_of = lambda run_id: lineage.client.get_run(run_id).data.tags["mlflow.parentRunId"]  # noqa: E731
    assert parent_of(first) == parent_of(second) == lineage.parent_run("run-a")
    assert parent_of(other) == lineage.parent_run("run-b") != lineage.parent_run("run-a")


def test_a_failing_asset_marks_its_run_and_the_pipeline_run_failed(lineage):
    materialize(lineage, "run-x", "photos", "p1")
    assert lineage.client.get_run(lineage.parent_run("run-x")).info.status == "FINISHED"
    with pytest.raises(RuntimeError):
        with lineage.asset_run("run-x", "face_crops", "face_crops-1") as run:
            raise RuntimeError("detector broke")
    materialize(lineage, "run-x", "lora_weights", "l1")
    assert lineage.client.get_run(run.run_id).info.status == "FAILED"
    assert lineage.client.get_run(lineage.parent_run("run-x")).info.status == "FAILED"


def test_trace_walks_from_a_weights_file_back_to_the_photos(lineage):
    materialize(lineage, "r1", "photos", "p-old")
    materialize(lineage, "r2", "photos", "p-new")
    materialize(lineage, "r2", "face_crops", "c1", {"photos": "p-new"})
    materialize(lineage, "r2", "identity_clusters", "i1", {"face_crops": "c1"})
    materialize(lineage, "r2", "curated_dataset", "d1", {"identity_clusters": "i1"})
    materialize(lineage, "r3", "lora_weights", "l1", {"curated_dataset": "d1"}, artifact_sha="abc123")

    rows = trace(lineage, "lora_weights", artifact_sha256="abc123")

    assert [(r["asset"], r["data_version"]) for r in rows] == [
        ("lora_weights", "l1"),
        ("curated_dataset", "d1"),
        ("identity_clusters", "i1"),
        ("face_crops", "c1"),
        ("photos", "p-new"),
    ]
    assert rows[0]["pipeline_run_id"] == "r3" and rows[-1]["pipeline_run_id"] == "r2"


def test_trace_of_an_unknown_file_says_so(lineage):
    with pytest.raises(LookupError):
        trace(lineage, "lora_weights", artifact_sha256="nope")


def test_secret_looking_params_never_reach_mlflow(lineage):
    with lineage.asset_run("r", "photos", "photos-1") as run:
        run.log_params({"folder": "/Pictures", "access_token": "eyJ-secret", "client_secret": "s3cret"})
    params = lineage.client.get_run(run.run_id).data.params
    assert params == {"folder": "/Pictures"}


def test_face_images_can_be_kept_out_of_the_tracking_store(store, tmp_path):
    from PIL import Image

    uri, artifacts = store
    picture = tmp_path / "sheet.png"
    Image.new("RGB", (8, 8)).save(picture)
    for allowed in (True, False):
        lineage = Lineage(uri, f"images-{allowed}", artifact_location=artifacts, log_images=allowed)
        with lineage.asset_run("r", "identity_clusters", "identity_clusters-1") as run:
            run.log_picture(picture, "contact_sheets")
            run.log_metrics({"clusters": 2})
        logged = [a.path for a in lineage.client.list_artifacts(run.run_id, "contact_sheets")]
        assert logged == (["contact_sheets/sheet.png"] if allowed else [])
        assert lineage.client.get_run(run.run_id).data.metrics == {"clusters": 2.0}


def _open_lineage_when_released(uri: str, barrier, ids) -> None:  # noqa: ANN001 - a process of the test below
    barrier.wait()
    ids.put(Lineage(uri, experiment="shared").experiment_id)


def test_processes_opening_a_new_experiment_at_once_all_get_the_same_one(tmp_path):
    """Shards of a backfill start together on a fresh store: one creates the experiment, the others use it."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    Lineage(uri, experiment="first")  # the store's tables exist: the race below is on the experiment alone
    barrier, ids = context.Barrier(4), context.Queue()
    workers = [context.Process(target=_open_lineage_when_released, args=(uri, barrier, ids)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    assert len({ids.get(timeout=5) for _ in workers}) == 1
