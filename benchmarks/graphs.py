"""The benchmark graphs: Cora-sized, random, and a triangulated grid mesh."""

from __future__ import annotations

import torch
from torch import Tensor


def random_graph(num_nodes: int, num_edges: int, seed: int = 0) -> Tensor:
    """Uniform random directed edges (duplicates possible, as in PyG's benchmarks)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, num_nodes, (2, num_edges), generator=gen)


def grid_mesh(side: int) -> tuple[int, Tensor]:
    """A side x side vertex grid cut into triangles; both directions of every mesh edge."""
    idx = torch.arange(side * side).view(side, side)
    right = torch.stack([idx[:, :-1].flatten(), idx[:, 1:].flatten()])
    down = torch.stack([idx[:-1, :].flatten(), idx[1:, :].flatten()])
    diagonal = torch.stack([idx[:-1, :-1].flatten(), idx[1:, 1:].flatten()])
    edges = torch.cat([right, down, diagonal], dim=1)
    return side * side, torch.cat([edges, edges.flip(0)], dim=1)


def benchmark_graphs(quick: bool) -> dict[str, tuple[int, Tensor]]:
    """Name -> (num_nodes, edge_index)."""
    graphs = {"cora-sized (2.7k/10.6k)": (2708, random_graph(2708, 10556))}
    if quick:
        graphs["grid mesh 30x30"] = grid_mesh(30)
        return graphs
    graphs["random 100k/1M"] = (100_000, random_graph(100_000, 1_000_000))
    graphs["grid mesh 300x300"] = grid_mesh(300)
    graphs["random 200k/4M"] = (200_000, random_graph(200_000, 4_000_000))
    return graphs
