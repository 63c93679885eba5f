"""The Dagster side of the gallery: the score table as table metadata, and the identity floor check against the baselines."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
from PIL import Image

from facecraft_pipeline.assets.checks import identity_score_floor
from facecraft_pipeline.assets.galleries import _table
from facecraft_pipeline.evaluation import Candidate, FixedImages, GallerySettings, Scorer, run_sweep
from facecraft_pipeline.evaluation.baselines import Baseline, Baselines
from facecraft_pipeline_tests.evaluation.conftest import face_tools, photo_image  # noqa: F401 (fixture)


def _gallery(tmp_path, face_tools, floor: float):
    probe, reference = face_tools
    scorer = Scorer(probe, reference, "test")
    owner = [photo_image("grace", v).reduce(2) for v in ("flip", "rot+15")]
    noise = [Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 48, 3), dtype=np.uint8))] * 2
    candidates = [Candidate("gan", 10, Path("/gan/10.pt"), "g10", FixedImages(owner)),
                  Candidate("lora", 5, Path("/lora/5.pt"), "l5", FixedImages(noise, kind="diffusion"))]
    baselines = Baselines(Baseline("owner vs owner", "ceiling", 3, 0.999), Baseline("other people vs owner", "floor", 8, floor), "dlib-128")
    return run_sweep(candidates, tmp_path, GallerySettings(), scorer, baselines)


def test_the_score_table_is_dagster_table_metadata_with_one_row_per_checkpoint(tmp_path, face_tools):
    gallery = _gallery(tmp_path, face_tools, 0.89)
    table = _table(gallery)
    assert isinstance(table, dg.TableMetadataValue) and len(table.records) == 2
    rows = {(r.data["model"], r.data["step"]): r.data for r in table.records}
    assert rows[("gan", 10)]["champion"] is True and rows[("gan", 10)]["faces"] == "2/2"
    assert rows[("lora", 5)]["faces"] == "0/2" and rows[("lora", 5)]["identity"] == "-"  # no faces: no score, not zero


def test_the_identity_floor_is_the_other_people_baseline(tmp_path, face_tools):
    above = identity_score_floor(_gallery(tmp_path / "a", face_tools, 0.89))
    below = identity_score_floor(_gallery(tmp_path / "b", face_tools, 0.9999))
    assert above.passed and not below.passed
    assert below.metadata["champion"].value == "gan@10" and below.metadata["floor_other_people"].value == 0.9999
