"""Pure-PyTorch face GANs (DCGAN family, WGAN-GP): models, losses, tricks, the trainer, checkpoints, sampling,
quality scores, gene mixing. No Dagster and no face models here (the quality scorer is given by the caller)."""

from __future__ import annotations

from facecraft_pipeline.gan.checkpoint import checkpoint_is_finite, load_generator
from facecraft_pipeline.gan.losses import gradient_penalty, r1_penalty
from facecraft_pipeline.gan.mixing import mix_genes
from facecraft_pipeline.gan.models import Discriminator, Generator, build_discriminator, build_generator
from facecraft_pipeline.gan.sample_quality import face_quality_scorer, kid
from facecraft_pipeline.gan.sample import interpolation_sheet, sample_images
from facecraft_pipeline.gan.settings import GanSettings
from facecraft_pipeline.gan.train import GanTrainer, train_gan

__all__ = [
    "Discriminator",
    "GanSettings",
    "GanTrainer",
    "Generator",
    "build_discriminator",
    "build_generator",
    "checkpoint_is_finite",
    "face_quality_scorer",
    "gradient_penalty",
    "interpolation_sheet",
    "kid",
    "load_generator",
    "mix_genes",
    "r1_penalty",
    "sample_images",
    "train_gan",
]
