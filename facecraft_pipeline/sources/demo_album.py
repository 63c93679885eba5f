"""The offline demo album: a phone-like photo library built from public-domain photos in our dependencies.

The owner is Grace Hopper (matplotlib's sample photo), the other person the astronaut Eileen Collins
(scikit-image's `astronaut`). Each appears in many reframings, scales, tilts, flips, lighting and JPEG
qualities, some stored sideways with an EXIF Orientation tag, beside photos with no face, photos of
both, and one truncated JPEG -- what a real library throws at the pipeline, with ground truth known.
Built byte-identically for a seed, so content hashes are stable and a rebuild changes nothing; then
synced exactly like a local folder.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypedDict, cast

import numpy as np
from PIL import ExifTags, Image, ImageEnhance, ImageFilter

from facecraft_pipeline.atomic import write_bytes_atomic, write_json_atomic
from facecraft_pipeline.sources.base import ChangeCheck, SyncReport
from facecraft_pipeline.sources.local import LocalFolderSource

DEMO_OWNER = "grace_hopper"
DEMO_OTHER = "eileen_collins"
TRUTH_FILE = ".facecraft_demo_album.json"  # hidden: never listed as a photo
BROKEN_NAME = "broken_truncated.jpg"

# Pixels stored for EXIF Orientation n are the upright image turned by this; exif_transpose undoes it.
_STORE_TURN = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
_PORTRAIT = ((480, 640), (600, 800), (720, 960))
_LANDSCAPE = ((640, 480), (800, 600), (960, 720))
_SQUARE = ((600, 600), (800, 800))
_BROKEN_TAKEN = datetime(2024, 5, 5, 12, 0, tzinfo=UTC)


class DemoPhotoTruth(TypedDict):
    """Ground truth for one album file: who is visible (in decodable pixels) and how it was made."""

    people: list[str]
    kind: str  # "owner", "other", "both", "no_face" or "broken"
    exif_orientation: int | None  # set when the pixels are stored turned and need EXIF to be upright
    note: str


@dataclass(frozen=True)
class _Face:
    """A source photo and where the face is in it (dlib's HOG box centre and width)."""

    image: Image.Image
    cx: float
    cy: float
    width: float


@dataclass(frozen=True)
class _Look:
    """How one photo of a face is framed, lit and stored."""

    size: tuple[int, int]
    face_frac: float  # face width / photo width
    pos: tuple[float, float]  # face centre as a fraction of the photo
    angle: float = 0.0
    flip: bool = False
    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    cast: tuple[float, float, float] = (1.0, 1.0, 1.0)
    blur: float = 0.0
    noise: float = 0.0
    fmt: str = "jpg"
    quality: int = 90
    exif_orientation: int | None = None
    extra: str = ""


def _sources() -> tuple[_Face, _Face]:
    from matplotlib import cbook
    from skimage import data

    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as hopper:
        owner = _Face(hopper.convert("RGB"), cx=273.0, cy=232.0, width=186.0)
    other = _Face(Image.fromarray(data.astronaut()), cx=220.0, cy=121.0, width=90.0)
    return owner, other


def _render(face: _Face, look: _Look, rng: np.random.Generator) -> tuple[Image.Image, float]:
    """Frame the face as `look` says, with one affine warp that never samples outside the source photo.

    Returns the photo and the face's width in it (larger than asked when the source is too small).
    """
    out_w, out_h = look.size
    src_w, src_h = face.image.size
    rad = np.deg2rad(look.angle)
    cos, sin = float(np.cos(rad)), float(np.sin(rad))
    fit = max((out_w * abs(cos) + out_h * abs(sin)) / src_w, (out_w * abs(sin) + out_h * abs(cos)) / src_h)
    scale = max(look.face_frac * out_w / face.width, fit * 1.01)  # output px per source px
    half_x = (out_w * abs(cos) + out_h * abs(sin)) / (2 * scale)
    half_y = (out_w * abs(sin) + out_h * abs(cos)) / (2 * scale)
    dx, dy = (look.pos[0] - 0.5) * out_w / scale, (look.pos[1] - 0.5) * out_h / scale
    centre_x = float(np.clip(face.cx - (cos * dx - sin * dy), half_x, src_w - half_x))
    centre_y = float(np.clip(face.cy - (sin * dx + cos * dy), half_y, src_h - half_y))
    a, b, d, e = cos / scale, -sin / scale, sin / scale, cos / scale
    c = centre_x - a * out_w / 2 - b * out_h / 2
    f = centre_y - d * out_w / 2 - e * out_h / 2
    image = face.image.transform((out_w, out_h), Image.Transform.AFFINE, (a, b, c, d, e, f), Image.Resampling.BILINEAR)
    if look.flip:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return _develop(image, look, rng), face.width * scale


def _develop(image: Image.Image, look: _Look, rng: np.random.Generator) -> Image.Image:
    """Lighting, colour cast, focus and sensor noise."""
    image = ImageEnhance.Brightness(image).enhance(look.brightness)
    image = ImageEnhance.Contrast(image).enhance(look.contrast)
    image = ImageEnhance.Color(image).enhance(look.saturation)
    if look.blur:
        image = image.filter(ImageFilter.GaussianBlur(look.blur))
    pixels = np.asarray(image, dtype=np.float32) * np.asarray(look.cast, dtype=np.float32)
    if look.noise:
        pixels += rng.normal(0.0, look.noise, size=pixels.shape).astype(np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8))


def _describe(look: _Look, face_px: float) -> str:
    parts = [f"{look.size[0]}x{look.size[1]}"]
    parts += [f"face ~{face_px:.0f}px wide"] if face_px else []
    parts += [f"tilt {look.angle:+.1f}deg"] if abs(look.angle) >= 0.5 else []
    parts += ["mirrored"] if look.flip else []
    if (look.brightness, look.contrast) != (1.0, 1.0):
        parts += [f"brightness {look.brightness:.2f}", f"contrast {look.contrast:.2f}"]
    parts += [look.extra] if look.extra else []
    parts += [f"JPEG q{look.quality}"] if look.fmt == "jpg" else ["PNG"]
    parts += [f"stored turned, EXIF orientation {look.exif_orientation}"] if look.exif_orientation else []
    return ", ".join(parts)


def _random_look(rng: np.random.Generator, special: str) -> _Look:
    """A plain phone snapshot with jitter, then the one special trait this photo demonstrates."""
    shape = rng.choice(3, p=[0.55, 0.25, 0.2])
    sizes = (_PORTRAIT, _LANDSCAPE, _SQUARE)[shape]
    look = _Look(
        size=sizes[int(rng.integers(len(sizes)))],
        face_frac=float(rng.uniform(0.24, 0.4)) if shape != 1 else float(rng.uniform(0.18, 0.28)),
        pos=(float(rng.uniform(0.4, 0.6)), float(rng.uniform(0.35, 0.5))),
        angle=float(rng.uniform(-6, 6)),
        flip=bool(rng.random() < 0.4),
        brightness=float(rng.uniform(0.85, 1.15)),
        contrast=float(rng.uniform(0.88, 1.12)),
        cast=tuple(float(v) for v in rng.uniform(0.96, 1.04, size=3)),  # type: ignore[arg-type]
        quality=int(rng.integers(60, 96)),
    )
    tilt = float(rng.uniform(10, 15)) * (1 if rng.random() < 0.5 else -1)
    specials: dict[str, _Look] = {
        "exif3": replace(look, exif_orientation=3),
        "exif6": replace(look, exif_orientation=6),
        "exif8": replace(look, exif_orientation=8),
        "png": replace(look, fmt="png"),
        "tilt": replace(look, angle=tilt),
        "dark": replace(look, brightness=float(rng.uniform(0.55, 0.65)), noise=6.0, extra="low light, noisy"),
        "bright": replace(look, brightness=float(rng.uniform(1.3, 1.4)), contrast=0.85, extra="overexposed"),
        "warm": replace(look, cast=(1.12, 1.0, 0.82), extra="warm cast"),
        "cool": replace(look, cast=(0.85, 0.97, 1.15), extra="cool cast"),
        "grey": replace(look, saturation=0.0, extra="black and white"),
        "blur": replace(look, blur=1.6, extra="out of focus"),
        "lowq": replace(look, quality=int(rng.integers(40, 50)), extra="heavily compressed"),
        "close": replace(look, face_frac=0.5, pos=(0.5, 0.48), extra="close-up"),
        "wide": replace(look, face_frac=0.16, extra="wide shot"),
        "thumb": replace(look, size=(320, 384), face_frac=0.1, extra="small export"),
    }
    return specials.get(special, look)


_OWNER_SPECIALS = (
    "exif6", "exif8", "exif3", "png", "png", "png", "tilt", "tilt", "tilt", "dark", "bright", "warm",
    "cool", "grey", "blur", "lowq", "close", "wide", "thumb",
)  # fmt: skip
_OTHER_SPECIALS = ("exif6", "png", "tilt", "tilt", "dark", "warm", "lowq", "close", "wide")


def _encode(image: Image.Image, look: _Look, taken: datetime) -> bytes:
    """JPEG with phone-like EXIF (or PNG); a stored-turned photo gets its Orientation tag."""
    buffer = io.BytesIO()
    if look.fmt == "png":
        image.save(buffer, "PNG", compress_level=1)
        return buffer.getvalue()
    if look.exif_orientation:
        image = image.transpose(_STORE_TURN[look.exif_orientation])
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "FaceCraft"
    exif[ExifTags.Base.Model] = "Demo Album"
    exif[ExifTags.Base.Orientation] = look.exif_orientation or 1
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = taken.strftime("%Y:%m:%d %H:%M:%S")
    image.save(buffer, "JPEG", quality=look.quality, exif=exif.tobytes())
    return buffer.getvalue()


def _both(owner: _Face, other: _Face, rng: np.random.Generator, owner_left: bool) -> tuple[Image.Image, _Look, float]:
    """Two people side by side: two portrait halves on one canvas."""
    half = (450, 600) if owner_left else (400, 560)
    looks = [replace(_random_look(rng, ""), size=half, face_frac=0.42, flip=False) for _ in range(2)]
    faces = [owner, other] if owner_left else [other, owner]
    canvas = Image.new("RGB", (half[0] * 2, half[1]))
    widths: list[float] = []
    for index, (face, look) in enumerate(zip(faces, looks, strict=True)):
        image, width = _render(face, look, rng)
        canvas.paste(image, (index * half[0], 0))
        widths.append(width)
    return canvas, replace(looks[0], size=canvas.size, extra="two people side by side"), min(widths)


def _no_face_photos() -> list[tuple[Image.Image, str]]:
    from matplotlib import cbook, colormaps
    from matplotlib.colors import LightSource
    from skimage import data

    chelsea = Image.fromarray(data.chelsea())
    dem = np.load(cbook.get_sample_data("jacksboro_fault_dem.npz", asfileobj=False))["elevation"]
    shade = LightSource(azdeg=315, altdeg=40).shade
    terrain = shade(dem, cmap=colormaps["gist_earth"], vert_exag=0.05, blend_mode="overlay")[..., :3]
    landscape = Image.fromarray((terrain * 255).round().astype(np.uint8)).resize((806, 688), Image.Resampling.BICUBIC)
    return [
        (Image.fromarray(data.coffee()), "a cup of coffee"),
        (chelsea.resize((676, 450), Image.Resampling.BICUBIC), "a cat (Chelsea): an animal face, not a person"),
        (Image.fromarray(data.rocket()), "a rocket on its launch pad"),
        (landscape, "aerial landscape (shaded relief)"),
    ]


def _album(seed: int) -> list[tuple[bytes, DemoPhotoTruth, str, datetime]]:
    """Every photo's bytes, truth, file suffix and capture time, in capture order."""
    rng = np.random.default_rng(seed)
    owner, other = _sources()
    made: list[tuple[Image.Image, _Look, DemoPhotoTruth]] = []

    def add(image: Image.Image, look: _Look, face_px: float, people: list[str], kind: str, what: str) -> None:
        note = f"{what}; {_describe(look, face_px)}"
        truth = DemoPhotoTruth(people=people, kind=kind, exif_orientation=look.exif_orientation, note=note)
        made.append((image, look, truth))

    for face, person, kind, count, specials in (
        (owner, DEMO_OWNER, "owner", 24, _OWNER_SPECIALS),
        (other, DEMO_OTHER, "other", 12, _OTHER_SPECIALS),
    ):
        for index in range(count):
            look = _random_look(rng, specials[index] if index < len(specials) else "")
            image, face_px = _render(face, look, rng)
            add(image, look, face_px, [person], kind, person)
    for owner_left in (True, False):
        image, look, face_px = _both(owner, other, rng, owner_left)
        order = [DEMO_OWNER, DEMO_OTHER] if owner_left else [DEMO_OTHER, DEMO_OWNER]
        add(image, look, face_px, order, "both", " and ".join(order) + " (left to right)")
    for image, what in _no_face_photos():
        fmt = "png" if "rocket" in what else "jpg"
        add(image, _Look(size=image.size, face_frac=0.0, pos=(0.5, 0.5), fmt=fmt, quality=88), 0.0, [], "no_face", what)

    shuffled = rng.permutation(len(made))
    start = datetime(2023, 4, 1, 9, 0, tzinfo=UTC)
    offsets = np.sort(rng.uniform(0, 400 * 24 * 3600, size=len(made)))
    album: list[tuple[bytes, DemoPhotoTruth, str, datetime]] = []
    for rank, position in enumerate(shuffled):
        image, look, truth = made[int(position)]
        taken = start + timedelta(seconds=int(offsets[rank]))
        truth["note"] = f"{truth['note']}; taken {taken:%Y-%m-%d %H:%M}"
        album.append((_encode(image, look, taken), truth, look.fmt, taken))
    return album


def _broken(owner: _Face, rng: np.random.Generator) -> bytes:
    """A JPEG cut off after its first quarter: even a tolerant decoder sees only the top, without the face."""
    look = _Look(size=(600, 800), face_frac=0.3, pos=(0.5, 0.72), quality=90)
    whole = _encode(_render(owner, look, rng)[0], look, _BROKEN_TAKEN)
    return whole[: len(whole) // 4]


def build_demo_album(folder: Path, seed: int = 0) -> dict[str, DemoPhotoTruth]:
    """Write the album into `folder` unless it is already there; returns its ground truth by file name."""
    folder = Path(folder)
    marker = folder / TRUTH_FILE
    if marker.exists():
        saved = json.loads(marker.read_text(encoding="utf-8"))
        if saved["seed"] != seed:
            raise ValueError(f"{folder} holds the demo album for seed {saved['seed']}, not {seed}")
        return demo_ground_truth(folder)
    truth: dict[str, DemoPhotoTruth] = {}
    for number, (payload, photo_truth, suffix, taken) in enumerate(_album(seed), start=1):
        name = f"IMG_{number:04d}.{suffix}"
        _write_photo(folder / name, payload, taken)
        truth[name] = photo_truth
    rng = np.random.default_rng(seed + 1)
    _write_photo(folder / BROKEN_NAME, _broken(_sources()[0], rng), _BROKEN_TAKEN)
    truth[BROKEN_NAME] = DemoPhotoTruth(
        people=[], kind="broken", exif_orientation=None,
        note="truncated JPEG (first quarter of the file): decoding fails, or shows only the top rows without a face",
    )  # fmt: skip
    write_json_atomic(marker, {"seed": seed, "photos": truth}, 0o600, fsync=True)
    return truth


def _write_photo(path: Path, payload: bytes, taken: datetime) -> None:
    """Write atomically and set mtime to the capture time, so the listing is the same on every build."""
    write_bytes_atomic(path, payload, 0o600, fsync=True)
    stamp = int(taken.timestamp()) * 1_000_000_000
    os.utime(path, ns=(stamp, stamp))


def demo_ground_truth(folder: Path) -> dict[str, DemoPhotoTruth]:
    """Who is in each file of a built album (FileNotFoundError if the album was never built there)."""
    saved = json.loads((Path(folder) / TRUTH_FILE).read_text(encoding="utf-8"))
    return {name: cast(DemoPhotoTruth, value) for name, value in saved["photos"].items()}


def demo_reference_photos(folder: Path) -> list[Path]:
    """The owner's reference photos (framed unlike any album photo), written into `folder`."""
    owner, _ = _sources()
    rng = np.random.default_rng(12345)
    looks = (
        _Look(size=(400, 400), face_frac=0.55, pos=(0.5, 0.5), quality=93),
        _Look(size=(540, 720), face_frac=0.33, pos=(0.47, 0.42), angle=3.0, brightness=1.06, quality=91),
        _Look(size=(500, 500), face_frac=0.4, pos=(0.52, 0.45), angle=-4.0, flip=True, contrast=1.1, quality=92),
    )
    paths: list[Path] = []
    for index, look in enumerate(looks, start=1):
        path = Path(folder) / f"reference_{index}.jpg"
        image, _ = _render(owner, look, rng)
        write_bytes_atomic(path, _encode(image, look, datetime(2022, 1, index, 10, 0, tzinfo=UTC)), 0o600, fsync=True)
        paths.append(path)
    return paths


class DemoAlbumSource:
    """The demo album as a photo source: built into `folder` on first use, then synced as a local folder.

    Once built (its hidden ground-truth file exists) the album is never rebuilt, so photos a person
    adds to or deletes from the folder to try the pipeline are synced like any other change.
    """

    def __init__(self, folder: Path, state_dir: Path, seed: int = 0) -> None:
        self.folder = Path(folder)
        self.seed = seed
        self._local = LocalFolderSource(self.folder, state_dir)
        self.description = f"demo-album:{self._local.folder} (seed {seed})"

    def sync(self) -> SyncReport:
        build_demo_album(self._local.folder, self.seed)
        return replace(self._local.sync(), source=self.description)

    def check_for_changes(self, cursor: str | None) -> ChangeCheck:
        """Builds the album first (once), so the first cursor already describes the real album."""
        build_demo_album(self._local.folder, self.seed)
        return self._local.check_for_changes(cursor)
