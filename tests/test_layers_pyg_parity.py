"""SparseGATConv equals PyG's GATConv, DotAttnConv equals PyG's TransformerConv."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import GATConv, TransformerConv
from torch_geometric.utils import to_torch_coo_tensor, to_torch_csr_tensor

from tests.layer_cases import random_graph
from tg_metricattn import DotAttnConv, L2AttnConv, MetricAttnConv, SparseGATConv

TOL = 1e-9


def _same_keys(ours: torch.nn.Module, theirs: torch.nn.Module) -> None:
    a, b = ours.state_dict(), theirs.state_dict()
    assert list(a) == list(b)
    assert all(a[k].shape == b[k].shape for k in a)


def _assert_same_layer(ours, theirs, x: torch.Tensor, edge_index: torch.Tensor) -> None:
    """Same keys; after loading our weights into theirs, same edges, outputs and weights."""
    _same_keys(ours, theirs)
    theirs.load_state_dict(ours.state_dict())
    out, (ei, alpha) = ours(x, edge_index, return_attention_weights=True)
    ref, (ref_ei, ref_alpha) = theirs(x, edge_index, return_attention_weights=True)
    assert torch.equal(ei, ref_ei)
    assert (out - ref).abs().max() < TOL
    assert (alpha - ref_alpha).abs().max() < TOL


@pytest.mark.parametrize("heads", [1, 3])
@pytest.mark.parametrize("concat", [True, False])
@pytest.mark.parametrize("self_loops", [True, False])
@pytest.mark.parametrize("residual", [True, False])
def test_sparse_gat_equals_gatconv(heads: int, concat: bool, self_loops: bool, residual: bool) -> None:
    edge_index, gen = random_graph(12, 40, seed=heads)
    edge_index = torch.cat([edge_index, torch.tensor([[4, 5], [4, 5]])], dim=1)  # self-loops
    x = torch.randn(12, 5, generator=gen, dtype=torch.float64)
    kwargs = dict(heads=heads, concat=concat, add_self_loops=self_loops, residual=residual)
    ours = SparseGATConv(5, 4, **kwargs).double()
    theirs = GATConv(5, 4, **kwargs).double()
    torch.nn.init.normal_(ours.bias)  # a non-zero bias is part of the check
    _assert_same_layer(ours, theirs, x, edge_index)


@pytest.mark.parametrize("heads", [1, 2])
def test_sparse_gat_bipartite_with_size(heads: int) -> None:
    edge_index, gen = random_graph(9, 20, seed=3, num_targets=5)
    x_src = torch.randn(9, 6, generator=gen, dtype=torch.float64)
    x_dst = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    ours = SparseGATConv((6, 3), 4, heads=heads, residual=True).double()
    theirs = GATConv((6, 3), 4, heads=heads, residual=True).double()
    _same_keys(ours, theirs)
    theirs.load_state_dict(ours.state_dict())
    out = ours((x_src, x_dst), edge_index, size=(9, 5))
    ref = theirs((x_src, x_dst), edge_index, size=(9, 5))
    assert out.shape == (5, heads * 4)
    assert (out - ref).abs().max() < TOL


def test_sparse_gat_neighbor_loader_style_input() -> None:
    """Mini-batch form: targets are the first rows of the sources, shared weights."""
    edge_index, gen = random_graph(10, 30, seed=5, num_targets=4)
    x = torch.randn(10, 6, generator=gen, dtype=torch.float64)
    ours = SparseGATConv(6, 3, heads=2).double()
    theirs = GATConv(6, 3, heads=2).double()
    theirs.load_state_dict(ours.state_dict())
    out = ours((x, x[:4]), edge_index, size=(10, 4))
    assert (out - theirs((x, x[:4]), edge_index, size=(10, 4))).abs().max() < TOL


@pytest.mark.parametrize("layout", ["coo", "csr"])
@pytest.mark.parametrize("self_loops", [True, False])
def test_sparse_gat_sparse_adjacency(layout: str, self_loops: bool) -> None:
    edge_index, gen = random_graph(11, 35, seed=7)
    x = torch.randn(11, 4, generator=gen, dtype=torch.float64)
    convert = to_torch_coo_tensor if layout == "coo" else to_torch_csr_tensor
    adj_t = convert(edge_index.flip(0), size=(11, 11))
    ours = SparseGATConv(4, 3, heads=2, add_self_loops=self_loops).double()
    theirs = GATConv(4, 3, heads=2, add_self_loops=self_loops).double()
    theirs.load_state_dict(ours.state_dict())
    out, (adj, alpha) = ours(x, adj_t, return_attention_weights=True)
    ref, (ref_adj, ref_alpha) = theirs(x, adj_t, return_attention_weights=True)
    assert (out - ref).abs().max() < TOL
    assert (out - ours(x, edge_index)).abs().max() < TOL  # same as the edge-index form
    assert adj.layout == ref_adj.layout
    assert (adj.to_dense() - ref_adj.to_dense()).abs().max() < TOL
    assert alpha.shape == ref_alpha.shape


@pytest.mark.parametrize("heads", [1, 4])
@pytest.mark.parametrize("concat", [True, False])
@pytest.mark.parametrize("root_weight", [True, False])
def test_dot_attention_equals_transformerconv(heads: int, concat: bool, root_weight: bool) -> None:
    edge_index, gen = random_graph(10, 35, seed=heads + 10)
    x = torch.randn(10, 7, generator=gen, dtype=torch.float64)
    kwargs = dict(heads=heads, concat=concat, root_weight=root_weight)
    ours = DotAttnConv(7, 5, add_self_loops=False, **kwargs).double()
    theirs = TransformerConv(7, 5, **kwargs).double()
    _assert_same_layer(ours, theirs, x, edge_index)


def test_dot_attention_bipartite_and_sparse() -> None:
    edge_index, gen = random_graph(8, 20, seed=2, num_targets=6)
    x_src = torch.randn(8, 5, generator=gen, dtype=torch.float64)
    x_dst = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    ours = DotAttnConv((5, 3), 4, heads=2, add_self_loops=False).double()
    theirs = TransformerConv((5, 3), 4, heads=2).double()
    theirs.load_state_dict(ours.state_dict())
    ref = theirs((x_src, x_dst), edge_index)
    assert (ours((x_src, x_dst), edge_index, size=(8, 6)) - ref).abs().max() < TOL
    adj_t = to_torch_csr_tensor(edge_index.flip(0), size=(6, 8))
    assert (ours((x_src, x_dst), adj_t) - ref).abs().max() < TOL


def test_reverse_load_from_pyg_checkpoints() -> None:
    """Checkpoints of PyG's layers load into ours (drop-in in both directions)."""
    gat, trf = GATConv(4, 3, heads=2), TransformerConv(4, 3, heads=2)
    ours_gat, ours_dot = SparseGATConv(4, 3, heads=2), DotAttnConv(4, 3, heads=2, add_self_loops=False)
    ours_gat.load_state_dict(gat.state_dict())
    ours_dot.load_state_dict(trf.state_dict())
    x, edge_index = torch.randn(6, 4), torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]])
    assert torch.allclose(ours_gat(x, edge_index), gat(x, edge_index), atol=1e-6)
    assert torch.allclose(ours_dot(x, edge_index), trf(x, edge_index), atol=1e-6)


def test_repr_matches_pyg_style() -> None:
    assert repr(SparseGATConv(16, 8, heads=4)) == repr(GATConv(16, 8, heads=4)).replace("GAT", "SparseGAT")
    assert repr(DotAttnConv((16, 4), 8, heads=2)) == "DotAttnConv((16, 4), 8, heads=2)"


def test_repr_shows_the_settings_that_differ_from_the_defaults() -> None:
    assert repr(SparseGATConv(4, 2, heads=2, negative_slope=0.1, residual=True)) == (
        "SparseGATConv(4, 2, heads=2, residual=True, negative_slope=0.1)"
    )
    assert repr(DotAttnConv(4, 2, root_weight=False, concat=False)) == (
        "DotAttnConv(4, 2, heads=1, concat=False, root_weight=False)"
    )
    assert repr(L2AttnConv(4, 2, propagation="scatter")) == "L2AttnConv(4, 2, heads=1, propagation='scatter')"
    metric = MetricAttnConv(4, 2, heads=3, metric_channels=5, hidden_channels=7, time_scale="auto")
    assert repr(metric) == "MetricAttnConv(4, 2, heads=3, metric_channels=5, hidden_channels=7, time_scale='auto')"
    assert repr(MetricAttnConv(4, 2, time_scale=0.5, learn_time_scale=False)) == (
        "MetricAttnConv(4, 2, heads=1, time_scale=0.5, learn_time_scale=False)"
    )


@pytest.mark.parametrize("slope", [0.0, 0.05, 0.7])
def test_sparse_gat_negative_slope_equals_gatconv(slope: float) -> None:
    edge_index, gen = random_graph(12, 40, seed=11)
    x = torch.randn(12, 5, generator=gen, dtype=torch.float64) * 3.0  # many negative scores
    ours = SparseGATConv(5, 4, heads=2, negative_slope=slope).double()
    theirs = GATConv(5, 4, heads=2, negative_slope=slope).double()
    _assert_same_layer(ours, theirs, x, edge_index)
    default = SparseGATConv(5, 4, heads=2).double()
    default.load_state_dict(ours.state_dict())
    assert (default(x, edge_index) - ours(x, edge_index)).abs().max() > 1e-6  # the slope matters here
