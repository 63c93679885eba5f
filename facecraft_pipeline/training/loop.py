"""The one training protocol: reuse a finished run, resume an interrupted one, extend a shorter one.

    result = train(RunSpec(root, key, description, run_settings, info), make_trainer, [progress])

A `Trainer` knows its model, loss and step; `train` owns everything else: the run folder, the
checkpoint cadence and retention, the logging windows (metric sums stay on the device: no host
sync inside a window), NaN/inf detection (the last good checkpoint is never overwritten by a bad
one), progress lines and the result. Every random draw of a trainer must come from state that its
`state_dict` carries, so a resumed run ends bit-identical to an uninterrupted one on CPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from facecraft_pipeline.training.checkpoints import Checkpoint, Checkpoints, read_state
from facecraft_pipeline.training.distributed import World
from facecraft_pipeline.training.progress import Progress, ProgressLine
from facecraft_pipeline.training.run_folder import RunFolder
from facecraft_pipeline.training.run_record import RunRecord
from facecraft_pipeline.training.settings import RunSettings
from facecraft_pipeline.training.warm_start import WarmStart, newest_finished, write_inputs


class TrainingDivergedError(FloatingPointError):
    """A loss or weight became NaN/inf; nothing non-finite was written to disk."""


class Trainer(Protocol):
    metric_names: tuple[str, ...]
    images_per_step: int  # real images seen per step (batch x critic steps, x accumulation)

    def step(self) -> torch.Tensor:
        """One optimisation step; the metric values as a 1-D tensor on the device (not synced)."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly here (weights, optimizers, RNG, ...)."""

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...

    def sample(self, folder: RunFolder, step: int) -> None:
        """Write what a person looks at while it trains (e.g. a grid); may do nothing."""

    def finish(self, folder: RunFolder) -> dict[str, Path]:
        """Write the final artifacts (weights file, grid, GIF) into the folder; returns them by name."""

    # Optional: `facts(folder) -> dict` of extra entries for run.json at the end (e.g. the best step);
    # `warm_start(state)`: load the weights of another run's final state (see warm_start.py);
    # `held_out_metrics(step) -> dict` of metrics measured now (e.g. a loss on held-out images), logged
    # beside the window's means at this logging step.


@dataclass(frozen=True)
class RunSpec:
    root: Path  # e.g. <data root>/models/gan_checkpoint
    key: str  # training.run_key(...)
    description: str  # short, readable: "dcgan-64px"
    run: RunSettings
    info: dict[str, Any] = field(default_factory=dict)  # settings, inputs, device, dtype, versions: into run.json
    recipe_key: str = ""  # warm_start.recipe_key: the run key without the data
    warm_steps: int = 0  # > 0: a new run of this recipe starts from the newest finished one and trains this many steps
    images: frozenset[str] = frozenset()  # content hashes of the training images: a warm start needs a run that saw most of them


@dataclass(frozen=True)
class TrainResult:
    """What a (possibly reused, resumed or extended) run produced; `seconds` and `images_per_second`
    cover every session that led to it (training time only)."""

    folder: Path
    key: str
    steps: int
    resumed_from: int  # 0: trained from scratch in this call
    reused: bool  # True: a finished identical run was found and nothing was trained
    metrics: dict[str, float]  # means over the last logging window
    device: str
    dtype: str
    seconds: float
    images_per_second: float
    artifacts: dict[str, Path]
    checkpoints: tuple[tuple[int, Path], ...]  # (step, file) kept for the evaluation sweep, oldest first
    info: RunRecord = field(default_factory=RunRecord)  # its run.json

    def artifact(self, name: str) -> Path:
        return self.artifacts[name]


def train(spec: RunSpec, make_trainer: Callable[[], Trainer], progress: Sequence[Progress] = (),
          device: torch.device | str = "cpu", world: World = World()) -> TrainResult:
    """Train to `spec.run.steps` in the folder of `spec.key` (see the module doc).

    Under several processes (`world.size > 1`) every rank trains and only rank 0 writes.
    """
    folder = _open_folder(spec, world)
    run = spec.run
    checkpoints = Checkpoints(folder.checkpoints, run.keep_last, run.kept)
    start = _start(spec, folder, checkpoints, device)
    if isinstance(start, RunRecord):
        return _result(folder, start, checkpoints, resumed_from=start.resumed_from, reused=True)
    latest, warm, target = start
    trainer = make_trainer()
    step, seconds, images, metrics = _resume(trainer, latest)
    if warm is not None:
        _warm_start(trainer, warm, device)
    resumed_from = step
    world.barrier()  # every rank has read the checkpoint before rank 0 changes the folder
    record: dict[str, Any] = {}
    if world.main:
        checkpoints.remove_after(step)
        info = spec.info | {"processes": world.size, "recipe_key": spec.recipe_key}
        record = folder.begin(info | ({"warm_start_from": warm.record()} if warm is not None else {}), step, target)
        if spec.images:
            write_inputs(folder.path, spec.images)

    names = trainer.metric_names
    sums = torch.zeros(len(names), device=device)
    finite = torch.ones((), dtype=torch.bool, device=device)
    window, window_seconds, unsynced = 0, 0.0, 0  # steps and training time in this log window; steps since the last sync
    started = time.perf_counter()
    while step < target:
        values = trainer.step().detach().float()
        sums += values
        finite &= torch.isfinite(values).all()
        step, window, unsynced = step + 1, window + 1, unsynced + 1
        last = step == target
        log, save = last or step % run.log_every == 0, last or step % run.checkpoint_every == 0
        sample = run.sample_every > 0 and step % run.sample_every == 0
        if not (log or save or sample):
            continue
        if not bool(finite):
            raise TrainingDivergedError(f"loss became NaN/inf before step {step}; last good checkpoint: {_newest(checkpoints)}")
        elapsed = time.perf_counter() - started  # writing samples and checkpoints is not training time
        seconds, window_seconds, images = seconds + elapsed, window_seconds + elapsed, images + unsynced * trainer.images_per_step
        unsynced = 0
        if log:
            metrics = dict(zip(names, (world.mean(sums) / window).tolist(), strict=True))
            if hasattr(trainer, "held_out_metrics"):
                metrics |= trainer.held_out_metrics(step)
            rate = window * trainer.images_per_step / max(window_seconds, 1e-9)
            if world.main:
                folder.append_stats({"step": step, **metrics, "img_per_s": rate, "seconds": seconds})
            line = ProgressLine(step, target, metrics, rate, (target - step) * window_seconds / window)
            sums.zero_()
            window, window_seconds = 0, 0.0
        if sample and world.main:
            trainer.sample(folder, step)
        if save and world.main:
            state = trainer.state_dict()
            state["run"] = {"step": step, "seconds": seconds, "images": images, "metrics": metrics}
            try:
                checkpoints.save(step, state)
            except FloatingPointError as error:
                raise TrainingDivergedError(f"{error}; last good checkpoint: {_newest(checkpoints)}") from None
        if log and world.main:  # after the checkpoint: a reporter that stops the run loses nothing
            for report in progress:
                report(line)
        started = time.perf_counter()
    if world.main:
        artifacts = trainer.finish(folder)
        facts = trainer.facts(folder) if hasattr(trainer, "facts") else {}  # optional: e.g. the best step by a quality score
        record = folder.finish(record, **facts, steps=step, resumed_from=resumed_from, metrics=metrics, seconds=seconds,
                               images=images, artifacts={k: str(v) for k, v in artifacts.items()})
    world.barrier()
    if not world.main:
        record = folder.read() or {}
    return _result(folder, RunRecord.from_json(record), checkpoints, resumed_from=resumed_from, reused=False)


def _start(spec: RunSpec, folder: RunFolder, checkpoints: Checkpoints, device: torch.device | str
           ) -> RunRecord | tuple[tuple[Checkpoint, dict[str, Any]] | None, WarmStart | None, int]:
    """Where this call starts: the finished record to re-use, or (newest checkpoint, run to warm-start from, target step)."""
    found = folder.read()
    previous = RunRecord.from_json(found) if found else None
    latest = checkpoints.latest(device)
    started_warm = bool(previous and previous.warm_start_from)
    warm = None if latest is not None or started_warm or not spec.warm_steps else newest_finished(spec.root, spec.recipe_key, spec.key, spec.images)
    target = spec.warm_steps if warm is not None or started_warm else spec.run.steps  # a warm-started run trains fewer steps
    if previous and previous.finished and previous.steps == target and all(Path(p).exists() for p in previous.artifacts.values()):
        return previous
    if latest is not None and latest[0].step > target:
        kept = [c.step for c in checkpoints.all() if c.step <= target]
        raise ValueError(f"{folder.path} has trained to step {latest[0].step}, beyond steps={target}; "
                         f"raise steps, or pick one of the kept checkpoints {kept} for evaluation")
    return latest, warm, target


def _open_folder(spec: RunSpec, world: World) -> RunFolder:
    """The run folder of the key; rank 0 creates it, the other ranks find it."""
    if world.main:
        folder = RunFolder.open(spec.root, spec.key, spec.description)
    world.barrier()
    return folder if world.main else RunFolder.open(spec.root, spec.key, spec.description)


def _resume(trainer: Trainer, latest: tuple[Checkpoint, dict[str, Any]] | None) -> tuple[int, float, int, dict[str, float]]:
    """(step, training seconds, images seen, last metrics) after loading the newest checkpoint into the trainer."""
    if latest is None:
        return 0, 0.0, 0, {}
    checkpoint, state = latest
    trainer.load_state_dict(state)
    return checkpoint.step, state["run"]["seconds"], state["run"]["images"], dict(state["run"]["metrics"])


def _warm_start(trainer: Trainer, warm: WarmStart, device: torch.device | str) -> None:
    """Load the weights of another run's final state; a trainer that cannot warm-start trains from scratch."""
    if not hasattr(trainer, "warm_start"):
        raise ValueError(f"{type(trainer).__name__} cannot warm-start: set warm_start_steps to 0")
    trainer.warm_start(read_state(warm.checkpoint, device))


def _newest(checkpoints: Checkpoints) -> Path | str:
    found: list[Checkpoint] = checkpoints.all()
    return found[-1].path if found else "none"


def _result(folder: RunFolder, record: RunRecord, checkpoints: Checkpoints, resumed_from: int, reused: bool) -> TrainResult:
    seconds = float(record.seconds)
    return TrainResult(
        folder=folder.path, key=folder.key, steps=int(record.steps), resumed_from=resumed_from, reused=reused,
        metrics=dict(record.metrics), device=record.device, dtype=record.dtype,
        seconds=seconds, images_per_second=float(record.images) / max(seconds, 1e-9),
        artifacts={k: Path(v) for k, v in record.artifacts.items()},
        checkpoints=tuple((c.step, c.path) for c in checkpoints.all()), info=record)
