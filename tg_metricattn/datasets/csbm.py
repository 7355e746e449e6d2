"""Contextual stochastic block model (CSBM): a synthetic node-classification graph.

Deshpande et al. 2018; the multi-class form used to study homophily (e.g. Ma et al.
2022). With ``C`` balanced classes:

- edges: each of ``num_nodes * avg_degree / 2`` undirected edges starts at a uniform
  random node ``i``; with probability ``homophily`` it ends at a uniform random node of
  the same class, otherwise at one of another class. The edge homophily of the graph is
  therefore about ``homophily`` (0: heterophilous, 1/C: random, 1: only intra-class
  edges). Self loops and repeated edges are dropped.
- features: ``x_i = μ_{y_i} + ε_i``, ``ε_i ~ N(0, I_d)``, with class means ``μ_c`` of norm
  ``feature_snr`` along random orthogonal directions (``feature_snr = 0``: no feature signal).

Both the edges and the features carry class signal, each tunable on its own.
"""

from __future__ import annotations

import torch
from torch_geometric.data import Data
from torch_geometric.utils import coalesce, remove_self_loops, to_undirected

from tg_metricattn.datasets.splits import random_per_class_split

__all__ = ["contextual_sbm", "edge_homophily"]


def edge_homophily(edge_index: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of edges whose two ends share a label."""
    if edge_index.size(1) == 0:
        return float("nan")
    return float((y[edge_index[0]] == y[edge_index[1]]).float().mean())


def contextual_sbm(
    num_nodes: int = 1000,
    num_classes: int = 2,
    avg_degree: float = 10.0,
    homophily: float = 0.8,
    num_features: int = 16,
    feature_snr: float = 1.0,
    seed: int = 0,
    train_per_class: int = 20,
    val_per_class: int = 30,
) -> Data:
    """Sample a CSBM graph (see the module docstring) with a per-class train/val/test split.

    Returns:
        ``Data(x [N, num_features], edge_index (undirected), y [N], train_mask, val_mask, test_mask)``;
        the split has ``train_per_class`` and ``val_per_class`` nodes per class, the rest test.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}.")
    if num_nodes < 2 * num_classes:
        raise ValueError(f"num_nodes must be at least 2 * num_classes = {2 * num_classes}, got {num_nodes}.")
    if not 0.0 <= homophily <= 1.0:
        raise ValueError(f"homophily is a probability in [0, 1], got {homophily}.")
    if avg_degree <= 0 or num_features < 1 or feature_snr < 0:
        raise ValueError(
            "avg_degree must be > 0, num_features >= 1 and feature_snr "
            f">= 0; got {avg_degree}, {num_features}, {feature_snr}."
        )
    g = torch.Generator().manual_seed(int(seed))
    y = torch.arange(num_nodes) % num_classes
    y = y[torch.randperm(num_nodes, generator=g)]
    members = [torch.nonzero(y == c).view(-1) for c in range(num_classes)]
    sizes = torch.tensor([m.numel() for m in members])
    num_edges = round(num_nodes * avg_degree / 2)
    src = torch.randint(num_nodes, (num_edges,), generator=g)
    same = torch.rand(num_edges, generator=g) < homophily
    # target class: own class, or a uniformly chosen other class
    shift = torch.randint(1, num_classes, (num_edges,), generator=g)
    dst_class = torch.where(same, y[src], (y[src] + shift) % num_classes)
    pick = (torch.rand(num_edges, generator=g) * sizes[dst_class]).long()
    offsets = torch.cumsum(torch.cat([torch.zeros(1, dtype=torch.long), sizes[:-1]]), 0)
    flat = torch.cat(members)
    dst = flat[offsets[dst_class] + pick]
    edge_index, _ = remove_self_loops(torch.stack([src, dst]))
    edge_index = coalesce(to_undirected(edge_index, num_nodes=num_nodes), num_nodes=num_nodes)
    if num_classes <= num_features:  # orthonormal class directions
        means = torch.linalg.qr(torch.randn(num_features, num_classes, generator=g))[0].T
    else:
        means = torch.randn(num_classes, num_features, generator=g)
    means = feature_snr * means / means.norm(dim=1, keepdim=True).clamp_min(1e-12)
    x = means[y] + torch.randn(num_nodes, num_features, generator=g)
    train, val, test = random_per_class_split(y, num_classes, train_per_class, val_per_class, seed=seed)
    return Data(x=x, edge_index=edge_index, y=y, train_mask=train, val_mask=val, test_mask=test)
