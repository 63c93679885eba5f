"""The run protocol shared by every trainer, on a trainer small enough to reason about by hand."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from facecraft_pipeline.settings import setting
from facecraft_pipeline.training import RunFolder, RunRecord, RunSettings, TrainingDivergedError, run_key, train
from facecraft_pipeline.training.checkpoints import Checkpoints
from facecraft_pipeline.training.loop import RunSpec


class Counter:
    """Adds one random number per step to a weight: the result depends on every draw and the order."""

    metric_names = ("value", "draw")
    images_per_step = 2

    def __init__(self, seed: int, poison_at: int | None = None):
        self.weight = torch.zeros(())
        self.rng = torch.Generator().manual_seed(seed)
        self.steps_done, self.poison_at, self.samples = 0, poison_at, []

    def step(self) -> torch.Tensor:
        draw = torch.rand((), generator=self.rng)
        self.weight += draw
        self.steps_done += 1
        if self.poison_at is not None and self.steps_done >= self.poison_at:
            self.weight += float("nan")
        return torch.stack([self.weight.clone(), draw])

    def state_dict(self) -> dict:
        return {"weight": self.weight.clone(), "rng": self.rng.get_state(), "steps_done": self.steps_done}

    def load_state_dict(self, state: dict) -> None:
        self.weight, self.steps_done = state["weight"].clone(), state["steps_done"]
        self.rng.set_state(state["rng"])

    def sample(self, folder: RunFolder, step: int) -> None:
        folder.samples.mkdir(exist_ok=True)
        (folder.samples / f"step_{step:06d}.txt").write_text(str(float(self.weight)))

    def finish(self, folder: RunFolder) -> dict[str, Path]:
        path = folder.path / "weight.txt"
        path.write_text(repr(float(self.weight)))
        return {"weight": path}


def spec(root: Path, **run: int) -> RunSpec:
    settings = RunSettings(**{"steps": 10, "log_every": 2, "checkpoint_every": 4, "sample_every": 4, **run})
    return RunSpec(root, run_key("data", settings, 1), "counter", settings, {"device": "cpu", "dtype": "float32"})


def weight(result) -> float:
    return float(result.artifact("weight").read_text())


def test_a_run_ends_with_artifacts_stats_and_kept_checkpoints(tmp_path: Path) -> None:
    result = train(spec(tmp_path), lambda: Counter(0))
    assert result.steps == 10 and not result.reused and result.images_per_second > 0
    assert [s for s, _ in result.checkpoints] == [8, 10]  # keep_last=2; the last step is always saved
    rows = [json.loads(line) for line in (result.folder / "stats.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [2, 4, 6, 8, 10]
    assert result.metrics == {k: rows[-1][k] for k in ("value", "draw")}  # means over steps 9 and 10
    assert weight(result) - 2 * result.metrics["draw"] < result.metrics["value"] < weight(result)


def test_the_result_carries_run_json_as_a_typed_record(tmp_path: Path) -> None:
    result = train(spec(tmp_path), lambda: Counter(0))
    on_disk = json.loads((result.folder / "run.json").read_text())
    assert result.info == RunRecord.from_json(on_disk) == RunRecord.from_json(result.info.to_json())
    assert result.info.finished and result.info.steps == 10 and result.info.device == "cpu" and result.info.processes == 1


def test_an_older_run_json_still_reads_and_keys_it_does_not_know_are_kept() -> None:
    old = {"key": "abc", "status": "finished", "steps": 300, "settings": {"kind": "dcgan"}, "lora_training": {"rank": 4}}
    record = RunRecord.from_json(old)
    assert (record.steps, record.settings, record.best, record.base_model, record.versions) == (300, {"kind": "dcgan"}, None, None, {})
    assert record.peak_memory_gib is None and RunRecord.from_json(old | {"peak_memory_gib": 7.5}).peak_memory_gib == 7.5
    assert record.extra == {"lora_training": {"rank": 4}} and record.to_json()["lora_training"] == {"rank": 4}


def test_length_and_cadence_are_not_in_the_run_key_but_seed_and_precision_are() -> None:
    base = RunSettings()
    assert run_key("d", base, 1) == run_key("d", dataclasses.replace(base, steps=5, log_every=1, keep_every=3), 1)
    assert run_key("d", base, 1) != run_key("d", dataclasses.replace(base, seed=1), 1)
    assert run_key("d", base, 1) != run_key("d", dataclasses.replace(base, mixed_precision="bf16"), 1)
    assert run_key("d", base, 1) != run_key("e", base, 1) != run_key("d", base, 2)


def test_settings_marked_out_of_the_key_are_found_in_nested_settings_too() -> None:
    @dataclasses.dataclass(frozen=True)
    class Toy:
        lr: float = setting(0.1, "learning rate")
        every: int = setting(3, "cadence", run_key=False)
        run: RunSettings = dataclasses.field(default_factory=RunSettings)

    assert run_key("d", Toy(), 1) == run_key("d", Toy(every=9, run=RunSettings(steps=7)), 1)
    assert run_key("d", Toy(), 1) != run_key("d", Toy(lr=0.2), 1)


def test_resume_after_an_interruption_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    straight = weight(train(spec(tmp_path / "a"), lambda: Counter(0)))

    def stop_at_6(line) -> None:
        if line.step == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(spec(tmp_path / "b"), lambda: Counter(0), [stop_at_6])
    resumed = train(spec(tmp_path / "b"), lambda: Counter(0))
    assert resumed.resumed_from == 4 and weight(resumed) == straight
    assert sorted(p.name for p in (resumed.folder / "samples").iterdir()) == ["step_000004.txt", "step_000008.txt"]


def test_a_finished_run_is_reused_and_extended_in_the_same_folder(tmp_path: Path) -> None:
    first = train(spec(tmp_path), lambda: Counter(0))
    again = train(spec(tmp_path), lambda: pytest.fail("a finished run must not build its trainer"))
    assert again.reused and again.folder == first.folder and again.seconds == first.seconds
    longer = train(spec(tmp_path, steps=14), lambda: Counter(0))
    assert (longer.folder, longer.resumed_from, longer.steps) == (first.folder, 10, 14)
    assert weight(longer) == weight(train(spec(tmp_path / "straight", steps=14), lambda: Counter(0)))


def test_keep_every_keeps_the_sweep_and_prunes_the_rest(tmp_path: Path) -> None:
    result = train(spec(tmp_path, steps=20, checkpoint_every=2, keep_every=5, keep_last=1), lambda: Counter(0))
    assert [s for s, _ in result.checkpoints] == [10, 20]


def test_nan_stops_the_run_and_the_last_good_checkpoint_survives(tmp_path: Path) -> None:
    with pytest.raises(TrainingDivergedError, match=r"NaN/inf before step 6; last good checkpoint: .*checkpoint-0000004\.pt"):
        train(spec(tmp_path), lambda: Counter(0, poison_at=5))
    (folder,) = tmp_path.iterdir()
    assert [c.step for c in Checkpoints(folder / "checkpoints", 2).all()] == [4]


def test_a_torn_newest_checkpoint_falls_back_to_the_one_before(tmp_path: Path) -> None:
    first = train(spec(tmp_path, steps=8), lambda: Counter(0))
    (first.folder / "checkpoints" / "checkpoint-0000008.pt").write_bytes(b"torn")
    (first.folder / "run.json").unlink()
    again = train(spec(tmp_path, steps=8), lambda: Counter(0))
    assert again.resumed_from == 4 and weight(again) == weight(first)
