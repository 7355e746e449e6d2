"""Time and peak memory of one full-batch training step: the heat-flow model against GAT's, on a real graph.

    python -m benchmarks.flow_step                   # Cora (needs $TGMA_DATA)
    python -m benchmarks.flow_step --dataset CiteSeer --repeats 20

Models as ``tgma train`` builds them with their defaults: the GAT paper's 2-layer model
(``--arch attention``), and ``--arch flow`` (width 64, 8 heads) with GAT and metric
attention, Euler and RK4 at K = 6 steps. A step is forward, cross-entropy on the training
nodes, backward and the Adam update; the models take turns in every repeat so that load on
the machine falls on all alike. Time: the median over the repeats; memory: the peak resident
set size above its level before the step, in a last pass after all timings, with every block
above 64 KiB mapped so that RSS follows the live tensors (:mod:`benchmarks.memory`).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from benchmarks.memory import PeakMemory, fix_mmap_threshold
from tg_metricattn.experiments.config import TrainConfig
from tg_metricattn.experiments.tasks import build_task
from tg_metricattn.experiments.training import build_optimizer

#: label -> the settings that differ from the dataset's defaults
MODELS = {
    "GAT, 2 layers (--arch attention)": {"layer": "gat"},
    "flow gat, euler K=6": {"arch": "flow", "layer": "gat"},
    "flow metric, euler K=6": {"arch": "flow", "layer": "metric"},
    "flow gat, rk4 K=6": {"arch": "flow", "layer": "gat", "flow_method": "rk4"},
    "flow metric, rk4 K=6": {"arch": "flow", "layer": "metric", "flow_method": "rk4"},
}


def _step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, data, train_idx) -> None:
    optimizer.zero_grad()
    loss = F.cross_entropy(model(data.x, data.edge_index)[train_idx], data.y[train_idx])
    loss.backward()
    optimizer.step()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="Cora")
    parser.add_argument("--repeats", type=int, default=10, help="timed steps per model (default 10)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    runs = {}
    for label, settings in MODELS.items():
        config = TrainConfig(dataset=args.dataset, **settings).resolved()
        task = build_task(config)
        model = task.build_model(config).train()
        runs[label] = (model, build_optimizer(model, config), task.data, task.train_idx)
        _step(*runs[label])  # warm-up: graph caches, lazy shapes
    seconds: dict[str, list[float]] = {label: [] for label in runs}
    for _ in range(args.repeats):
        for label, run in runs.items():
            start = time.perf_counter()
            _step(*run)
            seconds[label].append(time.perf_counter() - start)
    exact = fix_mmap_threshold()
    reference = None
    print(f"{args.dataset}: one training step, median of {args.repeats} (threads: {torch.get_num_threads()})")
    for label, run in runs.items():
        with PeakMemory() as memory:
            _step(*run)
        step_s, peak_mb = statistics.median(seconds[label]), memory.peak_bytes / 2**20
        reference = reference or (step_s, peak_mb)
        ratio = f"{step_s / reference[0]:5.2f}x time  {peak_mb / max(reference[1], 1e-9):5.2f}x memory"
        print(f"  {label:<34} {step_s * 1000:8.1f} ms  peak {peak_mb:7.1f} MB   ({ratio} of GAT's)")
    if not exact:
        print("  (memory approximate: mallopt unavailable)")


if __name__ == "__main__":
    main()
