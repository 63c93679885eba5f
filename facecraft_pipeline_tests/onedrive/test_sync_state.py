"""The sync state store: snapshot + journal survive crashes and never replay stale lines."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from facecraft_pipeline.sources.sync_state import SyncStateStore, write_private_json


def test_journaled_items_survive_a_crash_before_commit(tmp_path: Path) -> None:
    store = SyncStateStore(tmp_path, "s")
    store.load()
    store.commit({"cursor": "c1", "items": {"a": {"v": 1}}})
    store.load()
    store.record("b", {"v": 2})
    store.record("a", None)
    # no commit: the process dies here

    reloaded = SyncStateStore(tmp_path, "s")
    state = reloaded.load()
    assert state["cursor"] == "c1" and state["items"] == {"b": {"v": 2}}
    assert reloaded.committed_items == {"a": {"v": 1}}


def test_a_torn_last_journal_line_keeps_everything_before_it(tmp_path: Path) -> None:
    store = SyncStateStore(tmp_path, "s")
    store.load()
    store.record("a", {"v": 1})
    store.close()
    with open(store.journal_path, "a", encoding="utf-8") as handle:
        handle.write('{"key": "b", "val')
    assert SyncStateStore(tmp_path, "s").load()["items"] == {"a": {"v": 1}}


def test_journal_of_an_older_generation_is_ignored(tmp_path: Path) -> None:
    store = SyncStateStore(tmp_path, "s")
    store.load()
    store.record("stale", {"v": 0})
    store.close()
    journal = store.journal_path.read_text()
    store.commit({"items": {"fresh": {"v": 1}}})
    store.journal_path.write_text(journal)  # as if the crash came between snapshot and journal reset
    assert SyncStateStore(tmp_path, "s").load()["items"] == {"fresh": {"v": 1}}


def test_atomic_json_is_private_and_complete(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "state.json"
    write_private_json(path, {"k": [1, 2]})
    assert json.loads(path.read_text()) == {"k": [1, 2]}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]
