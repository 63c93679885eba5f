"""Where the CPU time of one 4032 px phone photo goes in face extraction (issue 21, part B).

    .venv/bin/python benchmarks/phone_photo_costs.py

Grace Hopper's portrait enlarged to 4032x3441 and saved as JPEG (q90); CPU time (process_time,
so other work on the machine matters little) of each stage as `extract_faces` runs it with the
default settings, beside the reduced-scale decode (libjpeg DCT scaling through PIL's `draft`)
proposed to replace the full decode for detection.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import dlib
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facecraft_pipeline.faces.geometry import downscale  # noqa: E402
from facecraft_pipeline.imaging import load_rgb  # noqa: E402
from facecraft_pipeline_tests.faces.face_samples import grace_hopper  # noqa: E402

PHOTO = Path("/tmp/facecraft-phone-photo.jpg")


def cpu_ms(label: str, work, repeat: int = 3):  # noqa: ANN001, ANN201
    started = time.process_time()
    for _ in range(repeat):
        result = work()
    print(f"| {label} | {(time.process_time() - started) / repeat * 1000:.0f} |")
    return result


def main() -> None:
    Image.fromarray(cv2.resize(np.asarray(grace_hopper()), (4032, 3441), interpolation=cv2.INTER_CUBIC)).save(PHOTO, quality=90)
    hog = dlib.get_frontal_face_detector()

    def draft() -> np.ndarray:
        image = Image.open(PHOTO)
        image.draft("RGB", (2016, 1721))
        return np.asarray(image.convert("RGB"))

    print("| stage | CPU ms |\n|---|---:|")
    full = cpu_ms("decode the whole photo (`load_rgb`, 4032 px)", lambda: load_rgb(PHOTO))
    half = cpu_ms("decode at 1/2 scale (`Image.draft`, 2016 px)", draft)
    small = cpu_ms("INTER_AREA 4032 -> 1600 px detection copy (today)", lambda: downscale(full, 1600)[0])
    cpu_ms("INTER_AREA 2016 -> 1600 px detection copy (from the 1/2 decode)", lambda: downscale(half, 1600)[0])
    cpu_ms("HOG on the 1600 px copy, upsample 1 (the default)", lambda: hog.run(small, 1, 0.4), repeat=2)
    cpu_ms("HOG on the 1600 px copy, upsample 0", lambda: hog.run(small, 0, 0.4), repeat=2)
    PHOTO.unlink()


if __name__ == "__main__":
    main()
