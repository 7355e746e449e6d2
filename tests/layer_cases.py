"""Small random graphs and a dense reference propagation shared by the layer tests."""

from __future__ import annotations

import torch
from torch import Tensor


def random_graph(num_nodes: int, num_edges: int, seed: int, num_targets: int | None = None) -> tuple[Tensor, Tensor]:
    """Random directed edges without duplicates; ``num_targets`` makes it bipartite."""
    gen = torch.Generator().manual_seed(seed)
    num_targets = num_nodes if num_targets is None else num_targets
    pairs = torch.randperm(num_nodes * num_targets, generator=gen)[:num_edges]
    return torch.stack([pairs // num_targets, pairs % num_targets]), gen


def dense_attention(scores: Tensor, mask: Tensor) -> Tensor:
    """Row softmax of a dense ``[H, N_dst, N_src]`` score matrix restricted to ``mask``.

    Rows without any allowed entry become zero, as an isolated node aggregates nothing.
    """
    masked = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(masked, dim=-1)
    return torch.nan_to_num(weights, nan=0.0)


def dense_mask(edge_index: Tensor, num_src: int, num_dst: int, self_loops: bool) -> Tensor:
    """Boolean ``[N_dst, N_src]`` adjacency (row = target) with optional diagonal loops."""
    mask = torch.zeros(num_dst, num_src, dtype=torch.bool)
    mask[edge_index[1], edge_index[0]] = True
    if self_loops:
        n = min(num_src, num_dst)
        mask[torch.arange(n), torch.arange(n)] = True
    return mask
