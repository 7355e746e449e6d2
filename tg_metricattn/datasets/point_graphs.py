"""Graphs over a set of points: the k nearest neighbours, or every pair (dense attention).

Edges point from source to target (PyG's ``[2, E]`` ``edge_index``, row 0 the sources):
in the kNN graph the k sources of target i are the k points nearest to x_i in Euclidean
distance (itself excluded). In the complete graph every ordered pair
j != i is an edge; with the self-loop each attention layer adds, the edge-masked softmax
over it is exactly dense softmax attention over the set.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor

__all__ = ["MAX_COMPLETE_NODES", "complete_edge_index", "knn_edge_index"]

#: the most points of a complete graph (n(n-1) edges)
MAX_COMPLETE_NODES = 8192


def knn_edge_index(points: Tensor | np.ndarray, k: int) -> Tensor:
    """``[2, N k]`` edges ``j -> i`` from each point's ``k`` nearest other points (``cKDTree``).

    (PyG's ``knn_graph`` needs torch-cluster.) A point is never its own neighbour, also
    when other points coincide with it.
    """
    points = np.asarray(torch.as_tensor(points).detach().cpu(), dtype=np.float64)
    if points.ndim != 2:
        raise ValueError(f"points must be [N, F], got shape {points.shape}.")
    n = points.shape[0]
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}.")
    if k >= n:
        raise ValueError(f"k = {k} neighbours need more than {k} points, got {n}; lower k.")
    _, idx = cKDTree(points).query(points, k=k + 1)
    keep = idx != np.arange(n)[:, None]
    keep[keep.all(axis=1), -1] = False  # self not among the k + 1 (duplicates): drop the farthest
    source = idx[keep].reshape(n, k).ravel()
    return torch.stack([torch.as_tensor(source, dtype=torch.long), torch.arange(n).repeat_interleave(k)])


def complete_edge_index(n: int) -> Tensor:
    """``[2, n(n-1)]`` every ordered pair j -> i with j != i (no self-loops)."""
    if not isinstance(n, int) or not 1 <= n <= MAX_COMPLETE_NODES:
        raise ValueError(f"a complete graph needs 1..{MAX_COMPLETE_NODES} points, got {n!r}.")
    source, target = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="xy")
    keep = source != target
    return torch.stack([source[keep], target[keep]])
