"""Asset config is generated from library settings: defaults in one place, profiles override them."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
import pytest

from facecraft_pipeline.settings.dagster_config import config_class, to_settings
from facecraft_pipeline.settings.profiles import PROFILES


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
    monkeypatch.setenv("FACECRAFT_PROFILE", "big")
    assert config_class(ToySettings, "toy_asset")().steps == 9000


def test_a_profile_naming_an_unknown_field_is_an_error(monkeypatch):
    monkeypatch.setitem(PROFILES, "typo", {"toy_asset": {"stepz": 1}})
    monkeypatch.setenv("FACECRAFT_PROFILE", "typo")
    with pytest.raises(ValueError, match="stepz"):
        config_class(ToySettings, "toy_asset")


def test_an_unknown_profile_is_refused(monkeypatch):
    monkeypatch.setenv("FACECRAFT_PROFILE", "nonexistent")
    with pytest.raises(ValueError, match="not a profile"):
        config_class(ToySettings, "toy_asset")


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
def test_every_profile_gives_valid_settings_for_every_stage(profile, monkeypatch):
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
    monkeypatch.setenv("FACECRAFT_PROFILE", profile)
    for asset, settings_cls in stages.items():
        settings = to_settings(settings_cls, config_class(settings_cls, asset)())  # __post_init__ validates
        for field, value in PROFILES[profile].get(asset, {}).items():
            actual = getattr(settings, field)
            if isinstance(value, dict):  # a nested section
                assert {k: getattr(actual, k) for k in value} == value
            else:
                assert actual == value
