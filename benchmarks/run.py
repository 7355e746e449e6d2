"""Speed and memory of the attention layers against PyG's own, in one process.

    python -m benchmarks.run            # full: Cora-sized, 1M and 4M random edges, 300x300 grid mesh
    python -m benchmarks.run --quick    # small graphs only (seconds), as the test suite runs it
    python -m benchmarks.run --torch-scatter --graphs 1M   # PyG's scatter with and without torch-scatter
    python -m benchmarks.run --scaling  # our layers per edge, 0.25M to 16M edges

For every graph and layer (in=128, 8 heads x 8 channels, no added self-loops so that all
layers see the same edges): median / min / max over ``--repeats`` rounds in which every
layer's pass runs once in turn (pyg, ours, pyg, ours, ...: load from other processes falls
on all alike), after one warm-up each, of the forward pass (under ``torch.no_grad``) and of forward+backward; then, in
a second pass after all timings, the peak resident memory of one call of each (see
``benchmarks/memory.py``); edges/s; and ratios against PyG
``GATConv`` (time: PyG time / ours, > 1 is faster; memory: ours / PyG, < 1 is leaner).
Also prints the machine's copy/gather bandwidth and each layer's distance from the
implied forward lower bound. Writes everything as JSON (``--out``).

``--compile`` adds ``torch.compile``'d GATConv and ours; ``--torch-kernels`` adds ours with the
C++ CPU kernels switched off (``tg_metricattn.layers.cpu_kernels``). ``--torch-scatter`` adds the
layers that go through PyG's scatter functions (GATConv and our ``propagation="scatter"``
path) with PyG's torch-scatter switch on; every other row runs with it off, so the two
are compared in one process (it needs ``pip install torch-scatter``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch_geometric
import torch_geometric.typing
from torch_geometric.nn import GATConv, GATv2Conv, TransformerConv

from benchmarks.bandwidth import forward_lower_bound_s, measure_bandwidth
from benchmarks.graphs import benchmark_graphs, random_graph
from benchmarks.memory import PeakMemory, fix_mmap_threshold
from benchmarks.timing import time_interleaved
from tg_metricattn import DotAttnConv, L2AttnConv, MetricAttnConv, SparseGATConv, SparseGATv2Conv
from tg_metricattn.layers import cpu_kernels

IN_CHANNELS, HEADS, CHANNELS = 128, 8, 8

# name -> (constructor, source rows gathered per edge by a fused forward)
LAYERS: dict[str, tuple[Callable[[], torch.nn.Module], int]] = {
    "PyG GATConv": (lambda: GATConv(IN_CHANNELS, CHANNELS, heads=HEADS, add_self_loops=False), 1),
    "PyG GATv2Conv": (lambda: GATv2Conv(IN_CHANNELS, CHANNELS, heads=HEADS, add_self_loops=False), 1),
    "PyG TransformerConv": (lambda: TransformerConv(IN_CHANNELS, CHANNELS, heads=HEADS, root_weight=False), 2),
    "SparseGATConv": (lambda: SparseGATConv(IN_CHANNELS, CHANNELS, heads=HEADS, add_self_loops=False), 1),
    "SparseGATv2Conv": (lambda: SparseGATv2Conv(IN_CHANNELS, CHANNELS, heads=HEADS, add_self_loops=False), 2),
    "DotAttnConv": (
        lambda: DotAttnConv(IN_CHANNELS, CHANNELS, heads=HEADS, add_self_loops=False, root_weight=False),
        2,
    ),
    "L2AttnConv": (lambda: L2AttnConv(IN_CHANNELS, CHANNELS, heads=HEADS, add_self_loops=False), 2),
    "MetricAttnConv": (lambda: MetricAttnConv(IN_CHANNELS, CHANNELS, heads=HEADS, add_self_loops=False), 2),
    # the same two layers preparing (sorting) the graph on every call instead of once
    "SparseGATConv (no cache)": (
        lambda: SparseGATConv(IN_CHANNELS, CHANNELS, heads=HEADS, add_self_loops=False, cache_graph=False),
        1,
    ),
    "MetricAttnConv (no cache)": (
        lambda: MetricAttnConv(IN_CHANNELS, CHANNELS, heads=HEADS, add_self_loops=False, cache_graph=False),
        2,
    ),
    # the same two layers on PyG's gather/scatter propagation (the path torch.compile and bf16 take)
    "SparseGATConv (scatter path)": (
        lambda: SparseGATConv(IN_CHANNELS, CHANNELS, heads=HEADS, add_self_loops=False, propagation="scatter"),
        1,
    ),
    "MetricAttnConv (scatter path)": (
        lambda: MetricAttnConv(IN_CHANNELS, CHANNELS, heads=HEADS, add_self_loops=False, propagation="scatter"),
        2,
    ),
}
REFERENCE = "PyG GATConv"
DEFAULT_LAYERS = [name for name in LAYERS if not name.endswith("(scatter path)")]
#: extra modes: layers measured again compiled, or with PyG's torch-scatter switch on
MODE_LAYERS = {
    "compiled": (
        REFERENCE,
        "PyG GATv2Conv",
        "PyG TransformerConv",
        "SparseGATConv",
        "DotAttnConv",
        "L2AttnConv",
        "MetricAttnConv",
    ),
    "torch-scatter": (REFERENCE, "SparseGATConv (scatter path)", "MetricAttnConv (scatter path)"),
    "torch kernels": ("SparseGATConv", "DotAttnConv", "L2AttnConv", "MetricAttnConv"),
}


@contextlib.contextmanager
def torch_scatter_switch(enabled: bool) -> Iterator[None]:
    """PyG's ``WITH_TORCH_SCATTER`` set to ``enabled`` inside the block (PyG reads it on every scatter call)."""
    before = torch_geometric.typing.WITH_TORCH_SCATTER
    torch_geometric.typing.WITH_TORCH_SCATTER = enabled
    try:
        yield
    finally:
        torch_geometric.typing.WITH_TORCH_SCATTER = before


def peak_memory_mb(fn: Callable[[], object]) -> float:
    """Peak resident memory of one call above the level before it, after a warm-up call."""
    fn()
    with PeakMemory() as memory:
        fn()
    return memory.peak_bytes / 2**20


def passes(
    layer: torch.nn.Module, x: torch.Tensor, edge_index: torch.Tensor, mode: str = "eager"
) -> dict[str, Callable[[], None]]:
    """The two measured passes: forward under no_grad, and forward + backward (``mode`` "torch-scatter":
    PyG's torch-scatter switch on; "torch kernels": our C++ CPU kernels off)."""

    def switches() -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        stack.enter_context(torch_scatter_switch(mode == "torch-scatter"))
        if mode == "torch kernels":
            stack.enter_context(cpu_kernels.switched_off())
        return stack

    def forward() -> None:
        with torch.no_grad(), switches():
            layer(x, edge_index)

    def forward_backward() -> None:
        layer.zero_grad(set_to_none=True)
        with switches():
            layer(x, edge_index).sum().backward()

    return {"forward": forward, "forward_backward": forward_backward}


def check_paths_agree(x: torch.Tensor, edge_index: torch.Tensor) -> dict[str, float]:
    """Max |csr - scatter| of each of our layers' outputs (the fast path equals the reference)."""
    errors = {}
    for name in ("SparseGATConv", "SparseGATv2Conv", "DotAttnConv", "L2AttnConv", "MetricAttnConv"):
        torch.manual_seed(0)
        layer = LAYERS[name][0]()
        with torch.no_grad():
            layer.propagation = "csr"
            fast = layer(x, edge_index)
            layer.propagation = "scatter"
            reference = layer(x, edge_index)
        errors[name] = (fast - reference).abs().max().item()
    return errors


def run(quick: bool, repeats: int, layers: list[str], modes: list[str], wanted: list[str] | None = None) -> dict:
    """Measure every layer on every graph (plus the ``modes`` variants); return the results as a dict."""
    bandwidth = measure_bandwidth(64 if quick else 256)
    results: dict = {
        "machine": {
            "torch": torch.__version__,
            "torch_geometric": torch_geometric.__version__,
            "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
        },
        "config": {"in_channels": IN_CHANNELS, "heads": HEADS, "channels": CHANNELS, "repeats": repeats},
        "bandwidth": bandwidth,
        "graphs": {},
    }
    graphs = benchmark_graphs(quick)
    if wanted:
        graphs = {name: graph for name, graph in graphs.items() if any(part in name for part in wanted)}
    variants = {name: (name, "eager") for name in layers}
    for mode in modes:
        variants.update({f"{name} ({mode})": (name, mode) for name in MODE_LAYERS[mode]})
    for graph_name, (num_nodes, edge_index) in graphs.items():
        x = torch.randn(num_nodes, IN_CHANNELS)
        num_edges = edge_index.size(1)
        graph_result = {"num_nodes": num_nodes, "num_edges": num_edges, "layers": {}}
        graph_result["max_abs_csr_minus_scatter"] = check_paths_agree(x, edge_index)
        calls = {}
        for label, (name, mode) in variants.items():
            layer = make_layer(name, mode == "compiled")
            for key, fn in passes(layer, x, edge_index, mode).items():
                calls[(label, key)] = fn
        timings = time_interleaved(calls, repeats)
        for label, (name, _) in variants.items():
            entry = {key: timings[(label, key)] for key in ("forward", "forward_backward")}
            entry["forward_lower_bound_s"] = forward_lower_bound_s(
                num_edges, LAYERS[name][1], HEADS, CHANNELS, bandwidth
            )
            graph_result["layers"][label] = entry
        del calls
        results["graphs"][graph_name] = graph_result
    # Memory last: pinning glibc's mmap threshold makes allocation slower for every layer.
    results["memory_exact"] = fix_mmap_threshold()
    for graph_name, (num_nodes, edge_index) in graphs.items():
        x = torch.randn(num_nodes, IN_CHANNELS)
        graph_result = results["graphs"][graph_name]
        for label, entry in graph_result["layers"].items():
            name, mode = variants[label]
            layer = make_layer(name, mode == "compiled")
            for key, fn in passes(layer, x, edge_index, mode).items():
                entry[key]["peak_MB"] = peak_memory_mb(fn)
            print_row(graph_name, label, graph_result["num_edges"], entry, graph_result["layers"].get(REFERENCE))
    return results


#: our four kinds, measured per edge from 0.25M to 16M edges (``--scaling``)
SCALING_LAYERS = ("SparseGATConv", "DotAttnConv", "L2AttnConv", "MetricAttnConv")
#: edges of the scaling graphs (10 edges per node); ``--quick`` takes the small ones
SCALING_EDGES = (250_000, 1_000_000, 4_000_000, 16_000_000)
QUICK_SCALING_EDGES = (10_000, 40_000)


def run_scaling(quick: bool, repeats: int) -> dict:
    """Forward + backward time and peak memory per edge of our layers as the graph grows.

    Random graphs with 10 edges per node; per size, the layers take turns (interleaved),
    then (after all timings) the peak resident memory of one call each. A flat curve (the
    same ns and bytes per edge at every size) is what O(E) time and memory look like.
    """
    sizes = QUICK_SCALING_EDGES if quick else SCALING_EDGES
    rows: dict = {name: {} for name in SCALING_LAYERS}
    graphs = {edges: (edges // 10, random_graph(edges // 10, edges)) for edges in sizes}
    for edges, (num_nodes, edge_index) in graphs.items():
        x = torch.randn(num_nodes, IN_CHANNELS)
        calls = {name: passes(make_layer(name, False), x, edge_index)["forward_backward"] for name in SCALING_LAYERS}
        for name, timing in time_interleaved(calls, repeats).items():
            rows[name][edges] = {"forward_backward": timing, "ns_per_edge": timing["median_s"] / edges * 1e9}
    exact = fix_mmap_threshold()
    for edges, (num_nodes, edge_index) in graphs.items():
        x = torch.randn(num_nodes, IN_CHANNELS)
        for name in SCALING_LAYERS:
            peak = peak_memory_mb(passes(make_layer(name, False), x, edge_index)["forward_backward"])
            rows[name][edges].update(peak_MB=peak, bytes_per_edge=peak * 2**20 / edges)
    print(f"scaling, random graphs with 10 edges per node, forward + backward (threads {torch.get_num_threads()}):")
    print(f"  {'layer':<16}" + "".join(f"{f'{edges / 1e6:g}M edges':>22}" for edges in sizes) + "   largest/smallest")
    for name, by_size in rows.items():
        cells = "".join(f"{m['ns_per_edge']:9.0f} ns {m['bytes_per_edge']:6.0f} B" + " " * 2 for m in by_size.values())
        first, last = by_size[sizes[0]], by_size[sizes[-1]]
        print(
            f"  {name:<16}{cells}  time {last['ns_per_edge'] / first['ns_per_edge']:4.2f}x, "
            f"memory {last['bytes_per_edge'] / first['bytes_per_edge']:4.2f}x",
            flush=True,
        )
    return {"memory_exact": exact, "layers": {name: {str(e): m for e, m in by.items()} for name, by in rows.items()}}


def make_layer(name: str, compiled: bool) -> torch.nn.Module:
    """A freshly initialised layer (seed 0), optionally wrapped by ``torch.compile``."""
    torch.manual_seed(0)
    layer = LAYERS[name][0]()
    if not compiled:
        return layer
    # each compiled instance of a class shares its forward's code: one recompilation per instance and grad
    # mode; past dynamo's limit (8) later instances would silently run eager
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 256)
    return torch.compile(layer, dynamic=False)


def print_row(graph: str, label: str, num_edges: int, entry: dict, reference: dict | None) -> None:
    fwd, fb = entry["forward"], entry["forward_backward"]
    to_bound = fwd["median_s"] / entry["forward_lower_bound_s"]
    speed = mem = ""
    if reference is not None:
        speed = f"{reference['forward_backward']['median_s'] / fb['median_s']:5.2f}x"
        mem = f"{fb['peak_MB'] / max(reference['forward_backward']['peak_MB'], 1e-9):5.2f}x"
    print(
        f"{graph:<24} {label:<30} "
        f"fwd {fwd['median_s'] * 1e3:8.1f} ms [{fwd['min_s'] * 1e3:.0f}-{fwd['max_s'] * 1e3:.0f}] "
        f"{fwd['peak_MB']:7.0f} MB | "
        f"fwd+bwd {fb['median_s'] * 1e3:8.1f} ms [{fb['min_s'] * 1e3:.0f}-{fb['max_s'] * 1e3:.0f}] "
        f"{fb['peak_MB']:7.0f} MB {num_edges / fb['median_s'] / 1e6:6.2f} Medges/s | "
        f"vs GATConv: speed {speed:>6} mem {mem:>6} | fwd/bound {to_bound:5.1f}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small graphs only (for CI)")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per measurement (default 10, quick 3)")
    parser.add_argument(
        "--layers", default=",".join(DEFAULT_LAYERS), help="comma-separated subset of: " + ", ".join(LAYERS)
    )
    parser.add_argument("--compile", action="store_true", help="also time torch.compile'd GATConv and ours")
    parser.add_argument(
        "--torch-scatter",
        action="store_true",
        help="also time GATConv and our scatter path with PyG's torch-scatter switch on (needs torch-scatter)",
    )
    parser.add_argument(
        "--torch-kernels",
        action="store_true",
        help="also time our layers with the C++ CPU kernels switched off (the torch kernels), in the same turns",
    )
    parser.add_argument(
        "--scaling",
        action="store_true",
        help="instead: time and memory per edge of our layers from 0.25M to 16M edges (quick: 10k, 40k)",
    )
    parser.add_argument("--graphs", default="", help="only graphs whose name contains one of these (comma-separated)")
    parser.add_argument("--out", default="results/benchmark.json", help="where to write the JSON results")
    args = parser.parse_args(argv)
    layers = [name.strip() for name in args.layers.split(",")]
    unknown = [name for name in layers if name not in LAYERS]
    if unknown:
        parser.error(f"unknown layers {unknown}; choose from {list(LAYERS)}")
    if REFERENCE not in layers:
        layers.insert(0, REFERENCE)
    wanted_modes = (("compiled", args.compile), ("torch-scatter", args.torch_scatter))
    modes = [mode for mode, wanted_mode in (*wanted_modes, ("torch kernels", args.torch_kernels)) if wanted_mode]
    if args.torch_scatter and torch_geometric.typing.torch_scatter is object:  # what PyG sets when absent
        parser.error("--torch-scatter needs torch-scatter: pip install torch-scatter (it builds from source)")
    repeats = args.repeats or (3 if args.quick else 10)
    bw = measure_bandwidth(64 if args.quick else 256)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; copy {bw['copy_GBps']:.1f} GB/s, "
        f"gather {bw['gather_rows_per_s'] / 1e6:.1f} M rows/s of {bw['gather_row_floats']} floats",
        flush=True,
    )
    wanted = [part.strip() for part in args.graphs.split(",") if part.strip()]
    if args.scaling:
        results = {"scaling": run_scaling(args.quick, repeats)}
    else:
        results = run(args.quick, repeats, layers, modes, wanted)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(results, indent=2))
    os.replace(tmp, out)
    for graph, result in results.get("graphs", {}).items():
        worst = max(result["max_abs_csr_minus_scatter"].values())
        print(f"{graph}: fast path vs reference path, max |difference| {worst:.2e}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
