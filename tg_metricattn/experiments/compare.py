"""``tgma compare``: several attention layers, several seeds (and splits), one dataset (the metric-attention protocol).

For each layer: test metric at the best validation epoch, mean ± std over seeds
(accuracy), its spread (min, max, violin plot: robustness), and training efficiency
(mean training-loss and validation curves with ±1 std bands, epochs to the best
validation score, seconds per epoch). One table, in Markdown and JSON. Every layer after
the first is then compared with the first on the same seeds (:func:`paired_comparison`):
mean difference of the test metric, its 95% interval and a Wilcoxon signed-rank test, so
that "beats" and "ties" rest on a number.

Output (``--out DIR``)::

    DIR/<layer>/run_<seed>/...   every run's results folder
    DIR/compare.json, DIR/compare.md, DIR/violin.png, DIR/curves.png
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from tg_metricattn.atomic_files import atomic_write_json, atomic_write_text
from tg_metricattn.experiments.config import TrainConfig
from tg_metricattn.experiments.run_folder import RunFolder
from tg_metricattn.experiments.tasks import build_task
from tg_metricattn.experiments.training import format_mean_std, run_folders, run_training
from tg_metricattn.experiments.training_plots import plot_mean_curves, plot_violin

__all__ = ["compare_layers", "comparison_table", "p_value", "paired_comparison", "paired_table"]


def _row(layer: str, summary: dict[str, Any]) -> dict[str, Any]:
    finals = summary["finals"]
    test = np.array(summary["test_metric_values"], dtype=float)
    seconds = [f["train_seconds"] / max(f["epochs_run"], 1) for f in finals]
    return {
        "layer": layer,
        "metric": summary["metric"],
        "runs": summary["runs"],
        "test_mean": float(test.mean()),
        "test_std": summary["test_metric_std"],
        "test_min": float(test.min()),
        "test_max": float(test.max()),
        "val_mean": summary["val_metric_mean"],
        "val_std": summary["val_metric_std"],
        "best_epoch_mean": float(np.mean([f["best_epoch"] for f in finals])),
        "seconds_per_epoch": float(np.mean(seconds)),
        "num_parameters": summary["num_parameters"],
        "test_values": test.tolist(),
    }


def comparison_table(rows: list[dict[str, Any]], dataset: str) -> str:
    """The Markdown table of :func:`compare_layers` (metric values in percent when it is accuracy)."""
    scale = 100.0 if rows and rows[0]["metric"] == "accuracy" else 1.0
    fmt = (lambda v: f"{v * scale:.1f}") if scale == 100.0 else (lambda v: f"{v:.4f}")
    metric = rows[0]["metric"] if rows else "metric"
    lines = [
        f"| layer ({dataset}) | test {metric} mean ± std | min / max | val mean ± std | best epoch (mean) "
        "| s / epoch | parameters | runs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        test, val = (
            format_mean_std(r["test_mean"], r["test_std"], fmt),
            format_mean_std(r["val_mean"], r["val_std"], fmt),
        )
        lines.append(
            f"| {r['layer']} | {test} | {fmt(r['test_min'])} / {fmt(r['test_max'])} | {val} | "
            f"{r['best_epoch_mean']:.0f} | "
            f"{r['seconds_per_epoch']:.3f} | {r['num_parameters']:,} | {r['runs']} |"
        )
    return "\n".join(lines) + "\n"


def paired_comparison(values_a, values_b) -> dict[str, Any]:
    """A against B on the same seeds: ``d_s = a_s - b_s``.

    ``mean_difference`` = mean of d; ``ci95`` = mean ± t_{0.975, n-1} · sd(d) / sqrt(n)
    (Student t, ``None`` for one seed); ``wilcoxon_p`` = two-sided p of the Wilcoxon
    signed-rank test on d (exact for small n, scipy's default; 1.0 when every d is 0; ``None``
    for one seed); ``verdict``: ``"higher"`` / ``"lower"`` when the interval excludes 0, else
    ``"tie"``; ``"one run: untested"`` for one seed (no test can tell a difference from noise).
    """
    a, b = np.asarray(values_a, dtype=float), np.asarray(values_b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"paired values need the same seeds: got {a.shape} and {b.shape}.")
    d = a - b
    mean = float(d.mean())
    ci = None
    if d.size > 1:
        half = float(stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size))
        ci = [mean - half, mean + half]
    p = None if d.size < 2 else 1.0 if not np.any(d) else float(stats.wilcoxon(d).pvalue)
    verdict = "tie" if ci is None or ci[0] <= 0 <= ci[1] else ("higher" if mean > 0 else "lower")
    verdict = "one run: untested" if ci is None else verdict
    return {"runs": int(d.size), "mean_difference": mean, "ci95": ci, "wilcoxon_p": p, "verdict": verdict}


def p_value(p: float | None) -> str:
    """A p-value with three decimals, ``–`` when there is none (one seed)."""
    return "–" if p is None else f"{p:.3f}"


def paired_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: every layer after the first against the first, on the same seeds."""
    scale = 100.0 if rows and rows[0]["metric"] == "accuracy" else 1.0
    unit = " (points)" if scale == 100.0 else ""
    lines = [
        f"| pair | mean difference{unit} | 95% interval | Wilcoxon p | verdict | runs |",
        "|---|---|---|---|---|---|",
    ]
    digits = 2 if scale == 100.0 else 4  # points of accuracy, or the metric itself (ROC-AUC, MAE, ...)
    for r in rows[1:]:
        c = r["paired"]
        ci = "–" if c["ci95"] is None else f"[{c['ci95'][0] * scale:+.{digits}f}, {c['ci95'][1] * scale:+.{digits}f}]"
        lines.append(
            f"| {r['layer']} − {rows[0]['layer']} | {c['mean_difference'] * scale:+.{digits}f} | {ci} | "
            f"{p_value(c['wilcoxon_p'])} | {c['verdict']} | {c['runs']} |"
        )
    return "\n".join(lines) + "\n"


def compare_layers(
    config: TrainConfig, layers: list[str], seeds: int, out: str | os.PathLike, progress: bool = True
) -> dict[str, Any]:
    """Train every layer in ``layers`` with seeds ``0..seeds-1`` (on each of ``config.splits`` when set;
    runs are then paired by split and seed) and write the comparison into ``out``.

    Resumable: runs that already have ``final.json`` under ``out`` are read, not repeated.
    """
    out = Path(out)
    base = replace(config, seed=0, runs=seeds).resolved()
    task = build_task(base) if base.splits is None else None  # one split: its data is shared by all layers
    rows, curves = [], {}
    for layer in layers:
        layer_config = replace(base, layer=layer)
        summary = run_training(layer_config, out / layer, resume=True, progress=progress, task=task)
        rows.append(_row(layer, summary))
        keys = ("train_loss", "val_metric")
        histories = [RunFolder(run).read_metrics(keys) for run in run_folders(layer_config, out / layer)]
        curves[layer] = {key: [[r[key] for r in h] for h in histories] for key in keys}
    metric = rows[0]["metric"]
    for row in rows[1:]:
        row["paired"] = paired_comparison(row["test_values"], rows[0]["test_values"])
    table = comparison_table(rows, config.dataset) + ("\n" + paired_table(rows) if len(rows) > 1 else "")
    result = {"dataset": config.dataset, "task": config.task, "seeds": seeds, "config": base.to_dict(), "rows": rows}
    atomic_write_json(out / "compare.json", result)
    atomic_write_text(out / "compare.md", table)
    plot_violin({r["layer"]: r["test_values"] for r in rows}, out / "violin.png", ylabel=f"test {metric}")
    plot_mean_curves(curves, out / "curves.png", metric)
    print(table)
    print(f"results: {out}")
    return result
