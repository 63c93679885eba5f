"""Which face detector runs and how hard it looks: settings only, no detector code (no import cycles)."""

from __future__ import annotations

from dataclasses import dataclass

from facecraft_pipeline.settings import setting, validate

DETECTOR_KINDS = ("dlib", "retinaface")
DLIB_MODELS = ("hog", "cnn")

# Score floors when `min_score` is None. The scales differ per detector: HOG and mmod return SVM
# margins, RetinaFace a softmax probability (0.7 is the package's own default). HOG on the demo album
# and the benchmark photos: real faces 0.43-1.5 (tilted, blurred, dim ones lowest), false positives
# 0.1-0.37 (a mission patch on a space suit at 0.30 and 0.37), hence 0.4.
DEFAULT_MIN_SCORE = {"hog": 0.4, "cnn": 0.5, "retinaface": 0.7}


@dataclass(frozen=True)
class DetectorSettings:
    """Which detector, and how hard it looks. Defaults are the offline demo's."""

    kind: str = setting("dlib", "dlib (HOG/CNN, offline) or retinaface (ResNet-50, needs its weights file)", choices=DETECTOR_KINDS)
    dlib_model: str = setting("hog", "dlib: hog (fast) or cnn (mmod: better on pose, seconds per photo on CPU)", choices=DLIB_MODELS)
    upsample: int = setting(1, "dlib: times to double the detection image (1 finds faces down to ~40 px instead of ~80; 4x the cost)", minimum=0, maximum=3)
    min_score: float | None = setting(None, "detector score floor; empty: hog 0.4 / cnn 0.5 / retinaface 0.7")
    retinaface_weights: str | None = setting(None, "RetinaFace weights, a local file or URL; empty: $TORCH_HOME/hub/checkpoints, then the release URL")
    retinaface_max_size: int = setting(1024, "RetinaFace input: the longest side is resized to this (as its package does)", minimum=32)
    retinaface_download: bool = setting(True, "allow downloading the RetinaFace release weights when they are not cached", run_key=False)
    batch_size: int = setting(8, "photos decoded and detected together (one RetinaFace forward pass; one round for dlib workers)", minimum=1, run_key=False)
    max_side: int = setting(1600, "dlib: photos larger than this are downscaled for detection only (landmarks use the full photo)", minimum=64)
    workers: int = setting(0, "dlib: worker processes for detect + align (and threads otherwise); 0 = one per CPU core, 1 = in this process", minimum=0, run_key=False)

    def __post_init__(self) -> None:
        validate(self)

    @property
    def score_floor(self) -> float:
        """The effective score threshold."""
        if self.min_score is not None:
            return self.min_score
        return DEFAULT_MIN_SCORE["retinaface" if self.kind == "retinaface" else self.dlib_model]

    @property
    def name(self) -> str:
        """The detector's name as manifests record it."""
        return f"dlib-{self.dlib_model}" if self.kind == "dlib" else "retinaface-resnet50"
