"""The whole graph with a FLUX.1 LoRA (`--set lora_weights.base_model=tiny-flux`): trains, registers, and the sweep
scores every kept checkpoint; tiny-flux is random, so it says its images are noise."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from facecraft_pipeline.assets.checks import CHECKS
from facecraft_pipeline.definitions import WHOLE_GRAPH, build_assets, build_resources
from facecraft_pipeline.resources import DemoAlbumResource, HomeResource, MlflowResource

FLUX_RUN = {
    "ops": {
        "gan_checkpoint": {"config": {"run": {"steps": 3, "checkpoint_every": 3, "sample_every": 3, "log_every": 3}}},
        "wgan_gp_checkpoint": {"config": {"n_critic": 1, "run": {"steps": 3, "checkpoint_every": 3, "sample_every": 3, "log_every": 3}}},
        "lora_weights": {"config": {"base_model": "tiny-flux", "max_sequence_length": 16, "validation_steps": 2,
                                    "run": {"steps": 4, "checkpoint_every": 2, "log_every": 2}}},
        "sample_galleries": {"config": {"samples_per_model": 4, "images_per_prompt": 2, "num_inference_steps": 2}},
    }
}


@pytest.mark.slow  # the whole graph: ~1 min alone, ~4 min on a loaded 2-core machine
def test_a_flux_lora_trains_registers_and_every_kept_checkpoint_is_scored(tmp_path: Path) -> None:
    home = tmp_path / "home"
    res = build_resources({}, HomeResource(root=str(home)))
    res["mlflow"] = MlflowResource(tracking_uri=f"sqlite:///{home / 'mlflow.db'}", experiment="flux-e2e")
    res["photo_source"] = DemoAlbumResource()
    with dg.instance_for_test() as instance:
        result = dg.materialize([*build_assets(), *CHECKS], resources=res, instance=instance, run_config=FLUX_RUN, selection=WHOLE_GRAPH)

    events = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
    lora = {k: v.value for k, v in events["lora_weights"].items()}
    galleries = {k: v.value for k, v in events["sample_galleries"].items()}
    assert (lora["base_model_family"], lora["base_model_is_tiny_random"], lora["model_version"]) == ("flux", True, "1")
    assert "noise" in lora["base_model"] and "noise" in galleries["summary"]
    gallery = json.loads(Path(galleries["location"]).joinpath("gallery.json").read_text())
    scored = sorted(row["step"] for row in gallery["checkpoints"] if row["model"] == "lora")
    assert scored == [2, 4]
