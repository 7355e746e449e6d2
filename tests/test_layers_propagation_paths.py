"""The sparse-kernel path ("csr") equals PyG's gather/scatter path ("scatter")."""

from __future__ import annotations

import gc

import pytest
import torch
from torch_geometric.nn import GATConv

from tests.layer_cases import random_graph
from tg_metricattn import DotAttnConv, L2AttnConv, MetricAttnConv, SparseGATConv
from tg_metricattn.layers.csr_graph import build_csr_graph
from tg_metricattn.layers.graph_cache import GRAPH_CACHE, GraphCache
from tg_metricattn.layers.sparse_kernels import aggregate, edge_dot

CLASSES = [SparseGATConv, DotAttnConv, L2AttnConv, MetricAttnConv]


def _graph_with_quirks(seed: int) -> torch.Tensor:
    """Random edges plus self-loops, a duplicate edge and two nodes without in-edges."""
    edge_index, _ = random_graph(20, 70, seed=seed)
    edge_index = edge_index[:, (edge_index[1] != 3) & (edge_index[1] != 11)]
    extra = torch.tensor([[5, 7, 2, 2], [5, 7, 9, 9]])
    return torch.cat([edge_index, extra], dim=1)


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("self_loops", [True, False])
def test_paths_agree_on_outputs_weights_and_gradients(cls, self_loops: bool) -> None:
    edge_index = _graph_with_quirks(seed=1)
    torch.manual_seed(0)
    csr = cls(6, 4, heads=3, add_self_loops=self_loops, propagation="csr").double()
    scatter = cls(6, 4, heads=3, add_self_loops=self_loops, propagation="scatter").double()
    scatter.load_state_dict(csr.state_dict())
    results = []
    for layer in (csr, scatter):
        x = torch.randn(20, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
        x.requires_grad_()
        out, (used, alpha) = layer(x, edge_index, return_attention_weights=True)
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
        grads = [x.grad] + [p.grad for p in layer.parameters()]
        results.append((out, used, alpha, grads))
    (out_a, used_a, alpha_a, grads_a), (out_b, used_b, alpha_b, grads_b) = results
    assert torch.equal(used_a, used_b)
    assert (out_a - out_b).abs().max() < 1e-12
    assert (alpha_a - alpha_b).abs().max() < 1e-12
    for ga, gb in zip(grads_a, grads_b, strict=True):
        assert (ga - gb).abs().max() < 1e-10


def test_scatter_path_also_equals_gatconv() -> None:
    edge_index = _graph_with_quirks(seed=2)
    x = torch.randn(20, 6, dtype=torch.float64)
    ours = SparseGATConv(6, 4, heads=2, propagation="scatter").double()
    theirs = GATConv(6, 4, heads=2).double()
    theirs.load_state_dict(ours.state_dict())
    assert (ours(x, edge_index) - theirs(x, edge_index)).abs().max() < 1e-9


def test_kernels_gradcheck_bipartite() -> None:
    edge_index, gen = random_graph(7, 18, seed=4, num_targets=5)
    graph = build_csr_graph(edge_index, 7, 5)
    weights = torch.rand(18, 2, dtype=torch.float64, generator=gen, requires_grad=True)
    values = torch.randn(7, 2, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    left = torch.randn(5, 2, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda w, v: aggregate(w, v, graph), (weights, values))
    assert torch.autograd.gradcheck(lambda a, b: edge_dot(a, b, graph), (left, values))


def test_unknown_propagation_is_rejected() -> None:
    with pytest.raises(ValueError, match="propagation must be one of"):
        SparseGATConv(4, 2, propagation="dense")


def test_bfloat16_falls_back_to_scatter() -> None:
    layer = MetricAttnConv(4, 2, heads=2).to(torch.bfloat16)
    x = torch.randn(6, 4, dtype=torch.bfloat16)
    out = layer(x, torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]]))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()
    assert not layer.uses_csr(x)


def test_graph_cache_reuses_only_the_same_unmodified_tensor() -> None:
    edge_index = _graph_with_quirks(seed=5)
    x = torch.randn(20, 6)
    layer = MetricAttnConv(6, 4, heads=2).eval()
    first = layer(x, edge_index)
    key = (20, 20, True)
    cached = GRAPH_CACHE.get(edge_index, key)
    assert cached is not None and torch.equal(layer(x, edge_index), first)
    assert GRAPH_CACHE.get(edge_index, key)[1] is cached[1]  # the sorted graph was reused
    other = MetricAttnConv(6, 4, heads=2).eval()
    other(x, edge_index)
    assert GRAPH_CACHE.get(edge_index, key)[1] is cached[1]  # ... by another layer too
    edge_index[1, 0] = (edge_index[1, 0] + 1) % 20  # in-place change: must not reuse
    changed = layer(x, edge_index)
    assert GRAPH_CACHE.get(edge_index, key)[1] is not cached[1]
    fresh = MetricAttnConv(6, 4, heads=2, cache_graph=False).eval()
    fresh.load_state_dict(layer.state_dict())
    assert torch.allclose(changed, fresh(x, edge_index.clone()))
    with pytest.raises(ValueError, match=r"size=.* does not match"):
        layer(x, edge_index, size=(20, 3))


def test_graph_cache_keeps_each_setting_of_one_tensor() -> None:
    """Layers preparing one edge index differently (with and without self-loops: a sep block beside a plain
    one; an eager and a compiled copy) each reuse their own graph instead of evicting the other's."""
    edge_index = _graph_with_quirks(seed=6)
    x = torch.randn(20, 6)
    with_loops, without = MetricAttnConv(6, 4, heads=2), MetricAttnConv(6, 4, heads=2, add_self_loops=False)
    with_loops(x, edge_index)
    without(x, edge_index)
    kept = GRAPH_CACHE.get(edge_index, (20, 20, True)), GRAPH_CACHE.get(edge_index, (20, 20, False))
    assert kept[0] is not None and kept[1] is not None and kept[0][1] is not kept[1][1]
    for _ in range(2):
        with_loops(x, edge_index)
        without(x, edge_index)
    assert GRAPH_CACHE.get(edge_index, (20, 20, True))[1] is kept[0][1]
    assert GRAPH_CACHE.get(edge_index, (20, 20, False))[1] is kept[1][1]
    edge_index[0, 0] = (edge_index[0, 0] + 1) % 20  # a modified tensor loses every setting
    assert GRAPH_CACHE.get(edge_index, (20, 20, True)) is None and GRAPH_CACHE.get(edge_index, (20, 20, False)) is None


def test_graph_cache_entries_live_with_their_tensor_and_within_capacity() -> None:
    cache = GraphCache(capacity=2)
    tensors = [torch.zeros(2, 3, dtype=torch.long) for _ in range(3)]
    for i, t in enumerate(tensors):
        cache.put(t, ("k",), i)
    assert len(cache) == 2 and cache.get(tensors[0], ("k",)) is None  # least recently used went first
    assert cache.get(tensors[2], ("k",)) == 2 and cache.get(tensors[2], ("other",)) is None
    del tensors[2], t  # the loop variable held it too
    gc.collect()
    assert len(cache) == 1  # freed with its tensor
    lookalike = tensors[1].clone()
    assert cache.get(lookalike, ("k",)) is None  # equal values, another tensor: not reused


def test_layers_pickle_without_their_cache() -> None:
    import pickle

    layer = SparseGATConv(6, 4)
    layer(torch.randn(5, 6), torch.tensor([[0, 1, 2], [1, 2, 3]]))
    clone = pickle.loads(pickle.dumps(layer))
    assert torch.equal(
        clone(torch.ones(5, 6), torch.tensor([[0], [1]])), layer(torch.ones(5, 6), torch.tensor([[0], [1]]))
    )
