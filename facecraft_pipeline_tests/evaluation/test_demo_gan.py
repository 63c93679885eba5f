"""The demo GAN, trained as `make demo` trains it on the demo album's owner crops, then swept:
faces are found and scored as the owner."""

from __future__ import annotations

import pytest

from facecraft_pipeline.digest import sha256_file
from facecraft_pipeline.evaluation import GallerySettings, gan_candidates, run_sweep
from facecraft_pipeline.evaluation.baselines import Baseline, Baselines
from facecraft_pipeline.evaluation.sweep import Scorer
from facecraft_pipeline.faces.extract import FaceCropSettings, PhotoInput, extract_faces
from facecraft_pipeline.gan import GanSettings, train_gan
from facecraft_pipeline.settings.profiles import profile_settings
from facecraft_pipeline.sources.demo_album import DEMO_OWNER, build_demo_album


@pytest.mark.slow
def test_the_demo_gan_draws_faces_the_sweep_finds_and_scores_as_the_owner(tmp_path, face_tools):
    probe, reference = face_tools
    truth = build_demo_album(tmp_path / "album")
    inputs = [PhotoInput(name, tmp_path / "album" / name, sha256_file(tmp_path / "album" / name))
              for name, t in sorted(truth.items()) if t["people"] == [DEMO_OWNER]]
    crops = [face.crop_path for face in extract_faces(inputs, tmp_path / "faces", FaceCropSettings()).kept_faces]
    settings = profile_settings(GanSettings, "gan_checkpoint", "demo", kind="dcgan")
    assert settings.resolution == 64 and settings.minibatch_std and settings.run.keep_every == 500  # the measured CPU recipe

    result = train_gan(crops, tmp_path / "runs", settings)
    scorer = Scorer(probe, reference, "test")
    baselines = Baselines(Baseline("owner vs owner", "", 0), Baseline("other people vs owner", "", 0), "dlib-128")
    gallery = run_sweep(gan_candidates("gan", result), tmp_path / "galleries", GallerySettings(), scorer, baselines)

    final = gallery.entries[-1].score
    assert final.faces >= final.images // 2, f"{final.faces}/{final.images} faces"
    assert final.same_person_share >= 0.5 and final.identity_mean is not None
