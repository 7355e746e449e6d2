"""copy_dataset copies regular files of the dataset folder only, and the copy follows the source (issue 1).

No test reads /dev/zero: the link to it is guarded (opening it fails the test at once), so
a copy that would follow it fails quickly instead of filling the disk.
"""

from __future__ import annotations

import builtins
import os
from pathlib import Path

import pytest

from tg_metricattn.datasets import copy_dataset


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "shared" / "Family" / "Name"
    (src / "raw").mkdir(parents=True)
    (src / "raw" / "a.txt").write_text("a")
    return src


def _copy(tmp_path: Path) -> Path:
    return copy_dataset("Family/Name", tmp_path / "work", data_root=tmp_path / "shared")


@pytest.fixture
def no_dev_zero(monkeypatch):
    """Opening /dev/zero (through open or os.open) fails the test instead of reading without end."""
    real_open, real_os_open = builtins.open, os.open

    def refuse(path) -> None:
        if isinstance(path, str | os.PathLike) and os.path.realpath(path) == "/dev/zero":
            raise AssertionError(f"{path} (-> /dev/zero) was opened")

    def guarded_open(file, *args, **kwargs):
        refuse(file)
        return real_open(file, *args, **kwargs)

    def guarded_os_open(path, *args, **kwargs):
        refuse(path)
        return real_os_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)


def test_a_link_to_a_device_is_refused_before_it_is_read(tmp_path, no_dev_zero):
    src = _source(tmp_path)
    (src / "raw" / "zero.bin").symlink_to("/dev/zero")
    with pytest.raises(ValueError, match=r"raw/zero\.bin.*is a link to '/dev/zero', outside the dataset folder"):
        _copy(tmp_path)
    assert not (tmp_path / "work" / "Family" / "Name" / "raw" / "zero.bin").exists()


def test_a_fifo_is_refused_naming_it(tmp_path):
    src = _source(tmp_path)
    os.mkfifo(src / "raw" / "pipe")
    with pytest.raises(ValueError, match=r"raw/pipe.*is not a regular file \(a FIFO\)"):
        _copy(tmp_path)
    assert not os.path.lexists(tmp_path / "work" / "Family" / "Name" / "raw" / "pipe")


def test_a_link_leaving_the_dataset_is_refused_and_its_old_copy_dropped(tmp_path):
    src = _source(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("not data")
    (src / "raw" / "leak.txt").symlink_to(secret)
    with pytest.raises(ValueError, match=r"raw/leak\.txt.*is a link to .*secret\.txt.*outside the dataset folder"):
        _copy(tmp_path)
    copy = tmp_path / "work" / "Family" / "Name"
    assert not (copy / "raw" / "leak.txt").exists()
    (copy / "raw").mkdir(parents=True)
    (copy / "raw" / "leak.txt").write_text("not data")  # what an earlier copy that followed the link left
    (src / "raw" / "leak.txt").unlink()
    assert _copy(tmp_path) == copy
    assert sorted(p.name for p in (copy / "raw").iterdir()) == ["a.txt"]


def test_links_to_folders_are_refused(tmp_path):
    src = _source(tmp_path)
    (src / "more").symlink_to(src / "raw", target_is_directory=True)
    with pytest.raises(ValueError, match=r"more'? is a link to a folder"):
        _copy(tmp_path)


def test_a_link_to_a_regular_file_inside_the_dataset_is_copied_as_its_content(tmp_path):
    src = _source(tmp_path)
    (src / "raw" / "b.txt").symlink_to("a.txt")
    copy = _copy(tmp_path)
    assert (copy / "raw" / "b.txt").read_text() == "a" and not (copy / "raw" / "b.txt").is_symlink()


def test_files_the_source_no_longer_has_are_dropped_and_processed_rebuilt(tmp_path):
    src = _source(tmp_path)
    (src / "raw" / "old.txt").write_text("old")
    (src / "extra").mkdir()
    (src / "extra" / "c.txt").write_text("c")
    copy = _copy(tmp_path)
    (copy / "processed").mkdir()
    (copy / "processed" / "data.pt").write_text("made from the old files")
    assert _copy(tmp_path) == copy and (copy / "processed" / "data.pt").exists()  # nothing changed: kept
    (src / "raw" / "old.txt").unlink()
    (src / "extra" / "c.txt").unlink()
    (src / "extra").rmdir()
    _copy(tmp_path)
    assert sorted(str(p.relative_to(copy)) for p in copy.rglob("*")) == ["raw", "raw/a.txt"]


def test_a_copy_that_fails_midway_leaves_no_partial_file(tmp_path):
    """The disk limit is hit while a file is copied (RLIMIT_FSIZE in a child process): the copy holds the
    old version of that file or none, never part of the new one."""
    import resource
    import subprocess
    import sys

    src = _source(tmp_path)
    (src / "raw" / "big.bin").write_bytes(b"\1" * (3 * 2**20))
    copy = tmp_path / "work" / "Family" / "Name"
    (copy / "raw").mkdir(parents=True)
    (copy / "raw" / "big.bin").write_bytes(b"old")  # an earlier, different version
    script = (
        "import sys\nfrom tg_metricattn.datasets.data_root import copy_dataset\n"
        "try:\n    copy_dataset('Family/Name', sys.argv[1], data_root=sys.argv[2])\n"
        "except OSError as error:\n    print('failed:', error.errno)\n"
    )

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (2**20, 2**20))

    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "work"), str(tmp_path / "shared")],
        preexec_fn=limit_file_size,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "failed: 27" in done.stdout, done.stdout + done.stderr  # EFBIG: the limit was hit
    assert (copy / "raw" / "big.bin").read_bytes() == b"old"
    assert sorted(p.name for p in (copy / "raw").iterdir() if p.name != "a.txt") == ["big.bin"]  # no temporary
