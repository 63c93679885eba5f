"""Asset checks: the promises each stage's output must keep, shown beside the asset in the UI."""


import json
import math

import dagster as dg
from safetensors.torch import load_file

from facecraft_pipeline.dataset.curate import CuratedDataset
from facecraft_pipeline.faces.identity import OwnerIdentity
from facecraft_pipeline.evaluation import Gallery
from facecraft_pipeline.gan import checkpoint_is_finite
from facecraft_pipeline.gan.settings import RECOMMENDED_IMAGES
from facecraft_pipeline.training import TrainResult


@dg.asset_check(asset="identity_clusters", blocking=True,
                description="An owner cluster exists (blocking: no owner, no training). One crop of the owner is enough to train.")
def owner_cluster_found(identity_clusters: OwnerIdentity) -> dg.AssetCheckResult:
    owner = identity_clusters.clusters.owner
    size = owner.size if owner else 0
    return dg.AssetCheckResult(
        passed=size >= 1,
        metadata={"owner_crops": size, "why_not": identity_clusters.clusters.no_owner_reason or ""},
    )


@dg.asset_check(asset="identity_clusters", description="Every owner crop lies within the contamination distance of the owner centroid.")
def owner_cluster_not_contaminated(identity_clusters: OwnerIdentity) -> dg.AssetCheckResult:
    clusters = identity_clusters.clusters
    far = clusters.contamination()
    return dg.AssetCheckResult(
        passed=clusters.owner is not None and not far,
        metadata={
            "threshold": clusters.contamination_distance,
            "outliers": [identity_clusters.faces[i].photo_id for i in far],
            "max_distance": float(max((clusters.owner_distances[i] for i in clusters.owner_indices()), default=math.nan)),
        },
    )


@dg.asset_check(asset="curated_dataset", blocking=True, description="At least one training image of the owner (blocking: none, no training).")
def dataset_big_enough(curated_dataset: CuratedDataset) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=len(curated_dataset.train_paths) >= 1,
        metadata={"train": len(curated_dataset.train_paths), "val": len(curated_dataset.val_paths)},
    )


@dg.asset_check(asset="curated_dataset", description=f"At least {RECOMMENDED_IMAGES} training images of the owner, the recommended size "
                                                   "(warns: fewer still train, and the GANs mostly reproduce them).")
def dataset_recommended_size(curated_dataset: CuratedDataset) -> dg.AssetCheckResult:
    train = len(curated_dataset.train_paths)
    return dg.AssetCheckResult(
        passed=train >= RECOMMENDED_IMAGES, severity=dg.AssetCheckSeverity.WARN,
        metadata={"train": train, "recommended": RECOMMENDED_IMAGES,
                  "library_faces": len(curated_dataset.library.paths) if curated_dataset.library else 0},
    )


def _finite_check(asset: str):
    @dg.asset_check(asset=asset, name="checkpoint_is_finite", description="No NaN or inf in any saved tensor.")
    def check(result: TrainResult) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=checkpoint_is_finite(result.artifact("checkpoint")))

    return check


def _faces_check(asset: str):
    @dg.asset_check(asset=asset, name="samples_show_faces",
                    description="dlib finds a face in the generated samples at the last quality score (warns; needs quality_every).")
    def check(result: TrainResult) -> dg.AssetCheckResult:
        log = result.folder / "quality.jsonl"
        rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []
        last = rows[-1] if rows else {}
        return dg.AssetCheckResult(
            passed=bool(last.get("faces_found", 0) > 0), severity=dg.AssetCheckSeverity.WARN,
            metadata={"scored_at_step": last.get("step", "not scored"), **{k: float(v) for k, v in last.items() if k != "step"}},
        )

    return check


LORA_HEADER_KEYS = ("lora_adapter_metadata", "facecraft.base_model", "facecraft.trigger", "facecraft.dataset_digest",
                    "ss_network_dim", "ss_network_alpha")


@dg.asset_check(asset="lora_weights", description="Both LoRA files (diffusers and kohya) load, hold LoRA tensors, all finite, "
                                                "and carry the adapter config and provenance in their headers.")
def lora_weights_load(lora_weights: TrainResult) -> dg.AssetCheckResult:
    from safetensors import safe_open

    files = {name: lora_weights.artifacts[name] for name in ("weights", "kohya_weights") if name in lora_weights.artifacts}
    tensors = {name: load_file(str(path)) for name, path in files.items()}
    finite = all(bool(t.float().isfinite().all()) for group in tensors.values() for t in group.values())
    with safe_open(str(files["weights"]), "pt") as handle:
        header = handle.metadata() or {}
    missing = [k for k in LORA_HEADER_KEYS if k not in header]
    return dg.AssetCheckResult(
        passed=len(files) == 2 and all(tensors.values()) and finite and not missing,
        metadata={"tensors": len(tensors.get("weights", {})), "kohya_tensors": len(tensors.get("kohya_weights", {})),
                  "missing_header_keys": ", ".join(missing) or "none"},
    )


@dg.asset_check(
    asset="sample_galleries",
    description="The champion's generated faces resemble the owner more than other people's real faces do "
                "(its identity score is above the other-people baseline, measured with the same embedder).",
)
def identity_score_floor(sample_galleries: Gallery) -> dg.AssetCheckResult:
    entry = sample_galleries.champion_entry
    floor = sample_galleries.baselines.others.identity_mean
    ceiling = sample_galleries.baselines.owner.identity_mean
    identity = entry.score.identity_mean if entry else None
    passed = identity is not None and floor is not None and identity > floor
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "champion": entry.score.name if entry else "none",
            "identity": identity if identity is not None else "no faces",
            "floor_other_people": floor if floor is not None else "no other people",
            "ceiling_owner": ceiling if ceiling is not None else "no held-out photos",
            "vs_baselines": entry.relative if entry and entry.relative is not None else "n/a",
            "embedder": sample_galleries.baselines.embedder,
            "why": sample_galleries.champion_reason,
        },
    )


CHECKS = [
    owner_cluster_found,
    owner_cluster_not_contaminated,
    dataset_big_enough,
    dataset_recommended_size,
    _finite_check("gan_checkpoint"),
    _finite_check("wgan_gp_checkpoint"),
    _faces_check("gan_checkpoint"),
    lora_weights_load,
    identity_score_floor,
]
