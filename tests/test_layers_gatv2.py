"""SparseGATv2Conv: the GATv2 score on the shared propagation equals PyG's GATv2Conv (outputs, attention
weights, state_dict both ways) with and without edge features, shared weights, residual, bipartite
input; the chunked score kernel has the right gradients and keeps no E x H x C tensor."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import GATv2Conv

from tests.layer_cases import random_graph
from tg_metricattn import SparseGATv2Conv
from tg_metricattn.layers import sparse_kernels
from tg_metricattn.layers.sparse_kernels import edge_additive_score
from tg_metricattn.models import LAYERS

SETTINGS = [
    {},
    {"heads": 3, "concat": False},
    {"heads": 3, "edge_dim": 3},
    {"heads": 2, "edge_dim": 3, "fill_value": "max", "share_weights": True},
    {"heads": 2, "edge_dim": 3, "fill_value": 0.5, "residual": True, "negative_slope": 0.1},
    {"heads": 2, "edge_dim": 3, "add_self_loops": False, "bias": False},
]


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()) or "plain")
@pytest.mark.parametrize("propagation", ["csr", "scatter"])
def test_sparse_gatv2_is_pyg_gatv2conv(settings, propagation):
    edge_index, gen = random_graph(12, 45, seed=1)
    x = torch.randn(12, 5, generator=gen, dtype=torch.float64)
    edge_attr = torch.randn(45, 3, generator=gen, dtype=torch.float64) if "edge_dim" in settings else None
    ours = SparseGATv2Conv(5, 4, propagation=propagation, **settings).double()
    pyg = GATv2Conv(5, 4, **settings).double()
    pyg.load_state_dict(ours.state_dict())
    out, (used, alpha) = ours(x, edge_index, edge_attr, return_attention_weights=True)
    expected, (pyg_used, pyg_alpha) = pyg(x, edge_index, edge_attr, return_attention_weights=True)
    assert torch.equal(used, pyg_used)
    assert torch.allclose(out, expected, atol=1e-12) and torch.allclose(alpha, pyg_alpha, atol=1e-12)
    pyg.reset_parameters()
    ours.load_state_dict(pyg.state_dict())
    assert torch.allclose(ours(x, edge_index, edge_attr), pyg(x, edge_index, edge_attr), atol=1e-12)


@pytest.mark.parametrize("fill_value", ["mean", "add", "max", "min", "mul", -1.5, torch.tensor([1.0, 0.0, 2.0])])
def test_every_fill_value(fill_value):
    edge_index, gen = random_graph(10, 35, seed=7)
    x = torch.randn(10, 5, generator=gen, dtype=torch.float64)
    edge_attr = torch.randn(35, 3, generator=gen, dtype=torch.float64)
    ours = SparseGATv2Conv(5, 4, heads=2, edge_dim=3, fill_value=fill_value).double()
    pyg = GATv2Conv(5, 4, heads=2, edge_dim=3, fill_value=fill_value).double()
    pyg.load_state_dict(ours.state_dict())
    assert torch.allclose(ours(x, edge_index, edge_attr), pyg(x, edge_index, edge_attr), atol=1e-12)


def test_bipartite_input():
    edge_index, gen = random_graph(9, 30, seed=3, num_targets=5)
    pair = (
        torch.randn(9, 5, generator=gen, dtype=torch.float64),
        torch.randn(5, 4, generator=gen, dtype=torch.float64),
    )
    edge_attr = torch.randn(30, 2, generator=gen, dtype=torch.float64)
    ours = SparseGATv2Conv((5, 4), 3, heads=2, edge_dim=2).double()
    pyg = GATv2Conv((5, 4), 3, heads=2, edge_dim=2).double()
    pyg.load_state_dict(ours.state_dict())
    assert torch.allclose(ours(pair, edge_index, edge_attr), pyg(pair, edge_index, edge_attr), atol=1e-12)


def test_the_score_kernel_gradients_in_small_chunks(monkeypatch):
    """gradcheck of every input, with chunks of 3 edges so that the chunk boundaries are crossed."""
    monkeypatch.setattr(sparse_kernels, "_EDGE_CHUNK_FLOATS", 3 * 2 * 4)
    gen = torch.Generator().manual_seed(0)
    edge_index, _ = random_graph(6, 14, seed=2)
    source, target = edge_index
    dst, src = (torch.randn(6, 2, 4, generator=gen, dtype=torch.float64, requires_grad=True) for _ in range(2))
    att = torch.randn(2, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    attr = torch.randn(14, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(8, 3, generator=gen, dtype=torch.float64, requires_grad=True)

    def score(d, s, a, e, w):
        return edge_additive_score(d, s, a, source, target, 0.2, e, w)

    assert torch.autograd.gradcheck(score, (dst, src, att, attr, weight))
    assert torch.autograd.gradcheck(lambda d, s, a: edge_additive_score(d, s, a, source, target, 0.3), (dst, src, att))
    z = dst[target] + src[source] + (attr @ weight.t()).view(14, 2, 4)
    expected = (torch.nn.functional.leaky_relu(z, 0.2) * att).sum(-1)
    assert torch.allclose(score(dst, src, att, attr, weight), expected, atol=1e-12)


def test_no_edge_by_channel_tensor_is_saved():
    n, heads, channels = 50, 4, 16
    edge_index, gen = random_graph(n, 30 * n, seed=8)
    x = torch.randn(n, 8, generator=gen)
    edge_attr = torch.randn(edge_index.size(1), 3, generator=gen)
    layer = SparseGATv2Conv(8, channels, heads=heads, edge_dim=3)
    sizes: list[int] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: sizes.append(t.numel()) or t, lambda t: t):
        layer(x, edge_index, edge_attr).sum().backward()
    assert max(sizes) < (edge_index.size(1) + n) * heads * channels / 2  # PyG's GATv2Conv keeps E x H x C


def test_registered_as_a_kind_and_shown():
    assert LAYERS["gatv2"] is SparseGATv2Conv
    assert (
        repr(SparseGATv2Conv(5, 4, heads=2, share_weights=True)) == "SparseGATv2Conv(5, 4, heads=2, share_weights=True)"
    )
