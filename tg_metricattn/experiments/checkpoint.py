"""Training checkpoints that make a resumed run identical to an uninterrupted one on CPU.

A checkpoint holds the model and optimizer state, the epoch, every random-number state
that training consumes (torch, the data-order generator, Python, NumPy), the metrics
history and the early-stopping state, with the run's config and the package versions
(:func:`package_versions`) that produced it. It is written atomically (temp file, fsync,
``os.replace``); the checkpoint it replaces is kept beside it as ``<name>.prev.pt``, so a
checkpoint damaged after it was written (a full disk, a copy cut short) costs one epoch,
not the run. It is read back with ``torch.load(weights_only=True)``: only tensors and
plain containers are stored, so loading never unpickles arbitrary objects. A file that
needs unpickling is refused unless the caller passes ``allow_pickle=True`` (``tgma
--allow-pickle``), which runs the file's code: do it only for files you trust.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import platform
import random
import shutil
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tg_metricattn.atomic_files import atomic_write

__all__ = [
    "CheckpointError",
    "DamagedCheckpointError",
    "capture_rng_state",
    "load_checkpoint",
    "load_latest_checkpoint",
    "package_versions",
    "previous_checkpoint_path",
    "restore_rng_state",
    "save_checkpoint",
]


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: damaged, not a tgma checkpoint, or holding objects that need unpickling."""


class DamagedCheckpointError(CheckpointError):
    """A checkpoint file that is truncated or corrupt (the one case where the previous checkpoint helps)."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"Checkpoint {str(path)!r} is damaged and cannot be read ({detail}).")


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages a result depends on."""
    versions = {"python": platform.python_version()}
    for name in ("torch", "torch-geometric", "ogb", "tg-metricattn", "numpy", "scipy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def capture_rng_state(generator: torch.Generator | None = None) -> dict[str, Any]:
    """The random states of torch (CPU and CUDA), Python, NumPy and ``generator``, as plain data."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": list(random.getstate()[1]),
        "python_version": random.getstate()[0],
        "python_gauss": random.getstate()[2],
        "numpy_keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
        "numpy_pos": int(np_state[2]),
        "numpy_has_gauss": int(np_state[3]),
        "numpy_cached_gauss": float(np_state[4]),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if generator is not None:
        state["generator"] = generator.get_state()
    return state


def restore_rng_state(state: dict[str, Any], generator: torch.Generator | None = None) -> None:
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    random.setstate((state["python_version"], tuple(state["python"]), state["python_gauss"]))
    keys = state["numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, state["numpy_pos"], state["numpy_has_gauss"], state["numpy_cached_gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if generator is not None and "generator" in state:
        generator.set_state(state["generator"])


def previous_checkpoint_path(path: str | os.PathLike) -> Path:
    """Where :func:`save_checkpoint` keeps the checkpoint that ``path`` replaced: ``<stem>.prev<suffix>``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


DIGEST_KEY = "sha256"


def state_digest(state: Any) -> str:
    """SHA-256 of everything in ``state``: tensor dtypes, shapes and bytes, keys and plain values, in order."""
    digest = hashlib.sha256()

    def feed(obj: Any) -> None:
        if isinstance(obj, torch.Tensor):
            tensor = obj.detach().cpu().contiguous().reshape(-1)
            digest.update(f"T{tensor.dtype}{tuple(obj.shape)}".encode())
            digest.update(tensor.view(torch.uint8).numpy().tobytes())
        elif isinstance(obj, dict):
            digest.update(f"D{len(obj)}".encode())
            for key, value in obj.items():
                feed(key)
                feed(value)
        elif isinstance(obj, (list, tuple)):
            digest.update(f"L{len(obj)}".encode())
            for value in obj:
                feed(value)
        else:
            digest.update(f"{type(obj).__name__}:{obj!r};".encode())

    feed(state)
    return digest.hexdigest()


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any], keep_previous: bool = False) -> Path:
    """Write ``state`` (tensors and plain containers only) to ``path`` atomically, with its :func:`state_digest`.

    With ``keep_previous`` the file being replaced is first linked (or copied) to
    :func:`previous_checkpoint_path`, so ``path`` exists at every moment and the last
    good state survives if the new file is later damaged.
    """
    path = Path(path)
    if keep_previous and path.is_file():
        previous = previous_checkpoint_path(path)
        staging = previous.with_name(f".{previous.name}.tmp")
        staging.unlink(missing_ok=True)
        try:
            os.link(path, staging)
        except OSError:  # file systems without hard links
            shutil.copyfile(path, staging)
        os.replace(staging, previous)
    stamped = {**state, DIGEST_KEY: state_digest(state)}  # checked on load: a flipped byte is caught
    return atomic_write(path, lambda handle: torch.save(stamped, handle))


def load_checkpoint(
    path: str | os.PathLike,
    map_location: str | torch.device = "cpu",
    required: Sequence[str] = (),
    allow_pickle: bool = False,
) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DamagedCheckpointError: the file is truncated or corrupt, or its content does not
            match the checksum stored in it (files without one, from older versions, load).
        CheckpointError: the file is not a dict holding the ``required`` keys, or holds
            Python objects that need unpickling (refused unless ``allow_pickle``:
            unpickling runs code from the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {str(path)!r}.")
    try:
        state = torch.load(path, map_location=map_location, weights_only=not allow_pickle)
    except pickle.UnpicklingError as error:
        if "Unsupported global" not in str(error):  # not a refused class: the pickle stream itself is broken
            detail = str(error).split("WeightsUnpickler error:")[-1].strip().splitlines()[0]
            raise DamagedCheckpointError(path, detail) from None
        raise CheckpointError(
            f"Checkpoint {str(path)!r} holds Python objects that need unpickling, which can run arbitrary code; "
            "refused. tgma checkpoints hold only tensors and plain containers. If you trust this file, pass "
            "--allow-pickle (allow_pickle=True)."
        ) from None
    except (RuntimeError, EOFError, KeyError, ValueError, OSError) as error:
        message = str(error).splitlines()[0] if str(error) else "unexpected end of file"
        raise DamagedCheckpointError(path, f"{type(error).__name__}: {message}") from error
    if isinstance(state, dict) and DIGEST_KEY in state:
        stored = state.pop(DIGEST_KEY)
        if stored != state_digest(state):
            raise DamagedCheckpointError(path, "its content does not match the checksum stored in it")
    missing = [key for key in required if not isinstance(state, dict) or key not in state]
    if missing:
        raise CheckpointError(f"{str(path)!r} is not a tgma checkpoint: it lacks {missing}.")
    return state


def load_latest_checkpoint(
    path: str | os.PathLike,
    map_location: str | torch.device = "cpu",
    required: Sequence[str] = (),
    allow_pickle: bool = False,
) -> dict[str, Any]:
    """Load ``path``; if it is damaged, say so on stderr and load the previous checkpoint kept beside it.

    Raises :class:`CheckpointError` naming both files when neither can be read.
    """
    try:
        return load_checkpoint(path, map_location, required, allow_pickle)
    except DamagedCheckpointError as error:
        previous = previous_checkpoint_path(path)
        if not previous.is_file():
            raise
        print(f"warning: {error} Resuming from the previous checkpoint {str(previous)!r}.", file=sys.stderr)
        try:
            return load_checkpoint(previous, map_location, required, allow_pickle)
        except CheckpointError as previous_error:
            raise CheckpointError(f"{error} The previous checkpoint cannot be used either: {previous_error}") from None
