"""The squared-distance kernel of L2 and metric attention: expansion where it is safe, direct elsewhere."""

from __future__ import annotations

import pytest
import torch

from tests.layer_cases import random_graph
from tg_metricattn.layers.csr_graph import build_csr_graph
from tg_metricattn.layers.score_terms import edge_scores, squared_distance_terms
from tg_metricattn.layers.sparse_kernels import (
    EXPANSION_BITS_LOST,
    edge_squared_distance,
    edge_squared_distance_sampled,
)

WIDTH = 8


def _points(centre: float, spread: float, seed: int, dtype=torch.float32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (centre + spread * torch.randn(40, 2, WIDTH, generator=gen, dtype=torch.float64)).to(dtype)


def _edges(seed: int) -> torch.Tensor:
    """Random edges, every self-loop and a duplicated edge."""
    edge_index, _ = random_graph(40, 200, seed=seed)
    loops = torch.arange(40).repeat(2, 1)
    return torch.cat([edge_index, loops, torch.tensor([[3, 3], [8, 8]])], dim=1)


@pytest.mark.parametrize(("centre", "spread"), [(0.0, 1.0), (30.0, 1.0), (1e4, 1.0), (1.0, 1e-3)])
def test_float32_distances_are_within_the_stated_bound_of_the_exact_ones(centre: float, spread: float) -> None:
    """Relative error <= (D + 3) eps 2^bits against float64, wherever the points sit; self-loops exactly 0."""
    points = _points(centre, spread, seed=1)
    graph = build_csr_graph(_edges(seed=2), 40, 40)
    got = edge_squared_distance_sampled(points, points, graph).double()
    y = points.double()
    exact = (y[graph.target] - y[graph.source]).square().sum(-1)
    bound = (WIDTH + 3) * torch.finfo(torch.float32).eps * 2**EXPANSION_BITS_LOST
    loops = graph.source == graph.target
    assert torch.equal(got[loops], torch.zeros_like(got[loops]))
    assert ((got - exact).abs()[~loops] / exact[~loops]).max() < bound


def test_gradients_follow_the_formula_used_on_each_edge() -> None:
    """Float64 gradcheck through both formulas: near-duplicate points take the direct one."""
    points = _points(0.0, 1.0, seed=3, dtype=torch.float64)
    points[5] = points[7] + 1e-9  # an edge 7 -> 5 whose expansion would cancel
    edge_index = torch.cat([_edges(seed=4), torch.tensor([[7], [5]])], dim=1)
    graph = build_csr_graph(edge_index, 40, 40)
    points.requires_grad_()
    assert torch.autograd.gradcheck(lambda p: edge_squared_distance_sampled(p, p, graph), (points,))


def test_float32_gradients_match_the_direct_formula() -> None:
    points = _points(30.0, 1.0, seed=5).requires_grad_()
    graph = build_csr_graph(_edges(seed=6), 40, 40)
    weights = torch.randn(graph.source.numel(), 2, generator=torch.Generator().manual_seed(7))
    (edge_squared_distance_sampled(points, points, graph) * weights).sum().backward()
    reference = points.detach().double().requires_grad_()
    (edge_squared_distance(reference, reference, graph.source, graph.target) * weights.double()).sum().backward()
    error = (points.grad.double() - reference.grad).abs().max() / reference.grad.abs().max()
    assert error < 1e-4


def test_bipartite_points_use_both_sides() -> None:
    edge_index, gen = random_graph(9, 30, seed=8, num_targets=6)
    graph = build_csr_graph(edge_index, 9, 6)
    dst = torch.randn(6, 2, WIDTH, generator=gen, dtype=torch.float64)
    src = torch.randn(9, 2, WIDTH, generator=gen, dtype=torch.float64)
    exact = (dst[graph.target] - src[graph.source]).square().sum(-1)
    assert torch.allclose(edge_squared_distance_sampled(dst, src, graph), exact, rtol=1e-12, atol=0)


def test_scores_beyond_float32_are_taken_in_float64() -> None:
    """Float32 points 1e20 apart: their squared distance overflows float32, the score does not."""
    points = _points(0.0, 1e20, seed=9)
    graph = build_csr_graph(_edges(seed=10), 40, 40)
    scores = edge_scores(squared_distance_terms(points, points, 2.0), graph.source, graph.target, graph)
    y = points.double()
    exact = -(y[graph.target] - y[graph.source]).square().sum(-1) / 2.0
    assert scores.dtype == torch.float64 and torch.isfinite(scores).all()
    assert torch.allclose(scores, exact, rtol=1e-6)
