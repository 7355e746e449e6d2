"""``tgma ogb``: the OGB leaderboard protocol.

Runs with seeds ``0..runs-1``, model selection on the official validation split, the
official ``Evaluator`` (accuracy for ``ogbn-arxiv``, ROC-AUC for ``ogbg-molbace``), and
the report the leaderboard asks for: mean ± unbiased std of the test and validation
metric, the number of parameters, the hardware and the package versions. Prints a
Markdown row and writes ``ogb.json`` and ``ogb.md``.
"""

from __future__ import annotations

import os
import platform
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from tg_metricattn.atomic_files import atomic_write_json, atomic_write_text
from tg_metricattn.experiments.checkpoint import package_versions
from tg_metricattn.experiments.config import TrainConfig
from tg_metricattn.experiments.training import format_mean_std, run_training
from tg_metricattn.models import layer_class

__all__ = ["hardware_description", "leaderboard_row", "package_versions", "run_ogb"]

LEADERBOARD_HEADER = "| method | test | validation | parameters | hardware |\n|---|---|---|---|---|"


def hardware_description(device: str) -> str:
    """CPU model and core count, or the GPU name when running on CUDA."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model} ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def leaderboard_row(result: dict[str, Any]) -> str:
    """One Markdown row: method, test and validation mean ± std, parameters, hardware."""
    return (
        f"| {result['method']} | {format_mean_std(result['test_mean'], result['test_std'])} | "
        f"{format_mean_std(result['valid_mean'], result['valid_std'])} | {result['num_parameters']:,} | "
        f"{result['hardware']} |"
    )


def run_ogb(config: TrainConfig, out: str | os.PathLike, progress: bool = True) -> dict[str, Any]:
    """Run the protocol for ``config`` (``config.runs`` seeds from 0) and write ``ogb.json``/``ogb.md`` into ``out``."""
    out = Path(out)
    config = replace(config, seed=0)
    summary = run_training(config, out, resume=True, progress=progress)
    result = {
        "dataset": config.dataset,
        "method": f"{layer_class(config.layer).__name__} ({config.layers} layers, {config.heads}x{config.hidden})",
        "layer": config.layer,
        "metric": summary["metric"],
        "runs": summary["runs"],
        "seeds": summary["seeds"],
        "test_mean": summary["test_metric_mean"],
        "test_std": summary["test_metric_std"],
        "valid_mean": summary["val_metric_mean"],
        "valid_std": summary["val_metric_std"],
        "test_values": summary["test_metric_values"],
        "valid_values": summary["val_metric_values"],
        "num_parameters": summary["num_parameters"],
        "hardware": hardware_description(config.device),
        "versions": package_versions(),
        "config": summary["config"],
    }
    row = leaderboard_row(result)
    atomic_write_json(out / "ogb.json", result)
    atomic_write_text(out / "ogb.md", f"{LEADERBOARD_HEADER}\n{row}\n")
    print(f"{config.dataset}, {summary['runs']} runs, metric {summary['metric']} (mean ± unbiased std):")
    print(LEADERBOARD_HEADER)
    print(row)
    print(f"results: {out}")
    return result
