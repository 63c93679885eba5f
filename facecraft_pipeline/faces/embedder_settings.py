"""Which identity embedder runs: settings only, no model code (the probe, the assets and the launchpad share them)."""

from __future__ import annotations

from dataclasses import dataclass

from facecraft_pipeline.settings import setting, validate

EMBEDDER_KINDS = ("dlib", "onnx")


@dataclass(frozen=True)
class EmbedderSettings:
    """The identity embedder `identity_clusters` uses, and with it every later comparison of faces."""

    kind: str = setting("dlib", "identity embedder: dlib (128-d ResNet, offline) or onnx (an ArcFace-style ONNX model)",
                        choices=EMBEDDER_KINDS)
    onnx_model: str | None = setting(None, "path of the ONNX embedding model when the embedder is onnx")

    def __post_init__(self) -> None:
        validate(self)
        if self.kind == "onnx" and not self.onnx_model:
            raise ValueError('EmbedderSettings.onnx_model is needed when kind is "onnx": the ArcFace .onnx file to use')
