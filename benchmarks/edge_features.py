"""Edge features: forward + backward time and peak memory per edge, our layers against PyG's.

    python -m benchmarks.edge_features            # 100k nodes, 1M edges, edge_dim 8
    python -m benchmarks.edge_features --quick    # 5k nodes, 50k edges (seconds)

Pairs with the same edge features (``edge_dim`` 8, in 128, 8 heads x 8, no added self-loops):
GATConv / SparseGATConv, GATv2Conv / SparseGATv2Conv, TransformerConv / DotAttnConv. The
layers take turns in every repeat (so load on the machine falls on all alike); time is the
median of the repeats, memory the peak resident set size above its level before one call, in
a pass after all timings (:mod:`benchmarks.memory`), printed per edge: PyG's layers keep
``E x H x C`` tensors of the embedded edge features (8 x 8 floats = 256 bytes an edge each),
ours none (:func:`~tg_metricattn.layers.sparse_kernels.edge_additive_score`, the per-node forms
of the GAT and transformer edge terms).
"""

from __future__ import annotations

import argparse
import functools

import torch
from torch_geometric.nn import GATConv, GATv2Conv, TransformerConv

from benchmarks.graphs import random_graph
from benchmarks.memory import fix_mmap_threshold
from benchmarks.run import CHANNELS, HEADS, IN_CHANNELS, peak_memory_mb
from benchmarks.timing import time_interleaved
from tg_metricattn import DotAttnConv, SparseGATConv, SparseGATv2Conv

EDGE_DIM = 8
_ARGS = {"heads": HEADS, "edge_dim": EDGE_DIM}
#: (PyG's layer, ours) per pair
PAIRS = {
    "GAT": (
        lambda: GATConv(IN_CHANNELS, CHANNELS, add_self_loops=False, **_ARGS),
        lambda: SparseGATConv(IN_CHANNELS, CHANNELS, add_self_loops=False, **_ARGS),
    ),
    "GATv2": (
        lambda: GATv2Conv(IN_CHANNELS, CHANNELS, add_self_loops=False, **_ARGS),
        lambda: SparseGATv2Conv(IN_CHANNELS, CHANNELS, add_self_loops=False, **_ARGS),
    ),
    "Transformer": (
        lambda: TransformerConv(IN_CHANNELS, CHANNELS, root_weight=False, **_ARGS),
        lambda: DotAttnConv(IN_CHANNELS, CHANNELS, add_self_loops=False, root_weight=False, **_ARGS),
    ),
}


def _step(layer: torch.nn.Module, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor) -> None:
    layer.zero_grad(set_to_none=True)
    layer(x, edge_index, edge_attr).sum().backward()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5k nodes, 50k edges")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per layer (default 5)")
    args = parser.parse_args(argv)
    num_nodes, num_edges = (5_000, 50_000) if args.quick else (100_000, 1_000_000)
    edge_index = random_graph(num_nodes, num_edges)
    x = torch.randn(num_nodes, IN_CHANNELS)
    edge_attr = torch.randn(edge_index.size(1), EDGE_DIM)
    layers = {}
    for pair, (pyg, ours) in PAIRS.items():
        torch.manual_seed(0)
        layers[f"PyG {pair}"] = pyg()
        layers[f"ours {pair}"] = ours()
    calls = {label: functools.partial(_step, layer, x, edge_index, edge_attr) for label, layer in layers.items()}
    timings = time_interleaved(calls, args.repeats)
    exact = fix_mmap_threshold()
    edges = edge_index.size(1)
    print(
        f"{num_nodes} nodes, {edges} edges, edge_dim {EDGE_DIM}: forward + backward (threads {torch.get_num_threads()})"
    )
    peaks = {label: peak_memory_mb(call) * 2**20 for label, call in calls.items()}
    for pair in PAIRS:
        pyg_s, ours_s = (timings[f"{who} {pair}"]["median_s"] for who in ("PyG", "ours"))
        pyg_m, ours_m = (peaks[f"{who} {pair}"] for who in ("PyG", "ours"))
        print(
            f"  {pair:<12} PyG {pyg_s * 1e3:8.1f} ms {pyg_m / edges:7.0f} B/edge | ours {ours_s * 1e3:8.1f} ms "
            f"{ours_m / edges:7.0f} B/edge | speed {pyg_s / ours_s:5.2f}x, memory {ours_m / max(pyg_m, 1):5.2f}x",
            flush=True,
        )
    if not exact:
        print("  (memory approximate: mallopt unavailable)")


if __name__ == "__main__":
    main()
