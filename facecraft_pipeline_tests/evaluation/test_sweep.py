"""The sweep end to end: real photos as "generated" images, the tiny SD's LoRA checkpoints, a GAN's checkpoints.

Real dlib detector and embedder, real diffusers pipeline, real GAN trainer; nothing of ours is mocked.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facecraft_pipeline.digest import sha256_file
from facecraft_pipeline.evaluation import (Candidate, FixedImages, GallerySettings, Scorer, gan_candidates, load_gallery,
                                           lora_candidates, run_sweep)
from facecraft_pipeline.evaluation.baselines import Baseline, Baselines
from facecraft_pipeline.evaluation.render import draw
from facecraft_pipeline.faces.probe import IdentityProbe
from facecraft_pipeline.lora import LoraSettings, load_lora_pipeline, load_pipeline, resolve_base_model, train_lora
from facecraft_pipeline.training import RunSettings
from facecraft_pipeline_tests.evaluation.conftest import photo_image

BASELINES = Baselines(Baseline("owner vs owner", "test ceiling", 3, 0.99), Baseline("other people vs owner", "test floor", 8, 0.89),
                      "dlib-128 (test)")


@pytest.fixture()
def scorer(face_tools):
    probe, reference = face_tools
    return Scorer(IdentityProbe(embedder=probe.embedder), reference, "test")  # its own probe: a detector made on first use


def fixed(model: str, step: int, images: list[Image.Image], digest: str | None = None) -> tuple[Candidate, FixedImages]:
    renderer = FixedImages(images)
    return Candidate(model, step, Path(f"/{model}/{step}.pt"), digest or f"{model}-{step}", renderer), renderer


def test_real_faces_as_generated_images_score_rank_and_show_and_nothing_is_scored_twice(tmp_path, scorer):
    owner = [photo_image("grace", v).reduce(2) for v in ("flip", "rot+15", "rot-15", "bright")]
    other = [photo_image("astronaut", v).reduce(2) for v in ("original", "flip", "dark", "half")]
    noise = [Image.fromarray(np.random.default_rng(i).integers(0, 255, (48, 48, 3), dtype=np.uint8)) for i in range(4)]
    lucky = [owner[0]] + noise[:3]  # one owner face in four images
    (a, ra), (b, rb), (c, rc) = fixed("owner", 100, owner), fixed("other", 100, other), fixed("owner", 50, lucky)
    settings = GallerySettings(samples_per_model=4)
    gallery = run_sweep([c, a, b], tmp_path, settings, scorer, BASELINES, lineage={"dataset_version": "abc123"})
    rows = {e.score.name: e.score for e in gallery.entries}
    assert (rows["owner@100"].faces, rows["other@100"].faces, rows["owner@50"].faces) == (4, 4, 1)
    assert rows["owner@100"].same_person_share == 1.0 and rows["other@100"].same_person_share <= 0.25
    assert rows["owner@50"].identity_mean > rows["other@100"].identity_mean  # its one face is the owner...
    assert (gallery.champion.model, gallery.champion.step) == ("owner", 100)  # ...but 1 in 4 is below the face minimum
    assert gallery.computed == 3 and (ra.calls, rb.calls, rc.calls) == (1, 1, 1)

    html = gallery.html.read_text()
    assert not re.search(r"""(src|href)=["'](?!data:)""", html)  # self-contained: every image inlined
    assert html.count("<img ") == 12 and "abc123" in html and "other people vs owner" in html
    data = json.loads(gallery.json_path.read_text())
    assert data["champion"] == "owner" and data["champion_step"] == 100 and len(data["checkpoints"]) == 3
    assert all((gallery.folder / row["grid"]).is_file() for row in data["checkpoints"])
    assert load_gallery(gallery.folder) == gallery

    again = run_sweep([c, a, b], tmp_path, settings, scorer, BASELINES)
    assert again.reused and again.computed == 0 and (ra.calls, rb.calls, rc.calls) == (1, 1, 1)
    (d, rd) = fixed("owner", 150, owner[::-1])
    more = run_sweep([c, a, b, d], tmp_path, settings, scorer, BASELINES)
    assert (more.computed, more.cached, rd.calls, ra.calls) == (1, 3, 1, 1)  # only the new checkpoint is drawn and scored
    assert more.folder != gallery.folder and len(more.entries) == 4


def test_changed_evaluation_settings_score_again(tmp_path, scorer):
    (a, ra) = fixed("owner", 1, [photo_image("grace", "flip").reduce(2)] * 2)
    run_sweep([a], tmp_path, GallerySettings(detect_side=256), scorer, BASELINES)
    run_sweep([a], tmp_path, GallerySettings(detect_side=320), scorer, BASELINES)
    assert ra.calls == 2


@pytest.fixture(scope="module")
def tiny_lora(tmp_path_factory):
    """A LoRA on the tiny random SD, 4 steps, every 2nd kept: two checkpoints to sweep."""
    root = tmp_path_factory.mktemp("lora")
    faces = []
    for i, v in enumerate(("original", "flip", "dark", "bright")):
        path = root / f"face{i}.png"
        photo_image("grace", v).resize((64, 64)).save(path)
        faces.append(path)
    settings = LoraSettings(run=RunSettings(steps=4, checkpoint_every=2, log_every=2, sample_every=0, keep_last=2), batch_size=2)
    return train_lora(faces, root / "runs", settings, cache_dir=root / "cache")


def test_the_tiny_sd_sweep_runs_end_to_end_and_records_no_faces_honestly(tmp_path, scorer, tiny_lora):
    candidates = lora_candidates("lora", tiny_lora)
    assert [c.step for c in candidates] == [2, 4] and len({c.digest for c in candidates}) == 2
    settings = GallerySettings(prompts=("{instance}", "{instance}, smiling"), images_per_prompt=2, num_inference_steps=2,
                               scheduler="ddim", negative_prompt="blurry")
    gallery = run_sweep(candidates, tmp_path, settings, scorer, BASELINES, prompts={"lora": ["a photo of sks person", "smiling"]})
    for entry in gallery.entries:
        s = entry.score
        assert (s.kind, s.images, s.faces, s.face_share, s.identity_mean, s.same_person_share) == ("diffusion", 4, 0, 0.0, None, 0.0)
        assert s.prompt_following == 0.0 and not entry.eligible and "no detectable face" in entry.why
        assert [(p.prompt, p.index) for p in entry.image_scores] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert gallery.champion is None and "no checkpoint produced a detectable face" in gallery.champion_reason
    assert "lora/step-0000002/p1-001.png" in {str(p.relative_to(gallery.folder)) for p in gallery.entries[0].images}
    assert "smiling" in gallery.html.read_text()


def test_a_kept_lora_checkpoint_loads_to_the_same_pixels_as_the_saved_weights(tiny_lora):
    base = resolve_base_model("tiny", tiny_lora.folder.parent.parent / "cache")
    saved = load_lora_pipeline(base, tiny_lora.folder)
    candidates = {c.step: c for c in lora_candidates("lora", tiny_lora)}
    renderer = candidates[4].renderer
    from_checkpoint = load_pipeline(base)
    renderer.apply(from_checkpoint, candidates[4])
    args = ("a photo of sks person", "", 1, 7, 2, 5.0, 64)
    final = np.asarray(draw(saved, *args)[0])
    assert np.array_equal(np.asarray(draw(from_checkpoint, *args)[0]), final)
    renderer.apply(from_checkpoint, candidates[2])  # swapping in another step changes the weights
    assert not np.array_equal(np.asarray(draw(from_checkpoint, *args)[0]), final)


def test_gan_checkpoints_are_swept_with_the_same_latents(tmp_path, scorer):
    from facecraft_pipeline.gan import GanSettings, train_gan

    faces = []
    for i, v in enumerate(("original", "flip", "dark", "bright", "rot+15", "rot-15", "jpeg30", "half")):
        path = tmp_path / f"face{i}.png"
        photo_image("grace", v).resize((32, 32)).save(path)
        faces.append(path)
    settings = GanSettings(resolution=32, batch_size=4, base_channels=8, latent_dim=16,
                           run=RunSettings(steps=4, checkpoint_every=2, sample_every=0, log_every=2, keep_last=2))
    result = train_gan(faces, tmp_path / "runs", settings)
    candidates = gan_candidates("gan", result)
    assert [c.step for c in candidates] == [2, 4] and candidates[-1].digest == sha256_file(result.artifact("checkpoint"))
    gallery = run_sweep(candidates, tmp_path / "galleries", GallerySettings(samples_per_model=4), scorer, BASELINES)
    assert [e.score.images for e in gallery.entries] == [4, 4]
    assert all(e.score.faces == sum(s.faces > 0 for s in e.image_scores) for e in gallery.entries)  # counted, whatever they are
    first = [np.asarray(Image.open(p)) for p in gallery.entries[0].images]
    assert not all(np.array_equal(a, b) for a, b in zip(first, [np.asarray(Image.open(p)) for p in gallery.entries[1].images]))
