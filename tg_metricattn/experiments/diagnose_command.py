"""``tgma diagnose``: how close is a trained run's attention to heat diffusion?

Loads a run folder (``config.json`` and ``best_model.pt``), rebuilds the task's data and
the model at its selected epoch, and runs :func:`tg_metricattn.diagnostics.diagnose` on
the graph (node task), the first test mesh (mesh task) or the first test graph (graph
task). Prints the summary and writes ``diagnostics.json`` and the diagnostic plots; with
``--ablation`` also the task's metrics with the attention ablated (``ablation.json``).
The mesh Laplacian (``--laplacians rw,cotangent``) is much slower than the graph
Laplacians on meshes with sliver triangles: on a 15k-vertex RNA mesh its heat flow needs
about 3,400 Lanczos steps per probe signal (5 s) against 41 for ``rw``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from tg_metricattn.atomic_files import atomic_write_text
from tg_metricattn.diagnostics import DiagnosticsReport, diagnose, save_plots, uniform_attention
from tg_metricattn.experiments.config import TrainConfig
from tg_metricattn.experiments.run_folder import RunFolder
from tg_metricattn.experiments.tasks import Task, build_task
from tg_metricattn.experiments.training import load_trained_model

__all__ = ["attention_ablation", "diagnose_model", "diagnose_run", "find_run_folder"]


def trained_runs(path: str | os.PathLike) -> list[Path]:
    """The ``run_*`` sub-folders of ``path`` that hold ``best_model.pt``, in name order."""
    return [c for c in sorted(Path(path).glob("run_*")) if (c / "best_model.pt").is_file()]


def find_run_folder(path: str | os.PathLike) -> RunFolder:
    """``path`` itself when it holds ``best_model.pt``, else its first ``run_*`` sub-folder that does."""
    path = Path(path)
    if (path / "best_model.pt").is_file():
        return RunFolder(path)
    runs = trained_runs(path)
    if runs:
        return RunFolder(runs[0])
    raise FileNotFoundError(f"{str(path)!r} holds no trained run (no best_model.pt in it or in a run_* folder).")


def diagnose_model(
    task: Task,
    model: nn.Module,
    out: str | os.PathLike,
    laplacians: tuple[str, ...] = ("rw",),
    num_eigs: int = 8,
    fast: bool = False,
) -> DiagnosticsReport:
    """Diagnose ``model`` on ``task.diagnostic_data()``; write ``diagnostics.json`` and plots into ``out``
    (``fast``: :func:`~tg_metricattn.diagnostics.diagnose`'s setting for graphs of millions of edges)."""
    data = task.diagnostic_data()
    model = model.cpu().eval()
    report = diagnose(model, data, laplacians=laplacians, num_eigs=num_eigs, fast=fast)
    out = Path(out)
    atomic_write_text(out / "diagnostics.json", report.to_json(indent=1))
    save_plots(report, out)
    return report


@torch.no_grad()
def attention_ablation(task: Task, model: nn.Module) -> dict[str, dict[str, float]]:
    """The task's metrics of ``model`` as trained and with every attention ablated to the uniform mean
    over each node's incoming edges (:func:`~tg_metricattn.diagnostics.uniform_attention`):
    ``{"learned": {...}, "uniform": {...}, "uniform_minus_learned": {...}}``, each with the keys of
    ``task.evaluate`` (``val_metric``, ``test_metric``, ...)."""
    learned = task.evaluate(model)
    with uniform_attention(model):
        uniform = task.evaluate(model)
    return {
        "learned": learned,
        "uniform": uniform,
        "uniform_minus_learned": {key: uniform[key] - learned[key] for key in learned if key in uniform},
    }


def ablation_summary(ablation: dict[str, dict[str, float]]) -> str:
    """One line per metric: learned, uniform and the change."""
    learned, uniform, change = ablation["learned"], ablation["uniform"], ablation["uniform_minus_learned"]
    return "\n".join(
        f"ablation {key}: learned {learned[key]:.4f}, uniform attention {uniform[key]:.4f} ({change[key]:+.4f})"
        for key in ("val_metric", "test_metric")
        if key in change
    )


def diagnose_run(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike | None = None,
    laplacians: tuple[str, ...] = ("rw",),
    num_eigs: int = 8,
    device: str = "cpu",
    allow_pickle: bool = False,
    fast: bool = False,
    ablation: bool = False,
) -> DiagnosticsReport:
    """Load the run in ``checkpoint`` and diagnose it (see the module docstring).

    ``ablation``: also evaluate the model with its attention ablated to the uniform mean
    (:func:`attention_ablation`), printed and written to ``ablation.json`` beside ``diagnostics.json``.
    ``best_model.pt`` is read with ``weights_only=True``; ``allow_pickle`` lifts that for a
    file you trust (unpickling runs code from the file).
    """
    folder = find_run_folder(checkpoint)
    runs = trained_runs(checkpoint) if folder.path != Path(checkpoint) else []
    if len(runs) > 1:
        others = ", ".join(str(run) for run in runs[1:])
        print(f"diagnosing {folder.path}, the first of {len(runs)} runs in {str(checkpoint)!r} (others: {others})")
    task = build_task(TrainConfig.from_dict({**folder.read_config(), "device": device}, source=folder.config_path))
    model = load_trained_model(task, folder.path, allow_pickle)
    out = Path(out or folder.path / "diagnostics")
    ablated = attention_ablation(task, model) if ablation else None
    report = diagnose_model(task, model, out, laplacians, num_eigs, fast)
    print(report.summary())
    if ablated is not None:
        atomic_write_text(out / "ablation.json", json.dumps(ablated, indent=1))
        print(ablation_summary(ablated))
    print(f"results: {out}")
    return report
