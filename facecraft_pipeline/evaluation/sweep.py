"""The evaluation sweep: every kept checkpoint of every model, scored the same way, cached, shown.

    gallery = run_sweep(candidates, galleries_root, settings, scorer, baselines, lineage={...})

Each checkpoint's images and scores are cached under `<cache dir>/<eval key>/<weights digest>/`,
where the eval key names everything that decides them (the render settings of its kind, the
detector, the embedder, the reference photos, the scoring version): only checkpoints never scored
under these settings are rendered and scored. The gallery folder `<galleries>/<gallery key>/`
holds one folder of PNGs and one grid per checkpoint, `gallery.json` (the score table, baselines,
champion, lineage; written last: its presence means the gallery is complete), `gallery.md` and a
self-contained `gallery.html` (images inlined). No Dagster here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from facecraft_pipeline.atomic import write_json_atomic
from facecraft_pipeline.evaluation.baselines import Baselines
from facecraft_pipeline.evaluation.champion import Verdict, choose_champion
from facecraft_pipeline.evaluation.gallery import GALLERY_VERSION, CheckpointEntry, Gallery, ModelGallery, gallery_json, load_gallery
from facecraft_pipeline.evaluation.html import write_html, write_markdown
from facecraft_pipeline.evaluation.render import Candidate
from facecraft_pipeline.evaluation.scores import SCORE_VERSION, CheckpointScore, ImageScore, Reference, score_images, summarize
from facecraft_pipeline.evaluation.settings import GallerySettings
from facecraft_pipeline.faces.probe import IdentityProbe
from facecraft_pipeline.grids import make_grid

@dataclass(frozen=True)
class Scorer:
    """The pipeline's identity probe, the photos faces are compared with, and where the probe's detector came from."""

    probe: IdentityProbe
    reference: Reference
    detector_source: str = "the detector face_crops used"

    @property
    def detector_facts(self) -> dict[str, Any]:
        """The detector settings used (in the cache key) and where they came from (in the report)."""
        return {"source": self.detector_source, "settings": self.probe.spec.detector_key}

    @property
    def reference_digest(self) -> str:
        return hashlib.sha256(self.reference.vectors.astype("float32").tobytes()).hexdigest()[:16]


def eval_key(candidate: Candidate, settings: GallerySettings, scorer: Scorer) -> str:
    payload = {"kind": candidate.kind, "render": candidate.renderer.render_settings(settings), "detect_side": settings.detect_side,
               "detector": scorer.probe.spec.detector_key, "embedder": scorer.probe.name,
               "reference": scorer.reference_digest, "version": SCORE_VERSION}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


class ScoreCache:
    """`<root>/<eval key>/<digest>/`: images/*.png and scores.json (written last, atomically)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def folder(self, key: str, digest: str) -> Path:
        return self.root / key / digest[:32]

    def load(self, key: str, digest: str) -> tuple[dict[str, Any], list[ImageScore], list[Path]] | None:
        folder = self.folder(key, digest)
        try:
            data = json.loads((folder / "scores.json").read_text())
        except (OSError, ValueError):
            return None
        paths = [folder / name for name in data["files"]]
        if not all(p.is_file() for p in paths):
            return None
        return data["score"], [ImageScore(**row) for row in data["images"]], paths

    def store(self, key: str, digest: str, score: CheckpointScore, images: Sequence[ImageScore],
              drawn: Sequence[Image.Image]) -> list[Path]:
        folder = self.folder(key, digest)
        (folder / "images").mkdir(parents=True, exist_ok=True)
        files = []
        for image_score, image in zip(images, drawn, strict=True):
            name = f"images/{_image_name(image_score)}"
            image.save(folder / name)
            files.append(name)
        write_json_atomic(folder / "scores.json", {"score": score.as_row(), "images": [asdict(s) for s in images], "files": files})
        return [folder / name for name in files]


def _image_name(score: ImageScore) -> str:
    return (f"p{score.prompt}-" if score.prompt is not None else "") + f"{score.index:03d}.png"


def score_candidate(candidate: Candidate, settings: GallerySettings, scorer: Scorer, cache: ScoreCache
                    ) -> tuple[CheckpointScore, list[ImageScore], list[Path], bool]:
    """(row, image scores, image files, computed?) for one checkpoint: from the cache when scored before."""
    key = eval_key(candidate, settings, scorer)
    found = cache.load(key, candidate.digest)
    if found is not None:
        row, images, paths = found
        row.update(model=candidate.model, step=candidate.step, checkpoint=str(candidate.path))
        return CheckpointScore.from_row(row), images, paths, False
    drawn = candidate.renderer.render(candidate, settings)
    pictures = [image for _, _, image in drawn]
    images, vectors = score_images(pictures, scorer.probe, scorer.reference, settings.detect_side,
                                   prompts=[p for p, _, _ in drawn], indices=[i for _, i, _ in drawn])
    score = summarize(candidate.model, candidate.step, candidate.digest, candidate.kind, scorer.probe.name,
                      scorer.reference.metric, images, vectors, str(candidate.path))
    return score, images, cache.store(key, candidate.digest, score, images, pictures), True


def gallery_key(candidates: Sequence[Candidate], settings: GallerySettings, scorer: Scorer, baselines: Baselines) -> str:
    payload = {"checkpoints": [(c.model, c.step, c.digest, eval_key(c, settings, scorer)) for c in candidates],
               "rule": [settings.min_face_share, settings.min_diversity, settings.tie_margin],
               "baselines": baselines.as_dict(), "version": GALLERY_VERSION}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_sweep(
    candidates: Sequence[Candidate],
    root: Path,
    settings: GallerySettings,
    scorer: Scorer,
    baselines: Baselines,
    lineage: Mapping[str, Any] | None = None,
    notes: Mapping[str, str] | None = None,
    prompts: Mapping[str, Sequence[str]] | None = None,
    cache_dir: Path | None = None,
) -> Gallery:
    """Score every candidate (cached ones are not recomputed), pick the champion, write the gallery.

    `root` is the galleries folder (e.g. <data root>/galleries); `lineage` (dataset version, run
    ids...) and `notes` (per model, e.g. "tiny random base model") go into the report as given;
    `prompts` are the resolved prompts per diffusion model, for the report. `cache_dir` holds the
    per-checkpoint scores (default `root/.cache`; the pipeline keeps it out of the galleries folder,
    so every folder there is a gallery).
    """
    if not candidates:
        raise ValueError("the sweep needs at least one checkpoint")
    root = Path(root)
    folder = root / gallery_key(candidates, settings, scorer, baselines)
    existing = load_gallery(folder)
    if existing is not None:
        return dataclasses.replace(existing, cached=len(candidates), reused=True)
    cache = ScoreCache(Path(cache_dir) if cache_dir else root / ".cache")
    scored, computed = [], 0
    for candidate in candidates:
        score, images, paths, fresh = score_candidate(candidate, settings, scorer, cache)
        scored.append((candidate, score, images, paths))
        computed += fresh
    champion, reason, verdicts = choose_champion([s for _, s, _, _ in scored], settings.min_face_share, settings.min_diversity,
                                                 settings.tie_margin)
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    models: dict[str, list[CheckpointEntry]] = {}
    for (candidate, score, images, paths), verdict in zip(scored, verdicts, strict=True):
        models.setdefault(candidate.model, []).append(_entry(staging, folder, candidate, score, images, paths, verdict, baselines))
    info = {
        "settings": asdict(settings),
        "prompts": {k: list(v) for k, v in (prompts or {}).items()},
        "detector": scorer.detector_facts,
        "embedder": baselines.embedder,
        "reference": scorer.reference.description,
        "lineage": dict(lineage or {}),
        "notes": dict(notes or {}),
    }
    info = json.loads(json.dumps(info, default=str))  # as gallery.json holds it: a loaded gallery equals this one
    gallery = Gallery(
        folder,
        tuple(ModelGallery(name, entries[0].score.kind, (notes or {}).get(name, ""), tuple(sorted(entries, key=lambda e: e.score.step)))
              for name, entries in models.items()),
        champion, reason, baselines, info, computed=computed, cached=len(candidates) - computed,
    )
    write_markdown(gallery, staging / "gallery.md")
    write_html(gallery, staging / "gallery.html", image_root=staging)
    write_json_atomic(staging / "gallery.json", gallery_json(gallery))
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)  # one rename: a gallery folder is complete or absent
    return gallery


def _entry(staging: Path, folder: Path, candidate: Candidate, score: CheckpointScore, images: Sequence[ImageScore],
           paths: Sequence[Path], verdict: Verdict, baselines: Baselines) -> CheckpointEntry:
    sub = Path(candidate.model) / f"step-{candidate.step:07d}"
    (staging / sub).mkdir(parents=True, exist_ok=True)
    copied = []
    for path in paths:
        shutil.copyfile(path, staging / sub / path.name)
        copied.append(folder / sub / path.name)
    grid = sub.with_suffix(".png")
    cell = max(64, min(128, Image.open(paths[0]).width)) if paths else 64
    make_grid(list(paths), cols=_columns(images), cell=cell).save(staging / grid)
    return CheckpointEntry(score, verdict.eligible, verdict.why, baselines.relative(score.identity_mean), folder / grid,
                           tuple(copied), tuple(images), candidate.note)


def _columns(images: Sequence[ImageScore]) -> int | None:
    """Diffusion grids: one row per prompt; GAN grids: square."""
    per_prompt = sum(1 for s in images if s.prompt == images[0].prompt) if images and images[0].prompt is not None else 0
    return per_prompt or None
