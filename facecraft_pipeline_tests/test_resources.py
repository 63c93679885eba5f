"""Resources: device choice, data root, photo source selection."""

from __future__ import annotations

import dagster as dg
import pytest
import torch

from facecraft_pipeline.home import Home
from facecraft_pipeline.resources import ComputeResource, HomeResource, MlflowResource, PhotoSourceResource


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
    assert home.mlflow_db.parent == tmp_path / "root" / "mlflow"
    lineage = MlflowResource(tracking_uri=None).lineage(home)
    assert lineage.tracking_uri == f"sqlite:///{home.mlflow_db}"


def test_photo_sources_are_chosen_by_kind(tmp_path):
    home = Home(tmp_path)
    assert PhotoSourceResource(kind="demo").build(home).description.startswith("demo")
    assert PhotoSourceResource(kind="local", folder=str(tmp_path)).build(home).description.startswith("local:")
    with pytest.raises(dg.Failure, match="needs a folder"):
        PhotoSourceResource(kind="local", folder=None).build(home)
    with pytest.raises(dg.Failure, match="unknown photo source"):
        PhotoSourceResource(kind="dropbox").build(home)
