"""The settings every training run has: length, write cadence, checkpoint retention, seed, precision."""

from __future__ import annotations

from dataclasses import dataclass

from facecraft_pipeline.settings import setting, validate

PRECISIONS = ("no", "bf16", "fp16")


@dataclass(frozen=True)
class RunSettings:
    """Length and cadence fields are not in the run key: raising `steps` continues the same run."""

    steps: int = setting(300, "optimizer steps to train to; raising it later continues the same run", minimum=1, run_key=False)
    log_every: int = setting(10, "steps between progress lines, stats.jsonl rows and MLflow metrics", minimum=1, run_key=False)
    checkpoint_every: int = setting(100, "steps between resumable checkpoints (the last step is always one)", minimum=1, run_key=False)
    sample_every: int = setting(100, "steps between sample grids (0: only at the end)", minimum=0, run_key=False)
    keep_last: int = setting(2, "newest checkpoints kept besides the sweep's", minimum=1, run_key=False)
    keep_every: int = setting(0, "also keep each checkpoint at a multiple of this step for the evaluation sweep (0: none)",
                              minimum=0, run_key=False)
    seed: int = setting(0, "seed of every random draw: initialisation, batches, noise, augmentation")
    mixed_precision: str = setting("no", "autocast on the device: no (fp32), bf16 or fp16", choices=PRECISIONS)

    def __post_init__(self) -> None:
        validate(self)

    def kept(self, step: int) -> bool:
        """Is `step` one the sweep keeps for good?"""
        return self.keep_every > 0 and step % self.keep_every == 0
