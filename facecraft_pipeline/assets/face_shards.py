"""`face_shards`: the first pass over a big library, split so that many processes or machines share it.

Partitioned by a stable hash of the photo id (`faces/shards.py`; FACECRAFT_FACE_SHARDS partitions,
default 16). A backfill of its partitions runs one run per shard: processes side by side here, one
pod each on Kubernetes (README, "A big library on Kubernetes"). Each shard fills the per-photo
cache and the crops that `face_crops` then assembles without decoding a photo again, so its
results equal a run that computed everything itself. Nothing needs it: a library of any size is
also extracted by `face_crops` alone, on one machine.
"""

from collections.abc import Mapping

import dagster as dg

from facecraft_pipeline.assets.faces import missing_weights
from facecraft_pipeline.assets.recipe import asset_recipe
from facecraft_pipeline.assets.tracking import asset_run, output
from facecraft_pipeline.env import env_int
from facecraft_pipeline.faces.extract import FaceCropSettings
from facecraft_pipeline.faces.retinaface_errors import WeightsNotFoundError
from facecraft_pipeline.faces.shards import extract_shard, shard_keys
from facecraft_pipeline.resources import ComputeResource, HomeResource, MlflowResource
from facecraft_pipeline.retries import final_unless_transient
from facecraft_pipeline.settings import to_dict
from facecraft_pipeline.settings.dagster_config import to_settings
from facecraft_pipeline.sources.manifest import PhotoManifest

DEFAULT_SHARDS = 16


def shards_from_env(env: Mapping[str, str]) -> dg.StaticPartitionsDefinition:
    """FACECRAFT_FACE_SHARDS partitions (default 16): one per shard of the library."""
    count = env_int("FACECRAFT_FACE_SHARDS", DEFAULT_SHARDS, env)
    if count < 1:
        raise ValueError(f"FACECRAFT_FACE_SHARDS must be at least 1, got {count}")
    return dg.StaticPartitionsDefinition(shard_keys(count))


@asset_recipe("faces", settings=FaceCropSettings, partitions=shards_from_env, code_version="face_shards-1", kinds={"dlib"})
@final_unless_transient
def face_shards(
    context: dg.AssetExecutionContext,
    config: dg.Config,
    photos: PhotoManifest,
    home: HomeResource,
    mlflow: MlflowResource,
    compute: ComputeResource,
) -> dg.Output[dict]:
    """The faces of one shard of the library, cached for `face_crops`; give it the same face settings as face_crops."""
    settings = to_settings(FaceCropSettings, config)
    keys = context.assets_def.partitions_def.get_partition_keys()
    index, count = keys.index(context.partition_key), len(keys)
    params = to_dict(settings) | {"shard": index, "shards": count}
    with asset_run(context, home, mlflow, inputs={"photos": photos.digest}, params=params) as run:
        try:
            result = extract_shard(photos.usable_rows(), index, count, home.home().dir("faces"), settings, compute.torch_device())
        except WeightsNotFoundError as error:
            raise missing_weights(error) from error
        run.log_metrics(result.counts)
        if result.counts["photos"] and result.counts["failed"] == result.counts["photos"]:
            context.log.warning(result.summary)
        value = {"index": index, "count": count, "settings_key": result.settings_key, "counts": result.counts}
        meta = {"summary": result.summary, "settings_key": result.settings_key, **result.counts,
                "reasons": dg.MetadataValue.json(result.reasons)}
        return output(value, run, result.digest, meta)
