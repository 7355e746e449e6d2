"""The training loop: seeding, early stopping, model selection on validation, checkpoints, resume.

Per epoch: one training pass, then evaluation. The selected epoch is the one with the best
validation metric (ties: lower validation loss, then the earlier epoch); the reported test
metric is the one measured at that epoch. Training stops after ``epochs``, or after
``patience`` epochs in a row with neither a better validation metric nor a lower
validation loss (the GAT paper's rule). The learning rate follows :func:`learning_rate`.
A checkpoint with the whole training state is written atomically after every epoch, so
``resume=True`` continues a killed run and ends with the same metrics as an
uninterrupted run (on CPU).
"""

from __future__ import annotations

import math
import os
import random
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from tg_metricattn.experiments.checkpoint import (
    capture_rng_state,
    load_checkpoint,
    load_latest_checkpoint,
    package_versions,
    restore_rng_state,
    save_checkpoint,
)
from tg_metricattn.experiments.config import TrainConfig
from tg_metricattn.experiments.distributed import (
    DistContext,
    all_reduce_mean,
    parameter_spread,
    unwrap,
    wrap_model,
)
from tg_metricattn.experiments.run_folder import RunFolder, require_same_settings
from tg_metricattn.experiments.tasks import Task, build_task
from tg_metricattn.models import count_parameters, metric_parameter_groups

__all__ = [
    "TrainingDivergedError",
    "build_optimizer",
    "format_mean_std",
    "learning_rate",
    "load_trained_model",
    "remove_results",
    "run_folders",
    "run_training",
    "seed_everything",
    "selection_key",
    "train_single_run",
]


class TrainingDivergedError(ValueError):
    """The training loss became NaN or infinite: the run stops instead of reporting a number."""


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch; ask torch for deterministic kernels where it has them."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


def learning_rate(config: TrainConfig, epoch: int) -> float:
    """``lr · 0.5^⌊(epoch - 1) / lr_step⌋`` (halved every ``lr_step`` epochs; constant when ``lr_step`` is 0).

    A function of the epoch alone, so a resumed run continues the schedule exactly.
    """
    steps = (epoch - 1) // config.lr_step if config.lr_step else 0
    return config.lr * 0.5**steps


def selection_key(record: dict[str, Any], higher_is_better: bool) -> tuple[float, float]:
    """Sort key of an epoch for model selection (larger is better)."""
    metric = record["val_metric"]
    metric = metric if higher_is_better else -metric
    loss = record.get("val_loss", 0.0)
    return (-np.inf if np.isnan(metric) else metric, -loss)


class EarlyStopping:
    """The GAT paper's patience rule: an epoch that sets a new best validation metric *or* a new
    lowest validation loss resets the count; ``stop`` once ``patience`` epochs in a row did neither.
    """

    def __init__(self, patience: int, higher_is_better: bool) -> None:
        self.patience, self.sign = patience, 1.0 if higher_is_better else -1.0
        self.best_metric, self.lowest_loss, self.bad_epochs = -np.inf, np.inf, 0

    def update(self, record: dict[str, Any]) -> None:
        """Count ``record`` (an epoch's metrics) towards the patience."""
        metric, loss = self.sign * record["val_metric"], record.get("val_loss", np.inf)
        improved = metric > self.best_metric or loss < self.lowest_loss
        self.best_metric, self.lowest_loss = max(self.best_metric, metric), min(self.lowest_loss, loss)
        self.bad_epochs = 0 if improved else self.bad_epochs + 1

    @property
    def stop(self) -> bool:
        """Whether training should stop."""
        return self.bad_epochs >= self.patience


def _progress(iterable: Any, enabled: bool, **kwargs: Any) -> Any:
    return tqdm(iterable, disable=not (enabled and sys.stderr.isatty()), leave=False, **kwargs)


_RESUME_KEYS = ("epoch", "model", "optimizer", "rng", "history", "best", "best_model", "elapsed")


@dataclass
class RunState:
    """What a run carries from epoch to epoch (and what its checkpoint restores)."""

    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None
    best_state: dict[str, torch.Tensor] | None = None
    start_epoch: int = 1
    elapsed: float = 0.0


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam with ``config.lr`` and weight decay (AdamW, decoupled decay, for ``arch='residual'`` as
    Platonov et al.); metric attention's f and log t in a group of their own when
    ``metric_weight_decay`` differs, and the flow's log T (``arch='flow'``) in one without decay:
    T is a time, not a weight (one group otherwise: older checkpoints' optimizer state fits)."""
    metric_decay = config.weight_decay if config.metric_weight_decay is None else config.metric_weight_decay
    groups = (
        [{"params": list(model.parameters()), "weight_decay": config.weight_decay}]
        if metric_decay == config.weight_decay
        else metric_parameter_groups(model, config.weight_decay, metric_decay)
    )
    log_time = getattr(model, "log_time", None) if config.arch == "flow" else None
    if isinstance(log_time, nn.Parameter):
        for group in groups:
            group["params"] = [p for p in group["params"] if p is not log_time]
        groups.append({"params": [log_time], "weight_decay": 0.0})
    adam = torch.optim.AdamW if config.arch == "residual" else torch.optim.Adam
    return adam(groups, lr=config.lr, weight_decay=config.weight_decay)


def _restore(
    folder: RunFolder, model: nn.Module, optimizer: torch.optim.Optimizer, task: Task, config: TrainConfig,
    allow_pickle: bool,
) -> RunState:  # fmt: skip
    """The state of ``folder``'s checkpoint, loaded into ``model``, ``optimizer`` and the task's generator."""
    state = load_latest_checkpoint(
        folder.checkpoint_path, config.device, required=_RESUME_KEYS, allow_pickle=allow_pickle
    )
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as error:
        raise ValueError(
            f"{folder.checkpoint_path} does not fit the model of {folder.config_path} (was the config edited "
            f"after the run started?): {str(error).splitlines()[0]}"
        ) from None
    restore_rng_state(state["rng"], task.generator)
    return RunState(state["history"], state["best"], state["best_model"], state["epoch"] + 1, state["elapsed"])


def _train_epoch(
    task: Task, ddp_model: nn.Module, optimizer: torch.optim.Optimizer, config: TrainConfig, epoch: int,
    ctx: DistContext,
) -> dict[str, Any]:  # fmt: skip
    """One training pass at the epoch's learning rate; raises :class:`TrainingDivergedError` on a non-finite loss."""
    for group in optimizer.param_groups:
        group["lr"] = learning_rate(config, epoch)
    record: dict[str, Any] = {"epoch": epoch, **task.train_epoch(ddp_model, optimizer)}
    record["train_loss"] = all_reduce_mean(record["train_loss"], ctx)
    if not math.isfinite(record["train_loss"]):
        raise TrainingDivergedError(
            f"epoch {epoch}: the training loss is {record['train_loss']} (learning rate "
            f"{learning_rate(config, epoch):g}); training stopped, the epochs before it are kept in the run "
            "folder. Lower --lr (or check the input features for extreme values)."
        )
    return record


def _save_checkpoint(
    folder: RunFolder, epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer, task: Task, run: RunState,
    provenance: dict[str, Any],
) -> None:  # fmt: skip
    """The resumable checkpoint (keeping the previous one) and the metrics so far."""
    state = {
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "rng": capture_rng_state(task.generator),
        "history": run.history,
        "best": run.best,
        "best_model": run.best_state,
        "elapsed": run.elapsed,
        **provenance,
    }
    save_checkpoint(folder.checkpoint_path, state, keep_previous=True)
    folder.write_metrics(run.history)


def _final_record(task: Task, config: TrainConfig, model: nn.Module, run: RunState, ctx: DistContext) -> dict[str, Any]:
    """``final.json``: the selected epoch's metrics, sizes, time and data description."""
    assert run.best is not None, "no epoch was run"
    final = {
        "task": config.task,
        "dataset": config.dataset,
        "layer": config.layer,
        "seed": config.seed,
        "split": config.split,
        "metric": task.metric,
        "best_epoch": run.best["epoch"],
        "epochs_run": len(run.history),
        **{k: v for k, v in run.best.items() if k.endswith("metric") or k == "val_loss"},
        "num_parameters": count_parameters(model),
        "train_seconds": round(run.elapsed, 3),
        "data": task.describe(),
    }
    if ctx.enabled:  # DDP keeps replicas equal; record the check
        final["world_size"] = ctx.world_size
        final["max_parameter_difference_across_ranks"] = parameter_spread(model, ctx)
    return final


def train_single_run(
    task: Task,
    config: TrainConfig,
    folder: RunFolder | None,
    resume: bool = False,
    progress: bool = True,
    ctx: DistContext | None = None,
    allow_pickle: bool = False,
) -> tuple[dict[str, Any], nn.Module]:
    """Train one model with ``config.seed``; return the final metrics (also ``final.json``) and the
    model with the weights of the selected epoch.

    Args:
        task: the loaded task (its data is reused between runs).
        config: the resolved configuration of this run.
        folder: where to write results; ``None`` writes nothing (no checkpoint either).
        resume: continue from ``folder``'s ``checkpoint.pt`` when it exists (from the previous
            checkpoint, with a warning, when the latest is damaged).
        progress: show a tqdm bar over epochs (only on a terminal, only on rank 0).
        ctx: the distributed context (rank 0 of 1 by default).
        allow_pickle: let ``--resume`` unpickle a checkpoint that is not plain tensors (runs its code).
    """
    ctx = ctx or DistContext()
    writes = folder is not None and ctx.is_main
    seed_everything(config.seed)
    task.reseed(config.seed)
    model = task.build_model(config).to(config.device)
    optimizer = build_optimizer(model, config)
    if ctx.enabled:  # same initial weights everywhere; dropout and sampling differ per rank
        torch.manual_seed(config.seed * 1000 + ctx.rank)
    ddp_model = wrap_model(model, ctx, config.device)
    stopping = EarlyStopping(config.patience, task.higher_is_better)
    run = RunState()
    if resume and folder is not None and folder.checkpoint_path.is_file():
        run = _restore(folder, model, optimizer, task, config, allow_pickle)
        for record in run.history:
            stopping.update(record)
    if writes:
        folder.write_config(config.to_dict())
    provenance = {"config": config.to_dict(), "versions": package_versions()}  # kept in every checkpoint
    epochs = range(run.start_epoch, config.epochs + 1) if not stopping.stop else range(0)
    last_checkpoint = time.monotonic()
    bar = _progress(epochs, progress and ctx.is_main, desc=f"{config.layer} seed {config.seed}", unit="epoch")
    for epoch in bar:
        start = time.perf_counter()
        try:
            record = _train_epoch(task, ddp_model, optimizer, config, epoch, ctx)
        except TrainingDivergedError:
            if writes:
                folder.write_metrics(run.history)
            raise
        record.update(task.evaluate(model))
        run.elapsed += time.perf_counter() - start
        run.history.append(record)
        stopping.update(record)
        if run.best is None or selection_key(record, task.higher_is_better) > selection_key(
            run.best, task.higher_is_better
        ):
            run.best = record
            run.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if writes:
                save_checkpoint(folder.best_model_path, {"model": run.best_state, "epoch": epoch, **provenance})
        last_epoch = stopping.stop or epoch == config.epochs
        if writes and (last_epoch or time.monotonic() - last_checkpoint >= config.checkpoint_every):
            _save_checkpoint(folder, epoch, model, optimizer, task, run, provenance)
            last_checkpoint = time.monotonic()
        bar.set_postfix(loss=f"{record['train_loss']:.3f}", val=f"{record['val_metric']:.3f}")
        if stopping.stop:
            break
    final = _final_record(task, config, model, run, ctx)
    if writes:
        folder.write_metrics(run.history)
        folder.write_curves(run.history, task.metric)
        folder.write_final(final)
    if run.best_state is not None:
        unwrap(ddp_model).load_state_dict(run.best_state)
    return final, model


def load_trained_model(task: Task, folder: str | os.PathLike, allow_pickle: bool = False) -> nn.Module:
    """The model of a finished run folder (its ``config.json`` and ``best_model.pt``), built for ``task``."""
    run = RunFolder(Path(folder))
    config = TrainConfig.from_dict({**run.read_config(), "device": str(task.device)}, source=run.config_path)
    torch.manual_seed(config.seed)
    model = task.build_model(config)
    state = load_checkpoint(run.best_model_path, required=("model",), allow_pickle=allow_pickle)["model"]
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError) as error:  # missing, unexpected or differently shaped weights
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        detail = next((line for line in lines if "size mismatch" in line or "key(s)" in line), type(error).__name__)
        raise ValueError(
            f"{run.best_model_path} does not hold the model that {run.config_path} describes ({detail}); "
            "was one of them edited or copied from another run?"
        ) from None
    return model


def format_mean_std(mean: float, std: float | None, fmt: Callable[[float], str] = "{:.4f}".format) -> str:
    """``mean ± std`` with ``fmt`` for each; ``mean (one run)`` when ``std`` is ``None`` (an unbiased
    standard deviation needs two runs: printing ``± 0`` would claim a spread that was not measured)."""
    return f"{fmt(mean)} (one run)" if std is None else f"{fmt(mean)} ± {fmt(std)}"


def summarize(finals: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and unbiased standard deviation of the validation and test metric over runs (``None`` for one run)."""
    summary: dict[str, Any] = {"runs": len(finals), "seeds": [f["seed"] for f in finals]}
    if len({f.get("split", 0) for f in finals}) > 1:
        summary["splits"] = [f["split"] for f in finals]
    for key in ("val_metric", "test_metric", "val_face_metric", "test_face_metric"):
        values = np.array([f[key] for f in finals if key in f], dtype=float)
        if values.size:
            summary[f"{key}_mean"] = float(values.mean())
            summary[f"{key}_std"] = float(values.std(ddof=1)) if values.size > 1 else None  # undefined for one run
            summary[f"{key}_values"] = values.tolist()
    if finals:
        summary["metric"] = finals[0]["metric"]
        summary["num_parameters"] = finals[0]["num_parameters"]
    return summary


#: Settings a resumed results folder may change: more (or fewer) runs or splits, another checkpoint
#: interval; every run folder holds one seed on one split, whose settings must still agree.
_FREE_SETTINGS = ("runs", "splits", "checkpoint_every")

#: What ``tgma train`` writes into a results folder (:func:`remove_results` removes these only).
RESULT_NAME = re.compile(r"run_-?\d+|split_\d+|summary\.json|config\.json")


def _stored_config(values: dict[str, Any]) -> dict[str, Any]:
    """A results folder's ``config.json`` in the form a resolved config of today has."""
    return TrainConfig.from_dict(values).resolved().to_dict()


def remove_results(out: str | os.PathLike) -> None:
    """Remove every run folder (``run_<seed>``, ``split_<k>``), ``summary.json`` and ``config.json`` of ``out``."""
    for path in Path(out).iterdir():
        if RESULT_NAME.fullmatch(path.name):
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def run_folders(config: TrainConfig, out: str | os.PathLike) -> list[Path]:
    """The folder of every run of ``config`` under ``out``, in the order of the summary's ``finals``:
    ``out/run_<seed>``, or ``out/split_<k>/run_<seed>`` for each of ``config.splits``."""
    seeds = range(config.seed, config.seed + config.runs)
    if config.splits is None:
        return [Path(out) / f"run_{seed}" for seed in seeds]
    return [Path(out) / f"split_{k}" / f"run_{seed}" for k in config.splits for seed in seeds]


def run_training(
    config: TrainConfig,
    out: str | os.PathLike | None,
    resume: bool = False,
    progress: bool = True,
    ctx: DistContext | None = None,
    task: Task | None = None,
    allow_pickle: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """``config.runs`` runs with seeds ``config.seed, config.seed + 1, ...``, each in ``out/run_<seed>``;
    with ``config.splits``, those runs for every split, in ``out/split_<k>/`` (:func:`run_folders`).

    Finished runs (with ``final.json``) are skipped when resuming; a folder whose ``config.json``
    holds other settings (but for the number of runs) is then refused. ``overwrite`` removes the
    results of any earlier run in ``out`` (:func:`remove_results`), once the data has loaded and
    the model was built. Returns the summary
    (also written as ``out/summary.json``) with every run's final metrics under ``'finals'``,
    the mean ± std taken over all of them (splits × seeds).
    """
    from tg_metricattn.atomic_files import atomic_write_json

    ctx = ctx or DistContext()
    config = config.resolved()
    out_path = Path(out) if out is not None else None
    if resume and out_path is not None:  # the runs kept must be runs of this config
        require_same_settings(out_path / "config.json", config.to_dict(), _stored_config, _FREE_SETTINGS)
    split_configs = [replace(config, split=k, splits=None) for k in config.splits or []]
    # the data is loaded (and found, or not) and the model built before anything is written or removed
    task = build_task(split_configs[0] if split_configs else config, ctx) if task is None else task
    if overwrite and out_path is not None and out_path.is_dir() and ctx.is_main:
        task.build_model(split_configs[0] if split_configs else config)
        remove_results(out_path)
    if out_path is not None and ctx.is_main:
        RunFolder(out_path).write_config(config.to_dict())
    finals = []
    if split_configs:
        for i, split_config in enumerate(split_configs):
            split_out = out_path / f"split_{split_config.split}" if out_path is not None else None
            split_task = task if i == 0 else None
            finals += run_training(split_config, split_out, resume, progress, ctx, split_task, allow_pickle)["finals"]
    else:
        for seed in range(config.seed, config.seed + config.runs):
            run_config = replace(config, seed=seed, runs=1)
            folder = RunFolder(out_path / f"run_{seed}") if out_path is not None else None
            done = folder.read_final() if (resume and folder is not None) else None
            finals.append(done or train_single_run(task, run_config, folder, resume, progress, ctx, allow_pickle)[0])
    summary = {**summarize(finals), "config": config.to_dict(), "finals": finals}
    if out_path is not None and ctx.is_main:
        atomic_write_json(out_path / "summary.json", summary)
    return summary
