"""What every trainer shares: run key, run folder, checkpoints, precision, images, progress, the loop.

GAN, WGAN-GP and LoRA differ only in their model, loss and step (a `Trainer`); `train` owns
reuse, resume, extend, checkpoints, logging and the result. No Dagster here.
"""

from __future__ import annotations

from facecraft_pipeline.training.loop import Trainer, TrainingDivergedError, TrainResult, train
from facecraft_pipeline.training.progress import Progress, ProgressLine
from facecraft_pipeline.training.run_folder import RunFolder, run_key
from facecraft_pipeline.training.run_record import RunRecord
from facecraft_pipeline.training.settings import PRECISIONS, RunSettings

__all__ = [
    "PRECISIONS",
    "Progress",
    "ProgressLine",
    "RunFolder",
    "RunRecord",
    "RunSettings",
    "TrainResult",
    "Trainer",
    "TrainingDivergedError",
    "run_key",
    "train",
]
