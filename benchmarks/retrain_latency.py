"""Benchmark: from a new photo to a requested re-training run (sensor tick + ingest + automation tick).

    .venv/bin/python benchmarks/retrain_latency.py [--results benchmarks/results/retrain_latency.md]

On a fresh data root with the demo album: one ingest (photos -> curated_dataset) as `make demo`
would, then a fresh sensor tick (which must skip: nothing changed since that ingest), then a new
photo of the owner is added and timed through what the daemon does: the sensor's poll, the ingest
run (in process, as `ingest_new_photos` runs it), and the evaluation of the re-training conditions
that requests the training assets. Dagster's own waits are added from the settings: up to one
poll interval before the sensor sees the photo, up to one 60 s automation tick after the ingest, and
the start of a run process (timed here as a fresh `import facecraft_pipeline.definitions`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "retrain_latency.md")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import dagster as dg

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    from facecraft_pipeline.assets.checks import CHECKS
    from facecraft_pipeline.automation import INGEST, AutomationSettings, new_photos_sensor
    from facecraft_pipeline.definitions import build_assets, build_resources, defs
    from facecraft_pipeline.resources import DemoAlbumResource, HomeResource, MlflowResource
    from facecraft_pipeline.sources.demo_album import build_demo_album

    load_before = "/".join(f"{v:.1f}" for v in os.getloadavg())
    with tempfile.TemporaryDirectory() as folder, dg.instance_for_test() as instance:
        home = Path(folder) / "home"
        res = build_resources(os.environ, HomeResource(root=str(home)))
        settings = AutomationSettings.from_env(os.environ)
        assets, sensor = build_assets(), new_photos_sensor(settings)
        res["mlflow"] = MlflowResource(tracking_uri=f"sqlite:///{home / 'mlflow.db'}", experiment="latency")
        res["photo_source"] = DemoAlbumResource()

        def ingest() -> float:
            start = time.perf_counter()
            assert dg.materialize([*assets, *CHECKS], resources=res, instance=instance, selection=INGEST).success
            return time.perf_counter() - start

        def tick(cursor: str | None):  # noqa: ANN202
            context = dg.build_sensor_context(cursor=cursor, instance=instance, resources={"home": res["home"], "photo_source": res["photo_source"]})
            start = time.perf_counter()
            result = sensor(context)
            return result, context.cursor, time.perf_counter() - start

        first_ingest = ingest()
        automation = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        fresh, cursor, _ = tick(None)
        assert isinstance(fresh, dg.SkipReason), fresh

        album = home / "photos" / "demo-album"
        truth = build_demo_album(album)
        name = next(n for n, t in sorted(truth.items()) if t["kind"] == "owner" and not t["exif_orientation"] and n.endswith(".jpg"))
        image = np.asarray(Image.open(album / name).convert("RGB"))[:, ::-1]  # a new, mirrored photo of the owner
        Image.fromarray(np.ascontiguousarray(image)).save(album / "new_owner_photo.jpg", quality=92)

        requested, cursor, tick_s = tick(cursor)
        assert isinstance(requested, dg.RunRequest), requested
        ingest_s = ingest()
        start = time.perf_counter()
        automation = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=automation.cursor)
        evaluate_s = time.perf_counter() - start
        training = sorted(k for k in ("gan_checkpoint", "wgan_gp_checkpoint", "lora_weights") if automation.get_num_requested(dg.AssetKey(k)))
        assert training, "the new photo did not change the dataset"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import facecraft_pipeline.definitions"], cwd=ROOT, check=True)
    process_s = time.perf_counter() - start
    load_after = "/".join(f"{v:.1f}" for v in os.getloadavg())

    work = tick_s + process_s + ingest_s + evaluate_s
    poll, retrain = settings.poll_seconds, settings.retrain_tick_seconds
    lines = [
        "# From a new photo to a started re-training run",
        "",
        "Command: `.venv/bin/python benchmarks/retrain_latency.py` (demo album, demo profile, CPU).",
        f"Machine: {os.cpu_count()} CPU cores shared with other work: load average {load_before} before, {load_after} after.",
        "",
        "| step | s |",
        "|---|---:|",
        f"| first ingest of the demo album (photos -> curated_dataset, for reference) | {first_ingest:.1f} |",
        "| fresh sensor tick after that ingest | skipped (nothing changed) |",
        f"| sensor tick that sees the new photo (folder listing) | {tick_s:.2f} |",
        f"| start of the run's process (`import facecraft_pipeline.definitions`) | {process_s:.1f} |",
        f"| ingest run for the one new photo (everything else cached) | {ingest_s:.1f} |",
        f"| automation evaluation requesting {', '.join(training)} | {evaluate_s:.2f} |",
        f"| **work, in all** | **{work:.1f}** |",
        "",
        f"Waits set by the settings: the sensor polls every {poll} s (`FACECRAFT_POLL_SECONDS`), the re-training "
        f"conditions are evaluated every {retrain} s. From a new photo to a started re-training run: "
        f"**{work:.0f} s of work plus up to {poll + retrain} s of waiting** (on average {work + (poll + retrain) / 2:.0f} s; "
        f"at most {work + poll + retrain:.0f} s). The daemon's own tick loop adds a few seconds to each wait.",
        "",
    ]
    report = "\n".join(lines)
    print(report)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(report)


if __name__ == "__main__":
    main()
