"""Small random graphs and a dense reference propagation shared by the layer tests."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from tg_metricattn import MetricAttnConv


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


def circle_quantiles(n: int) -> Tensor:
    """Angles of the n quantiles of the density p(θ) = (1 + cos(θ)/2) / 2π on the unit circle (float64; Newton on
    F(θ) = (θ + sin(θ)/2) / 2π): samples of a known non-uniform density, (log p)' = -sin θ / (2 + cos θ)."""
    u = (torch.arange(n, dtype=torch.float64) + 0.5) / n * 2 * math.pi
    theta = u.clone()
    for _ in range(50):
        theta = theta - (theta + 0.5 * torch.sin(theta) - u) / (1 + 0.5 * torch.cos(theta))
    return theta


def circle_gaussian_layer(t: float, alpha: float) -> MetricAttnConv:
    """A float64 one-head metric-attention layer on points of the plane whose score is the fixed Gaussian kernel
    s_ij = -|x_i - x_j|² / t (f the identity), density-normalised with exponent ``alpha``."""
    conv = MetricAttnConv(
        2, 1, heads=1, metric_channels=2, time_scale=t, learn_time_scale=False, density_exponent=alpha
    ).double()
    with torch.no_grad():
        conv.embed_linear.weight.copy_(torch.eye(2))
        conv.embed_output.weight.zero_()
    return conv
