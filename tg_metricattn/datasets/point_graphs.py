"""Graphs over a set of points: the k nearest neighbours, or every pair (dense attention).

Edges point from source to target (PyG's ``[2, E]`` ``edge_index``, row 0 the sources):
in the kNN graph the k sources of target i are the k points nearest to x_i in Euclidean
distance (itself excluded; ties broken by index). In the complete graph every ordered pair
j != i is an edge; with the self-loop each attention layer adds, the edge-masked softmax
over it is exactly dense softmax attention over the set.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["MAX_COMPLETE_NODES", "complete_edge_index", "knn_edge_index"]

#: the most points of a complete graph (n(n-1) edges)
MAX_COMPLETE_NODES = 8192
_ROWS_PER_CHUNK = 1024


def knn_edge_index(x: Tensor, k: int) -> Tensor:
    """``[2, N k]`` edges j -> i from each point's k nearest other points (distances in chunks of rows)."""
    if x.dim() != 2:
        raise ValueError(f"x must be [N, F], got shape {tuple(x.shape)}.")
    n = x.size(0)
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}.")
    if k >= n:
        raise ValueError(f"k = {k} neighbours need more than {k} points, got {n}; lower k.")
    sources = []
    for start in range(0, n, _ROWS_PER_CHUNK):
        rows = x[start : start + _ROWS_PER_CHUNK]
        dist = torch.cdist(rows.double(), x.double())
        dist[torch.arange(rows.size(0)), torch.arange(start, start + rows.size(0))] = float("inf")
        # stable sort: equal distances keep index order
        sources.append(torch.sort(dist, dim=1, stable=True).indices[:, :k])
    source = torch.cat(sources).reshape(-1)
    target = torch.arange(n).repeat_interleave(k)
    return torch.stack([source, target])


def complete_edge_index(n: int) -> Tensor:
    """``[2, n(n-1)]`` every ordered pair j -> i with j != i (no self-loops)."""
    if not isinstance(n, int) or not 1 <= n <= MAX_COMPLETE_NODES:
        raise ValueError(f"a complete graph needs 1..{MAX_COMPLETE_NODES} points, got {n!r}.")
    source, target = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="xy")
    keep = source != target
    return torch.stack([source[keep], target[keep]])
