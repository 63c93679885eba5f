"""RetinaFace (ResNet-50, retinaface-pytorch 0.0.7) with our own batched pre/post-processing.

We use the package's network, prior boxes and box decoding, but not its `predict_single.Model`:
that module imports `iglovikov_helper_functions`, which the `--no-deps` install leaves out, and it
runs one image per forward pass, truncates coordinates to int, and computes a clip it never applies.
Here a whole batch goes through the network at once (every image letterboxed into the same
max_size square, as the package does for one), and boxes are clipped to the photo.

Weights: `retinaface_weights` (a local path or URL), else the release file in the torch hub
cache, else a download of the release (when allowed). Offline with none of those, the error
names the exact path to put the file at.
"""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

import cv2
import numpy as np
import torch

from facecraft_pipeline.faces.detector_settings import DetectorSettings
from facecraft_pipeline.faces.geometry import clip_box
from facecraft_pipeline.faces.retinaface_errors import WeightsNotFoundError
from facecraft_pipeline.faces.types import Face

RELEASE_URL = "https://github.com/ternaus/retinaface/releases/download/0.01/retinaface_resnet50_2020-07-20-f168fae3c.zip"
RELEASE_HASH_PREFIX = "f168fae3c"  # sha256 prefix in the release file name, checked on download
_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32) * 255.0  # albumentations Normalize defaults
_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32) * 255.0
_VARIANCE = (0.1, 0.2)
_NMS_IOU = 0.4


def build_network() -> torch.nn.Module:
    """The package's RetinaFace-ResNet50 with no weights loaded (same layout as `predict_single.Model`)."""
    import warnings

    from retinaface.network import RetinaFace

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torchvision's note on the `pretrained` argument
        return RetinaFace(
            name="Resnet50",
            pretrained=False,
            return_layers={"layer2": 1, "layer3": 2, "layer4": 3},
            in_channels=256,
            out_channels=256,
        )


def hub_cache_path() -> Path:
    """Where torch hub keeps the release file: $TORCH_HOME/hub/checkpoints/<release file name>."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(RELEASE_URL).path).name


def resolve_weights(settings: DetectorSettings) -> Path:
    """A local weights file, downloading into the hub cache only if a URL must be fetched and that is allowed."""
    source = settings.retinaface_weights
    if source and urlparse(source).scheme not in ("http", "https"):
        path = Path(source).expanduser()
        if not path.is_file():
            raise WeightsNotFoundError(
                f"RetinaFace weights file {path} (retinaface_weights) does not exist",
                "set face_crops.detector.retinaface_weights to an existing file, or leave it empty for the torch hub cache",
            )
        return path
    url = source or RELEASE_URL
    target = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name
    if target.is_file():
        return target
    advice = f"put the weights file at {target} (from {url}) or set face_crops.detector.retinaface_weights to a local file"
    if not settings.retinaface_download:
        raise WeightsNotFoundError("RetinaFace weights are not cached and downloading is off", advice)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(target), hash_prefix=RELEASE_HASH_PREFIX if url == RELEASE_URL else None, progress=False)
    except Exception as error:  # no network, HTTP error, hash mismatch: all mean "not available"
        raise WeightsNotFoundError(f"RetinaFace weights could not be downloaded ({type(error).__name__}: {error})", advice) from error
    return target


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a torch save file or the release's legacy zip (one file inside), never unpickling code."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) == 1 and not members[0].is_dir():  # legacy zip: a zipped torch file
                with tempfile.TemporaryDirectory() as folder:
                    extracted = archive.extract(members[0], folder)
                    return _tensors(torch.load(extracted, map_location="cpu", weights_only=True))
    return _tensors(torch.load(path, map_location="cpu", weights_only=True))


def _tensors(loaded: object) -> dict[str, torch.Tensor]:
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict):
        raise ValueError(f"RetinaFace weights hold a {type(loaded).__name__}, not a state dict")
    return loaded


class RetinaFaceDetector:
    """`FaceDetector` over RetinaFace-ResNet50; one forward pass per `batch_size` photos."""

    def __init__(self, settings: DetectorSettings, device: str | torch.device = "cpu") -> None:
        self.settings = settings
        self.device = torch.device(device)
        self.weights_path = resolve_weights(settings)
        state = load_state_dict(self.weights_path)
        with torch.device("meta"):  # no random init of 27 M parameters that are overwritten anyway
            network = build_network()
        self.network = network.to_empty(device=self.device)
        self.network.load_state_dict(state, strict=True)
        self.network.eval()
        self.name = "retinaface-resnet50"
        self._size = settings.retinaface_max_size
        self._floor = settings.score_floor
        from retinaface.prior_box import priorbox

        priors = priorbox(min_sizes=[[16, 32], [64, 128], [256, 512]], steps=[8, 16, 32], clip=False, image_size=(self._size, self._size))
        self._priors = priors.to(self.device)

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        results: list[list[Face]] = []
        for start in range(0, len(images), self.settings.batch_size):
            results.extend(self._detect_batch(images[start : start + self.settings.batch_size]))
        return results

    def _detect_batch(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        from retinaface.box_utils import decode, decode_landm
        from torchvision.ops import nms

        batch, placements = zip(*(self._letterbox(np.asarray(image, dtype=np.uint8)) for image in images))
        tensor = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).to(self.device)
        with torch.inference_mode():
            loc, conf, landms = self.network(tensor)
            scores = torch.softmax(conf.float(), dim=-1)[..., 1]
            faces = []
            for index, (image, (scale_x, scale_y, pad_x, pad_y)) in enumerate(zip(images, placements)):
                keep = torch.where(scores[index] > self._floor)[0]
                boxes = decode(loc[index, keep].float(), self._priors[keep], _VARIANCE) * self._size
                points = decode_landm(landms[index, keep].float(), self._priors[keep], _VARIANCE) * self._size
                chosen = nms(boxes, scores[index, keep], _NMS_IOU)  # indices by descending score
                offset = torch.tensor([pad_x, pad_y], device=self.device, dtype=torch.float32)
                scale = torch.tensor([scale_x, scale_y], device=self.device, dtype=torch.float32)
                boxes = ((boxes[chosen].view(-1, 2, 2) - offset) / scale).view(-1, 4).cpu().numpy()
                points = ((points[chosen].view(-1, 5, 2) - offset) / scale).cpu().numpy()
                faces.append(self._to_faces(boxes, scores[index, keep][chosen].cpu().numpy(), points, image.shape[1], image.shape[0]))
        return faces

    def _letterbox(self, image: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float, float]]:
        """Normalised float image resized so its longest side is max_size, centred in a max_size square."""
        height, width = image.shape[:2]
        scale = self._size / max(height, width)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        resized = (cv2.resize(image, (new_w, new_h), interpolation=interpolation).astype(np.float32) - _MEAN) / _STD
        canvas = np.zeros((self._size, self._size, 3), dtype=np.float32)  # zero = the mean colour
        pad_x, pad_y = (self._size - new_w) // 2, (self._size - new_h) // 2
        canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
        return canvas, (new_w / width, new_h / height, float(pad_x), float(pad_y))

    @staticmethod
    def _to_faces(boxes: np.ndarray, scores: np.ndarray, points: np.ndarray, width: int, height: int) -> list[Face]:
        faces = []
        for box, score, landmarks in zip(boxes, scores, points):
            clipped = clip_box(box, width, height)
            if clipped[2] - clipped[0] >= 1 and clipped[3] - clipped[1] >= 1:  # wholly outside: not in this photo
                faces.append(Face(box=clipped, score=float(score), landmarks=landmarks))
        return faces
