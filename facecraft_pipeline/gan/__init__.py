"""Pure-PyTorch face GANs (DCGAN, WGAN-GP): models, losses, the trainer, checkpoints, sampling. No Dagster here."""

from __future__ import annotations

from facecraft_pipeline.gan.checkpoint import checkpoint_is_finite, load_generator
from facecraft_pipeline.gan.losses import gradient_penalty
from facecraft_pipeline.gan.models import Discriminator, Generator, build_discriminator, build_generator
from facecraft_pipeline.gan.sample import sample_images
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
    "gradient_penalty",
    "load_generator",
    "sample_images",
    "train_gan",
]
