"""Do the GAN recipes draw the owner from a real photo library? Train one recipe on a data root that
has been through `curated_dataset`, then judge its samples with dlib directly.

    FACECRAFT_SOURCE=local FACECRAFT_PHOTOS_DIR=../shared/data/real-library/photos FACECRAFT_HOME=/tmp/rl \\
      facecraft materialize --select 'photos*' ...                  # once, up to curated_dataset
    python benchmarks/gan_real_library.py --home /tmp/rl --owner-photos ../shared/data/real-library/reference \\
      --recipe demo-gan [--set run.steps=1500 ...] [--results benchmarks/results/gan_real_library.md]

Faces are counted by the pipeline's own probe (dlib HOG with its score floor on the sample upscaled
to 256 px: what the gallery counts). The owner is judged independently of the pipeline's scorer:
dlib's HOG detector (upsample 1, no score floor) on the upscaled sample, dlib's 5-point shape and its
own `compute_face_descriptor` (dlib's chip alignment). "Owner" = Euclidean distance < 0.6 (dlib's
same-person rule) to one of the owner's labelled photos, embedded the same way. Diversity = mean pairwise distance between the samples'
descriptors. For an identity-conditioned recipe it also reports, per person with >= 3 faces, the
share of samples conditioned on them that the judge puts nearest that person (and within 0.6).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package, not an installed one

from facecraft_pipeline.dataset.library import LibraryItem, write_library  # noqa: E402
from facecraft_pipeline.faces.crops_store import STORE_NAME, CropsStore  # noqa: E402
from facecraft_pipeline.faces.model_files import RESNET_EMBEDDING, SHAPE_5, dlib_model_path  # noqa: E402
from facecraft_pipeline.faces.probe import IdentityProbe  # noqa: E402
from facecraft_pipeline.gan import GanSettings, train_gan  # noqa: E402
from facecraft_pipeline.gan.checkpoint import load_generator  # noqa: E402
from facecraft_pipeline.gan.conditioning import IdentityCondition, conditioning_quality  # noqa: E402
from facecraft_pipeline.gan.sample import fixed_latents, render  # noqa: E402
from facecraft_pipeline.settings import replace_path  # noqa: E402
from facecraft_pipeline.settings.profiles import profile_settings  # noqa: E402

SAME_PERSON = 0.6
RECIPES = {"demo-gan": "gan_checkpoint", "demo-wgan-gp": "wgan_gp_checkpoint"}


class DlibJudge:
    """dlib's own path, as face_recognition uses it: HOG, 5 points, dlib's chip + ResNet descriptor."""

    def __init__(self, side: int = 256) -> None:
        import dlib

        self.side = side
        self.detector = dlib.get_frontal_face_detector()
        self.shape = dlib.shape_predictor(str(dlib_model_path(SHAPE_5)))
        self.net = dlib.face_recognition_model_v1(str(dlib_model_path(RESNET_EMBEDDING)))

    def describe(self, image: Image.Image, upscale: bool = True) -> np.ndarray | None:
        image = image.convert("RGB")
        if upscale and image.width < self.side:
            image = image.resize((self.side, self.side * image.height // image.width), Image.Resampling.LANCZOS)
        array = np.asarray(image)
        boxes = self.detector(array, 1)
        if not boxes:
            return None
        box = max(boxes, key=lambda b: b.area())
        return np.asarray(self.net.compute_face_descriptor(array, self.shape(array, box)), np.float32)


def judge(images: list[Image.Image], judge: DlibJudge, owner: np.ndarray, probe: IdentityProbe | None = None) -> dict[str, float]:
    """faces: found by the pipeline's own probe (what the gallery counts: HOG with its score floor); owner and
    diversity: dlib's own path, on every sample it finds a face in."""
    found = [v for v in (judge.describe(i) for i in images) if v is not None]
    faces = sum(p.faces > 0 for p in (probe or IdentityProbe()).probe(images))
    out = {"faces": faces, "faces_dlib": len(found), "samples": len(images), "owner": 0, "diversity": float("nan")}
    if found:
        vectors = np.stack(found)
        nearest = np.linalg.norm(vectors[:, None] - owner[None], axis=2).min(1)
        out["owner"] = int((nearest < SAME_PERSON).sum())
        if len(vectors) > 1:
            pair = np.linalg.norm(vectors[:, None] - vectors[None], axis=2)
            out["diversity"] = float(pair[np.triu_indices(len(vectors), 1)].mean())
    return out


def training_sets(home: Path) -> tuple[list[Path], list[Path], dict]:
    """Owner train/val paths of the newest curated dataset, and the identity data of the library."""
    manifest = max((home / "datasets").glob("*/manifest.json"), key=lambda p: p.stat().st_mtime)
    records = json.loads(manifest.read_text())["images"]
    train = [manifest.parent / r["file"] for r in records if r["split"] == "train"]
    val = [manifest.parent / r["file"] for r in records if r["split"] == "val"]
    held_out = {r["crop_sha256"] for r in records if r["split"] == "val"}
    faces = {f.crop_sha256: f for f in CropsStore(home / "faces" / STORE_NAME).faces(kept_only=True)}
    with np.load(home / "identity" / "embeddings.npz") as data:
        labels, vectors, shas = data["labels"], data["embeddings"], [str(s) for s in data["crop_sha256"]]
        owner_label = int(labels[int(np.argmin(data["owner_distances"]))])
    items = [LibraryItem(home / "faces" / faces[s].crop_path, s, int(label), v)
             for s, label, v in zip(shas, labels, vectors) if s in faces and s not in held_out]
    return train, val, {"items": items, "owner": owner_label, "dataset": manifest.parent}


def settings_for(recipe: str, sets: list[str]) -> GanSettings:
    settings = profile_settings(GanSettings, RECIPES[recipe], "demo", kind="wgan_gp" if recipe.endswith("wgan-gp") else "dcgan")
    for item in sets:
        name, _, value = item.partition("=")
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        settings = replace_path(settings, name, parsed)
    return settings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="data root that has been through curated_dataset")
    parser.add_argument("--owner-photos", type=Path, nargs="+", required=True, help="labelled photos (or folders) of the owner")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="demo-gan")
    parser.add_argument("--set", action="append", default=[], help="dotted GanSettings field=value (JSON values)")
    parser.add_argument("--name", default=None, help="row name in the results (default: recipe + sets)")
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--out", type=Path, default=Path("/tmp/gan_real_library"))
    parser.add_argument("--results", type=Path, default=None, help="append the rows to this Markdown file")
    parser.add_argument("--photos-added", type=int, default=0,
                        help="warm start check: first train without this many owner images, then with them warm-started and cold")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    settings = settings_for(args.recipe, args.set)
    train, val, library = training_sets(args.home)
    dlib_judge = DlibJudge()
    owner_files = [p for q in args.owner_photos for p in (sorted(q.iterdir()) if q.is_dir() else [q])]
    owner = np.stack([v for v in (dlib_judge.describe(Image.open(p), upscale=False) for p in owner_files) if v is not None])
    kwargs: dict = {}
    paths, faces = train, None
    if settings.condition == "identity":
        faces = write_library(library["items"], args.out / "library", settings.resolution, library["owner"])
        paths = list(faces.paths)
        kwargs = {"identity": IdentityCondition(torch.from_numpy(faces.embeddings), torch.from_numpy(faces.owner_embeddings))}
    name = args.name or " ".join([args.recipe, *args.set])
    runs = [(name, settings)]
    if args.photos_added:
        if settings.condition == "identity":
            raise SystemExit("--photos-added is for the owner-only recipes")
        before = train_gan(paths[: -args.photos_added], args.out / "models", settings, progress=[lambda line: print(line, flush=True)])
        print(f"before the new photos: {len(paths) - args.photos_added} images, {before.seconds:.0f} s, {before.folder}")
        runs = [(f"{name} warm (+{args.photos_added} photos)", settings),
                (f"{name} cold (+{args.photos_added} photos)", replace_path(settings, "warm_start", False))]
    rows = []
    for run_name, run_settings in runs:
        rows += train_and_judge(run_name, run_settings, paths, args, kwargs, dlib_judge, owner, len(train),
                                faces if settings.condition == "identity" else None)
    if args.results:
        with open(args.results, "a", encoding="utf-8") as handle:
            for r in rows:
                cond = r.get("conditioning")
                cond_text = ", ".join(f"{k} {v}" for k, v in cond.items()) if cond else ""
                handle.write(f"| {r['recipe']} | {r['step']} | {r['faces']}/{r['samples']} | {r['owner']}/{r['samples']} | "
                             f"{r['diversity']:.3f} | {r['train_images']} ({r['owner_train']} owner) | {r['minutes']} | {cond_text} |\n")
    return 0


def rejudge(folders: list[Path], owner_photos: list[Path], samples: int) -> None:
    """Judge the kept checkpoints of finished run folders again (same seeds), without training."""
    dlib_judge, probe = DlibJudge(), IdentityProbe()
    owner = np.stack([v for v in (dlib_judge.describe(Image.open(p), upscale=False) for p in owner_photos) if v is not None])
    for folder in folders:
        for checkpoint in sorted((folder / "checkpoints").glob("checkpoint-*.pt")):
            generator = load_generator(checkpoint)
            scores = judge(render(generator, fixed_latents(generator, samples, 12345)), dlib_judge, owner, probe)
            print(json.dumps({"run": folder.name, "checkpoint": checkpoint.name, **scores}), flush=True)


def train_and_judge(name: str, settings: GanSettings, paths: list[Path], args, kwargs: dict, dlib_judge: DlibJudge, owner: np.ndarray,
                    owner_train: int, faces) -> list[dict]:
    started = time.perf_counter()
    result = train_gan(paths, args.out / "models", settings, progress=[lambda line: print(line, flush=True)], **kwargs)
    minutes = (time.perf_counter() - started) / 60
    rows = []
    for step, checkpoint in result.checkpoints:
        generator = load_generator(checkpoint)
        scores = judge(render(generator, fixed_latents(generator, args.samples, 12345)), dlib_judge, owner)
        row = {"recipe": name, "step": step, **scores, "train_images": len(paths), "owner_train": owner_train,
               "minutes": round(result.seconds / 60, 2)}
        if faces is not None:
            shares = conditioning_quality(generator, faces.faces_by_person(3), lambda images: [dlib_judge.describe(i) for i in images],
                                          args.samples)
            row["conditioning"] = {name: f"{round(share * args.samples)}/{args.samples}" for name, share in shares.items()}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"wall {minutes:.1f} min; run folder {result.folder}")
    return rows


if __name__ == "__main__":
    sys.exit(main())
