"""The results folder of a run: config, per-epoch metrics (JSON and CSV), final metrics, plots, checkpoints.

Layout of one run (``--out DIR/run_<seed>``)::

    config.json          the resolved TrainConfig (with this run's seed)
    metrics.json         one record per epoch
    metrics.csv          the same as a table
    final.json           selection epoch, validation/test metric there, sizes, timing
    curves.png           loss and metrics per epoch
    checkpoint.pt        the latest training state (for --resume)
    best_model.pt        the model state at the best validation epoch

Every file is written atomically, so an interrupted run leaves only complete files.
:func:`lock_run_folder` keeps a second process from writing into the same folder at once;
:func:`check_out_folder` refuses an ``--out`` that cannot hold results before anything runs;
:func:`require_same_settings` keeps a resumed folder from mixing runs of other settings.
Every file read back may have been edited or damaged: the readers check what they return
and name the file when it does not hold what the run wrote.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import math
import os
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

from tg_metricattn.atomic_files import atomic_write_json, atomic_write_text, read_json
from tg_metricattn.experiments.training_plots import plot_training_curves

__all__ = ["RunFolder", "RunFolderBusyError", "check_out_folder", "lock_run_folder", "require_same_settings"]

LOCK_NAME = ".lock"


class RunFolderBusyError(RuntimeError):
    """Another process holds the lock of the results folder."""


@contextlib.contextmanager
def lock_run_folder(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on the results folder ``path`` (created if needed) for the block.

    ``fcntl.flock`` on ``path/.lock``: released by the kernel when the process ends, however it
    ends, so a killed run leaves no stale lock. Raises :class:`RunFolderBusyError` when
    another process holds it.
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunFolderBusyError(
                f"{str(folder)!r} is in use by another tgma run; wait for it to finish or choose another --out."
            ) from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


def check_out_folder(out: str | os.PathLike, option: str = "--out") -> None:
    """Raise a one-line ``ValueError`` naming ``option`` when ``out`` is a file or cannot be created or
    written.

    Nothing is created to find out (the nearest existing folder must be writable), so the check leaves
    nothing behind and is safe beside other processes checking the same ``out`` at once (the ranks of a
    torchrun job)."""
    out = Path(out)
    try:
        is_file = out.exists() and not out.is_dir()
        existing = next(p for p in (out, *out.parents) if p.exists())  # the chain ends at '.' or '/'
    except OSError as error:  # a name longer than the file system allows, a loop of links...
        raise ValueError(f"{option} {str(out)!r} cannot be created ({error.strerror or error}).") from None
    if is_file:
        raise ValueError(f"{option} {str(out)!r} is a file, not a folder.")
    if not existing.is_dir():
        raise ValueError(f"{option} {str(out)!r} cannot be created: {str(existing)!r} is a file.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {str(out)!r} cannot be written ({str(existing)!r} is not writable).")


def require_same_settings(
    path: str | os.PathLike,
    wanted: dict[str, Any],
    normalize: Callable[[dict[str, Any]], dict[str, Any]] = dict,
    ignored: Collection[str] = (),
) -> None:
    """Refuse (``ValueError``) a settings file ``path`` (a results folder's ``config.json``) that holds
    other settings than ``wanted``, naming the first keys that differ; nothing when ``path`` is absent.

    ``normalize`` maps the file's dictionary to the form of ``wanted`` (defaults of keys added since it
    was written); keys in ``ignored`` may differ (e.g. the number of runs, when more are added).
    """
    path = Path(path)
    if not path.exists():
        return
    found = read_json(path)
    try:
        if not isinstance(found, dict):
            raise TypeError("not a JSON object")
        found = json.loads(json.dumps(normalize(found)))
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: not the settings of a run ({error}); choose another --out.") from None
    wanted = json.loads(json.dumps(wanted))
    differ = [key for key in wanted if key not in ignored and found.get(key) != wanted[key]]
    if differ:
        shown = ", ".join(f"{key} {found.get(key)!r} there, {wanted[key]!r} here" for key in differ[:3])
        raise ValueError(
            f"{str(path.parent)!r} holds results of other settings ({shown}); choose another --out "
            "(or rerun with the settings of its config.json)."
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _epoch_value(value: Any) -> float:
    if value is None:  # a NaN or infinite value, as the strict JSON writer stores it
        return math.nan
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"{value!r} is not a number")


#: What ``final.json`` must hold, and the check of each value.
_FINAL_FIELDS: dict[str, Callable[[Any], bool]] = {
    "seed": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "metric": lambda v: isinstance(v, str),
    "best_epoch": _is_count,
    "epochs_run": _is_count,
    "val_metric": _is_number,
    "test_metric": _is_number,
    "num_parameters": _is_count,
    "train_seconds": _is_number,
}
_OPTIONAL_FINAL_FIELDS: dict[str, Callable[[Any], bool]] = {
    "split": _is_count,
    "val_face_metric": _is_number,
    "test_face_metric": _is_number,
}


class RunFolder:
    """Paths and writers of one run's results folder (created on first write)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    config_path = property(lambda self: self.path / "config.json")
    metrics_json = property(lambda self: self.path / "metrics.json")
    metrics_csv = property(lambda self: self.path / "metrics.csv")
    final_path = property(lambda self: self.path / "final.json")
    curves_path = property(lambda self: self.path / "curves.png")
    checkpoint_path = property(lambda self: self.path / "checkpoint.pt")
    best_model_path = property(lambda self: self.path / "best_model.pt")

    def write_config(self, config: dict[str, Any]) -> None:
        """Write ``config.json``."""
        atomic_write_json(self.config_path, config)

    def read_config(self) -> dict[str, Any]:
        """Read ``config.json`` (raises ``FileNotFoundError`` with the path when absent, ``ValueError``
        naming the file when it is not a JSON object)."""
        if not self.config_path.is_file():
            raise FileNotFoundError(f"{str(self.path)!r} is not a run folder (it has no config.json).")
        config = read_json(self.config_path)
        if not isinstance(config, dict):
            raise ValueError(f"{self.config_path}: not a run's settings (a JSON object was expected).")
        return config

    def write_metrics(self, history: Sequence[dict[str, Any]]) -> None:
        """Write the per-epoch records as ``metrics.json`` and ``metrics.csv``."""
        atomic_write_json(self.metrics_json, list(history))
        columns: list[str] = []
        for record in history:
            columns += [k for k in record if k not in columns]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(history)
        atomic_write_text(self.metrics_csv, buffer.getvalue())

    def write_final(self, final: dict[str, Any]) -> None:
        """Write ``final.json``."""
        atomic_write_json(self.final_path, final)

    def read_final(self) -> dict[str, Any] | None:
        """``final.json`` when the run has finished, else ``None``; a ``ValueError`` naming the file when a
        value a summary is built from is missing or not what a run writes (a NaN metric, a text)."""
        if not self.final_path.is_file():
            return None
        final = read_json(self.final_path)
        bad = (
            ["(not a JSON object)"]
            if not isinstance(final, dict)
            else [k for k, ok in _FINAL_FIELDS.items() if not ok(final.get(k))]
            + [k for k, ok in _OPTIONAL_FINAL_FIELDS.items() if k in final and not ok(final[k])]
        )
        if bad:
            raise ValueError(
                f"{self.final_path}: not a finished run's record ({', '.join(bad)} missing or invalid); "
                f"delete {str(self.path)!r} to run it again."
            )
        return final

    def read_metrics(self, keys: Sequence[str]) -> list[dict[str, float]]:
        """The per-epoch ``keys`` of ``metrics.json`` (``null``, a non-finite value as written, is NaN);
        a ``ValueError`` naming the file when it is not a list of records with those numbers."""
        history = read_json(self.metrics_json)
        try:
            if not isinstance(history, list):
                raise TypeError("not a list of epochs")
            records = [{k: _epoch_value(r[k]) for k in keys} for r in history]
        except (TypeError, KeyError) as error:
            raise ValueError(f"{self.metrics_json}: not a run's per-epoch metrics ({error}).") from None
        return records

    def write_curves(self, history: Sequence[dict[str, Any]], metric: str) -> None:
        """Write ``curves.png``."""
        if history:
            plot_training_curves(history, self.curves_path, metric)
