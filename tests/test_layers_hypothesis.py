"""Property-based tests: random graphs with self-loops, duplicate edges, isolated nodes,
empty edge sets and single nodes never break the layers' guarantees."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tg_metricattn import DotAttnConv, L2AttnConv, MetricAttnConv, SparseGATConv

CLASSES = {"gat": SparseGATConv, "dot": DotAttnConv, "l2": L2AttnConv, "metric": MetricAttnConv}


@st.composite
def graphs(draw):
    """(num_nodes, edge_index) with any mix of loops, duplicates and isolated nodes."""
    num_nodes = draw(st.integers(min_value=1, max_value=12))
    pairs = draw(
        st.lists(
            st.tuples(st.integers(0, num_nodes - 1), st.integers(0, num_nodes - 1)),
            min_size=0,
            max_size=40,
        )
    )
    edge_index = torch.tensor(pairs, dtype=torch.long).view(-1, 2).t().contiguous()
    return num_nodes, edge_index


def _run(kind: str, num_nodes: int, edge_index: torch.Tensor, self_loops: bool, propagation: str, seed: int):
    torch.manual_seed(seed)
    layer = CLASSES[kind](3, 2, heads=2, add_self_loops=self_loops, propagation=propagation).double()
    x = torch.randn(num_nodes, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    return layer, x, layer(x, edge_index, return_attention_weights=True)


@pytest.mark.parametrize("kind", sorted(CLASSES))
@settings(max_examples=25, deadline=None)
@given(graph=graphs(), self_loops=st.booleans(), propagation=st.sampled_from(["csr", "scatter"]))
def test_finite_outputs_and_normalised_weights(kind, graph, self_loops, propagation) -> None:
    num_nodes, edge_index = graph
    _, _, (out, (used, alpha)) = _run(kind, num_nodes, edge_index, self_loops, propagation, seed=0)
    assert out.shape == (num_nodes, 4)
    assert torch.isfinite(out).all() and torch.isfinite(alpha).all()
    assert alpha.shape == (used.size(1), 2)
    sums = torch.zeros(num_nodes, 2, dtype=alpha.dtype).index_add_(0, used[1], alpha)
    receives = torch.zeros(num_nodes, dtype=torch.bool)
    receives[used[1]] = True
    assert torch.allclose(sums[receives], torch.ones_like(sums[receives]))
    assert (sums[~receives] == 0).all()


@pytest.mark.parametrize("kind", sorted(CLASSES))
@settings(max_examples=20, deadline=None)
@given(graph=graphs(), seed=st.integers(0, 2**16))
def test_permutation_equivariance(kind, graph, seed) -> None:
    num_nodes, edge_index = graph
    layer, x, (out, _) = _run(kind, num_nodes, edge_index, True, "csr", seed=0)
    perm = torch.randperm(num_nodes, generator=torch.Generator().manual_seed(seed))
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(num_nodes)
    permuted = layer(x[perm], inverse[edge_index])
    assert torch.allclose(permuted, out[perm], atol=1e-10)


@pytest.mark.parametrize("kind", sorted(CLASSES))
def test_large_features_under_bfloat16_autocast(kind) -> None:
    edge_index = torch.randint(0, 30, (2, 120), generator=torch.Generator().manual_seed(0))
    x = torch.randn(30, 3, generator=torch.Generator().manual_seed(1)) * 1e4
    layer = CLASSES[kind](3, 2, heads=2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x, edge_index)
    assert torch.isfinite(out).all()
