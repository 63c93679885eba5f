"""A run folder a person can read, in the spirit of NVlabs/edm: `<root>/<n>-<description>-<key>/`.

    run.json       settings, inputs, versions, device, dtype, status, sessions (start/end/steps)
    stats.jsonl    one JSON line per logged step
    checkpoints/   checkpoint-<step>.pt (see checkpoints.py)
    samples/       grids written while training

The key names what the run computes: (input data digest, the settings that change the result,
recipe version). Length and cadence settings are not in it, so the same key finds the same folder
when `steps` is raised and the run continues there.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import platform
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facecraft_pipeline.atomic import write_json_atomic
from facecraft_pipeline.settings import result_fields

KEY_CHARS = 12
_FOLDER = re.compile(r"^(\d{5})-(.+)-([0-9a-f]{%d})$" % KEY_CHARS)


def run_key(data_digest: str, settings: Any, recipe: int | str, extra: Any = None) -> str:
    """12 hex chars of sha256 over what the run computes; `extra` adds e.g. the resolved base model."""
    payload = {"data": data_digest, "settings": result_fields(settings), "recipe": recipe, "extra": extra}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:KEY_CHARS]


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class RunFolder:
    path: Path
    key: str

    @classmethod
    def open(cls, root: Path, key: str, description: str) -> RunFolder:
        """The folder of this key under `root`, or a new one numbered after the highest there."""
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        numbers = []
        for child in root.iterdir():
            match = _FOLDER.match(child.name)
            if match and child.is_dir():
                if match.group(3) == key:
                    return cls(child, key)
                numbers.append(int(match.group(1)))
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", description).strip("_-") or "run"
        path = root / f"{max(numbers, default=-1) + 1:05d}-{safe}-{key}"
        path.mkdir()
        return cls(path, key)

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    @property
    def run_json(self) -> Path:
        return self.path / "run.json"

    @property
    def stats(self) -> Path:
        return self.path / "stats.jsonl"

    def read(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.run_json.read_text())
        except (OSError, ValueError):
            return None

    def write(self, record: dict[str, Any]) -> None:
        write_json_atomic(self.run_json, record, indent=2, default=str)

    def begin(self, info: dict[str, Any], start_step: int, target: int) -> dict[str, Any]:
        """Mark the run as training from `start_step` to `target`; keeps the earlier sessions."""
        record = self.read() or {"key": self.key, "created": now(), "sessions": []}
        record.update(info)
        record.update(status="running", target_steps=target, python=platform.python_version())
        record["sessions"].append({"started": now(), "from_step": start_step, "to_step": target})
        self.write(record)
        self.truncate_stats(start_step)
        for grid in self.samples.glob("step_*.*"):  # written by a session after its last checkpoint
            if int(grid.stem.split("_")[1]) > start_step:
                grid.unlink()
        return record

    def finish(self, record: dict[str, Any], **facts: Any) -> dict[str, Any]:
        record.update(status="finished", ended=now(), **facts)
        record["sessions"][-1]["ended"] = record["ended"]
        self.write(record)
        return record

    def append_stats(self, row: dict[str, Any]) -> None:
        with open(self.stats, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")

    def read_stats(self) -> list[dict[str, Any]]:
        if not self.stats.exists():
            return []
        return [json.loads(line) for line in self.stats.read_text().splitlines() if line.strip()]

    def truncate_stats(self, step: int) -> None:
        """Drop rows after `step` (logged by a session that stopped before its next checkpoint)."""
        rows = self.read_stats()
        kept = [row for row in rows if row.get("step", 0) <= step]
        if len(kept) != len(rows):
            self.stats.write_text("".join(json.dumps(row) + "\n" for row in kept))
