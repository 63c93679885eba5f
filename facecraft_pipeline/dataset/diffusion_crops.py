"""The LoRA view of a curated dataset: head-and-shoulders crops from the ORIGINAL photos, with captions.

The GAN trains on the curated dataset's tight aligned crops; a diffusion model wants the face in
context at its own resolution (512 px SD-1.x, 1024 px SDXL). Both views come from the one curated
dataset version: each of its owner items records photo_sha256, box, landmarks, the photo's path and
every face detected in it (count and boxes), so the view reads the curated dataset and the photos only.

For each item the crop is a square of `context` x the face box's side around the face (shifted
down by `shift` face sides, so shoulders come in), shrunk to fit inside the photo. It is resized to
`resolution` only if that enlarges it at most `max_upscale` times; smaller faces are left out of
this view with the reason recorded (they still train the GAN). Every other face the detector found
in the photo that reaches into the crop is recorded too (`other_faces`, crop pixels): the LoRA
trainer leaves those regions out of its loss, so it does not learn other people as the owner.
Each crop gets a caption from `caption_template` (trigger + class + what was measured: pose,
framing, colour, other people) and an optional caption file per photo (`<photo>.txt` beside it, or `<captions_dir>/<photo stem>.txt`).

The view is an immutable folder `<out_root>/<digest[:16]>/` (PNGs + manifest.json) whose digest
covers the curated digest, these settings and every crop's geometry, pixels and caption.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facecraft_pipeline.dataset.manifest import manifest_digest, publish, read_manifest, staging_dir
from facecraft_pipeline.settings import setting, validate

FORMAT_VERSION = 2  # 2: other_faces
DEFAULT_TEMPLATE = "photo of {trigger} {class_word}, {details}, {caption_file}"


@dataclass(frozen=True)
class DiffusionCropSettings:
    """How the LoRA training images are cut from the original photos and captioned."""

    context: float = setting(2.4, "crop side as a multiple of the face box side (2.4: head and shoulders)", minimum=1.0)
    shift: float = setting(0.3, "move the crop centre down by this many face sides (room for the shoulders)", minimum=-1.0, maximum=1.0)
    max_upscale: float = setting(1.25, "largest enlargement of a photo region to the training size; smaller faces are left out",
                                 minimum=1.0)
    caption_template: str = setting(DEFAULT_TEMPLATE, "caption of each image: {trigger} {class_word} {details} {caption_file}")
    describe: bool = setting(True, "add what was measured (pose, framing, colour, other people) as {details}")
    captions_dir: str | None = setting(None, "folder of <photo stem>.txt caption files (default: a .txt beside each photo)")

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True)
class Example:
    """One LoRA training image: its caption (and the caption of its mirror), where the face is, the photo region's size.

    The view below makes them; `lora.train_lora` trains on them (a bare image path there means an `Example` with
    the instance prompt as caption and nothing else known).
    """

    image: Path
    caption: str
    flipped_caption: str | None = None  # None: the image is not mirrored with a caption of its own
    face_box: tuple[float, float, float, float] | None = None  # x1, y1, x2, y2 in the image's pixels
    original_size: tuple[int, int] | None = None  # (h, w) of the photo region before resizing (SDXL's size conditioning)
    photo_id: str = ""
    other_faces: tuple[tuple[float, float, float, float], ...] = ()  # other people's faces in the image's pixels


@dataclass(frozen=True)
class DiffusionView:
    digest: str
    folder: Path
    examples: tuple[Example, ...]
    excluded: tuple[tuple[str, str], ...]  # (photo_id, reason)
    manifest_path: Path
    reused: bool = False

    @property
    def counts(self) -> dict[str, int]:
        return {"lora_images": len(self.examples), "lora_excluded": len(self.excluded)}


def other_faces_in_crop(boxes: Sequence[Sequence[float]], own: Sequence[float], left: int, top: int, side: int,
                        scale: float) -> list[list[float]]:
    """The faces other than `own` (IoU < 0.5 with it) that reach into the crop, in the resized crop's pixels, clipped."""
    out = []
    for box in boxes:
        if _iou(box, own) >= 0.5:
            continue
        x1, y1, x2, y2 = (min(max(v - o, 0.0), side) for v, o in zip(box, (left, top, left, top), strict=True))
        if x2 > x1 and y2 > y1:
            out.append([round(v * scale, 2) for v in (x1, y1, x2, y2)])
    return out


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def crop_window(box: Sequence[float], width: int, height: int, context: float, shift: float) -> tuple[int, int, int]:
    """(left, top, side) of the square crop around `box`, inside the photo."""
    x1, y1, x2, y2 = (float(v) for v in box)
    face = max(x2 - x1, y2 - y1)
    side = int(round(min(context * face, width, height)))
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2 + shift * face
    left = int(round(min(max(cx - side / 2, 0), width - side)))
    top = int(round(min(max(cy - side / 2, 0), height - side)))
    return left, top, side


def describe(landmarks: Sequence[Sequence[float]] | None, face_fraction: float, pixels: np.ndarray, others: int) -> list[str]:
    """What the pipeline measured, in words (pose from the 5 landmarks, framing, colour, other people).

    Expression is not measured by this pipeline (the 5 ArcFace points cannot tell a smile), so it is not said.
    """
    words = []
    if landmarks is not None and len(landmarks) >= 3:
        (lx, _), (rx, _), (nx, _) = landmarks[0], landmarks[1], landmarks[2]
        eyes = max(abs(rx - lx), 1e-6)
        yaw = (nx - (lx + rx) / 2) / eyes  # > 0: nose towards the image's right
        words.append("facing the camera" if abs(yaw) < 0.15 else f"face turned to the {'right' if yaw > 0 else 'left'}")
    words.append("close-up" if face_fraction > 0.55 else "head and shoulders")
    chroma = np.abs(pixels.astype(np.int16) - pixels.mean(axis=2, keepdims=True)).mean()
    if chroma < 3.0:
        words.append("black and white photo")
    if others == 1:
        words.append("another person nearby")
    elif others > 1:
        words.append(f"{others} other people nearby")
    return words


def caption(template: str, trigger: str, class_word: str, details: Sequence[str], caption_file: str = "") -> str:
    """Fill the template; empty pieces leave no dangling commas."""
    text = template.format(trigger=trigger, class_word=class_word, details=", ".join(details), caption_file=caption_file.strip())
    text = re.sub(r"\s*,(\s*,)+", ",", text)
    return re.sub(r"\s+", " ", text).strip(" ,")


def mirrored(text: str) -> str:
    """The caption of the mirrored image: left and right swap."""
    return re.sub(r"\b(left|right)\b", lambda m: "right" if m.group(1) == "left" else "left", text)


def build_diffusion_view(
    dataset_manifest: Mapping[str, Any],
    out_root: Path,
    settings: DiffusionCropSettings,
    *,
    resolution: int,
    trigger: str,
    class_word: str,
    split: str = "train",
) -> DiffusionView:
    """Build (or reuse) the LoRA view of the curated dataset whose manifest is `dataset_manifest` (its `split` items:
    "train" to train on, "val" for the held-out loss)."""
    from facecraft_pipeline.imaging import load_rgb

    records, excluded = [], []
    staging = staging_dir(Path(out_root))
    try:
        for item in sorted(dataset_manifest["images"], key=lambda r: r["file"]):
            if item.get("split") != split:
                continue
            photo_id = item.get("photo_id", "")
            reason, made = _one(item, settings, resolution, trigger, class_word, staging, load_rgb)
            if reason:
                excluded.append({"photo_id": photo_id, "photo_sha256": item.get("photo_sha256"), "reason": reason})
            else:
                records.append(made)
        body = {"format": FORMAT_VERSION, "curated_digest": dataset_manifest.get("digest"), "resolution": resolution,
                **({"split": split} if split != "train" else {}),
                "trigger": trigger, "class_word": class_word, "settings": asdict(settings),
                "images": sorted(records, key=lambda r: r["file"]), "excluded": excluded}
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    digest = manifest_digest(body)
    final = Path(out_root) / digest[:16]
    published = publish(staging, final, body, digest)
    manifest = read_manifest(final)
    examples = tuple(
        Example(final / r["file"], r["caption"], r["flipped_caption"], tuple(r["face_box"]),  # type: ignore[arg-type]
                tuple(r["original_size"]), r["photo_id"],  # type: ignore[arg-type]
                tuple(tuple(b) for b in r.get("other_faces", [])))  # type: ignore[misc]
        for r in manifest["images"])
    return DiffusionView(digest, final, examples, tuple((e["photo_id"], e["reason"]) for e in manifest["excluded"]),
                         final / "manifest.json", reused=not published)


def _one(item, settings, resolution, trigger, class_word, staging, load_rgb) -> tuple[str, dict[str, Any]]:
    """("", record) for a written crop, or (why it was left out, {})."""
    if item.get("origin", "owner") != "owner":
        return "not the owner (external image)", {}
    if not item.get("box"):
        return "no face box recorded", {}
    if not item.get("photo_path"):
        return "source photo not recorded (a curated dataset from before photo paths were kept: materialize it again)", {}
    path = Path(item["photo_path"])
    if not path.is_file():
        return "source photo not found", {}
    if _sha256(path) != item["photo_sha256"]:
        return "source photo changed since curation", {}
    try:
        pixels = load_rgb(path)
    except (OSError, ValueError) as error:
        return f"unreadable photo: {error}", {}
    height, width = pixels.shape[:2]
    left, top, side = crop_window(item["box"], width, height, settings.context, settings.shift)
    scale = resolution / side
    if scale > settings.max_upscale:
        return (f"face too small for the LoRA view: a {side} px region would be enlarged x{scale:.2f} to {resolution} px "
                f"(limit x{settings.max_upscale:g})"), {}
    region = Image.fromarray(pixels[top:top + side, left:left + side])
    image = region if side == resolution else region.resize((resolution, resolution), Image.Resampling.LANCZOS)
    array = np.asarray(image)
    x1, y1, x2, y2 = item["box"]
    face_box = [round((x1 - left) * scale, 2), round((y1 - top) * scale, 2), round((x2 - left) * scale, 2), round((y2 - top) * scale, 2)]
    landmarks = item.get("landmarks")
    details = describe(landmarks, max(x2 - x1, y2 - y1) / side, array, int(item.get("photo_faces", 1)) - 1) if settings.describe else []
    text = caption(settings.caption_template, trigger, class_word, details, _caption_file(path, settings.captions_dir))
    relative = f"images/{item['photo_sha256'][:12]}-{hashlib.sha256(str(item['box']).encode()).hexdigest()[:8]}.png"
    (staging / "images").mkdir(exist_ok=True)
    image.save(staging / relative, format="PNG")
    return "", {"file": relative, "photo_id": item.get("photo_id", ""), "photo_sha256": item["photo_sha256"],
                "crop_sha256": item.get("crop_sha256"), "window": [left, top, side], "scale": round(scale, 4),
                "face_box": face_box, "original_size": [side, side], "caption": text, "flipped_caption": mirrored(text),
                "other_faces": other_faces_in_crop(item.get("photo_boxes", []), item["box"], left, top, side, scale),
                "pixels_sha256": hashlib.sha256(array.tobytes()).hexdigest()}


def _caption_file(photo: Path, captions_dir: str | None) -> str:
    candidate = Path(captions_dir) / f"{photo.stem}.txt" if captions_dir else photo.with_suffix(".txt")
    return candidate.read_text(encoding="utf-8").strip() if candidate.is_file() else ""


def _sha256(path: Path) -> str:
    from facecraft_pipeline.digest import sha256_file

    return sha256_file(path)
