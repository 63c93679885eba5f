import json
import os
import stat
from pathlib import Path

import pytest

from facecraft_pipeline.atomic import atomic_path, write_bytes_atomic, write_json_atomic


def test_a_failing_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(path) as temporary:
        temporary.write_text("half")
        raise RuntimeError("crash mid-write")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_mode_is_applied_and_the_parent_created(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "login.json"
    write_json_atomic(path, {"k": [1, 2]}, mode=0o600)
    assert json.loads(path.read_text()) == {"k": [1, 2]}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["login.json"]


def test_without_mode_the_umask_applies_like_open(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_bytes_atomic(tmp_path / "a.bin", b"\x00\x01", fsync=True)
    finally:
        os.umask(old)
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o644


def test_json_formatting_is_json_dumps(tmp_path: Path) -> None:
    data = {"b": "é", "a": [1]}
    write_json_atomic(tmp_path / "x.json", data)
    write_json_atomic(tmp_path / "y.json", data, indent=None, ensure_ascii=False, separators=(",", ":"))
    assert (tmp_path / "x.json").read_text() == json.dumps(data, indent=1)
    assert (tmp_path / "y.json").read_text(encoding="utf-8") == '{"b":"é","a":[1]}'
