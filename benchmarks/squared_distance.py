"""The squared-distance score of L2 and metric attention: sampled expansion against the direct formula.

    python -m benchmarks.squared_distance            # 100k nodes, 1M edges
    python -m benchmarks.squared_distance --quick    # 5k nodes, 50k edges (seconds)

The layers' kernel (:func:`~tg_metricattn.layers.sparse_kernels.edge_squared_distance_sampled`:
‖y_i‖² + ‖y_j‖² - 2 <y_i, y_j> from one sampled sparse product, the direct difference on
the edges where that cancels) against the direct formula on every edge, summed in float64
(:func:`~tg_metricattn.layers.sparse_kernels.edge_squared_distance`, the kernel before it),
with PyG's GATConv and our SparseGATConv beside them; in = 128, 8 heads x 8, no added
self-loops. The layers take turns in every repeat, so that load on the machine falls on all
alike; printed: min and median forward + backward time, the ratio of the mins to
GATConv's, and the peak resident memory of one call per edge (a pass after all timings,
:mod:`benchmarks.memory`).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
from collections.abc import Iterator

import torch
from torch_geometric.nn import GATConv

from benchmarks.graphs import random_graph
from benchmarks.memory import fix_mmap_threshold
from benchmarks.run import CHANNELS, HEADS, IN_CHANNELS, peak_memory_mb
from benchmarks.timing import time_interleaved
from tg_metricattn import L2AttnConv, MetricAttnConv, SparseGATConv
from tg_metricattn.layers import score_terms
from tg_metricattn.layers.sparse_kernels import edge_squared_distance


@contextlib.contextmanager
def direct_formula_everywhere() -> Iterator[None]:
    """Score every edge with the float64 direct formula instead of the sampled expansion."""
    sampled = score_terms.edge_squared_distance_sampled
    score_terms.edge_squared_distance_sampled = lambda dst, src, graph: edge_squared_distance(
        dst, src, graph.source, graph.target
    )
    try:
        yield
    finally:
        score_terms.edge_squared_distance_sampled = sampled


def _rows() -> dict[str, tuple[torch.nn.Module, bool]]:
    """label -> (layer, whether it runs with the direct formula)."""
    args = {"heads": HEADS, "add_self_loops": False}
    torch.manual_seed(0)
    l2, metric = L2AttnConv(IN_CHANNELS, CHANNELS, **args), MetricAttnConv(IN_CHANNELS, CHANNELS, **args)
    return {
        "PyG GATConv": (GATConv(IN_CHANNELS, CHANNELS, **args), False),
        "SparseGATConv": (SparseGATConv(IN_CHANNELS, CHANNELS, **args), False),
        "L2AttnConv (sampled)": (l2, False),
        "L2AttnConv (direct, float64)": (l2, True),
        "MetricAttnConv (sampled)": (metric, False),
        "MetricAttnConv (direct, float64)": (metric, True),
    }


def _step(layer: torch.nn.Module, direct: bool, x: torch.Tensor, edge_index: torch.Tensor) -> None:
    layer.zero_grad(set_to_none=True)
    with direct_formula_everywhere() if direct else contextlib.nullcontext():
        layer(x, edge_index).sum().backward()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5k nodes, 50k edges")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per row (default 7)")
    args = parser.parse_args(argv)
    num_nodes, num_edges = (5_000, 50_000) if args.quick else (100_000, 1_000_000)
    edge_index = random_graph(num_nodes, num_edges)
    x = torch.randn(num_nodes, IN_CHANNELS)
    rows = _rows()
    calls = {label: functools.partial(_step, layer, direct, x, edge_index) for label, (layer, direct) in rows.items()}
    timings = time_interleaved(calls, args.repeats)
    exact = fix_mmap_threshold()
    peaks = {label: peak_memory_mb(call) * 2**20 for label, call in calls.items()}
    print(f"{num_nodes} nodes, {num_edges} edges: forward + backward (threads {torch.get_num_threads()})")
    reference_s, reference_m = timings["PyG GATConv"]["min_s"], peaks["PyG GATConv"]
    for label, timing in timings.items():
        print(
            f"  {label:<34} min {timing['min_s'] * 1e3:8.1f} ms  median {timing['median_s'] * 1e3:8.1f} ms  "
            f"{peaks[label] / num_edges:6.0f} B/edge | vs GATConv: time {timing['min_s'] / reference_s:5.2f}x, "
            f"memory {peaks[label] / max(reference_m, 1):5.2f}x",
            flush=True,
        )
    if not exact:
        print("  (memory approximate: mallopt unavailable)")


if __name__ == "__main__":
    main()
