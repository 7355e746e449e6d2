"""``tgma train``: run a configuration into a results folder and print its summary.

Under torchrun (``WORLD_SIZE`` set: ``torchrun --nproc_per_node=K -m tg_metricattn.experiments.cli
train ARGS``) it trains with DistributedDataParallel, as ``tgma train --distributed``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from tg_metricattn.experiments.config import TrainConfig
from tg_metricattn.experiments.distributed import DistContext, cleanup, init_distributed
from tg_metricattn.experiments.run_folder import LOCK_NAME, lock_run_folder
from tg_metricattn.experiments.training import format_mean_std, run_training

__all__ = ["format_summary", "train_command"]


def format_summary(summary: dict[str, Any]) -> str:
    """A few lines: per-run test metric and the mean ± std over runs."""
    config, metric = summary["config"], summary.get("metric", "metric")
    lines = [f"{config['task']} / {config['dataset']} / {config['layer']}: {summary['runs']} run(s)"]
    for final in summary["finals"]:
        extra = f", face {final['test_face_metric']:.4f}" if "test_face_metric" in final else ""
        split = f"split {final['split']}, " if "splits" in summary else ""
        lines.append(
            f"  {split}seed {final['seed']}: best epoch {final['best_epoch']}, val {metric} {final['val_metric']:.4f}, "
            f"test {metric} {final['test_metric']:.4f}{extra}"
        )
    lines.append(
        f"  test {metric}: {format_mean_std(summary['test_metric_mean'], summary['test_metric_std'])} "
        f"(val {format_mean_std(summary['val_metric_mean'], summary['val_metric_std'])})"
    )
    return "\n".join(lines)


def _remove_if_unused(out: Path) -> None:
    """Remove ``out`` when it holds nothing but the lock and the settings (a run that failed before its first epoch)."""
    if out.is_dir() and all(p.name in (LOCK_NAME, "config.json") and p.is_file() for p in out.iterdir()):
        shutil.rmtree(out)


def train_command(
    config: TrainConfig, out: str, resume: bool = False, progress: bool = True, allow_pickle: bool = False,
    overwrite: bool = False,
) -> int:  # fmt: skip
    """Run ``config`` into ``out`` (distributed when asked or under torchrun) and print the summary.

    ``overwrite`` replaces the results of an earlier run in ``out`` once the new run's data has loaded.
    A run that fails before writing any results leaves no new ``out`` behind.
    """
    distributed = config.distributed or int(os.environ.get("WORLD_SIZE", "1")) > 1
    ctx = init_distributed(config.device) if distributed else DistContext()
    if distributed:
        config = replace(config, distributed=True)
    new_folder = not Path(out).exists()
    try:
        with lock_run_folder(out) if ctx.is_main else contextlib.nullcontext():
            summary = run_training(
                config, out, resume=resume, progress=progress, ctx=ctx, allow_pickle=allow_pickle, overwrite=overwrite
            )
    except BaseException:
        if new_folder and ctx.is_main:
            _remove_if_unused(Path(out))
        raise
    finally:
        cleanup(ctx)
    if ctx.is_main:
        print(format_summary(summary))
        print(f"results: {out}")
    return 0
