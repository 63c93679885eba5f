"""Progress a person can follow while a long run trains: step/total, images per second, ETA.

The loop calls every reporter at each logging step with a `ProgressLine`; the Dagster asset turns it
into a log line and MLflow metrics, the CLI into a progress bar (`bar()`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgressLine:
    step: int
    total: int
    metrics: dict[str, float]
    images_per_second: float
    eta_seconds: float

    def __str__(self) -> str:
        values = " ".join(f"{k}={v:.4g}" for k, v in self.metrics.items())
        return f"step {self.step}/{self.total} {values} {self.images_per_second:.1f} img/s, ETA {format_seconds(self.eta_seconds)}"


Progress = Callable[[ProgressLine], None]


def format_seconds(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def bar(description: str) -> Progress:
    """A tqdm bar on stderr (the CLI's): it advances at each logging step."""
    from tqdm.auto import tqdm

    state: dict[str, object] = {}

    def report(line: ProgressLine) -> None:
        progress = state.get("bar")
        if progress is None:
            progress = state["bar"] = tqdm(total=line.total, initial=0, desc=description, file=sys.stderr, leave=False)
        progress.n = line.step  # type: ignore[attr-defined]
        progress.set_postfix({k: f"{v:.3g}" for k, v in line.metrics.items()}, refresh=False)  # type: ignore[attr-defined]
        progress.refresh()  # type: ignore[attr-defined]
        if line.step >= line.total:
            progress.close()  # type: ignore[attr-defined]

    return report
