"""End to end in headless Chromium (Debian's /usr/bin/chromium through Playwright): the served page
and the static export opened from file://, on a small GAN trained through `train_gan`."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from PIL import Image

from facecraft_pipeline.explorer.site import build_site
from facecraft_pipeline.gan.mixing import mix_genes, mulberry32
from facecraft_pipeline.home import PROJECT_ROOT
from facecraft_pipeline_tests.explorer.test_model_and_characters import register

pytestmark = pytest.mark.slow
NPM_CACHE = Path(os.environ.get("FACECRAFT_NPM_CACHE", PROJECT_ROOT / "data" / "cache" / "npm"))
AFTER = """async (before) => { if (window.explorer.state().painted > before) return; await window.explorer.waitForPaint(before); }"""


def open_page(browser, url: str):
    page = browser.new_page()
    page.outside = []  # requests leaving the page's own origin
    page.problems = []
    origin = url if url.startswith("http") else "file://"
    page.on("request", lambda r: None if r.url.startswith((origin, "blob:", "data:")) else page.outside.append(r.url))
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    page.goto(url)
    page.evaluate("window.explorer.ready")
    return page


def act(page, action) -> np.ndarray:
    """Do something on the page, wait until the face it causes is painted, return the pixels."""
    before = page.evaluate("window.explorer.state().seq")
    action()
    page.wait_for_function("b => window.explorer.state().seq > b", arg=before)
    page.evaluate(AFTER, before)
    return pixels(page)


def pixels(page) -> np.ndarray:
    return np.array(page.evaluate("window.explorer.pixels()"), dtype=np.int16)


def differ(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def save(page, name: str) -> None:
    page.fill("#char-name", name)
    page.click("#save")
    page.wait_for_function("n => [...document.querySelectorAll('#parent-a option')].some(o => o.value === n)", arg=name)


def test_served_page(browser, served, home):
    page = open_page(browser, served.url)
    assert page.is_hidden("#error")
    assert page.is_hidden("#identity")  # an unconditioned model: no person picker
    assert served.explorer.model.checkpoint.name in page.inner_text("#info")
    assert page.locator("#directions input").count() == 6
    start = pixels(page)
    moved = act(page, lambda: page.fill("#pc-0", "2.5"))
    assert differ(start, moved) > 0.5, "moving a slider changed nothing"
    randomized = act(page, lambda: page.click("#randomize"))
    assert differ(moved, randomized) > 0.5
    assert page.evaluate("window.explorer.state().pcs[0]") == 0  # randomize resets the sliders

    save(page, "ada")
    ada = pixels(page)
    bob = act(page, lambda: page.click("#randomize"))
    save(page, "bob")
    page.select_option("#parent-a", "ada")
    page.select_option("#parent-b", "bob")
    page.fill("#mix-seed", "5")
    child = act(page, lambda: page.click("#mix"))
    child_latent = page.evaluate("window.explorer.state().latent")
    act(page, lambda: page.click("#show-a"))
    again = act(page, lambda: page.click("#mix"))
    assert np.array_equal(child, again), "the same parents and seed gave another child"
    assert differ(child, ada) > 0.5 and differ(child, bob) > 0.5
    parents = [served.explorer.character(n) for n in ("ada", "bob")]
    assert child_latent == pytest.approx(mix_genes(parents[0].latent, parents[1].latent, 5).latent, abs=1e-6)
    page.fill("#mix-seed", "6")
    assert differ(act(page, lambda: page.click("#mix")), child) > 0.1
    # the page's JavaScript copy of the mixing stream is Python's
    draws = mulberry32(123456789)
    assert page.evaluate("(() => { const r = window.explorer.mulberry32(123456789); return [r(), r(), r(), r()]; })()") == [next(draws) for _ in range(4)]

    renders = page.evaluate("window.explorer.diag.renders")
    page.click("#walk")
    page.wait_for_function("r => window.explorer.diag.renders >= r + 40 && !window.explorer.state().walking", arg=renders, timeout=60000)

    # bad input on the page: a sentence, no traceback, the old model keeps working
    page.fill("#model-uri", "/no/such/checkpoint.pt")
    page.click("#load-model")
    page.wait_for_selector("#error:not([hidden])")
    message = page.inner_text("#error")
    assert "no such checkpoint" in message and "Traceback" not in message
    page.evaluate("() => document.querySelector('#directions input').value = 0")
    page.fill("#char-name", "../bad")
    page.click("#save")
    page.wait_for_function("() => document.querySelector('#error').textContent.includes('character name')")

    # gallery tab, on a gallery written the way the evaluation writes one
    folder = home / "galleries" / "g1"
    (folder / "lora").mkdir(parents=True)
    Image.fromarray(ada.reshape(32, 32, 4)[..., :3].astype(np.uint8)).save(folder / "gan.png")
    Image.fromarray(bob.reshape(32, 32, 4)[..., :3].astype(np.uint8)).save(folder / "lora" / "000.png")
    (folder / "gallery.json").write_text(json.dumps({"champion": None, "reason": "no faces", "settings": {"prompt": "a photo of sks person"},
                                                     "models": [{"name": "gan", "faces": 0, "images": 16, "mean": None}]}))
    page.click("nav .tab[data-tab=gallery]")
    page.wait_for_selector("#scores td")
    assert "gan" in page.inner_text("#scores") and "sks person" in page.inner_text("#slide-caption")
    page.wait_for_function("() => document.querySelector('#slide').naturalWidth === 32")
    assert page.outside == [] and page.problems == []

    page.close()

    # the link from Dagster: the gallery's `explorer` URL names a registered version; the page shows its lineage
    register(home, served.explorer.model.checkpoint)
    page = open_page(browser, served.url + "?model=" + quote("models:/facecraft-gan-checkpoint@champion", safe=""))
    info = page.inner_text("#info")
    assert "facecraft-gan-checkpoint v1 (champion)" in info and "dagster-run-123" in info and "dataset-v42" in info
    assert page.get_attribute("#info a", "href") == "http://127.0.0.1:3000/runs/dagster-run-123"
    assert page.is_hidden("#error")
    shot = os.environ.get("FACECRAFT_EXPLORER_SCREENSHOT")
    if shot:  # the README's picture
        page.set_viewport_size({"width": 1280, "height": 600})
        page.select_option("#parent-a", "ada")
        page.select_option("#parent-b", "bob")
        act(page, lambda: page.click("#mix"))
        act(page, lambda: page.fill("#pc-1", "-1.5"))
        page.screenshot(path=shot)
    page.close()


def test_static_export_renders_what_the_server_renders(browser, served, tmp_path):
    rng = np.random.default_rng(7)
    for name in ("ada", "bob"):
        served.explorer.save_character({"name": name, "latent": rng.standard_normal(32).tolist()})
    summary = build_site(served.explorer, tmp_path / "site", NPM_CACHE)
    assert summary["characters"] == 2
    site = (tmp_path / "site").resolve()
    assert "Content-Security-Policy" in (site / "index.html").read_text()  # the browser itself refuses other hosts

    served_page = open_page(browser, served.url)
    static_page = open_page(browser, site.as_uri() + "/index.html")
    assert static_page.evaluate("window.explorer.mode") == "static"
    assert "onnxruntime-web" in static_page.inner_text("#status")
    assert static_page.is_hidden("#identity")
    latent = rng.standard_normal(32).tolist()
    for page in (served_page, static_page):
        page.evaluate("z => window.explorer.setFace(z, [])", latent)
    a, b = pixels(served_page), pixels(static_page)
    assert np.abs(a - b).max() <= 2, f"static and served pages differ by up to {np.abs(a - b).max()}"

    moved = act(static_page, lambda: static_page.fill("#pc-0", "2.5"))
    assert differ(moved, b) > 0.5
    assert differ(act(static_page, lambda: static_page.click("#randomize")), moved) > 0.5
    for page in (served_page, static_page):
        page.reload()
        page.evaluate("window.explorer.ready")
        page.select_option("#parent-a", "ada")
        page.select_option("#parent-b", "bob")
        page.fill("#mix-seed", "9")
        act(page, lambda page=page: page.click("#mix"))
    assert np.abs(pixels(served_page) - pixels(static_page)).max() <= 2  # the same child in both
    save(static_page, "carol")  # localStorage on file://
    static_page.reload()
    static_page.evaluate("window.explorer.ready")
    assert "carol" in static_page.inner_text("#parent-a")
    assert static_page.outside == [] and static_page.problems == []
    served_page.close()
    static_page.close()
    shutil.rmtree(site)


def test_attribute_controls_served_and_static(browser, home, tmp_path):
    """A generator with `control_names` and forward(z, controls): attribute sliders in both pages, the same
    pixels, and a character's controls survive download -> import into the static page."""
    import threading

    from facecraft_pipeline.explorer.directions import find_directions
    from facecraft_pipeline.explorer.model import LoadedModel
    from facecraft_pipeline.explorer.server import make_server
    from facecraft_pipeline.explorer.state import Explorer
    from facecraft_pipeline.gan import GanSettings
    from facecraft_pipeline_tests.explorer.controlled import ControlledGenerator

    generator = ControlledGenerator(GanSettings(resolution=32, latent_dim=32, base_channels=8)).eval()
    explorer = Explorer(home)
    explorer.model = LoadedModel("controlled-test-generator", tmp_path / "none.pt", generator, {"checkpoint_sha256": "test"})
    explorer.directions = find_directions(generator, 4, 256)
    build_site(explorer, tmp_path / "site", NPM_CACHE)
    server = make_server(explorer, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        served = open_page(browser, f"http://127.0.0.1:{server.server_address[1]}/")
        static = open_page(browser, (tmp_path / "site" / "index.html").resolve().as_uri())
        latent = np.random.default_rng(1).standard_normal(32).tolist()
        for page in (served, static):
            assert [page.get_attribute(f"#control-{i}", "aria-label") for i in range(3)] == ["yaw", "mouth_open", "brightness"]
            page.evaluate("z => window.explorer.setFace(z, [0.3, -0.5, 0.2])", latent)
        a, b = pixels(served), pixels(static)
        assert np.abs(a - b).max() <= 2
        brighter = act(static, lambda: static.fill("#control-2", "0.9"))
        rgb = lambda x: x.reshape(-1, 4)[:, :3]  # noqa: E731
        assert (rgb(brighter) - rgb(b)).mean() > 5  # the "brightness" control brightens

        served.fill("#char-name", "lit")
        with served.expect_download() as download:
            served.click("#download-json")
        saved = tmp_path / "lit.json"
        download.value.save_as(saved)
        character = json.loads(saved.read_text())
        assert character["controls"] == {"yaw": 0.3, "mouth_open": -0.5, "brightness": 0.2}
        static.set_input_files("#import-json", str(saved))
        static.wait_for_function("() => [...document.querySelectorAll('#parent-a option')].some(o => o.value === 'lit')")
        static.evaluate(AFTER, static.evaluate("window.explorer.state().seq") - 1)
        assert static.evaluate("window.explorer.state().controls") == pytest.approx([0.3, -0.5, 0.2])
        assert np.abs(pixels(static) - a).max() <= 2
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({**character, "latent": [0.0] * 5}))
        static.set_input_files("#import-json", str(bad))
        static.wait_for_function("() => document.querySelector('#error').textContent.includes('this model takes 32')")
        assert served.outside == [] and static.outside == [] and static.problems == []
    finally:
        server.shutdown()
        server.server_close()


def test_person_picker_and_identity_slider_served_and_static(browser, served_conditioned, tmp_path):
    """An identity-conditioned model: the picker lists its people, the slider morphs the owner into the picked one
    (the served and static pages paint the same pixels, which are G's), and a character keeps person and t."""
    from facecraft_pipeline.explorer.model import to_uint8
    from facecraft_pipeline_tests.explorer.conftest import PEOPLE
    from facecraft_pipeline_tests.explorer.test_identity_slider import morphed

    build_site(served_conditioned.explorer, tmp_path / "site", NPM_CACHE)
    served = open_page(browser, served_conditioned.url)
    static = open_page(browser, (tmp_path / "site" / "index.html").resolve().as_uri())
    generator = served_conditioned.explorer.model.generator
    latent = np.random.default_rng(2).standard_normal(32).tolist()
    rgb = lambda x: x.reshape(32, 32, 4)[..., :3]  # noqa: E731
    for page in (served, static):
        assert page.is_visible("#identity") and page.is_visible("#identity-t")
        assert [o for o in page.eval_on_selector_all("#person option", "os => os.map(o => o.value)")] == list(PEOPLE)
        page.evaluate("z => window.explorer.setFace(z, [])", latent)
        owner = pixels(page)
        page.select_option("#person", "cluster-1")
        morphed_face = act(page, lambda page=page: page.fill("#identity-t", "1"))
        assert page.evaluate("window.explorer.state().person") == "cluster-1" and page.evaluate("window.explorer.state().t") == 1
        assert differ(morphed_face, owner) > 1, "the identity slider changed nothing"
        assert np.abs(rgb(morphed_face) - to_uint8(morphed(generator, latent, "cluster-1", 1.0))[0]).max() <= 2
        half = act(page, lambda page=page: page.fill("#identity-t", "0.4"))
        assert np.abs(rgb(half) - to_uint8(morphed(generator, latent, "cluster-1", 0.4))[0]).max() <= 2

    served.select_option("#person", "cluster-2")
    act(served, lambda: served.fill("#identity-t", "0.7"))
    save(served, "morph")
    assert served_conditioned.explorer.character("morph").person == "cluster-2"
    assert served_conditioned.explorer.character("morph").t == pytest.approx(0.7)
    with served.expect_download() as download:
        served.click("#download-json")
    saved = tmp_path / "morph.json"
    download.value.save_as(saved)
    character = json.loads(saved.read_text())
    assert (character["person"], character["t"]) == ("cluster-2", 0.7)
    act(served, lambda: served.click("#reset"))
    assert served.evaluate("window.explorer.state().t") == 0
    act(served, lambda: served.click("#show-a"))  # showing the character brings its person and t back
    assert served.evaluate("[window.explorer.state().person, window.explorer.state().t]") == ["cluster-2", 0.7]
    static.select_option("#person", "owner")
    static.set_input_files("#import-json", str(saved))
    static.wait_for_function("() => window.explorer.state().person === 'cluster-2'")
    static.evaluate(AFTER, static.evaluate("window.explorer.state().seq") - 1)
    assert static.evaluate("window.explorer.state().t") == pytest.approx(0.7)
    assert np.abs(pixels(static) - pixels(served)).max() <= 2
    assert served.outside == [] and static.outside == [] and served.problems == [] and static.problems == []
