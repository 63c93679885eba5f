"""Asset config is generated from library settings: defaults in one place, profiles override them."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
import pytest

from facecraft_pipeline.settings.dagster_config import config_class, to_settings
from facecraft_pipeline.settings.profiles import PROFILES, profile_settings


@dataclass(frozen=True)
class ToySettings:
    steps: int = 300
    resolution: int = 32
    base_model: str | None = None


def test_generated_config_carries_the_dataclass_defaults_and_round_trips():
    config_cls = config_class(ToySettings, "toy_asset")
    config = config_cls()
    assert issubclass(config_cls, dg.Config)
    assert to_settings(ToySettings, config) == ToySettings()
    assert to_settings(ToySettings, config_cls(steps=7, base_model="x")) == ToySettings(steps=7, base_model="x")


def test_a_profile_changes_the_defaults_the_launchpad_shows(monkeypatch):
    monkeypatch.setitem(PROFILES, "big", {"toy_asset": {"steps": 9000}})
    assert config_class(ToySettings, "toy_asset", "big")().steps == 9000
    assert config_class(ToySettings, "toy_asset")().steps == 300  # no profile: the library's defaults


def test_a_profile_naming_an_unknown_field_is_an_error(monkeypatch):
    monkeypatch.setitem(PROFILES, "typo", {"toy_asset": {"stepz": 1}})
    with pytest.raises(ValueError, match="stepz"):
        config_class(ToySettings, "toy_asset", "typo")


def test_an_unknown_profile_is_refused():
    with pytest.raises(ValueError, match="not a profile"):
        config_class(ToySettings, "toy_asset", "nonexistent")


def test_definitions_are_built_for_any_profile_and_environment_side_by_side():
    """No environment variable is read at import: two Definitions in one process, each with its own profile and env."""
    from facecraft_pipeline.definitions import build_definitions

    def gan_default(defs, field):
        return defs.resolve_implicit_global_asset_job_def().graph.node_named("gan_checkpoint").definition.config_schema \
            .config_type.fields[field].default_value

    demo, full = build_definitions("demo", {}), build_definitions(env={"FACECRAFT_PROFILE": "full", "FACECRAFT_RETRIES": "7"})
    assert (gan_default(demo, "resolution"), gan_default(full, "resolution")) == (PROFILES["demo"]["gan_checkpoint"]["resolution"],
                                                                                PROFILES["full"]["gan_checkpoint"]["resolution"])
    assert full.resolve_assets_def("photos").op.retry_policy.max_retries == 7
    assert demo.resolve_assets_def("photos").op.retry_policy.max_retries == 3


def test_the_gan_may_not_exceed_the_datasets_resolution_declared_once_checked_at_build_and_per_run(monkeypatch):
    from facecraft_pipeline.definitions import build_definitions, check_run_config
    from facecraft_pipeline.settings.constraints import check_constraints

    monkeypatch.setitem(PROFILES, "too_big", {"curated_dataset": {"resolution": 64}, "wgan_gp_checkpoint": {"resolution": 128}})
    with pytest.raises(ValueError, match=r"wgan_gp_checkpoint.resolution=128 is above curated_dataset.resolution=64"):
        build_definitions("too_big", {})
    check_run_config("demo", {"ops": {"gan_checkpoint": {"config": {"resolution": 64}}}})  # the demo dataset's 64 px
    with pytest.raises(ValueError, match="gan_checkpoint.resolution=128"):
        check_run_config("demo", {"ops": {"gan_checkpoint": {"config": {"resolution": 128}}}})
    with pytest.raises(ValueError, match="never upsampled"):  # what the GAN asset checks on the dataset it was given
        check_constraints({"gan_checkpoint": {"resolution": 64}, "curated_dataset": {"resolution": 32}})
    check_constraints({"gan_checkpoint": {"resolution": 64}, "curated_dataset": {"resolution": None}})  # a dataset from before


def test_command_line_overrides_become_run_config():
    from facecraft_pipeline.cli import _parse_sets

    assert _parse_sets(["gan_checkpoint.steps=50", "lora_weights.base_model=/models/sd15", "face_crops.min_score=0.9"]) == {
        "ops": {
            "gan_checkpoint": {"config": {"steps": 50}},
            "lora_weights": {"config": {"base_model": "/models/sd15"}},
            "face_crops": {"config": {"min_score": 0.9}},
        }
    }
    assert _parse_sets(["gan_checkpoint.run.steps=2000"]) == {"ops": {"gan_checkpoint": {"config": {"run": {"steps": 2000}}}}}
    with pytest.raises(SystemExit):
        _parse_sets(["steps=50"])


def test_nested_settings_become_nested_launchpad_sections_with_their_own_defaults_and_help():
    from facecraft_pipeline.gan import GanSettings
    from facecraft_pipeline.lora import LoraSettings

    gan, lora = config_class(GanSettings, "toy_gan")(), config_class(LoraSettings, "toy_lora")()
    assert (gan.run.steps, lora.run.steps, lora.run.checkpoint_every) == (GanSettings().run.steps, 100, 50)
    assert to_settings(LoraSettings, lora) == LoraSettings()
    schema = config_class(GanSettings, "toy_gan").model_json_schema()
    assert "continues the same run" in schema["$defs"]["ToyGanRunConfig"]["properties"]["steps"]["description"]


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_profile_gives_valid_settings_for_every_stage(profile):
    from facecraft_pipeline.dataset.curate import CurateSettings
    from facecraft_pipeline.faces.cluster import ClusterSettings
    from facecraft_pipeline.faces.extract import FaceCropSettings
    from facecraft_pipeline.evaluation import GallerySettings
    from facecraft_pipeline.gan import GanSettings
    from facecraft_pipeline.lora import LoraSettings

    stages = {
        "face_crops": FaceCropSettings,
        "identity_clusters": ClusterSettings,
        "curated_dataset": CurateSettings,
        "gan_checkpoint": GanSettings,
        "wgan_gp_checkpoint": GanSettings,
        "lora_weights": LoraSettings,
        "sample_galleries": GallerySettings,
    }
    assert set(PROFILES[profile]) <= set(stages)
    for asset, settings_cls in stages.items():
        settings = to_settings(settings_cls, config_class(settings_cls, asset, profile)())  # __post_init__ validates
        assert settings == profile_settings(settings_cls, asset, profile)  # the same without Dagster
        for field, value in PROFILES[profile].get(asset, {}).items():
            actual = getattr(settings, field)
            if isinstance(value, dict):  # a nested section
                assert {k: getattr(actual, k) for k in value} == value
            else:
                assert actual == value
