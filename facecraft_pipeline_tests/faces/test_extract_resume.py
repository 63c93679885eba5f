"""A first extraction killed half-way: the photos it finished are cached as they finish, and the next run
computes only the rest and gives what one uninterrupted run gives."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from facecraft_pipeline.faces.detect import DetectorSettings
from facecraft_pipeline.faces.extract import FaceCropSettings, PhotoInput, extract_faces
from facecraft_pipeline.sources.base import sha256_file
from facecraft_pipeline_tests.faces.face_samples import grace_hopper, save

SETTINGS = FaceCropSettings(detector=DetectorSettings(workers=2))
PHOTOS = 48

_RUN = """
import sys
from pathlib import Path
from facecraft_pipeline.faces.detect import DetectorSettings
from facecraft_pipeline.faces.extract import FaceCropSettings, PhotoInput, extract_faces
from facecraft_pipeline.sources.base import sha256_file
paths = sorted(Path(sys.argv[1]).iterdir())
extract_faces([PhotoInput(p.name, p, sha256_file(p)) for p in paths], Path(sys.argv[2]),
              FaceCropSettings(detector=DetectorSettings(workers=2)))
"""


def _library(folder: Path) -> list[PhotoInput]:
    folder.mkdir()
    face = grace_hopper()
    for number in range(PHOTOS):
        copy = face.copy()
        copy[0, 0] = (number, number // 7, 3)  # distinct bytes, the same face
        save(copy, folder / f"IMG_{number:03d}.png")
    return [PhotoInput(p.name, p, sha256_file(p)) for p in sorted(folder.iterdir())]


def test_a_killed_first_run_keeps_what_it_finished_and_the_next_run_does_only_the_rest(tmp_path):
    photos = _library(tmp_path / "photos")
    out = tmp_path / "faces"
    run = subprocess.Popen([sys.executable, "-c", _RUN, str(tmp_path / "photos"), str(out)], start_new_session=True)
    cache = out / "cache" / SETTINGS.cache_key
    deadline = time.monotonic() + 120
    while not (cache.is_dir() and len(list(cache.iterdir())) >= 8):
        assert run.poll() is None and time.monotonic() < deadline, "the run ended or stalled before it could be killed"
        time.sleep(0.05)
    subprocess.run(["pkill", "-KILL", "-s", str(run.pid)], check=False)  # the run and its face workers, mid-way
    run.wait()
    assert run.returncode == -signal.SIGKILL
    finished = len(list(cache.iterdir()))
    assert 8 <= finished < PHOTOS

    resumed = extract_faces(photos, out, SETTINGS)
    fresh = extract_faces(photos, tmp_path / "fresh", SETTINGS)

    assert resumed.counts["from_cache"] >= finished - 2  # a file being renamed into place at the kill may not count
    assert resumed.counts["computed"] == PHOTOS - resumed.counts["from_cache"]
    assert resumed.digest == fresh.digest and resumed.counts["kept"] == PHOTOS
