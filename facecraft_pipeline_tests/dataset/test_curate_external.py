"""External faces are mixed in at the configured share, on both sides of the split."""

from __future__ import annotations

import json
from pathlib import Path

from facecraft_pipeline.dataset.curate import CurateSettings, curate_dataset
from facecraft_pipeline_tests.dataset.items import distinct_image, distinct_items
from facecraft_pipeline_tests.faces.identity_fixtures import save_png


def _external_folder(folder: Path, count: int, size: int = 96) -> Path:
    """Stand-ins for a CelebA/FFHQ folder: distinct non-square images in subfolders."""
    for index in range(count):
        image = distinct_image(1000 + index, size)
        save_png(image[:, : size - 8], folder / f"part{index % 3}" / f"{index:05d}.png")
    return folder


def test_external_images_make_up_the_configured_share(tmp_path: Path) -> None:
    external = _external_folder(tmp_path / "celeba", 30)
    settings = CurateSettings(external_dir=str(external), external_ratio=0.4)
    dataset = curate_dataset(distinct_items(tmp_path / "owner", 12), tmp_path / "d", settings)
    assert (dataset.counts["owner"], dataset.counts["external"]) == (12, 8)  # 40% of 20
    assert dataset.counts["val_owner"] >= 1 and dataset.counts["val_external"] >= 1
    manifest = json.loads(dataset.manifest_path.read_text())
    external_records = [r for r in manifest["images"] if r["origin"] == "external"]
    assert all(r["photo_id"].startswith("external:part") for r in external_records)
    assert all(Path(r["file"]).name.startswith("external-") for r in external_records)


def test_the_same_external_images_are_chosen_every_time_for_a_seed(tmp_path: Path) -> None:
    external = _external_folder(tmp_path / "celeba", 30)
    owner = distinct_items(tmp_path / "owner", 6)

    def chosen(seed: int) -> set[str]:
        settings = CurateSettings(external_dir=str(external), seed=seed)
        manifest = json.loads(curate_dataset(owner, tmp_path / "d", settings).manifest_path.read_text())
        return {r["photo_id"] for r in manifest["images"] if r["origin"] == "external"}

    assert chosen(0) == chosen(0)
    assert chosen(0) != chosen(1)


def test_a_folder_too_small_for_the_ratio_gives_what_it_has_and_says_so(tmp_path: Path) -> None:
    external = _external_folder(tmp_path / "few", 2)
    settings = CurateSettings(external_dir=str(external), external_ratio=0.5)
    dataset = curate_dataset(distinct_items(tmp_path / "owner", 6), tmp_path / "d", settings)
    assert dataset.counts["external"] == 2
    assert any("2 usable images, 6 wanted" in note for note in dataset.notes)


def test_external_images_below_the_resolution_are_excluded_too(tmp_path: Path) -> None:
    external = _external_folder(tmp_path / "tiny", 5, size=40)
    settings = CurateSettings(external_dir=str(external), external_ratio=0.4)
    dataset = curate_dataset(distinct_items(tmp_path / "owner", 3), tmp_path / "d", settings)
    assert dataset.counts["external"] == 0
    assert dataset.counts["excluded_too_small"] == 5


def test_grey_external_images_are_mixed_in_as_colour_and_the_gan_trains_on_them(tmp_path: Path) -> None:
    from PIL import Image

    from facecraft_pipeline.gan import GanSettings, train_gan
    from facecraft_pipeline.training import RunSettings

    folder = tmp_path / "grey"
    folder.mkdir()
    for index in range(6):
        Image.fromarray(distinct_image(2000 + index, 80)).convert("L").save(folder / f"{index}.png")
    dataset = curate_dataset(distinct_items(tmp_path / "owner", 4), tmp_path / "d",
                             CurateSettings(external_dir=str(folder), external_ratio=0.5))
    assert dataset.counts["external"] == 4
    assert all(Image.open(p).mode == "RGB" for p in dataset.train_paths)
    settings = GanSettings(resolution=16, batch_size=4, latent_dim=8, base_channels=4, sample_count=2,
                           run=RunSettings(steps=2, checkpoint_every=2, sample_every=0))
    assert train_gan(dataset.train_paths, tmp_path / "runs", settings).steps == 2
