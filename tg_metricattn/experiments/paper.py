"""``tgma paper``: the metric-attention paper's vector-data experiments (two moons, handwritten digits).

For every dataset (``moons`` at each noise level, ``digits``), every graph over the points
(``knn``: one k-nearest-neighbour graph over all points, trained full-batch with the
split's labels, as node classification; ``complete``: every mini-batch of ``batch_size``
training points is a complete graph, dense attention as in the paper, and validation and
test points are classified in fixed batches of the same size), every attention kind and
seeds ``0..seeds-1`` (the seed draws the points, the split, the initial weights and the
batches, so the kinds are paired by seed), :class:`~tg_metricattn.models.IPN` (or, with
``arch="flow"``, :class:`~tg_metricattn.models.AttentionFlowNet`: dx/dt = (P - I) x for a
learned time from ``flow_time``, in ``flow_steps`` Euler steps, without dropout) is trained
with Adam and cross-entropy for ``epochs`` epochs. Recorded per epoch: training loss,
validation and test accuracy. Reported per kind: final test accuracy (last epoch, the
paper's measure) mean ± std, min / max, test accuracy at the best validation epoch,
epochs to reach 95% of the final test accuracy, and metric attention against every other
kind on the same seeds (:func:`~tg_metricattn.experiments.compare.paired_comparison`).

Output (``out``)::

    out/config.json
    out/<dataset>/<graph>/<layer>/seed_<s>.json     one run (resumable: present runs are read)
    out/paper.json, out/paper.md                    the tables
    out/<dataset>-<graph>-violin.png                final test accuracy over seeds
    out/<dataset>-<graph>-curves.png                mean training loss and test accuracy ± 1 std
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from tg_metricattn.atomic_files import atomic_write_json, atomic_write_text
from tg_metricattn.datasets.point_graphs import complete_edge_index, knn_edge_index
from tg_metricattn.datasets.vector_data import VectorData, handwritten_digits, two_moons
from tg_metricattn.experiments.compare import p_value, paired_comparison
from tg_metricattn.experiments.config import metric_time_scale, time_scale_kwargs
from tg_metricattn.experiments.training import format_mean_std
from tg_metricattn.experiments.training_plots import plot_mean_curves, plot_violin
from tg_metricattn.models import IPN, LAYERS, AttentionFlowNet, count_parameters

__all__ = [
    "PAPER_ARCHS",
    "PAPER_DATASETS",
    "PAPER_GRAPHS",
    "PaperConfig",
    "epochs_to_reach",
    "paper_table",
    "run_paper",
    "train_ipn",
]

PAPER_DATASETS = ("moons", "digits")
PAPER_GRAPHS = ("knn", "complete")
PAPER_ARCHS = ("ipn", "flow")
#: The largest --noise: its squared distances (about (noise · 10)²) stay far inside float32.
MAX_NOISE = 1e6
_RUN_KEYS = ("train_loss", "val_accuracy", "test_accuracy")


@dataclass(frozen=True)
class PaperConfig:
    """Settings of ``tgma paper`` (validated on construction)."""

    datasets: tuple[str, ...] = PAPER_DATASETS
    noises: tuple[float, ...] = (0.1, 0.2)
    layers: tuple[str, ...] = ("dot", "l2", "metric", "gat")
    graphs: tuple[str, ...] = PAPER_GRAPHS
    seeds: int = 10
    epochs: int = 100
    width: int = 32
    heads: int = 1
    blocks: int = 2
    k: int = 10
    batch_size: int = 64
    lr: float = 5e-3
    weight_decay: float = 0.0
    num_points: int = 1000
    time_scale: str | None = None  # metric attention's initial t: None (sqrt(width / heads)), 'auto' or a number
    arch: str = "ipn"  # 'ipn' (the paper's network) or 'flow' (one attention integrated over time)
    flow_time: float = 3.0
    flow_steps: int = 6

    def __post_init__(self) -> None:
        for name, allowed in (("datasets", PAPER_DATASETS), ("graphs", PAPER_GRAPHS), ("layers", tuple(LAYERS))):
            values = getattr(self, name)
            unknown = [v for v in values if v not in allowed]
            if not values or unknown:
                raise ValueError(f"{name}: unknown {unknown or 'empty list'}; choose from {', '.join(allowed)}.")
        if "moons" in self.datasets and (not self.noises or any(not 0 <= n <= MAX_NOISE for n in self.noises)):
            raise ValueError(
                f"--noise must list numbers in [0, {MAX_NOISE:g}] (the moons span about 3 units; a larger noise "
                f"overflows float32 distances), got {list(self.noises)}."
            )
        for name in ("seeds", "epochs", "width", "heads", "blocks", "k", "num_points"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.batch_size < 2:
            raise ValueError(f"--batch-size must be >= 2 (a complete graph needs two points), got {self.batch_size}.")
        if not 0 < self.lr < math.inf:
            raise ValueError(f"--lr must be a finite number > 0, got {self.lr}.")
        if not 0 <= self.weight_decay < math.inf:
            raise ValueError(f"--weight-decay must be a finite number >= 0, got {self.weight_decay}.")
        metric_time_scale(self.time_scale)
        if self.width % self.heads:
            raise ValueError(f"--width {self.width} must be a multiple of --heads {self.heads}.")
        if self.arch not in PAPER_ARCHS:
            raise ValueError(f"--arch must be one of {', '.join(PAPER_ARCHS)}, got {self.arch!r}.")
        if self.flow_steps < 1 or not 0 < self.flow_time <= self.flow_steps:
            raise ValueError(
                f"--flow-time must lie in (0, --flow-steps] (a step of at most 1), got {self.flow_time} with "
                f"--flow-steps {self.flow_steps}."
            )

    def settings(self) -> list[str]:
        """Dataset names in order: ``moons-<noise>`` per noise, then ``digits``."""
        names = []
        for dataset in self.datasets:
            names += [f"moons-{n:g}" for n in self.noises] if dataset == "moons" else [dataset]
        return names

    def load(self, setting: str, seed: int) -> VectorData:
        """The points of ``setting`` drawn and split with ``seed``; ``k`` checked against the point count."""
        if setting.startswith("moons-"):
            data = two_moons(self.num_points, float(setting.removeprefix("moons-")), seed)
        else:
            data = handwritten_digits(seed)
        if "knn" in self.graphs and self.k >= data.x.size(0):
            raise ValueError(f"--k {self.k} is not below the {data.x.size(0)} points of {setting}.")
        return data


def _accuracy(logits: Tensor, y: Tensor) -> float:
    return float((logits.argmax(-1) == y).float().mean())


def epochs_to_reach(curve: list[float], fraction: float = 0.95) -> int:
    """The first epoch (1-based) whose value is at least ``fraction`` times the last epoch's."""
    return next(i + 1 for i, value in enumerate(curve) if value >= fraction * curve[-1])


def _batches(index: Tensor, size: int, generator: torch.Generator) -> list[Tensor]:
    return list(index[torch.randperm(index.numel(), generator=generator)].split(size))


def _model(config: PaperConfig, data: VectorData, layer: str) -> torch.nn.Module:
    """IPN, or the heat flow of one attention (``--arch flow``, no dropout: IPN has none)."""
    layer_kwargs = time_scale_kwargs(layer, config.time_scale)
    if config.arch == "flow":
        return AttentionFlowNet(
            layer, data.num_features, config.width, data.num_classes, config.heads, time=config.flow_time,
            steps=config.flow_steps, dropout=0.0, layer_kwargs=layer_kwargs,
        )  # fmt: skip
    return IPN(
        layer, data.num_features, data.num_classes, config.width, config.heads, config.blocks, layer_kwargs=layer_kwargs
    )


def train_ipn(config: PaperConfig, data: VectorData, layer: str, graph: str, seed: int) -> dict[str, Any]:
    """Train one IPN; per-epoch curves and the summary numbers of the run."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = _model(config, data, layer)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    complete: dict[int, Tensor] = {}  # one edge-index tensor per batch size: the layers' graph cache reuses it

    def graph_of(size: int) -> Tensor:
        return complete.setdefault(size, complete_edge_index(size))

    if graph == "knn":
        edge_index = knn_edge_index(data.x, config.k)
    else:
        eval_batches = {
            name: _batches(getattr(data, name), config.batch_size, torch.Generator().manual_seed(seed))
            for name in ("val", "test")
        }
    curves: dict[str, list[float]] = {key: [] for key in _RUN_KEYS}
    start = time.perf_counter()
    for _ in range(config.epochs):
        model.train()
        if graph == "knn":
            optimizer.zero_grad()
            loss = F.cross_entropy(model(data.x, edge_index)[data.train], data.y[data.train])
            loss.backward()
            optimizer.step()
            epoch_loss = float(loss.detach())
        else:
            total = 0.0
            for batch in _batches(data.train, config.batch_size, generator):
                optimizer.zero_grad()
                loss = F.cross_entropy(model(data.x[batch], graph_of(batch.numel())), data.y[batch])
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * batch.numel()
            epoch_loss = total / data.train.numel()
        if not math.isfinite(epoch_loss):
            raise ValueError(f"{layer} on {graph} diverged (training loss {epoch_loss}); lower --lr.")
        model.eval()
        with torch.no_grad():
            if graph == "knn":
                logits = model(data.x, edge_index)
                accs = {
                    name: _accuracy(logits[getattr(data, name)], data.y[getattr(data, name)])
                    for name in ("val", "test")
                }
            else:
                accs = {}
                for name, batches in eval_batches.items():
                    correct = sum(
                        int((model(data.x[b], graph_of(b.numel())).argmax(-1) == data.y[b]).sum()) for b in batches
                    )
                    accs[name] = correct / getattr(data, name).numel()
        curves["train_loss"].append(epoch_loss)
        curves["val_accuracy"].append(accs["val"])
        curves["test_accuracy"].append(accs["test"])
    seconds = time.perf_counter() - start
    test = curves["test_accuracy"]
    best = int(np.argmax(curves["val_accuracy"]))  # first best epoch
    return {
        **curves,
        "final_test_accuracy": test[-1],
        "best_epoch": best + 1,
        "test_accuracy_at_best_val": test[best],
        "epochs_to_95": epochs_to_reach(test, 0.95),
        "seconds": seconds,
        "num_parameters": count_parameters(model),
    }


def _read_run(path: Path, epochs: int) -> dict[str, Any]:
    """A finished run's JSON, checked (the file may be damaged or hostile)."""
    try:
        run = json.loads(path.read_text())
        curves_ok = all(
            isinstance(run[key], list)
            and len(run[key]) == epochs
            and all(isinstance(v, (int, float)) and math.isfinite(v) for v in run[key])
            for key in _RUN_KEYS
        )
        scalars_ok = all(
            isinstance(run[key], (int, float)) and math.isfinite(run[key])
            for key in ("final_test_accuracy", "test_accuracy_at_best_val", "epochs_to_95", "seconds", "num_parameters")
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a readable run record ({error}); delete it to run it again.") from None
    if not (isinstance(run, dict) and curves_ok and scalars_ok):
        raise ValueError(f"{path}: not a run record of {epochs} epochs; delete it to run it again.")
    return run


def _row(layer: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    final = np.array([r["final_test_accuracy"] for r in runs])
    at_best = np.array([r["test_accuracy_at_best_val"] for r in runs])
    return {
        "layer": layer,
        "runs": len(runs),
        "final_mean": float(final.mean()),
        "final_std": float(final.std(ddof=1)) if final.size > 1 else None,  # undefined for one seed
        "final_min": float(final.min()),
        "final_max": float(final.max()),
        "at_best_val_mean": float(at_best.mean()),
        "epochs_to_95_mean": float(np.mean([r["epochs_to_95"] for r in runs])),
        "seconds_per_run": float(np.mean([r["seconds"] for r in runs])),
        "num_parameters": runs[0]["num_parameters"],
        "final_values": final.tolist(),
    }


def paper_table(result: dict[str, Any]) -> str:
    """Markdown: one table per dataset and graph, then metric attention against each other kind."""
    lines = []

    def percent(value: float) -> str:
        return f"{100 * value:.1f}"

    for block in result["blocks"]:
        lines += [
            f"**{block['dataset']}, {block['graph']} graph** ({block['rows'][0]['runs']} seeds)",
            "",
            "| layer | final test acc. mean ± std | min / max | test acc. at best val | epochs to 95% "
            "| s / run | parameters |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in block["rows"]:
            lines.append(
                f"| {r['layer']} | {format_mean_std(r['final_mean'], r['final_std'], percent)} | "
                f"{100 * r['final_min']:.1f} / {100 * r['final_max']:.1f} | {100 * r['at_best_val_mean']:.1f} | "
                f"{r['epochs_to_95_mean']:.1f} | {r['seconds_per_run']:.2f} | {r['num_parameters']:,} |"
            )
        if block["paired"]:
            lines += ["", "| pair (final test acc.) | mean difference (points) | 95% interval | Wilcoxon p | verdict |"]
            lines.append("|---|---|---|---|---|")
            for other, c in block["paired"].items():
                ci = "–" if c["ci95"] is None else f"[{100 * c['ci95'][0]:+.2f}, {100 * c['ci95'][1]:+.2f}]"
                lines.append(
                    f"| metric − {other} | {100 * c['mean_difference']:+.2f} | {ci} | {p_value(c['wilcoxon_p'])} | "
                    f"{c['verdict']} |"
                )
        lines.append("")
    return "\n".join(lines)


def run_paper(config: PaperConfig, out: str | Path, progress: bool = True) -> dict[str, Any]:
    """Run (or read back) every run of ``config`` into ``out`` and write the tables and figures."""
    out = Path(out)
    config_path = out / "config.json"
    wanted = dataclasses.asdict(config)
    if config_path.exists():
        try:
            found = json.loads(config_path.read_text())
        except (OSError, ValueError) as error:
            raise ValueError(f"{config_path}: unreadable ({error}); choose another --out.") from None
        if isinstance(found, dict):  # a setting added after the folder was written counts with its default
            found = {**json.loads(json.dumps(dataclasses.asdict(PaperConfig()))), **found}
        if found != json.loads(json.dumps(wanted)):
            raise ValueError(f"{out} holds results of other settings ({config_path}); choose another --out.")
    else:
        for setting in config.settings():
            config.load(setting, 0)  # bad settings (k above the point count) fail before anything is written
        atomic_write_json(config_path, wanted)
    blocks = []
    for setting in config.settings():
        for graph in config.graphs:
            runs: dict[str, list[dict[str, Any]]] = {layer: [] for layer in config.layers}
            for seed in range(config.seeds):
                data = None
                for layer in config.layers:
                    path = out / setting / graph / layer / f"seed_{seed}.json"
                    if path.exists():
                        runs[layer].append(_read_run(path, config.epochs))
                        continue
                    data = data or config.load(setting, seed)
                    run = train_ipn(config, data, layer, graph, seed)
                    atomic_write_json(path, run)
                    runs[layer].append(run)
                    if progress:
                        print(
                            f"{setting} {graph} {layer} seed {seed}: final test {100 * run['final_test_accuracy']:.1f}%"
                            f" ({run['seconds']:.1f} s)",
                            flush=True,
                        )
            rows = [_row(layer, runs[layer]) for layer in config.layers]
            paired = {}
            if "metric" in runs:
                metric = [r["final_test_accuracy"] for r in runs["metric"]]
                for layer in config.layers:
                    if layer != "metric":
                        paired[layer] = paired_comparison(metric, [r["final_test_accuracy"] for r in runs[layer]])
            blocks.append({"dataset": setting, "graph": graph, "rows": rows, "paired": paired})
            stem = f"{setting}-{graph}"
            plot_violin(
                {r["layer"]: r["final_values"] for r in rows}, out / f"{stem}-violin.png", "final test accuracy"
            )
            curves = {
                layer: {"train_loss": [r["train_loss"] for r in rs], "test_accuracy": [r["test_accuracy"] for r in rs]}
                for layer, rs in runs.items()
            }
            plot_mean_curves(curves, out / f"{stem}-curves.png", "accuracy", keys=("train_loss", "test_accuracy"))
    result = {"config": wanted, "blocks": blocks}
    table = paper_table(result)
    atomic_write_json(out / "paper.json", result)
    atomic_write_text(out / "paper.md", table)
    print(table)
    print(f"results: {out}")
    return result
