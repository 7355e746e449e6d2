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
:func:`lock_run_folder` keeps a second process from writing into the same folder at once.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tg_metricattn.atomic_files import atomic_write_json, atomic_write_text
from tg_metricattn.experiments.training_plots import plot_training_curves

__all__ = ["RunFolder", "RunFolderBusyError", "lock_run_folder"]

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
        """Read ``config.json`` (raises ``FileNotFoundError`` with the path when absent)."""
        if not self.config_path.is_file():
            raise FileNotFoundError(f"{str(self.path)!r} is not a run folder (it has no config.json).")
        return json.loads(self.config_path.read_text())

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
        """``final.json`` when the run has finished, else ``None``."""
        return json.loads(self.final_path.read_text()) if self.final_path.is_file() else None

    def write_curves(self, history: Sequence[dict[str, Any]], metric: str) -> None:
        """Write ``curves.png``."""
        if history:
            plot_training_curves(history, self.curves_path, metric)
