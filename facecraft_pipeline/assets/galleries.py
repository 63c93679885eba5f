"""`sample_galleries`: the evaluation sweep over every kept checkpoint, scored against the owner's held-out photos."""


import dagster as dg

from facecraft_pipeline.assets.recipe import asset_recipe
from facecraft_pipeline.assets.tracking import asset_run, output, preview
from facecraft_pipeline.automation import GALLERIES_WHEN_INPUTS_CHANGE
from facecraft_pipeline.dataset.curate import CuratedDataset
from facecraft_pipeline.digest import sha256_file
from facecraft_pipeline.evaluation import (Gallery, GallerySettings, Reference, Scorer, compute_baselines, gan_candidates,
                                           lora_candidates, owner_photos, run_sweep)
from facecraft_pipeline.evaluation.html import table_rows
from facecraft_pipeline.explorer import explorer_url
from facecraft_pipeline.faces.identity import OwnerIdentity
from facecraft_pipeline.faces.probe import IdentityProbe
from facecraft_pipeline.lora import base_model_of
from facecraft_pipeline.mlflow_store import CHAMPION, GAN_MODEL, LORA_MODEL, WGAN_GP_MODEL, ModelUri, ScoredModel
from facecraft_pipeline.resources import ComputeResource, HomeResource, MlflowResource
from facecraft_pipeline.retries import final_unless_transient
from facecraft_pipeline.settings import help_text
from facecraft_pipeline.settings.dagster_config import to_settings
from facecraft_pipeline.training import TrainResult

PROMPTS_AS_LIST = {"prompts": (list[str], list(GallerySettings().prompts), help_text(GallerySettings, "prompts"))}
REGISTERED = {"gan": GAN_MODEL, "wgan_gp": WGAN_GP_MODEL, "lora": LORA_MODEL}
ASSET_OF = {"gan": "gan_checkpoint", "wgan_gp": "wgan_gp_checkpoint", "lora": "lora_weights"}
FINAL = {"gan": "checkpoint", "wgan_gp": "checkpoint", "lora": "weights"}


@asset_recipe(
    "evaluation", pool="accelerator", settings=GallerySettings, fixed=("prompts",), extra=PROMPTS_AS_LIST,
    code_version="sample_galleries-3",
    kinds={"pytorch"},
    automation_condition=GALLERIES_WHEN_INPUTS_CHANGE,
)
@final_unless_transient
def sample_galleries(
    context: dg.AssetExecutionContext,
    config: dg.Config,
    gan_checkpoint: TrainResult,
    wgan_gp_checkpoint: TrainResult,
    lora_weights: TrainResult,
    identity_clusters: OwnerIdentity,
    curated_dataset: CuratedDataset,
    home: HomeResource,
    mlflow: MlflowResource,
    compute: ComputeResource,
) -> dg.Output[Gallery]:
    """Every kept checkpoint drawn with fixed seeds (and prompts), scored with the identity probe identity_clusters
    recorded (face_crops' detector, its embedder) against the owner's held-out photos, next to owner/other-people
    baselines; champion, HTML gallery, MLflow metrics."""
    settings = to_settings(GallerySettings, config)
    device = compute.torch_device()
    if identity_clusters.owner_centroid is None:
        raise dg.Failure("no owner cluster: nothing to score generated faces against")
    probe, detector_source = _probe(identity_clusters, settings, device)
    photos = owner_photos(identity_clusters, curated_dataset, probe.embedder.same_person_distance)
    baselines = compute_baselines(photos)
    reference = _reference(context, photos)
    results = {"gan": gan_checkpoint, "wgan_gp": wgan_gp_checkpoint, "lora": lora_weights}
    candidates = (gan_candidates("gan", gan_checkpoint, device) + gan_candidates("wgan_gp", wgan_gp_checkpoint, device)
                  + lora_candidates("lora", lora_weights, device))
    base = base_model_of(lora_weights)
    honest = " Base model is tiny and random: its images are noise." if base.is_tiny_random else ""
    notes = {"gan": f"DCGAN, {gan_checkpoint.steps} steps", "wgan_gp": f"WGAN-GP, {wgan_gp_checkpoint.steps} steps",
             "lora": f"LoRA on {base.description}"}
    prompts = {"lora": list(settings.resolved_prompts(lora_weights.info.settings.get("instance_prompt", "")))}
    digests = {name: sha256_file(result.artifact(FINAL[name])) for name, result in results.items()}
    upstream = {ASSET_OF[name]: digest for name, digest in digests.items()} | {
        "identity_clusters": identity_clusters.digest, "curated_dataset": curated_dataset.digest}
    with asset_run(context, home, mlflow, inputs=upstream, params=config.model_dump()) as run:
        lineage = mlflow.lineage(home.home())
        training_runs = {name: _run_id(lineage, ASSET_OF[name], digest) for name, digest in digests.items()}
        facts = {"dataset_version": curated_dataset.digest, "identity_clusters": identity_clusters.digest,
                 "created_by": {"dagster_run_id": context.run.run_id, "mlflow_run_id": run.run_id},
                 "models": {name: {"run_folder": str(result.folder), "run_key": result.key, "steps": result.steps,
                                   "mlflow_run_id": training_runs[name] or "unknown"} for name, result in results.items()}}
        scorer = Scorer(probe, reference, detector_source)
        gallery = run_sweep(candidates, home.home().dir("galleries"), settings, scorer, baselines, facts, notes, prompts,
                            cache_dir=home.home().dir("cache", "evaluation"))
        context.log.info(f"sweep: {gallery.computed} checkpoints scored, {gallery.cached} from the cache")
        for entry in gallery.entries:  # one chart per metric: identity over training steps
            run.log_metrics(entry.score.as_metrics(), step=entry.score.step)
        run.log_metrics({"baseline_owner_identity": baselines.owner.identity_mean or 0.0,
                         "baseline_others_identity": baselines.others.identity_mean or 0.0})
        for path in (gallery.json_path, gallery.report):
            run.log_artifact(path, "gallery")
        run.log_picture(gallery.html, "gallery")
        champion = gallery.champion
        winner = None if champion is None else ScoredModel(REGISTERED[champion.model], results[champion.model].folder,
                                                           digests[champion.model], training_runs[champion.model])
        alias = run.move_champion_alias(list(REGISTERED.values()), winner, champion.step if champion else None,
                                        gallery.champion_reason)
        context.log.info(alias)
        meta = _metadata(gallery, baselines, scorer.detector_facts, reference, alias, base.description, honest)
        return output(gallery, run, gallery.digest, meta)


def _metadata(gallery: Gallery, baselines, detector_facts: dict, reference: Reference, alias: str, base: str, honest: str) -> dict:
    """What the Dagster UI shows: the score table, baselines, grids, the champion and where to look."""
    champion = gallery.champion
    meta: dict = {"reused": gallery.reused, "computed_checkpoints": gallery.computed, "cached_checkpoints": gallery.cached,
                  "scores": _table(gallery), "embedder": baselines.embedder, "detector": detector_facts["source"],
                  "reference": reference.description,
                  "baseline_owner_identity": _num(baselines.owner.identity_mean),
                  "baseline_others_identity": _num(baselines.others.identity_mean)}
    for model in gallery.models:
        meta[f"grid_{model.name}"] = preview(model.grid)
    if gallery.champion_entry is not None:
        meta["champion_grid"] = preview(gallery.champion_entry.grid)
    meta.update(
        {
            "summary": f"champion: {champion.model + ' step ' + str(champion.step) if champion else 'none'} "
                       f"({gallery.champion_reason}).{honest}",
            "champion": f"{champion.model}@{champion.step}" if champion else "none",
            "champion_reason": gallery.champion_reason,
            "champion_alias": alias,
            "base_model": base,
            "gallery_html": dg.MetadataValue.path(str(gallery.html)),
            "report": dg.MetadataValue.path(str(gallery.report)),
            "location": dg.MetadataValue.path(str(gallery.folder)),
            "explorer": dg.MetadataValue.url(explorer_url(str(ModelUri(REGISTERED[champion.model], alias=CHAMPION)) if champion and champion.model in ("gan", "wgan_gp") else str(ModelUri(GAN_MODEL, version="latest")))),
        }
    )
    return meta


def _reference(context: dg.AssetExecutionContext, photos) -> Reference:
    """The owner's held-out photos; without any, the training photos (said so: the scores are optimistic)."""
    if len(photos.held_out):
        return photos.reference()
    context.log.warning("the curated dataset has no held-out (val) photos: generated faces are scored against training photos")
    return Reference(photos.train, photos.metric, photos.same_person_distance, photos.embedder,
                     f"{len(photos.train)} training photos of the owner (no held-out photos: optimistic)")


def _probe(identity: OwnerIdentity, settings: GallerySettings, device) -> tuple[IdentityProbe, str]:
    """The probe identity_clusters recorded (face_crops' detector, its embedder), with the gallery's detector overrides;
    and where its detector settings came from (said in the report)."""
    overrides = {k: v for k, v in {"kind": settings.detector, "min_score": settings.detector_min_score}.items() if v is not None}
    source = f"face_crops' detector ({identity.probe.detector.kind}), as identity_clusters recorded it"
    if overrides:
        source += f", overridden: {overrides}"
    probe = IdentityProbe(identity.probe.with_detector(**overrides), device)
    if probe.name != identity.embedder:
        raise dg.Failure(f"embedder {probe.name} is not the one identity_clusters used ({identity.embedder}): "
                         "materialize identity_clusters again")
    return probe, source


def _run_id(lineage, asset: str, digest: str) -> str | None:
    runs = lineage.find_asset_runs(asset, artifact_sha256=digest)
    return runs[0].info.run_id if runs else None


def _num(value):
    return "none" if value is None else round(value, 4)


def _table(gallery: Gallery) -> dg.MetadataValue:
    """The score table: numbers where every row has one, text ("-" for none: no faces, no score) where not."""
    rows = table_rows(gallery)
    columns = ["model", "step", "faces", "identity", "identity_min", "identity_max", "vs baselines", "centroid", "same person",
               "diversity", "one face", "prompts followed", "eligible", "champion"]
    kinds = {"step": "int", "champion": "bool", "same person": "float", "one face": "float"}
    schema = dg.TableSchema(columns=[dg.TableColumn(c, kinds.get(c, "string")) for c in columns])
    cell = lambda c, v: v if c in kinds else ("-" if v is None else str(v))  # noqa: E731
    records = [dg.TableRecord({c: cell(c, r[c]) for c in columns}) for r in rows]
    return dg.MetadataValue.table(records, schema=schema)
