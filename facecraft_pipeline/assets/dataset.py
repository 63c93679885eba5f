"""`curated_dataset`: the owner's crops, de-duplicated and split, published as an immutable folder."""


import dataclasses
import json

import dagster as dg
import pandas as pd

from facecraft_pipeline.assets.recipe import asset_recipe
from facecraft_pipeline.assets.tracking import asset_run, output, preview
from facecraft_pipeline.dataset.curate import CuratedDataset, CurateSettings, CurationItem, curate_dataset
from facecraft_pipeline.dataset.library import LibraryFaces, LibraryItem, write_library
from facecraft_pipeline.faces.crops_manifest import CropsManifest
from facecraft_pipeline.faces.identity import OwnerIdentity
from facecraft_pipeline.grids import make_grid
from facecraft_pipeline.resources import HomeResource, MlflowResource
from facecraft_pipeline.retries import final_unless_transient
from facecraft_pipeline.settings.dagster_config import to_settings


@asset_recipe("dataset", settings=CurateSettings, code_version="curated_dataset-3", kinds={"python"})
@final_unless_transient
def curated_dataset(
    context: dg.AssetExecutionContext,
    config: dg.Config,
    identity_clusters: OwnerIdentity,
    face_crops: CropsManifest,
    home: HomeResource,
    mlflow: MlflowResource,
) -> dg.Output[CuratedDataset]:
    """Training images of the owner; the folder's digest is the data version training keys on.

    Each image records its source photo's path and every face detected in that photo (from face_crops), so the
    LoRA view needs nothing but this dataset; the value carries identity_clusters' probe on to the trainers."""
    settings = to_settings(CurateSettings, config)
    photos = face_crops.processed_photos()  # photo sha256 -> (path, every face's box): from face_crops' store, not its rows
    owner = identity_clusters.clusters.owner_indices()
    if len(owner) == 0:
        raise dg.Failure(f"no owner cluster to curate: {identity_clusters.clusters.no_owner_reason}")
    items = [
        CurationItem(
            crop_path=face.crop_path,  # type: ignore[arg-type]
            crop_sha256=face.crop_sha256,  # type: ignore[arg-type]
            photo_id=face.photo_id,
            photo_sha256=face.photo_sha256,
            box=face.box,
            landmarks=face.landmarks,
            identity_distance=float(identity_clusters.clusters.owner_distances[i]),
            face_px=face.face_px,
            photo_path=photos[face.photo_sha256][0] if face.photo_sha256 in photos else None,
            photo_faces=max(len(photos[face.photo_sha256][1]), 1) if face.photo_sha256 in photos else 1,
            photo_boxes=photos[face.photo_sha256][1] if face.photo_sha256 in photos else (),
        )
        for i, face in ((int(i), identity_clusters.faces[int(i)]) for i in owner)
    ]
    embeddings = identity_clusters.embeddings[owner]
    inputs = {"identity_clusters": identity_clusters.digest, "face_crops": face_crops.digest}
    with asset_run(context, home, mlflow, inputs=inputs, params=settings.__dict__) as run:
        dataset = curate_dataset(items, home.home().dir("datasets"), settings, embeddings, identity_clusters.probe)
        dataset = dataclasses.replace(dataset, library=_library(identity_clusters, dataset, home.home().dir("datasets", "library"),
                                                                settings.resolution))
        run.log_metrics({**dataset.counts, **dataset.library.counts()})
        run.log_artifact(dataset.manifest_path)
        run.log_dataset("curated_dataset", dataset.digest, str(dataset.folder), dict(dataset.counts))
        sample = home.home().dir("datasets") / "preview.png"
        make_grid(dataset.train_paths[:36], cell=64).save(sample)
        excluded = pd.DataFrame([{"photo": item.photo_id, "reason": reason} for item, reason in dataset.excluded])
        return output(
            dataset,
            run,
            dataset.version,
            {
                "summary": f"{len(dataset.train_paths)} train / {len(dataset.val_paths)} val images at {settings.resolution}px"
                + (" (reused)" if dataset.reused else ""),
                **{k: int(v) for k, v in dataset.counts.items()},
                **dataset.library.counts(),
                "reused": dataset.reused,
                "excluded": dg.MetadataValue.md(excluded.to_markdown(index=False) if len(excluded) else "none"),
                "notes": "\n".join(dataset.notes) or "none",
                "preview": preview(sample),
                "location": dg.MetadataValue.path(str(dataset.folder)),
            },
        )


def _library(identity: OwnerIdentity, dataset: CuratedDataset, root, resolution: int) -> LibraryFaces:
    """Every kept face of every person with its embedding, for identity-conditioned GANs; the owner's held-out crops stay out."""
    records = json.loads(dataset.manifest_path.read_text())["images"]
    held_out = {r["crop_sha256"] for r in records if r["split"] == "val"}
    labels = identity.clusters.labels.tolist()
    items = [LibraryItem(face.crop_path, face.crop_sha256, int(label), vector)  # type: ignore[arg-type]
             for face, label, vector in zip(identity.faces, labels, identity.embeddings, strict=True)
             if face.crop_path is not None and face.crop_sha256 not in held_out]
    owner = identity.clusters.owner_label
    return write_library(items, root, resolution, -2 if owner is None else int(owner))
