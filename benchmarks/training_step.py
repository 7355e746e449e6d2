"""Peak memory of one full-batch training step of a two-layer model on the 4M-edge graph.

    python -m benchmarks.training_step            # every layer, each in its own process
    python -m benchmarks.training_step --layer MetricAttnConv

Model: layer(128 -> 8 heads x 8) -> ELU -> layer(64 -> 16 classes, 1 head), cross-entropy
on all nodes, Adam step. The peak is the process's maximum resident set size
(``ru_maxrss``) minus the size before the step, so each layer runs in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from benchmarks.graphs import random_graph
from benchmarks.memory import resident_bytes
from benchmarks.run import CHANNELS, HEADS, IN_CHANNELS, LAYERS

NUM_NODES, NUM_EDGES, NUM_CLASSES = 200_000, 4_000_000, 16


def one_step(name: str) -> dict:
    """Build the model and graph, then time and measure one training step."""
    torch.manual_seed(0)
    first = LAYERS[name][0]()
    if name == "PyG TransformerConv":
        second = type(first)(HEADS * CHANNELS, NUM_CLASSES, heads=1, root_weight=False)
    else:
        second = type(first)(HEADS * CHANNELS, NUM_CLASSES, heads=1, add_self_loops=False)
    model = torch.nn.ModuleList([first, second])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.005)
    edge_index = random_graph(NUM_NODES, NUM_EDGES)
    x = torch.randn(NUM_NODES, IN_CHANNELS)
    y = torch.randint(0, NUM_CLASSES, (NUM_NODES,))
    before = resident_bytes()
    start = time.perf_counter()
    optimizer.zero_grad()
    hidden = F.elu(model[0](x, edge_index))
    loss = F.cross_entropy(model[1](hidden, edge_index), y)
    loss.backward()
    optimizer.step()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return {"layer": name, "step_s": seconds, "peak_GB": (peak - before) / 2**30, "process_peak_GB": peak / 2**30}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layer", help="one layer (runs in this process); default: all, each in a subprocess")
    args = parser.parse_args()
    if args.layer:
        print(json.dumps(one_step(args.layer)), flush=True)
        return
    for name in LAYERS:
        command = [sys.executable, "-m", "benchmarks.training_step", "--layer", name]
        result = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
        print(
            f"{name:<22} step {result['step_s']:6.1f} s  peak above start {result['peak_GB']:5.2f} GB  "
            f"(process {result['process_peak_GB']:5.2f} GB)",
            flush=True,
        )


if __name__ == "__main__":
    main()
