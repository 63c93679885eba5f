"""A finished gallery: its checkpoints, their scores and images, the champion, and `gallery.json` (written and read here).

The sweep (`sweep.py`) makes a `Gallery`; the HTML and Markdown views (`html.py`) and the asset read one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from facecraft_pipeline.evaluation.baselines import Baselines
from facecraft_pipeline.evaluation.champion import Champion
from facecraft_pipeline.evaluation.scores import CheckpointScore, ImageScore

GALLERY_VERSION = 2


@dataclass(frozen=True)
class CheckpointEntry:
    """One scored checkpoint in a gallery: its row, its verdict, its images (in the gallery folder)."""

    score: CheckpointScore
    eligible: bool
    why: str
    relative: float | None  # identity between the other-people floor (0) and the owner ceiling (1)
    grid: Path
    images: tuple[Path, ...]
    image_scores: tuple[ImageScore, ...]
    note: str = ""


@dataclass(frozen=True)
class ModelGallery:
    """One model: its checkpoints oldest first; `grid` and `score` are its newest checkpoint's."""

    name: str
    kind: str
    note: str
    checkpoints: tuple[CheckpointEntry, ...]

    @property
    def grid(self) -> Path:
        return self.checkpoints[-1].grid

    @property
    def score(self) -> CheckpointScore:
        return self.checkpoints[-1].score


@dataclass(frozen=True)
class Gallery:
    folder: Path
    models: tuple[ModelGallery, ...]
    champion: Champion | None
    champion_reason: str
    baselines: Baselines
    info: dict[str, Any]  # settings, prompts, detector, embedder, reference, lineage (as in gallery.json)
    computed: int = field(default=0, compare=False)  # checkpoints rendered and scored by this call
    cached: int = field(default=0, compare=False)  # checkpoints whose scores came from the cache
    reused: bool = field(default=False, compare=False)  # the whole gallery existed already

    @property
    def report(self) -> Path:
        return self.folder / "gallery.md"

    @property
    def html(self) -> Path:
        return self.folder / "gallery.html"

    @property
    def json_path(self) -> Path:
        return self.folder / "gallery.json"

    @property
    def entries(self) -> list[CheckpointEntry]:
        return [entry for model in self.models for entry in model.checkpoints]

    @property
    def champion_entry(self) -> CheckpointEntry | None:
        if self.champion is None:
            return None
        return next(e for e in self.entries if (e.score.model, e.score.step) == (self.champion.model, self.champion.step))

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.json_path.read_bytes()).hexdigest()


def gallery_json(gallery: Gallery) -> dict[str, Any]:
    folder = gallery.folder
    rows = []
    for model in gallery.models:
        for e in model.checkpoints:
            rows.append({**e.score.as_row(), "name": model.name, "eligible": e.eligible, "why": e.why, "relative": e.relative,
                         "note": e.note, "grid": str(e.grid.relative_to(folder)), "files": [str(p.relative_to(folder)) for p in e.images],
                         "image_scores": [asdict(s) for s in e.image_scores]})
    champion = gallery.champion
    return {
        "version": GALLERY_VERSION,
        "champion": champion.model if champion else None,  # the model name (explorer and older readers)
        "champion_step": champion.step if champion else None,
        "champion_detail": asdict(champion) if champion else None,
        "reason": gallery.champion_reason,
        "baselines": gallery.baselines.as_dict(),
        # One row per model (its newest checkpoint), then every checkpoint.
        "models": [{k: v for k, v in rows_of(rows, m.name)[-1].items() if k not in ("image_scores", "files")} | {"kind": m.kind, "note": m.note}
                   for m in gallery.models],
        "checkpoints": rows,
        **gallery.info,
    }


def rows_of(rows: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["name"] == name]


def load_gallery(folder: Path) -> Gallery | None:
    """A gallery `run_sweep` completed in `folder` before, or None (absent, unfinished or an older format)."""
    path = Path(folder) / "gallery.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if data.get("version") != GALLERY_VERSION:
        return None
    folder = Path(folder)
    models: dict[str, list[CheckpointEntry]] = {}
    for row in data["checkpoints"]:
        entry = CheckpointEntry(CheckpointScore.from_row(row), row["eligible"], row["why"], row["relative"], folder / row["grid"],
                                tuple(folder / p for p in row["files"]), tuple(ImageScore(**s) for s in row["image_scores"]),
                                row.get("note", ""))
        models.setdefault(row["name"], []).append(entry)
    notes = data.get("notes", {})
    kinds = {m["name"]: m["kind"] for m in data["models"]}
    champion = Champion(**data["champion_detail"]) if data.get("champion_detail") else None
    info = {k: data[k] for k in ("settings", "prompts", "detector", "embedder", "reference", "lineage", "notes")}
    return Gallery(folder, tuple(ModelGallery(name, kinds[name], notes.get(name, ""), tuple(entries)) for name, entries in models.items()),
                   champion, data["reason"], Baselines.from_dict(data["baselines"]), info)
