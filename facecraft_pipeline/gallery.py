"""Sample galleries: fixed-seed grids from every model, identity scores, and a champion.

Models are given as samplers (n, seed) -> images, so GANs, LoRA pipelines or anything else
render the same way. The gallery folder holds one grid per model, the individual images, a
`gallery.md` report and `gallery.json` with the scores.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from PIL import Image

from facecraft_pipeline.atomic import write_json_atomic
from facecraft_pipeline.faces.identity_score import IdentityScore
from facecraft_pipeline.grids import make_grid

Sampler = Callable[[int, int], list[Image.Image]]  # (n, seed) -> images
Scorer = Callable[[list[Image.Image]], IdentityScore]


@dataclass(frozen=True)
class GallerySettings:
    samples_per_model: int = 16
    seed: int = 1234
    num_inference_steps: int = 10  # diffusion models only
    guidance_scale: float = 5.0  # diffusion models only
    resolution: int | None = None  # diffusion models: None = the resolution the LoRA was trained at
    prompt: str | None = None  # diffusion models: None = the LoRA's instance prompt


@dataclass(frozen=True)
class ModelGallery:
    name: str
    grid: Path
    score: IdentityScore
    note: str = ""  # e.g. what base model was used, said plainly


@dataclass(frozen=True)
class Gallery:
    folder: Path
    models: tuple[ModelGallery, ...]
    champion: str | None
    champion_reason: str
    report: Path

    @property
    def digest(self) -> str:
        digest = hashlib.sha256()
        for model in self.models:
            digest.update(model.name.encode() + model.grid.read_bytes())
        return digest.hexdigest()


def choose_champion(scores: Mapping[str, IdentityScore]) -> tuple[str | None, str]:
    """The model whose generated faces are most like the owner (mean similarity), if any drew faces."""
    scored = {name: s for name, s in scores.items() if s.faces and s.mean is not None}
    if not scored:
        return None, "no model produced a detectable face, so none is champion"
    best = max(scored, key=lambda name: (scored[name].mean, name))
    return best, f"highest mean identity similarity ({scored[best].mean:.3f}) over {scored[best].faces} faces"


def render_gallery(
    samplers: Mapping[str, Sampler],
    out_dir: Path,
    settings: GallerySettings,
    scorer: Scorer,
    notes: Mapping[str, str] | None = None,
) -> Gallery:
    """Sample every model with the same seed, score the faces, write grids and the report."""
    out_dir.mkdir(parents=True, exist_ok=True)
    models = []
    for name, sample in samplers.items():
        images = sample(settings.samples_per_model, settings.seed)
        folder = out_dir / name
        folder.mkdir(exist_ok=True)
        for index, image in enumerate(images):
            image.save(folder / f"{index:03d}.png")
        grid = out_dir / f"{name}.png"
        make_grid(images, cell=max(64, min(128, images[0].width))).save(grid)
        models.append(ModelGallery(name, grid, scorer(images), (notes or {}).get(name, "")))
    champion, reason = choose_champion({m.name: m.score for m in models})
    report = _write_report(out_dir, models, champion, reason, settings)
    return Gallery(out_dir, tuple(models), champion, reason, report)


def _write_report(out_dir: Path, models: list[ModelGallery], champion: str | None, reason: str, settings: GallerySettings) -> Path:
    lines = [f"# Sample gallery (seed {settings.seed}, {settings.samples_per_model} images per model)", ""]
    lines += [f"Champion: **{champion or 'none'}** ({reason}).", ""]
    lines += ["| model | faces found | similarity mean | min | max | note |", "|---|---|---|---|---|---|"]
    for m in models:
        fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        lines.append(f"| {m.name} | {m.score.faces}/{m.score.images} | {fmt(m.score.mean)} | {fmt(m.score.min)} | {fmt(m.score.max)} | {m.note} |")
    lines.append("")
    lines += [f"## {m.name}\n\n![{m.name}]({m.grid.name})\n" for m in models]
    report = out_dir / "gallery.md"
    report.write_text("\n".join(lines))
    # Written last, atomically: its presence means the gallery is complete (see `load_gallery`).
    write_json_atomic(
        out_dir / "gallery.json",
        {"champion": champion, "reason": reason, "settings": asdict(settings),
         "models": [{"name": m.name, "note": m.note, **asdict(m.score)} for m in models]},
    )
    return report


def load_gallery(folder: Path) -> Gallery | None:
    """A gallery `render_gallery` completed in `folder` before, or None."""
    path = folder / "gallery.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    score_fields = {f.name for f in fields(IdentityScore)}
    models = tuple(
        ModelGallery(m["name"], folder / f"{m['name']}.png", IdentityScore(**{k: m[k] for k in score_fields}), m["note"])
        for m in data["models"]
    )
    return Gallery(folder, models, data["champion"], data["reason"], folder / "gallery.md")
