"""`face_crops` and `identity_clusters`: aligned faces from the photos, then who is the owner."""


from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from facecraft_pipeline.assets.recipe import asset_recipe
from facecraft_pipeline.assets.tracking import asset_run, output, preview
from facecraft_pipeline.faces.cluster import ClusterSettings
from facecraft_pipeline.faces.contact_sheet import contact_sheets
from facecraft_pipeline.faces.crops_manifest import CropsManifest
from facecraft_pipeline.faces.crops_update import update_crops
from facecraft_pipeline.faces.embed import EmbeddingCache
from facecraft_pipeline.faces.embedder_settings import EmbedderSettings
from facecraft_pipeline.faces.extract import FaceCropSettings, PhotoInput, extract_faces
from facecraft_pipeline.faces.retinaface_errors import WeightsNotFoundError
from facecraft_pipeline.faces.identity import OwnerIdentity, identify_owner, reference_vectors
from facecraft_pipeline.faces.probe import IdentityProbe, ProbeSpec
from facecraft_pipeline.grids import make_grid
from facecraft_pipeline.settings import to_dict
from facecraft_pipeline.resources import ComputeResource, HomeResource, MlflowResource, PhotoSourceResource
from facecraft_pipeline.retries import final_unless_transient
from facecraft_pipeline.settings.dagster_config import to_settings
from facecraft_pipeline.sources.base import IMAGE_SUFFIXES, sha256_file
from facecraft_pipeline.sources.manifest import PhotoManifest
from facecraft_pipeline.sqlite_store import StoreError, library_lock

MAX_DECISION_ROWS = 200  # metadata shows the decisions of this run's photos up to this many rows; the store has all

IDENTITY_EXTRA = {  # identity_clusters' config beside ClusterSettings
    "embedder": (EmbedderSettings, None, "the identity embedder; every later comparison of faces uses the same one"),
    "owner_reference_dir": (str | None, None, "folder of photos of the owner; empty: the source's reference photos, else the largest cluster"),
    "owner_reference_photo_ids": (str | None, None, "comma-separated photo ids in the library that show the owner"),
}


@asset_recipe("faces", settings=FaceCropSettings, code_version="face_crops-2", kinds={"pytorch", "dlib"}, deps=["face_shards"])
@final_unless_transient
def face_crops(
    context: dg.AssetExecutionContext,
    config: dg.Config,
    photos: PhotoManifest,
    home: HomeResource,
    mlflow: MlflowResource,
    compute: ComputeResource,
) -> dg.Output[CropsManifest]:
    """Faces found, ArcFace-aligned and quality-checked; every photo accounted for; only new photos computed.

    The manifest lives in `faces/crops.sqlite` (`faces/manifest.json` points at it; `facecraft
    manifest faces` exports every row); what passes downstream is its handle. Photos that a backfill of
    `face_shards` already did are read from its per-photo cache, not decoded again.
    """
    settings = to_settings(FaceCropSettings, config)
    root = home.home().dir("faces")
    inputs = photos.usable_rows()  # (id, path, sha256): no object per photo
    with asset_run(context, home, mlflow, inputs={"photos": photos.digest}, params=to_dict(settings)) as run:
        try:
            with library_lock(home.home().dir("state", "lock"), "face_crops"):
                update = update_crops(inputs, root, settings, compute.torch_device())
        except WeightsNotFoundError as error:
            raise missing_weights(error) from error
        except StoreError as error:
            raise dg.Failure(description=str(error)) from error
        manifest = update.manifest
        manifest_path = root / "manifest.json"
        manifest.write_pointer(manifest_path)
        counts = manifest.counts
        run.log_metrics(counts)
        run.log_artifact(manifest_path)
        kept = update.part.kept_faces
        shown, rows = update.part.to_rows(MAX_DECISION_ROWS), update.part.row_count
        meta = {
            "summary": f"{counts['kept']} faces kept from {counts['photos']} photos "
            f"({counts['skipped']} skipped, {counts['failed']} failed, {counts['computed']} computed, {counts['from_cache']} cached)",
            **counts,
            "removed": update.removed,
            "reasons": dg.MetadataValue.json(manifest.reasons),
            "decisions": dg.MetadataValue.md(
                (pd.DataFrame(shown).to_markdown(index=False) if shown else "no photo was new to this run")
                + (f"\n\n{rows - len(shown)} more rows: `facecraft manifest faces`" if rows > len(shown) else "")
            ),
            "location": dg.MetadataValue.path(str(manifest_path)),
        }
        sheet = root / "preview.png"
        if kept:  # the faces this run found; else the sheet of the run that last found some
            make_grid([f.crop_path for f in kept[:36]], cell=64).save(sheet)
            run.log_picture(sheet)
        if counts["kept"] and sheet.is_file():
            meta["preview"] = preview(sheet)
        return output(manifest, run, manifest.digest, meta)


@asset_recipe("faces", settings=ClusterSettings, extra=IDENTITY_EXTRA, code_version="identity_clusters-2", kinds={"scikitlearn", "dlib"})
@final_unless_transient
def identity_clusters(
    context: dg.AssetExecutionContext,
    config: dg.Config,
    face_crops: CropsManifest,
    home: HomeResource,
    mlflow: MlflowResource,
    photo_source: PhotoSourceResource,
    compute: ComputeResource,
) -> dg.Output[OwnerIdentity]:
    """People found by clustering face embeddings; the owner picked by reference photos or size.

    Records the identity probe (face_crops' detector, this embedder) later stages measure generated faces with."""
    settings = to_settings(ClusterSettings, config)
    h = home.home()
    device = compute.torch_device()
    probe = ProbeSpec(_crop_settings(face_crops).detector_settings(), to_settings(EmbedderSettings, config.embedder))
    embedder = IdentityProbe(probe, device).embedder
    cache = EmbeddingCache(h.dir("cache", "embeddings"))
    with asset_run(context, home, mlflow, inputs={"face_crops": face_crops.digest}, params=config.model_dump()) as run:
        references, reference_note = _reference_vectors(config, face_crops, photo_source, h, embedder, cache, device)
        context.log.info(reference_note)
        identity = identify_owner(face_crops, embedder, cache, settings, references, probe)
        clusters = identity.clusters
        folder = h.dir("identity")
        identity.save(folder / "embeddings.npz")
        sheets = contact_sheets([f.crop_path for f in identity.faces], clusters.labels, clusters.owner_label) if identity.faces else {}
        meta: dict = {}
        for name, sheet in sheets.items():
            path = folder / f"sheet-{name}.png"
            sheet.save(path)
            run.log_picture(path, "contact_sheets")
            meta[f"sheet_{name}"] = preview(path)
        owner = clusters.owner
        summary = (
            f"{len(clusters.clusters)} people; owner by {clusters.owner_rule}: {owner.size} crops, margin {_rounded(clusters.owner_margin)}"
            if owner
            else f"no owner found: {clusters.no_owner_reason}"
        )
        run.log_metrics(
            {"clusters": len(clusters.clusters), "owner_crops": owner.size if owner else 0, "embedding_cache_misses": identity.cache_misses}
            | ({"owner_margin": clusters.owner_margin} if clusters.owner_margin is not None else {})
        )
        meta.update(
            {
                "summary": summary,
                "owner_rule": clusters.owner_rule,
                "owner_margin": _rounded(clusters.owner_margin),
                "owner_crops": owner.size if owner else 0,
                "reference_photos": reference_note,
                "embedding_cache": f"{identity.cache_hits} hits, {identity.cache_misses} computed",
                "clusters": dg.MetadataValue.md(pd.DataFrame(clusters.to_rows()).to_markdown(index=False)),
                "location": dg.MetadataValue.path(str(folder)),
            }
        )
        return output(identity, run, identity.digest, meta)


def _reference_vectors(config, face_crops: CropsManifest, source: PhotoSourceResource, home, embedder, cache, device):
    """The owner's reference vectors: from a folder of photos, from photo ids in the library, or the demo's."""
    vectors, notes = [], []
    folder = Path(config.owner_reference_dir).expanduser() if config.owner_reference_dir else None
    if folder is not None and not folder.is_dir():
        raise dg.Failure(f"owner_reference_dir {folder} is not a folder")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder else []
    if not paths and not config.owner_reference_photo_ids:
        paths = source.reference_photos(home)
    if paths:
        inputs = [PhotoInput(p.name, p, sha256_file(p)) for p in paths]
        found = reference_vectors(extract_faces(inputs, home.dir("faces-references"), _crop_settings(face_crops), device), embedder, cache)
        vectors.append(found)
        notes.append(f"{len(found)} faces from {len(paths)} reference photos")
    if config.owner_reference_photo_ids:
        ids = {part.strip() for part in config.owner_reference_photo_ids.split(",") if part.strip()}
        kept = tuple(f for f in face_crops.kept_faces if f.photo_id in ids)
        chosen = CropsManifest(face_crops.settings_key, face_crops.crop_size, face_crops.detector, (), kept, face_crops.settings)
        missing = ids - {f.photo_id for f in chosen.kept_faces}
        if missing:
            raise dg.Failure(f"owner_reference_photo_ids without a kept face in face_crops: {sorted(missing)}")
        vectors.append(reference_vectors(chosen, embedder, cache))
        notes.append(f"{len(ids)} reference photos from the library")
    if not vectors:
        return None, "no reference photos: the owner is the largest cluster"
    return np.concatenate(vectors), "; ".join(notes)


def missing_weights(error: WeightsNotFoundError) -> dg.Failure:
    """The one face-stage failure a user fixes by hand: what is missing, and how to fix it, in one line each."""
    return dg.Failure(description=error.reason, metadata={"hint": error.hint})


def _crop_settings(face_crops: CropsManifest) -> FaceCropSettings:
    """The settings face_crops recorded in its manifest (today's defaults for a manifest that recorded none)."""
    return FaceCropSettings.from_stored(face_crops.settings) if face_crops.settings else FaceCropSettings()


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
