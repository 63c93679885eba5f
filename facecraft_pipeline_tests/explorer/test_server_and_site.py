"""The HTTP API without a browser, the gallery reader, and the ONNX export (incl. a generator with controls)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from facecraft_pipeline.explorer.gallery import read_gallery
from facecraft_pipeline.explorer.model import LoadedModel
from facecraft_pipeline.explorer.onnx_model import OnnxRenderer, export_onnx
from facecraft_pipeline.explorer.state import Explorer
from facecraft_pipeline.gan import GanSettings, load_generator
from facecraft_pipeline_tests.explorer.controlled import ControlledGenerator


def call(url: str, body: object | None = None) -> tuple[int, bytes, str]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers.get("Content-Type", "")


def test_api_renders_and_refuses_bad_input_with_a_sentence(served):
    status, body, _ = call(served.url + "api/model")
    payload = json.loads(body)
    assert status == 200 and payload["model"]["resolution"] == 32 and len(payload["directions"]) == 6
    status, pixels, kind = call(served.url + "api/render", {"latent": [0.0] * 32})
    assert status == 200 and len(pixels) == 32 * 32 * 3
    assert served.explorer.rendering_with == "onnxruntime"  # a CPU model: served through onnxruntime
    expected = served.explorer.model.render([0.0] * 32)  # PyTorch
    difference = np.abs(np.frombuffer(pixels, np.uint8).reshape(32, 32, 3).astype(int) - expected.astype(int))
    assert difference.max() <= 1 and difference.mean() < 0.01
    for body, message in [({"latent": [0.0] * 5}, "latent of 32"), ({"latent": [99.0] * 32}, "within"),
                          (b"{oops", "not JSON"), ({"latent": [0.0] * 32, "controls": [2.0]}, "0 controls")]:
        status, reply, kind = call(served.url + "api/render", body)
        assert status == 400 and kind == "application/json" and message in json.loads(reply)["error"]
    status, reply, _ = call(served.url + "api/load", {"uri": "/no/such/model.pt"})
    assert status == 400 and "no such checkpoint" in json.loads(reply)["error"]
    status, reply, _ = call(served.url + "api/mix", {"a": "nobody", "b": "nobody", "seed": 1})
    assert status == 400 and "no saved character named 'nobody'" in json.loads(reply)["error"]
    status, reply, _ = call(served.url + "api/characters", {"name": "../../x", "latent": [0.0] * 32})
    assert status == 400 and "character name" in json.loads(reply)["error"]
    status, reply, _ = call(served.url + "gallery/../../etc/passwd")
    assert status in (400, 404) and b"Traceback" not in reply
    assert served.explorer.model.uri.endswith(".pt") and served.explorer.model.uri != "/no/such/model.pt"  # a failed load kept the working model


def test_gallery_is_read_defensively(home):
    assert read_gallery(home)["warnings"]  # none yet: a warning, not an error
    old, new = home / "galleries" / "aaa", home / "galleries" / "bbb"
    for folder in (old, new):
        (folder / "lora").mkdir(parents=True)
    (old / "gallery.json").write_text("{}")
    import os
    import time

    os.utime(old, (time.time() - 100, time.time() - 100))
    Image.new("RGB", (8, 8)).save(new / "gan.png")
    Image.new("RGB", (8, 8)).save(new / "lora" / "000.png")
    (new / "gallery.json").write_text(json.dumps({"champion": "gan", "reason": "best", "settings": {"prompt": None},
                                                  "models": [{"name": "gan", "faces": 2, "mean": 0.5, "nested": {"x": 1}},
                                                             {"name": "lora", "prompt": "a photo of sks person"}]}))
    (new / "gallery.md").write_text("# Sample gallery")
    info = read_gallery(home)
    assert info["folder"].endswith("bbb") and info["champion"] == "gan"
    assert info["models"][0] == {"name": "gan", "faces": 2, "mean": 0.5}
    assert info["lora"] == {"prompt": "a photo of sks person", "images": ["lora/000.png"], "captions": ["a photo of sks person"]}
    assert info["grids"] == ["gan.png"]
    assert set(info["images"]) == {"gan.png", "lora/000.png"}
    (new / "gallery.json").write_text(json.dumps({"models": [{"name": "lora"}], "settings": {"prompt": None}}))
    run = home / "models" / "lora_weights" / "00000-lora-r4-64px-abc"  # no prompt in the gallery: the LoRA run's own
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"settings": {"instance_prompt": "a photo of zwx person"}}))
    assert read_gallery(home)["lora"]["prompt"] == "a photo of zwx person"
    # the evaluation sweep's layout: <model>/step-<n>/p<prompt>-<i>.png, grids <model>/step-<n>.png, prompts listed
    sweep = home / "galleries" / "ccc"
    for step in ("step-0000050", "step-0000100"):
        (sweep / "lora" / step).mkdir(parents=True)
        for name in ("p0-000.png", "p1-000.png"):
            Image.new("RGB", (8, 8)).save(sweep / "lora" / step / name)
        Image.new("RGB", (8, 8)).save(sweep / "lora" / f"{step}.png")
    (sweep / "gallery.json").write_text(json.dumps({"version": 2, "champion": None, "prompts": {"lora": ["a photo of sks person", "sks person smiling"]},
                                                    "models": [{"name": "lora", "grid": "lora/step-0000100.png", "identity_mean": None}]}))
    info = read_gallery(home)
    assert info["folder"].endswith("ccc") and info["grids"] == ["lora/step-0000100.png"]
    assert info["lora"]["images"] == ["lora/step-0000100/p0-000.png", "lora/step-0000100/p1-000.png"]
    assert info["lora"]["captions"] == ["a photo of sks person", "sks person smiling"]
    (new / "gallery.json").write_text("[1, 2")  # a half-written or reworked file
    os.utime(new, None)
    assert any("unreadable" in w for w in read_gallery(home)["warnings"])


def test_onnx_export_matches_torch_with_and_without_controls(checkpoint):
    generator = load_generator(checkpoint)
    plain = LoadedModel("x", checkpoint, generator)
    z = np.random.default_rng(0).standard_normal((3, 32)).astype(np.float32)
    session = ort.InferenceSession(export_onnx(plain))
    np.testing.assert_allclose(session.run(None, {"z": z})[0], generator(torch.from_numpy(z)).detach().numpy(), atol=1e-5)

    controlled = ControlledGenerator(GanSettings(resolution=32, latent_dim=32, base_channels=8)).eval()
    loaded = LoadedModel("y", Path("y"), controlled)
    c = np.array([[0.5, -1.0, 0.2]] * 3, np.float32)
    session = ort.InferenceSession(export_onnx(loaded))
    assert [i.name for i in session.get_inputs()] == ["z", "controls"]
    assert not controlled.training and not controlled.inner.training  # export leaves the served model in eval mode
    out = session.run(None, {"z": z, "controls": c})[0]
    np.testing.assert_allclose(out, controlled(torch.from_numpy(z), torch.from_numpy(c)).detach().numpy(), atol=1e-5)
    assert loaded.render(z[0], c[0]).shape == (32, 32, 3)
    assert not np.array_equal(loaded.render(z[0], c[0]), loaded.render(z[0], [0, 0, 0]))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        loaded.render(z[0], [0, 0, 1.5])


def test_the_onnxruntime_renderer_paints_what_pytorch_paints_within_one_level(checkpoint):
    plain = LoadedModel("x", checkpoint, load_generator(checkpoint))
    controlled = LoadedModel("y", Path("y"), ControlledGenerator(GanSettings(resolution=32, latent_dim=32, base_channels=8)).eval())
    rng = np.random.default_rng(1)
    for model, controls in [(plain, None), (controlled, [0.5, -1.0, 0.2])]:
        renderer = OnnxRenderer(model)
        for latent in rng.standard_normal((4, 32)):
            got, want = renderer.render(latent.tolist(), controls), model.render(latent.tolist(), controls)
            assert got.shape == want.shape == (32, 32, 3) and got.dtype == np.uint8
            assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
        with pytest.raises(ValueError, match="latent of 32"):
            renderer.render([0.0] * 5, controls)  # the model's own input checks


def test_the_renderer_can_be_chosen_and_a_wrong_choice_is_named(checkpoint, home):
    explorer = Explorer(home, n_directions=2, n_samples=64, renderer="torch")
    explorer.load(str(checkpoint))
    assert explorer.rendering_with == "torch"
    assert explorer.render([0.0] * 32) == explorer.model.render([0.0] * 32).tobytes()
    with pytest.raises(ValueError, match=r"renderer must be one of \['auto', 'onnxruntime', 'torch'\]"):
        Explorer(home, renderer="tensorrt")
