"""torch.compile of every layer: one graph (``fullgraph=True``) on the sparse-kernel path, equal to eager mode.

The CSR kernels are torch custom ops (``tg_metricattn::spmm``, ``::sddmm``,
``::replace_cancelled``): inductor keeps them whole, with the sorting and the softmax traced
around them. The input's self-loops stay in the compiled pattern at weight 0 (no
data-dependent edge count), so the graphs here hold self-loops and a repeated edge.
"""

from __future__ import annotations

import pytest
import torch
from torch.library import opcheck

from tests.layer_cases import random_graph
from tg_metricattn import DotAttnConv, L2AttnConv, MetricAttnConv, SparseGATConv, SparseGATv2Conv
from tg_metricattn.layers import sparse_kernels
from tg_metricattn.layers.compiled_graph import prepare_csr_graph
from tg_metricattn.layers.csr_graph import build_csr_graph
from tg_metricattn.layers.graph_cache import GRAPH_CACHE
from tg_metricattn.layers.sparse_gat_conv import edge_leaky_relu

KINDS = [SparseGATConv, DotAttnConv, L2AttnConv, MetricAttnConv, SparseGATv2Conv]


def _graph_with_loops_and_a_repeat(seed: int) -> tuple[torch.Tensor, torch.Generator]:
    edge_index, gen = random_graph(40, 160, seed=seed)
    extra = torch.tensor([[3, 5, 7, 7], [3, 5, 9, 9]])  # two self-loops, one edge given twice
    return torch.cat([edge_index, extra], dim=1), gen


class _OpRecorder:
    """A compile backend that notes the ops of every graph it gets, then runs inductor."""

    def __init__(self) -> None:
        self.targets: set[str] = set()

    def __call__(self, gm: torch.fx.GraphModule, example_inputs):
        for module in gm.modules():  # autograd.Functions are traced into subgraphs
            if isinstance(module, torch.fx.GraphModule):
                self.targets.update(str(n.target) for n in module.graph.nodes if n.op == "call_function")
        return torch._inductor.compile(gm, example_inputs)


@pytest.mark.parametrize("cls", KINDS)
@pytest.mark.parametrize("self_loops", [False, True])
def test_compile_fullgraph_matches_eager_forward_and_gradients(cls, self_loops: bool) -> None:
    torch._dynamo.reset()
    edge_index, gen = _graph_with_loops_and_a_repeat(seed=0)
    x = torch.randn(40, 6, generator=gen)
    layer = cls(6, 4, heads=2, add_self_loops=self_loops)
    recorder = _OpRecorder()
    compiled = torch.compile(layer, fullgraph=True, dynamic=False, backend=recorder)
    x_eager, x_compiled = x.clone().requires_grad_(), x.clone().requires_grad_()
    expected = layer(x_eager, edge_index)
    got = compiled(x_compiled, edge_index)
    assert torch.allclose(got, expected, atol=1e-5)
    weights = torch.randn(expected.shape, generator=gen)
    eager_grads = torch.autograd.grad((expected * weights).sum(), [x_eager, *layer.parameters()])
    compiled_grads = torch.autograd.grad((got * weights).sum(), [x_compiled, *layer.parameters()])
    for a, b in zip(eager_grads, compiled_grads, strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    assert any(t.startswith("tg_metricattn.spmm") for t in recorder.targets)  # sparse kernels, not PyG's scatter


@pytest.mark.parametrize("cls", [SparseGATConv, MetricAttnConv])
def test_compiled_attention_weights_are_eager_ones(cls) -> None:
    """The masked input loops are left out of the returned weights, as eager mode removes them."""
    torch._dynamo.reset()
    edge_index, gen = _graph_with_loops_and_a_repeat(seed=1)
    x = torch.randn(40, 6, generator=gen)
    layer = cls(6, 4, heads=2).eval()
    _, (eager_edges, eager_alpha) = layer(x, edge_index, return_attention_weights=True)
    _, (edges, alpha) = torch.compile(layer, dynamic=False)(x, edge_index, return_attention_weights=True)
    assert torch.equal(edges, eager_edges) and torch.allclose(alpha, eager_alpha, atol=1e-6)


def test_custom_ops_pass_opcheck() -> None:
    """Schemas, fake (meta) implementations, autograd registration and compile behaviour of the ops."""
    edge_index, gen = _graph_with_loops_and_a_repeat(seed=2)
    graph = build_csr_graph(edge_index, 40, 40)
    num_edges = graph.source.numel()
    weights = torch.rand(num_edges, 2, generator=gen)
    dense = torch.randn(40, 2, 3, generator=gen)
    opcheck(sparse_kernels.spmm, (weights, dense, graph.target_ptr, graph.source))
    opcheck(sparse_kernels.sddmm, (dense, dense, graph.target_ptr, graph.source, graph.target))
    points = torch.randn(40, 2, 3, generator=gen, requires_grad=True)
    norms = torch.rand(num_edges, 2, generator=gen) * 10
    expanded = torch.rand(num_edges, 2, generator=gen, requires_grad=True)
    opcheck(sparse_kernels.replace_cancelled, (expanded, norms, points, points, graph.source, graph.target))


@pytest.mark.parametrize("slope", [0.2, 0.0, -0.5])
def test_edge_leaky_relu_is_leaky_relu_with_its_gradient(slope: float) -> None:
    """GAT's score activation as an op: F.leaky_relu's values and gradient, for every sign of the slope (the
    gradient comes from the output for a positive slope, from the input otherwise)."""
    scores = torch.randn(50, 3, dtype=torch.float64, requires_grad=True)
    got = edge_leaky_relu(scores, slope)
    expected = torch.nn.functional.leaky_relu(scores, slope)
    assert torch.equal(got, expected)
    grad = torch.randn(50, 3, dtype=torch.float64)
    assert torch.equal(torch.autograd.grad(got, scores, grad)[0], torch.autograd.grad(expected, scores, grad)[0])
    assert torch.autograd.gradcheck(lambda s: edge_leaky_relu(s, slope), (scores,))
    opcheck(edge_leaky_relu, (scores, slope))


def test_compiled_gat_keeps_the_aten_leaky_relu() -> None:
    torch._dynamo.reset()
    edge_index, gen = _graph_with_loops_and_a_repeat(seed=4)
    recorder = _OpRecorder()
    layer = torch.compile(SparseGATConv(6, 4, heads=2), fullgraph=True, dynamic=False, backend=recorder)
    layer(torch.randn(40, 6, generator=gen, requires_grad=True), edge_index).sum().backward()
    assert "tg_metricattn.edge_leaky_relu.default" in recorder.targets


def test_sddmm_merges_repeated_entries() -> None:
    """The sampled product of a pattern with a repeated entry gives that entry's dot product twice."""
    edge_index, gen = _graph_with_loops_and_a_repeat(seed=3)
    graph = build_csr_graph(edge_index, 40, 40)
    left, right = torch.randn(40, 2, 3, generator=gen), torch.randn(40, 2, 3, generator=gen)
    got = sparse_kernels.sddmm(left, right, graph.target_ptr, graph.source, graph.target)
    assert torch.allclose(got, (left[graph.target] * right[graph.source]).sum(-1), atol=1e-6)


def test_compiled_layer_prepares_each_edge_index_once_and_checks_it() -> None:
    """The compiled graph is kept under the edge-index tensor (sorted once), and bad indices are refused."""
    torch._dynamo.reset()
    edge_index, gen = _graph_with_loops_and_a_repeat(seed=4)
    x = torch.randn(40, 6, generator=gen)
    compiled = torch.compile(SparseGATConv(6, 4, heads=2), fullgraph=True, dynamic=False)
    compiled(x, edge_index)
    key = (40, 40, True, "compiled")
    kept = GRAPH_CACHE.get(edge_index, key)
    assert kept is not None
    compiled(x, edge_index)
    assert GRAPH_CACHE.get(edge_index, key) is kept
    opcheck(prepare_csr_graph, (edge_index, 40, 40, True, False))
    bad = edge_index.clone()
    bad[0, 0] = 40
    with pytest.raises(ValueError, match="source indices"):
        compiled(x, bad)


def test_compile_with_dynamic_shapes_follows_graphs_of_every_size() -> None:
    """One compiled graph (``dynamic=True``) serves graphs of different node and edge counts."""
    torch._dynamo.reset()
    layer = MetricAttnConv(6, 4, heads=2)
    compiled = torch.compile(layer, fullgraph=True, dynamic=True)
    for num_nodes, num_edges in ((40, 160), (55, 230), (70, 300)):
        edge_index, gen = random_graph(num_nodes, num_edges, seed=num_nodes)
        x = torch.randn(num_nodes, 6, generator=gen)
        assert torch.allclose(compiled(x, edge_index), layer(x, edge_index), atol=1e-5)


def test_forced_csr_with_edge_features_keeps_them_when_compiled() -> None:
    """``propagation="csr"`` with edge features under compile takes the eager graph preparation (graph breaks),
    not the compiled one, which has no place for the features: the output equals eager mode's."""
    torch._dynamo.reset()
    edge_index, gen = _graph_with_loops_and_a_repeat(seed=5)
    x = torch.randn(40, 6, generator=gen)
    edge_attr = torch.randn(edge_index.size(1), 3, generator=gen)
    layer = SparseGATConv(6, 4, heads=2, edge_dim=3, propagation="csr").eval()
    expected = layer(x, edge_index, edge_attr)
    assert torch.allclose(torch.compile(layer, dynamic=False)(x, edge_index, edge_attr), expected, atol=1e-5)
