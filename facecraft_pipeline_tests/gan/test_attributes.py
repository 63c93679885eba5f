"""Face attributes (the GAN's controls) measured on a real aligned crop: faces/attributes.py."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image

from facecraft_pipeline.faces.align import align_face
from facecraft_pipeline.faces.attributes import ATTRIBUTE_NAMES, attribute_matrix, face_attributes
from facecraft_pipeline.faces.detect import DetectorSettings, make_detector


@pytest.fixture(scope="module")
def crop() -> np.ndarray:
    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        photo = np.asarray(Image.open(handle).convert("RGB"))
    (face, *_), = make_detector(DetectorSettings(workers=1)).detect([photo])
    return align_face(photo, face.landmarks, 256)


def test_attributes_of_a_frontal_face_are_in_range_and_near_neutral(crop: np.ndarray) -> None:
    values = face_attributes(crop)
    assert tuple(values) == ATTRIBUTE_NAMES and all(-1 <= v <= 1 for v in values.values())
    assert abs(values["yaw"]) < 0.35 and abs(values["roll"]) < 0.2  # an aligned, roughly frontal portrait
    assert values["eyes_open"] > -0.5  # her eyes are open


def test_a_mirrored_face_turns_the_other_way_and_a_darker_one_is_darker(crop: np.ndarray) -> None:
    values, mirrored = face_attributes(crop), face_attributes(crop[:, ::-1])
    assert mirrored["yaw"] == pytest.approx(-values["yaw"], abs=0.08)
    assert mirrored["brightness"] == pytest.approx(values["brightness"], abs=0.05)
    darker = face_attributes((crop * 0.5).astype(np.uint8))
    assert darker["brightness"] < values["brightness"] - 0.2


def test_attribute_matrix_reads_the_manifest_records_and_names_what_is_missing() -> None:
    records = [{"file": "a.png", "attributes": {"yaw": 0.1, "brightness": -0.2}}, {"file": "b.png", "attributes": {"yaw": -0.3, "brightness": 0.5}}]
    assert np.allclose(attribute_matrix(records, ["brightness", "yaw"]), [[-0.2, 0.1], [0.5, -0.3]])
    with pytest.raises(ValueError, match=r"1 dataset images have no attributes \['pitch'\] \(e.g. a.png\)"):
        attribute_matrix(records[:1], ["pitch"])
