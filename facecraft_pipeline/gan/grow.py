"""Progressive growing as a pure function of the step: which stage is active and whether the
earlier layers are frozen. A resumed run therefore lands in the same phase (mid-phase too).

Each stage after the first: train the new layers with the earlier ones frozen for `grow_freeze`
of its steps, then unfreeze and fine-tune everything (the last stage runs to the end).
"""

from __future__ import annotations

from dataclasses import dataclass

from facecraft_pipeline.gan.settings import GanSettings


@dataclass(frozen=True)
class Stage:
    side: int
    previous: int  # side of the stage before (0 for the first)
    frozen: bool  # the layers of earlier stages are frozen


def stage_at(settings: GanSettings, step: int) -> Stage:
    stages = settings.grow_stages
    start = 0
    for i, (side, steps) in enumerate(stages):
        last = i == len(stages) - 1
        if last or step < start + steps:
            previous = stages[i - 1][0] if i else 0
            length = steps if steps else (stages[i - 1][1] if i else 0)
            return Stage(side, previous, bool(i) and step - start < settings.grow_freeze * length)
        start += steps
    raise AssertionError("unreachable")
