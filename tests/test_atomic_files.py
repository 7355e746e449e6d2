"""atomic_write: the new content is fsynced before it replaces the old file; a failed write loses nothing."""

from __future__ import annotations

import os

import pytest

from tg_metricattn import atomic_files
from tg_metricattn.atomic_files import atomic_write, atomic_write_json, atomic_write_text


def test_the_temporary_file_is_fsynced_before_it_replaces_the_target(tmp_path, monkeypatch):
    calls: list[tuple[str, object]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else fd))
        real_fsync(fd)

    def replace(src, dst) -> None:
        calls.append(("replace", (str(src), str(dst))))
        real_replace(src, dst)

    monkeypatch.setattr(atomic_files.os, "fsync", fsync)
    monkeypatch.setattr(atomic_files.os, "replace", replace)
    target = tmp_path / "result.json"
    atomic_write_json(target, {"a": 1})
    replaced = [i for i, (kind, _) in enumerate(calls) if kind == "replace"]
    assert len(replaced) == 1, calls
    tmp, dst = calls[replaced[0]][1]
    assert dst == str(target) and tmp != dst
    synced_before = [what for kind, what in calls[: replaced[0]] if kind == "fsync"]
    assert synced_before, f"nothing was fsynced before os.replace: {calls}"
    if os.path.exists("/proc/self/fd"):  # the descriptor synced is the temporary file's, the one moved into place
        assert str(synced_before[-1]) == tmp, calls
    assert target.read_text() == '{\n  "a": 1\n}\n'


def test_a_failing_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")

    def write(handle) -> None:
        handle.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, write)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
