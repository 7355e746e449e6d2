"""The pinned set-up: ``tools/lock.py`` finds an environment that differs from ``constraints.txt``,
and the lock pins everything the project asks for."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lock_module():
    spec = importlib.util.spec_from_file_location("lock_tool", ROOT / "tools" / "lock.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("lock_tool", module)
    spec.loader.exec_module(module)
    return module


lock = _lock_module()
tomllib = pytest.importorskip("tomllib")  # Python >= 3.11


def test_a_wrong_or_missing_version_is_reported_and_extras_are_allowed():
    pins = {"numpy": "2.4.6", "torch": "2.13.0", "scipy": "1.17.1"}
    found = {"numpy": "2.4.5", "torch": "2.13.0", "torch-scatter": "2.1.2"}
    assert lock.differences(pins, found) == [
        "numpy: locked 2.4.6, installed 2.4.5",
        "scipy: locked 1.17.1, installed (not installed)",
    ]
    assert lock.differences(pins, {**found, "numpy": "2.4.6", "scipy": "1.17.1"}) == []


def test_names_and_local_labels_are_compared_as_pip_does(tmp_path):
    path = tmp_path / "lock.txt"
    path.write_text("# comment\nScikit_Learn==1.9.1\ntorch==2.13.0+cpu  # the CPU build\n\n")
    assert lock.read_lock(path) == {"scikit-learn": "1.9.1", "torch": "2.13.0"}
    path.write_text("numpy>=2\n")
    with pytest.raises(SystemExit, match=r"lock.txt:1: expected name==version"):
        lock.read_lock(path)


def test_check_fails_on_this_environment_against_a_changed_lock(tmp_path, capsys):
    pins = lock.read_lock(ROOT / "constraints.txt")
    changed = tmp_path / "constraints.txt"
    changed.write_text("".join(f"{name}=={'0.0.1' if name == 'numpy' else v}\n" for name, v in pins.items()))
    assert lock.main(["check", str(changed)]) == 1
    assert "numpy: locked 0.0.1, installed" in capsys.readouterr().err


def test_the_lock_pins_every_requirement_of_the_project_and_the_makefiles_torch():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"], "pip", "setuptools", "wheel"]
    names = {lock.canonical(re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0]) for req in wanted}
    pins = lock.read_lock(ROOT / "constraints.txt")
    assert sorted(names - pins.keys()) == []
    assert "torch==2.13.0" in (ROOT / "Makefile").read_text() and pins["torch"] == "2.13.0"
