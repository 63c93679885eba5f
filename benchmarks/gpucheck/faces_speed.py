"""Section 4: the face-extraction networks on the device against the CPU, in the same run.

- RetinaFace-ResNet50 (`faces.retinaface_detector.build_network`, random weights: speed only), one batched
  forward pass at the detection size (`DetectorSettings.retinaface_max_size`, `batch_size`). Needs the
  retinaface-pytorch wheel and torchvision; without them the row says which is missing.
- dlib's identity ResNet in PyTorch (`faces.dlib_resnet`), 150 px chips. With `--dlib-weights` (dlib's
  dlib_face_recognition_resnet_model_v1.dat) it runs the real weights; otherwise random weights of the same
  architecture (the same speed; the row says so).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from gpucheck.report import SKIPPED, Report, Row, guarded, peak_gib, reset_peak

SECTION = "4 face extraction"


@dataclass(frozen=True)
class FacesPlan:
    detection_px: int | None  # None: DetectorSettings' retinaface_max_size
    detection_batch: int | None  # None: DetectorSettings' batch_size
    identity_batch: int
    batches: int  # timed batches on the device (the CPU times one)


FULL = FacesPlan(detection_px=None, detection_batch=None, identity_batch=256, batches=10)
QUICK = FacesPlan(detection_px=64, detection_batch=2, identity_batch=2, batches=1)


def run(report: Report, device: torch.device, quick: bool, dlib_weights: Path | None) -> None:
    plan = QUICK if quick else FULL
    guarded(report, SECTION, "RetinaFace", lambda: _retinaface_row(plan, device))
    guarded(report, SECTION, "identity ResNet", lambda: _identity_row(plan, device, dlib_weights))


def per_second(model: torch.nn.Module, batch: torch.Tensor, batches: int, device: torch.device) -> float:
    """Items per second through `model` in inference mode, after one untimed warm-up batch."""
    with torch.inference_mode():
        model(batch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(batches):
            model(batch)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return len(batch) * batches / (time.perf_counter() - started)


def _device_and_cpu(model: torch.nn.Module, batch: torch.Tensor, plan: FacesPlan, device: torch.device) -> tuple[float, float, float | None]:
    """(rate on the device, rate on the CPU, peak GiB on the device)."""
    cpu_rate = per_second(model.to("cpu"), batch, 1, torch.device("cpu"))
    reset_peak(device)
    rate = per_second(model.to(device), batch.to(device), plan.batches, device)
    return rate, cpu_rate, peak_gib(device)


def _retinaface_row(plan: FacesPlan, device: torch.device) -> Row:
    from facecraft_pipeline.faces.detector_settings import DetectorSettings

    defaults = DetectorSettings()
    side, count = plan.detection_px or defaults.retinaface_max_size, plan.detection_batch or defaults.batch_size
    name = f"RetinaFace-ResNet50 forward, {count} photos letterboxed to {side} px per batch (random weights)"
    try:
        from facecraft_pipeline.faces.retinaface_detector import build_network

        network = build_network().eval()
    except ImportError as error:
        return Row(SECTION, name, SKIPPED, note=f"{error.name or error} is not installed (retinaface-pytorch from gpu_requirements.txt "
                                                "needs torchvision matching the machine's torch)")
    torch.manual_seed(0)
    batch = torch.randn(count, 3, side, side)
    rate, cpu_rate, peak = _device_and_cpu(network, batch, plan, device)
    return Row(SECTION, name, rate, "photos/s", cpu_rate, "CPU, same run", peak, "network only: letterbox, decode and NMS not included")


def _identity_row(plan: FacesPlan, device: torch.device, dlib_weights: Path | None) -> Row:
    from facecraft_pipeline.faces.dlib_resnet import DlibFaceResNet

    if dlib_weights is not None and dlib_weights.is_file():
        model, weights = DlibFaceResNet.from_dlib_file(dlib_weights), f"dlib's weights from {dlib_weights}"
    else:
        torch.manual_seed(0)
        model = DlibFaceResNet().eval().requires_grad_(False)
        weights = "random weights of the same architecture (no --dlib-weights file: speed only)"
    chips = torch.randint(0, 256, (plan.identity_batch, 3, 150, 150)).float()
    rate, cpu_rate, peak = _device_and_cpu(model, chips, plan, device)
    return Row(SECTION, f"identity ResNet (dlib's, in PyTorch), 150 px chips, batch {plan.identity_batch}, fp32", rate, "faces/s",
               cpu_rate, "CPU, same run", peak, weights)
