from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facecraft_pipeline.cli import main
from facecraft_pipeline.explorer import characters, model
from facecraft_pipeline.explorer.model import ExplorerError
from facecraft_pipeline.explorer.state import Explorer


def register(home: Path, checkpoint: Path, champion: bool = True) -> dict[str, str]:
    """Register the checkpoint's folder the way the training asset does, with the tags lineage writes."""
    from mlflow import MlflowClient

    from facecraft_pipeline.mlflow_store import TAG_DATA_VERSION, TAG_INPUT_PREFIX

    (home / "mlflow").mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow' / 'mlflow.db'}")
    experiment = client.create_experiment("facecraft", artifact_location=(home / "mlflow" / "artifacts").as_uri())
    tags = {"dagster.run_id": "dagster-run-123", TAG_DATA_VERSION: "ckpt-digest", TAG_INPUT_PREFIX + "curated_dataset": "dataset-v42"}
    run = client.create_run(experiment, tags=tags, run_name="gan_checkpoint")
    client.create_registered_model("facecraft-gan-checkpoint")
    run_folder = checkpoint.parent.parent  # <root>/<n>-dcgan-32px-<key>/checkpoints/checkpoint-<step>.pt
    assert (run_folder / "run.json").is_file()
    version = client.create_model_version("facecraft-gan-checkpoint", source=run_folder.resolve().as_uri(), run_id=run.info.run_id)
    if champion:
        client.set_registered_model_alias("facecraft-gan-checkpoint", "champion", version.version)
    return {"run_id": run.info.run_id, "version": str(version.version)}


def test_models_uri_resolves_with_lineage(checkpoint, home):
    ids = register(home, checkpoint)
    loaded = model.load("models:/facecraft-gan-checkpoint@champion", home)
    assert loaded.checkpoint == checkpoint.resolve()
    info = loaded.describe()
    assert info["model_version"] == ids["version"] and info["mlflow_run_id"] == ids["run_id"]
    assert info["dagster_run_id"] == "dagster-run-123" and info["dataset_version"] == "dataset-v42"
    assert "champion" in info["model_aliases"]
    assert model.load(f"models:/facecraft-gan-checkpoint/{ids['version']}", home).checkpoint == loaded.checkpoint
    # a plain path (the file, its checkpoints/ folder or the run folder) finds its registered version too
    for path in (checkpoint, checkpoint.parent, checkpoint.parent.parent):
        found = model.load(str(path), home)
        assert found.checkpoint == checkpoint.resolve() and found.info["model_version"] == ids["version"]
    assert [v["uri"] for v in model.registered_versions(home)] == [f"models:/facecraft-gan-checkpoint/{ids['version']}"]
    with pytest.raises(ExplorerError, match="no such model version"):
        model.load("models:/facecraft-gan-checkpoint@nosuchalias", home)


def test_the_champion_is_the_step_the_evaluation_chose(checkpoint, home, tmp_path):
    run_folder = tmp_path / "00000-dcgan-32px-abc"
    shutil.copytree(checkpoint.parent.parent, run_folder)
    shutil.copyfile(checkpoint, run_folder / "checkpoints" / "checkpoint-0000075.pt")  # an earlier kept checkpoint
    final = run_folder / "checkpoints" / checkpoint.name
    ids = register(home, final)
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow' / 'mlflow.db'}")
    assert model.load("models:/facecraft-gan-checkpoint@champion", home).checkpoint == final.resolve()  # untagged: the final one
    client.set_model_version_tag("facecraft-gan-checkpoint", ids["version"], "facecraft.champion_step", "75")
    loaded = model.load("models:/facecraft-gan-checkpoint@champion", home)
    assert loaded.checkpoint.name == "checkpoint-0000075.pt" and loaded.info["step"] == 75
    assert model.load(f"models:/facecraft-gan-checkpoint/{ids['version']}", home).checkpoint == final.resolve()


def test_no_champion_yet_shows_the_newest_version(checkpoint, home):
    ids = register(home, checkpoint, champion=False)
    loaded = model.load("models:/facecraft-gan-checkpoint@champion", home)
    assert loaded.info["model_version"] == ids["version"] and "no champion yet" in loaded.info["note"]
    with pytest.raises(ExplorerError, match="no such model version"):
        model.load("models:/facecraft-gan-checkpoint@other", home)
    with pytest.raises(ExplorerError, match="no such model version"):
        model.load("models:/facecraft-nothing@champion", home)


@pytest.mark.parametrize("uri, message", [
    ("models:/facecraft-gan-checkpoint@champion", "no MLflow store"),
    ("models:/bad uri/with/parts", "not a model URI"),
    ("/nonexistent/checkpoint.pt", "no such checkpoint"),
])
def test_missing_models_say_what_to_do(home, uri, message):
    with pytest.raises(ExplorerError, match=message):
        model.load(uri, home)


def test_incompatible_checkpoint_is_a_clear_error(home, tmp_path):
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ExplorerError, match="cannot load a generator"):
        model.load(str(bad), home)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ExplorerError, match="holds no generator checkpoint"):
        model.load(str(empty), home)


def test_inputs_are_validated(checkpoint, home):
    loaded = model.load(str(checkpoint), home)
    assert loaded.render(np.zeros(loaded.latent_dim)).shape == (32, 32, 3)
    for latent, message in [([0.0] * 3, "latent of 32"), ([float("nan")] * 32, "finite"), ("abc", "lists of numbers")]:
        with pytest.raises(ExplorerError, match=message):
            loaded.render(latent)
    with pytest.raises(ExplorerError, match="0 controls"):
        loaded.render([0.0] * 32, [0.5])


def test_characters_save_mix_and_render_from_the_cli(checkpoint, home, tmp_path, monkeypatch, capsys):
    explorer = Explorer(home, n_directions=4, n_samples=256)
    explorer.load(str(checkpoint))
    rng = np.random.default_rng(0)
    for name in ("ada", "bob"):
        explorer.save_character({"name": name, "latent": rng.standard_normal(32).tolist(), "controls": []})
    assert [c["name"] for c in explorer.characters.list()] == ["ada", "bob"]
    child = explorer.mix("ada", "bob", 11)
    assert child == explorer.mix("ada", "bob", 11)
    ada, bob = (explorer.character(n).latent for n in ("ada", "bob"))
    assert child["latent"] != ada and child["latent"] != bob
    saved = explorer.save_character({"name": "kid", "latent": child["latent"], "parents": ["ada", "bob"], "seed": 11})
    path = home / "explorer" / "characters" / "kid.json"
    assert json.loads(path.read_text())["model"]["latent_dim"] == 32 == len(saved["latent"])
    assert path.stat().st_size < 4000  # small JSON

    monkeypatch.setenv("FACECRAFT_HOME", str(home))
    out = tmp_path / "kid.png"
    assert main(["render", str(path), "--scale", "4", "--out", str(out)]) == 0
    image = Image.open(out)
    assert image.size == (128, 128)
    direct = Image.fromarray(explorer.model.render(child["latent"])).resize((128, 128), Image.LANCZOS)
    assert np.abs(np.asarray(image, int) - np.asarray(direct, int)).max() == 0

    # bad input: one line on stderr, exit status 2, no traceback
    capsys.readouterr()
    assert main(["render", str(tmp_path / "nobody.json")]) == 2
    assert "no such character file" in capsys.readouterr().err
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**saved, "latent": [0.0] * 8}))
    assert main(["render", str(other)]) == 2
    assert "latent of 8 values" in capsys.readouterr().err
    (tmp_path / "junk.json").write_text("{not json")
    assert main(["render", str(tmp_path / "junk.json")]) == 2
    assert "not JSON" in capsys.readouterr().err


@pytest.mark.parametrize("data, message", [
    ({"name": "x", "latent": [0.0]}, "not a FaceCraft character"),
    ({"format": characters.FORMAT, "name": "x", "latent": []}, "non-empty list"),
    ({"format": characters.FORMAT, "name": "x", "latent": [0.0], "controls": {"yaw": 3}}, r"\[-1, 1\]"),
    ({"format": characters.FORMAT, "name": "../etc", "latent": [0.0]}, "character name"),
])
def test_bad_character_files(data, message):
    with pytest.raises(ExplorerError, match=message):
        characters.from_json(data)


def test_explore_fails_fast_with_a_clear_message(home, monkeypatch, capsys, checkpoint):
    monkeypatch.setenv("FACECRAFT_HOME", str(home))
    assert main(["explore", "--port", "0"]) == 2
    assert "--port must be" in capsys.readouterr().err
    assert main(["explore"]) == 2
    assert "no MLflow store" in capsys.readouterr().err
    # a port in use
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["explore", "--model", str(checkpoint), "--port", str(port)]) == 2
        assert f"port {port} on 127.0.0.1 is in use" in capsys.readouterr().err
    shutil.rmtree(home / "explorer", ignore_errors=True)
