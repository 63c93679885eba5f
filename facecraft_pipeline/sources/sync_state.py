"""Durable sync state: a JSON snapshot written atomically, plus an append-only journal of items.

Why a journal: a sync killed half-way must not download again what it already finished, and
rewriting a snapshot of thousands of items after every file would cost more than the files.
Each finished item is appended as one JSON line; `commit` folds everything into a new snapshot.
A journal belongs to one snapshot generation, so a crash between the two steps of a commit
never replays stale lines over a newer snapshot.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

from facecraft_pipeline.atomic import write_json_atomic


def write_private_json(path: Path, data: Any) -> None:
    """Compact JSON (the OneDrive state can hold thousands of items), mode 0600, atomic and fsynced."""
    write_json_atomic(path, data, 0o600, indent=None, fsync=True, ensure_ascii=False, separators=(",", ":"))


class SyncStateStore:
    """State of one sync in `<directory>/<name>.json`, item updates journaled in `<name>.journal.jsonl`.

    The state is a JSON object whose "items" key maps item ids to JSON objects; `record` upserts
    (or, with None, deletes) one item durably without rewriting the snapshot.
    """

    def __init__(self, directory: Path, name: str) -> None:
        self.snapshot_path = directory / f"{name}.json"
        self.journal_path = directory / f"{name}.journal.jsonl"
        self._generation = 0
        self._journal: IO[str] | None = None
        self.committed_items: dict[str, Any] = {}  # the items as of the last commit, journal not applied

    def load(self) -> dict[str, Any]:
        """The last committed state with every journaled item applied ({} when there is none)."""
        state: dict[str, Any] = {}
        if self.snapshot_path.exists():
            state = json.loads(self.snapshot_path.read_text(encoding="utf-8"))
        self._generation = int(state.get("generation", 0))
        items: dict[str, Any] = state.setdefault("items", {})
        self.committed_items = dict(items)
        for key, value in self._journal_entries():
            if value is None:
                items.pop(key, None)
            else:
                items[key] = value
        return state

    def record(self, key: str, value: dict[str, Any] | None) -> None:
        """Note one item's new value (None: gone) so that it outlives a killed process (flushed, not fsynced)."""
        if self._journal is None:
            fresh = not self.journal_path.exists() or self._journal_generation() != self._generation
            self.journal_path.parent.mkdir(parents=True, exist_ok=True)
            # Kept open across records (closed by commit/close): one open() per photo would cost more.
            self._journal = open(self.journal_path, "w" if fresh else "a", encoding="utf-8")  # noqa: SIM115
            os.chmod(self.journal_path, 0o600)
            if fresh:
                self._journal.write(json.dumps({"generation": self._generation}) + "\n")
        self._journal.write(json.dumps({"key": key, "value": value}, ensure_ascii=False) + "\n")
        self._journal.flush()

    def commit(self, state: dict[str, Any]) -> None:
        """Write `state` as the new snapshot and start an empty journal for it."""
        self.close()
        self._generation += 1
        write_private_json(self.snapshot_path, {**state, "generation": self._generation})
        self.journal_path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def _journal_generation(self) -> int | None:
        try:
            with open(self.journal_path, encoding="utf-8") as handle:
                header = json.loads(handle.readline())
        except (OSError, ValueError):
            return None
        return header.get("generation") if isinstance(header, dict) else None

    def _journal_entries(self) -> list[tuple[str, Any]]:
        if self._journal_generation() != self._generation:
            return []
        entries: list[tuple[str, Any]] = []
        with open(self.journal_path, encoding="utf-8") as handle:
            next(handle)
            for line in handle:
                try:
                    entry = json.loads(line)
                except ValueError:  # a line torn by a kill mid-write: everything before it holds
                    break
                entries.append((str(entry["key"]), entry["value"]))
        return entries
