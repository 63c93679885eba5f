"""Resources: device choice, data root, photo source selection."""

from __future__ import annotations

import dagster as dg
import pytest
import torch

from facecraft_pipeline.home import Home
from facecraft_pipeline.resources import (
    ComputeResource,
    DemoAlbumResource,
    HomeResource,
    LocalFolderResource,
    MlflowResource,
    OneDriveResource,
    photo_source_from_env,
)


def test_auto_device_picks_the_best_available():
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert ComputeResource(device="auto").torch_device().type == expected
    assert ComputeResource(device="cpu").torch_device() == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the refusal cannot be observed")
def test_asking_for_cuda_without_cuda_is_a_clear_failure():
    with pytest.raises(dg.Failure, match="CUDA is not available"):
        ComputeResource(device="cuda").torch_device()


def test_the_data_root_is_configurable_and_holds_the_mlflow_store(tmp_path):
    home = HomeResource(root=str(tmp_path / "root")).home()
    assert home == Home(tmp_path / "root")
    lineage = MlflowResource(tracking_uri=None).lineage(home)
    assert lineage.tracking_uri == f"sqlite:///{tmp_path / 'root' / 'mlflow' / 'mlflow.db'}"
    assert (tmp_path / "root" / "mlflow" / "mlflow.db").is_file() and home.mlflow_artifacts == tmp_path / "root" / "mlflow" / "artifacts"


def test_photo_sources_are_one_resource_class_per_kind(tmp_path):
    home = Home(tmp_path)
    assert DemoAlbumResource().build(home).description.startswith("demo")
    assert LocalFolderResource(folder=str(tmp_path)).build(home).description.startswith("local:")
    with pytest.raises(dg.Failure, match="needs a folder"):
        LocalFolderResource().build(home)
    assert not hasattr(LocalFolderResource(), "onedrive_client_id"), "no OneDrive fields on other sources"
    assert OneDriveResource().onedrive_settings().folder == "/Pictures"


def test_facecraft_source_picks_the_resource_when_the_definitions_are_built(tmp_path):
    """The environment the Definitions are built with picks and configures the source (none is read at import)."""
    onedrive = photo_source_from_env({"FACECRAFT_SOURCE": "onedrive", "FACECRAFT_PHOTOS_DIR": "/Camera Roll",
                                      "FACECRAFT_ONEDRIVE_CLIENT_ID": "client-123"})
    assert isinstance(onedrive, OneDriveResource)
    settings = onedrive.onedrive_settings()
    assert (settings.folder, settings.client_id, settings.tenant) == ("/Camera Roll", "client-123", "consumers")

    local = photo_source_from_env({"FACECRAFT_SOURCE": "local", "FACECRAFT_PHOTOS_DIR": str(tmp_path)})
    assert isinstance(local, LocalFolderResource) and local.folder == str(tmp_path)

    with pytest.raises(ValueError, match="FACECRAFT_SOURCE='dropbox'.*demo"):
        photo_source_from_env({"FACECRAFT_SOURCE": "dropbox"})


def test_one_boolean_parser_for_every_switch():
    from facecraft_pipeline.env import parse_bool

    for word, value in (("on", True), ("OFF", False), ("yes", True), ("0", False), ("true", True)):
        assert parse_bool(word) is value
    assert MlflowResource.from_env({"FACECRAFT_MLFLOW_IMAGES": "off"}).log_images is False
    with pytest.raises(ValueError, match="FACECRAFT_MLFLOW_IMAGES='nope' is not a boolean"):
        MlflowResource.from_env({"FACECRAFT_MLFLOW_IMAGES": "nope"})


def test_resource_config_comes_from_the_settings_dataclasses_with_their_help():
    from facecraft_pipeline.sources.onedrive_settings import OneDriveSettings
    from facecraft_pipeline.settings import help_text

    fields = OneDriveResource.model_fields["settings"].annotation.model_fields
    assert fields["download_deadline_s"].description == help_text(OneDriveSettings, "download_deadline_s")
    assert fields["max_concurrency"].default == OneDriveSettings().max_concurrency
    with pytest.raises(ValueError, match="LocalFolderSettings.symlinks must be one of"):
        LocalFolderResource(folder="/x", settings={"symlinks": "sometimes"}).local_settings()
