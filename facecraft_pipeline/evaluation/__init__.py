"""The evaluation sweep: every kept checkpoint scored against the owner, baselines, champion, HTML gallery.

No Dagster here: `assets/galleries.py` only gathers the inputs and records the results.

    settings.py   GallerySettings (seeds, prompts, sampler, the champion rule's thresholds)
    render.py     Candidate per kept checkpoint; GAN / LoRA-checkpoint renderers
    scores.py     per image: the identity probe (faces/probe.py) -> best match vs held-out owner photos; per-checkpoint rows
    baselines.py  owner vs owner (ceiling) and other people vs owner (floor), same embedder
    champion.py   the champion rule
    sweep.py      cache by (weights digest, evaluation settings), the gallery folder
    gallery.py    the result types (Gallery, ModelGallery, CheckpointEntry) and gallery.json
    html.py       self-contained gallery.html and gallery.md
"""

from __future__ import annotations

from facecraft_pipeline.evaluation.baselines import Baseline, Baselines, OwnerPhotos, compute_baselines, owner_photos
from facecraft_pipeline.evaluation.champion import Champion, choose_champion
from facecraft_pipeline.evaluation.render import Candidate, FixedImages, GanRenderer, LoraRenderer, gan_candidates, lora_candidates
from facecraft_pipeline.evaluation.scores import CheckpointScore, ImageScore, Reference, best_match, score_images, summarize
from facecraft_pipeline.evaluation.settings import GallerySettings
from facecraft_pipeline.evaluation.gallery import Gallery, ModelGallery, load_gallery
from facecraft_pipeline.evaluation.sweep import Scorer, run_sweep

__all__ = [
    "Baseline", "Baselines", "Candidate", "Champion", "CheckpointScore", "FixedImages", "Gallery", "GallerySettings",
    "GanRenderer", "ImageScore", "LoraRenderer", "ModelGallery", "OwnerPhotos", "Reference", "Scorer", "best_match",
    "choose_champion", "compute_baselines", "gan_candidates", "load_gallery", "lora_candidates", "owner_photos", "run_sweep",
    "score_images", "summarize",
]
