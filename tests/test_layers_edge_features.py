"""Edge features (``edge_dim``, ``fill_value``): SparseGATConv equals PyG's GATConv with edge features
(outputs, attention weights, state_dict both ways) for every fill value, head count, concat/mean and
bipartite input; the distance kinds add the same learned term to their score; gradients are right;
bad edge attributes are refused naming the argument; and no E x H x C tensor is saved."""

from __future__ import annotations

import re

import pytest
import torch
from torch_geometric.nn import GATConv, TransformerConv
from torch_geometric.utils import add_self_loops, remove_self_loops

from tests.layer_cases import random_graph
from tg_metricattn import DotAttnConv, L2AttnConv, MetricAttnConv, SparseGATConv, SparseGATv2Conv

FILL_VALUES = ["mean", "add", "max", "min", "mul", 0.5, torch.tensor([1.0, -2.0, 0.25])]


def _fill_id(value) -> str:
    return "tensor" if isinstance(value, torch.Tensor) else str(value)


def _inputs(num_nodes: int = 12, num_edges: int = 45, seed: int = 0):
    edge_index, gen = random_graph(num_nodes, num_edges, seed)
    x = torch.randn(num_nodes, 5, generator=gen, dtype=torch.float64)
    edge_attr = torch.randn(edge_index.size(1), 3, generator=gen, dtype=torch.float64)
    return x, edge_index, edge_attr


@pytest.mark.parametrize("fill_value", FILL_VALUES, ids=_fill_id)
@pytest.mark.parametrize(("heads", "concat"), [(1, True), (3, True), (3, False)])
@pytest.mark.parametrize("propagation", ["csr", "scatter"])
def test_gat_with_edge_features_is_pyg_gatconv(fill_value, heads, concat, propagation):
    x, edge_index, edge_attr = _inputs()
    edge_index = torch.cat([edge_index, torch.tensor([[4], [4]])], 1)  # an existing self-loop is replaced
    edge_attr = torch.cat([edge_attr, torch.randn(1, 3, dtype=torch.float64)])
    kwargs = {"heads": heads, "concat": concat, "edge_dim": 3, "fill_value": fill_value}
    ours = SparseGATConv(5, 4, propagation=propagation, **kwargs).double()
    pyg = GATConv(5, 4, **kwargs).double()
    pyg.load_state_dict(ours.state_dict())
    out, (used, alpha) = ours(x, edge_index, edge_attr, return_attention_weights=True)
    expected, (pyg_used, pyg_alpha) = pyg(x, edge_index, edge_attr, return_attention_weights=True)
    assert torch.equal(used, pyg_used)
    assert torch.allclose(out, expected, atol=1e-12) and torch.allclose(alpha, pyg_alpha, atol=1e-12)
    # and the other way: PyG's parameters in our layer
    pyg.reset_parameters()
    ours.load_state_dict(pyg.state_dict())
    assert torch.allclose(ours(x, edge_index, edge_attr), pyg(x, edge_index, edge_attr), atol=1e-12)


@pytest.mark.parametrize("add_loops", [True, False])
def test_gat_with_edge_features_bipartite_and_without_loops(add_loops):
    edge_index, gen = random_graph(9, 30, seed=3, num_targets=5)
    x_src = torch.randn(9, 5, generator=gen, dtype=torch.float64)
    x_dst = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    edge_attr = torch.randn(30, 2, generator=gen, dtype=torch.float64)
    kwargs = {"heads": 2, "edge_dim": 2, "add_self_loops": add_loops}
    ours = SparseGATConv((5, 4), 3, **kwargs).double()
    pyg = GATConv((5, 4), 3, **kwargs).double()
    pyg.load_state_dict(ours.state_dict())
    assert torch.allclose(ours((x_src, x_dst), edge_index, edge_attr), pyg((x_src, x_dst), edge_index, edge_attr))
    one_feature = SparseGATConv(5, 3, edge_dim=1).double()  # [E] is one feature per edge, as in PyG
    x, edge_index, _ = _inputs()
    flat = torch.randn(edge_index.size(1), dtype=torch.float64)
    assert torch.allclose(one_feature(x, edge_index, flat), one_feature(x, edge_index, flat[:, None]))


@pytest.mark.parametrize("cls", [L2AttnConv, MetricAttnConv])
def test_distance_kinds_add_the_learned_edge_term_to_their_score(cls):
    """s_ij = -‖f(x_i) - f(x_j)‖² / t + a_e . W_e e_ij: the scores with features minus those with zero
    features (whose loops get mean 0) are e_ij . (W_e^T a_e) on every edge, loops with their fill."""
    x, edge_index, edge_attr = _inputs(seed=5)
    layer = cls(5, 4, heads=2, edge_dim=3, propagation="scatter").double()
    seen = []
    activation = layer.score_activation
    layer.score_activation = lambda s: seen.append(activation(s)) or seen[-1]
    layer(x, edge_index, edge_attr)
    layer(x, edge_index, torch.zeros_like(edge_attr))
    loops_removed, kept = remove_self_loops(edge_index, edge_attr)
    _, with_loops = add_self_loops(loops_removed, kept, fill_value="mean", num_nodes=12)
    embedded = layer.lin_edge(with_loops).view(-1, 2, 4)
    expected = (embedded * layer.att_edge).sum(-1)
    assert torch.allclose(seen[0] - seen[1], expected, atol=1e-10)


def test_gradients_through_edge_features():
    x, edge_index, edge_attr = _inputs(num_nodes=7, num_edges=18, seed=2)
    layer = SparseGATConv(5, 2, heads=2, edge_dim=3, propagation="csr").double()
    edge_attr.requires_grad_(True)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: layer(a, edge_index, b), (x, edge_attr))
    metric = MetricAttnConv(5, 2, heads=2, edge_dim=3, fill_value="max").double()
    assert torch.autograd.gradcheck(lambda a, b: metric(a, edge_index, b), (x, edge_attr))
    layer(x, edge_index, edge_attr).sum().backward()
    assert layer.lin_edge.weight.grad.abs().sum() > 0 and layer.att_edge.grad.abs().sum() > 0


@pytest.mark.parametrize("cls", [SparseGATConv, DotAttnConv, SparseGATv2Conv])
def test_the_edge_term_keeps_no_edge_by_channel_tensor(cls):
    """Neither E x H x C nor E x H x edge_dim is saved for backward (edge_dim = C here)."""
    n, heads, channels = 50, 4, 16
    edge_index, gen = random_graph(n, 30 * n, seed=8)
    x = torch.randn(n, 8, generator=gen)
    edge_attr = torch.randn(edge_index.size(1), channels, generator=gen)
    layer = cls(8, channels, heads=heads, edge_dim=channels, propagation="csr")
    sizes: list[int] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: sizes.append(t.numel()) or t, lambda t: t):
        layer(x, edge_index, edge_attr).sum().backward()
    edges = edge_index.size(1) + n
    assert max(sizes) < edges * heads * channels / 2  # PyG's lin_edge(edge_attr) alone is E x H x C


def test_the_edge_feature_kernels_equal_their_formulas_in_any_chunks(monkeypatch):
    """s[e, h] = <n[t_e, h], a_e> and out[i, h] = sum_e w[e, h] a_e, with gradients, whole and in chunks."""
    from tg_metricattn.layers import sparse_kernels

    gen = torch.Generator().manual_seed(9)
    target = torch.randint(0, 6, (25,), generator=gen)
    nodes = torch.randn(6, 3, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    attr = torch.randn(25, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    weights = torch.rand(25, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    dot = (nodes[target] * attr.unsqueeze(1)).sum(-1)
    summed = torch.zeros(6, 3, 4, dtype=torch.float64).index_add(0, target, weights.unsqueeze(-1) * attr.unsqueeze(1))
    for chunk in (1 << 22, 5):
        monkeypatch.setattr(sparse_kernels, "_EDGE_CHUNK_FLOATS", chunk)
        assert torch.allclose(sparse_kernels.edge_feature_dot(nodes, attr, target), dot, atol=1e-12)
        assert torch.allclose(sparse_kernels.edge_feature_sum(weights, attr, target, 6), summed, atol=1e-12)
        assert torch.autograd.gradcheck(lambda n, a: sparse_kernels.edge_feature_dot(n, a, target), (nodes, attr))
        assert torch.autograd.gradcheck(lambda w, a: sparse_kernels.edge_feature_sum(w, a, target, 6), (weights, attr))


@pytest.mark.parametrize(
    ("build", "call", "error", "message"),
    [
        ({}, {"edge_attr": "ok"}, ValueError, "was built without edge_dim; build it with edge_dim=3"),
        ({"edge_dim": 3}, {"edge_attr": "short"}, ValueError, "edge_attr has 44 rows but edge_index has 45 edges"),
        ({"edge_dim": 2}, {"edge_attr": "ok"}, ValueError, "3 features per edge but the layer's edge_dim is 2"),
        ({"edge_dim": 3}, {"edge_attr": "int"}, TypeError, "edge_attr must be a floating-point tensor"),
        ({"edge_dim": 3, "check_finite": True}, {"edge_attr": "nan"}, ValueError, "in 1 rows (first: edge 7)"),
        ({"edge_dim": 3}, {"edge_attr": "ok", "sparse": True}, ValueError, "edge_attr goes with an edge_index [2, E]"),
    ],
)  # fmt: skip
def test_bad_edge_attributes_are_named(build, call, error, message):
    x, edge_index, edge_attr = _inputs()
    variants = {
        "ok": edge_attr,
        "short": edge_attr[:-1],
        "int": edge_attr.long(),
        "nan": edge_attr.clone().index_fill_(0, torch.tensor([7]), float("nan")),
    }
    layer = SparseGATConv(5, 4, heads=2, **build).double()
    graph = edge_index
    if call.get("sparse"):
        graph = torch.sparse_coo_tensor(edge_index.flip(0), torch.ones(edge_index.size(1)), (12, 12))
    with pytest.raises(error, match=re.escape(message)):
        layer(x, graph, variants[call["edge_attr"]])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"edge_dim": 0}, "edge_dim must be a positive int or None"),
        ({"edge_dim": 3, "fill_value": "median"}, "fill_value must be one of ('mean', 'add', 'max', 'min', 'mul')"),
        ({"edge_dim": 3, "fill_value": torch.ones(2)}, "fill_value as a tensor must have edge_dim = 3 entries"),
        ({"edge_dim": 3, "fill_value": None}, "fill_value must be one of"),
    ],
)
def test_bad_edge_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        SparseGATConv(5, 4, **kwargs)


@pytest.mark.parametrize(("heads", "concat"), [(1, True), (3, True), (3, False)])
@pytest.mark.parametrize("propagation", ["csr", "scatter"])
def test_dot_with_edge_features_is_pyg_transformerconv(heads, concat, propagation):
    """Edge features added to keys and values, as TransformerConv (which adds no self-loops)."""
    x, edge_index, edge_attr = _inputs(seed=4)
    kwargs = {"heads": heads, "concat": concat, "edge_dim": 3}
    ours = DotAttnConv(5, 4, add_self_loops=False, propagation=propagation, **kwargs).double()
    pyg = TransformerConv(5, 4, **kwargs).double()
    pyg.load_state_dict(ours.state_dict())
    out, (_, alpha) = ours(x, edge_index, edge_attr, return_attention_weights=True)
    expected, (_, pyg_alpha) = pyg(x, edge_index, edge_attr, return_attention_weights=True)
    assert torch.allclose(out, expected, atol=1e-12) and torch.allclose(alpha, pyg_alpha, atol=1e-12)
    pyg.reset_parameters()
    ours.load_state_dict(pyg.state_dict())
    assert torch.allclose(ours(x, edge_index, edge_attr), pyg(x, edge_index, edge_attr), atol=1e-12)


@pytest.mark.parametrize("fill_value", FILL_VALUES, ids=_fill_id)
def test_dot_with_self_loops_is_transformerconv_on_the_looped_graph(fill_value):
    """With ``add_self_loops`` the loops get ``fill_value`` features: TransformerConv on the graph that
    PyG's remove_self_loops + add_self_loops make, with the same weights."""
    x, edge_index, edge_attr = _inputs(seed=6)
    ours = DotAttnConv(5, 4, heads=2, edge_dim=3, fill_value=fill_value).double()
    pyg = TransformerConv(5, 4, heads=2, edge_dim=3).double()
    pyg.load_state_dict(ours.state_dict())
    looped, looped_attr = add_self_loops(*remove_self_loops(edge_index, edge_attr), fill_value=fill_value, num_nodes=12)
    assert torch.allclose(ours(x, edge_index, edge_attr), pyg(x, looped, looped_attr), atol=1e-12)
    bipartite, gen = random_graph(9, 30, seed=3, num_targets=5)
    pair = (
        torch.randn(9, 5, generator=gen, dtype=torch.float64),
        torch.randn(5, 5, generator=gen, dtype=torch.float64),
    )
    attr = torch.randn(30, 3, generator=gen, dtype=torch.float64)
    no_loops = DotAttnConv(5, 4, heads=2, edge_dim=3, add_self_loops=False).double()
    pyg.load_state_dict(no_loops.state_dict())
    assert torch.allclose(no_loops(pair, bipartite, attr), pyg(pair, bipartite, attr), atol=1e-12)


def test_dot_gradients_through_edge_features():
    x, edge_index, edge_attr = _inputs(num_nodes=7, num_edges=18, seed=2)
    layer = DotAttnConv(5, 2, heads=2, edge_dim=3).double()
    x.requires_grad_(True)
    edge_attr.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: layer(a, edge_index, b), (x, edge_attr))


def test_the_repr_shows_the_edge_width():
    assert "edge_dim=3" in repr(SparseGATConv(5, 4, edge_dim=3))
    assert "att_edge" not in dict(DotAttnConv(5, 4, edge_dim=3).named_parameters())  # TransformerConv's names
