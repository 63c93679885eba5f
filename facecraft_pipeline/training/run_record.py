"""run.json as a typed record: what a run computed, from what, on what, and how it went.

The loop writes run.json as JSON (`RunFolder.begin` / `finish`); readers get a `RunRecord` from
`RunRecord.from_json`, so a key is named once, here. Every field has a default: a run.json written
by an older version (a missing field) still reads, and keys this class does not know are kept in
`extra` and written back by `to_json`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class RunRecord:
    key: str = ""
    status: str = ""  # "running" | "finished"
    settings: dict[str, Any] = field(default_factory=dict)  # the trainer's settings (GanSettings / LoraSettings as a dict)
    inputs: dict[str, Any] = field(default_factory=dict)  # images, their digest, the dataset's digest
    device: str = ""
    dtype: str = ""
    recipe: int | str | None = None  # the trainer's recipe version (part of the run key)
    recipe_key: str = ""  # the run key without the data: runs of one recipe may warm-start each other
    warm_start_from: dict[str, Any] | None = None  # the run this one started from: folder, data_digest, step
    warnings: list[str] = field(default_factory=list)  # e.g. fewer training images than recommended
    versions: dict[str, str] = field(default_factory=dict)  # library versions it ran with
    base_model: dict[str, Any] | None = None  # LoRA: the resolved base model (lora.BaseModel's fields)
    best: dict[str, Any] | None = None  # GAN: the best step by the training-time quality scores, and those scores
    peak_memory_gib: float | None = None  # LoRA on CUDA: peak GPU memory allocated (what the vram_gb presets are judged by)
    steps: int = 0
    target_steps: int = 0
    resumed_from: int = 0
    processes: int = 1
    metrics: dict[str, float] = field(default_factory=dict)  # means over the last logging window
    seconds: float = 0.0  # training time over every session
    images: int = 0  # real images seen over every session
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> file
    sessions: list[dict[str, Any]] = field(default_factory=list)  # started, ended, from_step, to_step
    created: str = ""
    ended: str = ""
    python: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # any other key run.json holds (trainer-specific facts)

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunRecord:
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {name: value for name, value in data.items() if name in known and value is not None}
        return cls(**values, extra={name: value for name, value in data.items() if name not in known})

    def to_json(self) -> dict[str, Any]:
        """The run.json dict: every field but `extra`, then `extra`'s keys at the top level."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"} | self.extra
