"""The pinned set-up of ``make``: write the lock file from an environment, or check an environment against it.

``constraints.txt`` holds one ``name==version`` line per distribution that ``make`` installs
(pip, setuptools and wheel included; the project itself left out). ``make`` installs with
``pip install -c constraints.txt``, so a fresh clone gets the versions its tests passed with;
``pyproject.toml`` keeps loose ranges for library users.

    python tools/lock.py freeze > constraints.txt   # what `make lock` runs in a new venv
    python tools/lock.py check constraints.txt      # what `make test` runs first

Versions are compared without their local label (``2.13.0+cpu`` is ``2.13.0``), so the CPU
build of torch that the set-up installs matches ``torch==2.13.0``.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

PROJECT = "tg-metricattn"


def canonical(name: str) -> str:
    """The distribution name as pip compares it (PEP 503: lower case, runs of ``-_.`` as ``-``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def public_version(version: str) -> str:
    """``version`` without its local label (``2.13.0+cpu`` -> ``2.13.0``)."""
    return version.split("+", 1)[0]


def installed() -> dict[str, str]:
    """Every distribution of this environment but the project: canonical name -> public version."""
    found = {canonical(d.metadata["Name"]): public_version(d.version) for d in metadata.distributions()}
    found.pop(PROJECT, None)
    return found


def read_lock(path: Path) -> dict[str, str]:
    """The ``name==version`` lines of ``path`` (comments and blank lines skipped)."""
    pins = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep or not name.strip() or not version.strip():
            raise SystemExit(f"{path}:{number}: expected name==version, got {line!r}")
        pins[canonical(name.strip())] = public_version(version.strip())
    return pins


def differences(pins: dict[str, str], found: dict[str, str]) -> list[str]:
    """One line per pinned distribution that is missing or installed at another version.

    Distributions the lock does not name (an optional extra such as torch-scatter) are allowed.
    """
    return [
        f"{name}: locked {want}, installed {found.get(name, '(not installed)')}"
        for name, want in sorted(pins.items())
        if found.get(name) != want
    ]


def main(argv: list[str]) -> int:
    if argv[:1] == ["freeze"] and len(argv) == 1:
        print("# make's pinned set-up (python tools/lock.py freeze in a new venv; refresh with `make lock`)")
        print("\n".join(f"{name}=={version}" for name, version in sorted(installed().items())))
        return 0
    if argv[:1] == ["check"] and len(argv) == 2:
        lines = differences(read_lock(Path(argv[1])), installed())
        if lines:
            print(f"the environment does not match {argv[1]}:", *lines, sep="\n  ", file=sys.stderr)
            print("rebuild it (rm -rf .venv && make test) or refresh the lock (make lock)", file=sys.stderr)
            return 1
        print(f"the environment matches {argv[1]} ({len(read_lock(Path(argv[1])))} pinned distributions)")
        return 0
    print("usage: python tools/lock.py freeze | check LOCKFILE", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
