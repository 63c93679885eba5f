"""Re-training when photos were added starts from what was learned: the newest finished run of the same recipe.

A recipe is the run key without the data: the same settings and recipe version on other images.
When a new run of a recipe has no checkpoint of its own, `train` looks for the newest finished run
of that recipe under the same root that saw mostly the same images (at least half of its images are
among the new run's: photos were added or a few removed, not a data root pointed at another
library), loads its final weights into the trainer (`Trainer.warm_start`) and trains
`RunSpec.warm_steps` steps instead of the full length. Each run lists the content hashes of its
images in `inputs.sha256`; run.json records where it started (`warm_start_from`: that run's folder,
data digest and step).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facecraft_pipeline.training.run_folder import run_key
from facecraft_pipeline.training.run_record import RunRecord


def recipe_key(settings: Any, recipe: int | str) -> str:
    """What the run computes apart from its data: runs of one recipe may warm-start each other."""
    return run_key("", settings, recipe)


@dataclass(frozen=True)
class WarmStart:
    folder: Path
    data_digest: str
    step: int
    checkpoint: Path

    def record(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "data_digest": self.data_digest, "step": self.step}


INPUTS_FILE = "inputs.sha256"


def write_inputs(folder: Path, images: frozenset[str]) -> None:
    (folder / INPUTS_FILE).write_text("".join(f"{h}\n" for h in sorted(images)), encoding="utf-8")


def shares_most_images(folder: Path, images: frozenset[str]) -> bool:
    """At least half of the images the run in `folder` trained on are among `images` (False if it lists none)."""
    try:
        seen = set((folder / INPUTS_FILE).read_text(encoding="utf-8").split())
    except OSError:
        return False
    return bool(seen) and 2 * len(seen & images) >= len(seen)


def newest_finished(root: Path, recipe: str, key: str, images: frozenset[str]) -> WarmStart | None:
    """The newest finished run of `recipe` under `root`, other than the run `key` itself, that trained mostly
    on `images` (None if there is none)."""
    found: list[tuple[str, WarmStart]] = []
    for run_json in Path(root).glob("*/run.json"):
        try:
            record = RunRecord.from_json(json.loads(run_json.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        checkpoint = Path(record.artifacts.get("checkpoint", ""))
        if not record.finished or record.recipe_key != recipe or record.key == key or not checkpoint.is_file():
            continue
        if not shares_most_images(run_json.parent, images):
            continue
        start = WarmStart(run_json.parent, str(record.inputs.get("digest", "")), record.steps, checkpoint)
        found.append((record.ended, start))
    return max(found, key=lambda item: (item[0], item[1].folder.name))[1] if found else None
