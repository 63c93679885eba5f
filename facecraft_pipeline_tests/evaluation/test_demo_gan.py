"""The demo GAN's checkpoints, swept: faces are found and scored against the owner.

Needs the demo GAN that draws faces dlib's HOG detector finds (the GAN issue). Until that recipe
is on main, the 32 px demo GAN draws blurs (0/16 faces, STACK.md) and this test is skipped with
that reason; the scoring itself is covered on real photos in test_sweep.py.
"""

from __future__ import annotations

import pytest

from facecraft_pipeline.evaluation import GallerySettings, gan_candidates, run_sweep
from facecraft_pipeline.evaluation.baselines import Baseline, Baselines
from facecraft_pipeline.evaluation.sweep import Scorer
from facecraft_pipeline.faces.detect import DetectorSettings, make_detector
from facecraft_pipeline_tests.evaluation.conftest import photo_image

DEMO_GAN_DRAWS_FACES = False  # flip when the demo GAN recipe draws detectable faces


@pytest.mark.skipif(not DEMO_GAN_DRAWS_FACES, reason="needs the demo GAN that draws detectable faces (GAN issue, not on main yet)")
def test_the_demo_gan_draws_faces_the_sweep_finds_and_scores(tmp_path, face_tools):
    from facecraft_pipeline.gan import GanSettings, train_gan

    _, embedder, reference = face_tools
    variations = ("original", "flip", "dark", "bright", "rot+15", "rot-15", "jpeg30", "half")
    faces = []
    for i, v in enumerate(variations):
        path = tmp_path / f"face{i}.png"
        photo_image("grace", v).resize((64, 64)).save(path)
        faces.append(path)
    result = train_gan(faces, tmp_path / "runs", GanSettings())  # the demo settings, as `make demo` trains
    scorer = Scorer(lambda: make_detector(DetectorSettings()), embedder, reference, {"source": "test", "settings": {}})
    baselines = Baselines(Baseline("owner vs owner", "", 0), Baseline("other people vs owner", "", 0), "dlib-128")
    gallery = run_sweep(gan_candidates("gan", result), tmp_path / "galleries", GallerySettings(), scorer, baselines)
    final = gallery.entries[-1].score
    assert final.faces > 0 and final.identity_mean is not None
