"""The person picker and identity slider of an identity-conditioned generator: the server, the ONNX
export, characters and `facecraft render` (the browser side is in test_browser.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from facecraft_pipeline.cli import main
from facecraft_pipeline.explorer import characters
from facecraft_pipeline.explorer.model import ExplorerError, LoadedModel, to_uint8
from facecraft_pipeline.explorer.onnx_model import OnnxRenderer, export_onnx
from facecraft_pipeline.explorer.state import Explorer
from facecraft_pipeline.gan import GanSettings, build_generator, load_generator
from facecraft_pipeline_tests.explorer.conftest import PEOPLE
from facecraft_pipeline_tests.explorer.test_server_and_site import call


def morphed(generator, z: np.ndarray, person: str, t: float) -> torch.Tensor:
    """What the slider promises, written out: G(z, identity = (1 - t) * owner(z) + t * centroid)."""
    z = torch.from_numpy(np.asarray(z, np.float32).reshape(-1, generator.latent_dim))
    centroid = generator.people[generator.people_names.index(person)]
    with torch.no_grad():
        return generator(z, None, (1 - t) * generator.owner.pick(z) + t * centroid)


def image(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, np.uint8).reshape(32, 32, 3).astype(int)


def test_the_server_morphs_the_owner_into_the_picked_person(served_conditioned):
    payload = json.loads(call(served_conditioned.url + "api/model")[1])
    assert payload["model"]["identity_dim"] == 32 and payload["model"]["people"] == list(PEOPLE)
    generator = served_conditioned.explorer.model.generator
    latent = np.random.default_rng(3).standard_normal(32).tolist()
    render = lambda **identity: call(served_conditioned.url + "api/render", {"latent": latent, **identity})  # noqa: E731
    status, own, _ = render()
    assert status == 200
    status, start, _ = render(person="cluster-1", t=0.0)
    status, end, _ = render(person="cluster-1", t=1.0)
    assert start == own  # t = 0 is the owner whoever is picked
    assert np.abs(image(own) - to_uint8(generator(torch.tensor([latent])))[0]).max() <= 1  # G's own draw of the owner
    assert np.abs(image(end) - image(start)).mean() > 2, "the identity slider changed nothing"
    with torch.no_grad():  # t = 1 is G conditioned on that person's centroid, nothing else
        direct = to_uint8(generator(torch.tensor([latent]), None, generator.people[1:2]))[0]
    assert np.abs(image(end) - direct).max() <= 1
    status, half, _ = render(person="cluster-2", t=0.5)
    assert np.abs(image(half) - to_uint8(morphed(generator, latent, "cluster-2", 0.5))[0]).max() <= 1
    for identity, message in [({"person": "nobody", "t": 1}, "no person 'nobody' in this model"),
                              ({"person": "cluster-1", "t": 1.5}, r"t must lie in [0, 1]"),
                              ({"person": "cluster-1", "t": "far"}, "must be a number")]:
        status, reply, _ = render(**identity)
        assert status == 400 and message in json.loads(reply)["error"]


def test_an_unconditioned_model_has_no_people_and_refuses_one(served):
    payload = json.loads(call(served.url + "api/model")[1])
    assert payload["model"]["identity_dim"] == 0 and payload["model"]["people"] == []
    status, reply, _ = call(served.url + "api/render", {"latent": [0.0] * 32, "person": "owner", "t": 1})
    assert status == 400 and "not identity-conditioned" in json.loads(reply)["error"]


def test_the_onnx_export_of_a_conditioned_generator_paints_what_pytorch_paints(conditioned_checkpoint):
    generator = load_generator(conditioned_checkpoint)
    model = LoadedModel("c", conditioned_checkpoint, generator)
    session = ort.InferenceSession(export_onnx(model))
    assert [i.name for i in session.get_inputs()] == ["z", "person", "t"]
    rng = np.random.default_rng(4)
    z = rng.standard_normal((3, 32)).astype(np.float32)
    person = generator.people[[1, 2, 0]].numpy()
    t = np.array([[1.0], [0.3], [0.0]], np.float32)
    out = session.run(None, {"z": z, "person": person, "t": t})[0]
    for row, name in enumerate(["cluster-1", "cluster-2", "owner"]):
        np.testing.assert_allclose(out[row], morphed(generator, z[row], name, float(t[row, 0]))[0].numpy(), atol=1e-5)
    renderer = OnnxRenderer(model)
    for latent, who, amount in [(z[0], "cluster-1", 1.0), (z[1], "cluster-2", 0.6), (z[2], None, 0.0), (z[2], "owner", 0.25)]:
        got, want = renderer.render(latent, None, who, amount), model.render(latent, None, who, amount)
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    assert not generator.training  # the export left the explorer's G in eval mode


def test_a_character_keeps_its_person_and_t_through_saving_and_render(conditioned_checkpoint, checkpoint, home, tmp_path, monkeypatch, capsys):
    explorer = Explorer(home, n_directions=2, n_samples=64)
    explorer.load(str(conditioned_checkpoint))
    latent = np.random.default_rng(5).standard_normal(32).tolist()
    saved = explorer.save_character({"name": "morph", "latent": latent, "person": "cluster-2", "t": 0.7})
    path = home / "explorer" / "characters" / "morph.json"
    data = json.loads(path.read_text())
    assert data["format"] == "facecraft-character/1" and (data["person"], data["t"]) == ("cluster-2", 0.7)
    assert characters.read(path) == characters.from_json(saved)
    assert explorer.character("morph").to_json() == data
    plain = explorer.save_character({"name": "own", "latent": latent})  # no person: the file is as it always was
    assert "person" not in plain and "t" not in plain and characters.from_json(plain).person is None

    monkeypatch.setenv("FACECRAFT_HOME", str(home))
    out = tmp_path / "morph.png"
    assert main(["render", str(path), "--scale", "1", "--out", str(out)]) == 0
    drawn = np.asarray(Image.open(out), int)
    assert np.abs(drawn - explorer.model.render(latent, None, "cluster-2", 0.7).astype(int)).max() == 0
    assert np.abs(drawn - explorer.model.render(latent).astype(int)).mean() > 1  # not the owner's face

    capsys.readouterr()
    elsewhere = tmp_path / "elsewhere.json"  # the person is not in the model it is rendered with
    elsewhere.write_text(json.dumps({**data, "person": "cluster-9"}))
    assert main(["render", str(elsewhere)]) == 2
    assert "character 'morph': no person 'cluster-9' in this model" in capsys.readouterr().err
    assert main(["render", str(path), "--model", str(checkpoint)]) == 2
    assert "not identity-conditioned" in capsys.readouterr().err
    with pytest.raises(ExplorerError, match="no person 'nobody'"):
        explorer.save_character({"name": "x", "latent": latent, "person": "nobody", "t": 0.5})


@pytest.mark.parametrize("changes, message", [({"person": 3, "t": 0.5}, "person's name"), ({"person": "owner", "t": 2}, r"\[0, 1\]"),
                                              ({"person": "owner", "t": "half"}, r"\[0, 1\]")])
def test_bad_person_or_t_in_a_character_file(changes, message):
    with pytest.raises(ExplorerError, match=message):
        characters.from_json({"format": characters.FORMAT, "name": "x", "latent": [0.0], **changes})


def test_a_generator_with_attribute_controls_and_identity_exports_both():
    """AC-GAN controls and identity together (built, not trained: the wiring is what is checked)."""
    settings = GanSettings(resolution=32, latent_dim=16, base_channels=8, controls="yaw,brightness")
    generator = build_generator(settings, identity_dim=8, bank_rows=3, people=2).eval()
    generator.owner.set(torch.randn(3, 8, generator=torch.Generator().manual_seed(1)))
    generator.people.copy_(torch.randn(2, 8, generator=torch.Generator().manual_seed(2)))
    generator.people_names = ["owner", "cluster-1"]
    model = LoadedModel("both", Path("both"), generator)
    renderer = OnnxRenderer(model)
    assert [i.name for i in renderer.session.get_inputs()] == ["z", "controls", "person", "t"]
    latent = np.random.default_rng(6).standard_normal(16)
    for controls, person, t in [(None, None, 0.0), ([0.5, -0.3], "cluster-1", 0.6), ([0.1, 0.9], "owner", 1.0)]:
        got, want = renderer.render(latent, controls, person, t), model.render(latent, controls, person, t)
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
