"""The C++ CPU kernels (``tg_metricattn/csrc``): built here, equal to the torch formulas, used by the layers.

Each kernel is checked against the torch path it replaces on CPU (which stays the path of
other devices and of machines without a compiler): the edge softmax against the scatter
formula, the CSR products against the per-head MKL products, the squared distance against
the float64 direct formula, GAT's per-node terms against the gathers; forward and
backward, float32 and float64, split between threads, and bad indices. A kernel that
reads past a row, mixes heads or drops an edge fails the equality tests; a layer that
stops calling it fails the profiler tests.
"""

from __future__ import annotations

import shutil

import pytest
import torch
import torch.utils.cpp_extension
from torch.library import opcheck

from tests.layer_cases import random_graph
from tg_metricattn import DotAttnConv, L2AttnConv, MetricAttnConv, SparseGATConv, SparseGATv2Conv
from tg_metricattn.layers import cpu_kernels, edge_softmax, sparse_kernels
from tg_metricattn.layers.csr_graph import build_csr_graph
from tg_metricattn.layers.edge_softmax import (
    _softmax_backward_by_scatter,
    _softmax_by_scatter,
    csr_softmax,
)

#: without a compiler and ninja the kernels cannot exist here: the torch path is then the only one (tested elsewhere)
pytestmark = pytest.mark.skipif(
    shutil.which("c++") is None or shutil.which("ninja") is None,
    reason="no C++ compiler or ninja: the torch kernels are the only path on this machine",
)


@pytest.fixture
def torch_kernels_only(monkeypatch):
    """The C++ kernels switched off for the duration of a test (as ``TGMA_CPU_KERNELS=0`` would)."""
    monkeypatch.setitem(cpu_kernels._loaded, "ok", False)


def _sorted_graph(num_nodes: int, num_edges: int, seed: int):
    """A CSR graph with repeated edges, isolated targets and one heavy row (node 0 receives 40 edges)."""
    edge_index, gen = random_graph(num_nodes, num_edges, seed=seed)
    heavy = torch.stack([torch.randint(0, num_nodes, (40,), generator=gen), torch.zeros(40, dtype=torch.long)])
    edge_index = torch.cat([edge_index[:, edge_index[1] % 7 != 3], heavy], dim=1)  # targets 3, 10, ... get none
    return build_csr_graph(edge_index, num_nodes, num_nodes), gen


def test_the_kernels_are_built_where_a_compiler_is_at_hand() -> None:
    """Otherwise every other test here would compare the torch formula with itself."""
    assert cpu_kernels.available()
    assert hasattr(torch.ops.tg_metricattn_cpu, "csr_softmax")


def test_each_version_of_the_sources_has_its_own_build_folder(tmp_path, monkeypatch) -> None:
    """A header change alone must rebuild, and two versions must not share (and overwrite) one library."""
    sources = tmp_path / "csrc"
    shutil.copytree(cpu_kernels._CSRC, sources)
    monkeypatch.setattr(cpu_kernels, "_CSRC", sources)
    before = cpu_kernels._sources_digest()
    header = sources / "csr_common.h"
    header.write_text(header.read_text() + "\n// changed\n")
    assert cpu_kernels._sources_digest() != before
    names = []
    monkeypatch.setattr(torch.utils.cpp_extension, "load", lambda name, **_: names.append(name))
    assert cpu_kernels._load()
    assert names == [f"tg_metricattn_cpu_{cpu_kernels._sources_digest()}"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("heads", [1, 3, 8])
def test_csr_softmax_equals_the_scatter_formula(dtype: torch.dtype, heads: int) -> None:
    graph, gen = _sorted_graph(60, 400, seed=heads)
    num_edges = graph.target.numel()
    scores = (torch.randn(num_edges, heads, generator=gen) * 30).to(dtype)  # large: exp overflows without the max
    grad = torch.randn(num_edges, heads, generator=gen).to(dtype)
    expected = _softmax_by_scatter(scores, graph.target, 60, dtype)
    alpha = torch.ops.tg_metricattn_cpu.csr_softmax(scores, graph.target_ptr)
    tol = 1e-6 if dtype == torch.float32 else 1e-13
    torch.testing.assert_close(alpha, expected, rtol=tol, atol=tol)
    expected_grad = _softmax_backward_by_scatter(expected, grad, graph.target, 60)
    got_grad = torch.ops.tg_metricattn_cpu.csr_softmax_backward(alpha, grad, graph.target_ptr)
    torch.testing.assert_close(got_grad, expected_grad, rtol=tol, atol=tol)


def test_csr_softmax_is_exact_on_several_threads() -> None:
    """Rows split between threads (more rows than one task holds) give the one-thread values."""
    gen = torch.Generator().manual_seed(5)
    graph = build_csr_graph(torch.randint(0, 20_000, (2, 120_000), generator=gen), 20_000, 20_000)
    scores = torch.randn(120_000, 4, generator=gen)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = torch.ops.tg_metricattn_cpu.csr_softmax(scores, graph.target_ptr)
        torch.set_num_threads(2)
        several = torch.ops.tg_metricattn_cpu.csr_softmax(scores, graph.target_ptr)
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(single, several)
    torch.testing.assert_close(single, _softmax_by_scatter(scores, graph.target, 20_000, scores.dtype))


def test_edge_softmax_on_sorted_edges_passes_gradcheck_and_opcheck() -> None:
    graph, gen = _sorted_graph(25, 120, seed=7)
    scores = torch.randn(graph.target.numel(), 2, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: edge_softmax(s, graph.target, 25, ptr=graph.target_ptr), (scores,))
    opcheck(csr_softmax, (scores, graph.target_ptr, graph.target))


def test_edge_softmax_with_and_without_row_pointers_agree(torch_kernels_only) -> None:
    """The custom op's torch path (other devices, no compiler) is the scatter formula as well."""
    graph, gen = _sorted_graph(30, 150, seed=8)
    scores = torch.randn(graph.target.numel(), 3, generator=gen, requires_grad=True)
    grad = torch.randn_like(scores)
    by_rows = edge_softmax(scores, graph.target, 30, ptr=graph.target_ptr)
    plain = edge_softmax(scores, graph.target, 30)
    torch.testing.assert_close(by_rows, plain)
    (g_rows,) = torch.autograd.grad(by_rows, scores, grad)
    (g_plain,) = torch.autograd.grad(plain, scores, grad)
    torch.testing.assert_close(g_rows, g_plain)


@pytest.mark.parametrize(
    "ptr, message",
    [
        (torch.tensor([0, 2, 1, 4]), "must not decrease"),
        (torch.tensor([0, 2, 3]), "from 0 to the number of edges"),
        (torch.tensor([1, 2, 4]), "from 0 to the number of edges"),
        (torch.tensor([0, 2, 4], dtype=torch.int32), "int64"),
    ],
)
def test_csr_softmax_rejects_bad_row_pointers(ptr: torch.Tensor, message: str) -> None:
    with pytest.raises(RuntimeError, match=message):
        torch.ops.tg_metricattn_cpu.csr_softmax(torch.zeros(4, 2), ptr)


@pytest.mark.parametrize("layer", [SparseGATConv, DotAttnConv, L2AttnConv, MetricAttnConv, SparseGATv2Conv])
def test_layers_take_the_cpp_softmax_and_match_the_torch_path(layer, monkeypatch) -> None:
    edge_index, gen = random_graph(50, 300, seed=11)
    torch.manual_seed(0)
    conv = layer(12, 4, heads=3)
    x = torch.randn(50, 12, generator=gen, requires_grad=True)
    with torch.profiler.profile() as profile:
        out = conv(x, edge_index)
    assert "tg_metricattn_cpu::csr_softmax" in {event.name for event in profile.events()}
    (grad,) = torch.autograd.grad(out.square().sum(), x)
    monkeypatch.setitem(cpu_kernels._loaded, "ok", False)
    out_torch = conv(x, edge_index)
    (grad_torch,) = torch.autograd.grad(out_torch.square().sum(), x)
    torch.testing.assert_close(out, out_torch, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, grad_torch, rtol=1e-5, atol=1e-6)


def _products(graph, gen, heads: int, channels: int, dtype: torch.dtype):
    num_nodes = graph.num_targets
    weights = torch.rand(graph.target.numel(), heads, generator=gen).to(dtype)
    dense = torch.randn(num_nodes, heads, channels, generator=gen).to(dtype)
    left = torch.randn(num_nodes, heads, channels, generator=gen).to(dtype)
    order = torch.randperm(graph.target.numel(), generator=gen)
    return (
        sparse_kernels.spmm(weights, dense, graph.target_ptr, graph.source),
        sparse_kernels.spmm(weights, dense, graph.target_ptr, graph.source, order),
        sparse_kernels.sddmm(left, dense, graph.target_ptr, graph.source, graph.target),
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("heads, channels", [(1, 5), (3, 8), (8, 16)])
def test_cpp_products_equal_the_per_head_torch_products(dtype, heads, channels, monkeypatch) -> None:
    """spmm (with and without an entry order) and sddmm, on repeated entries, empty and heavy rows."""
    graph, _ = _sorted_graph(60, 400, seed=heads + channels)
    cpp = _products(graph, torch.Generator().manual_seed(1), heads, channels, dtype)
    monkeypatch.setitem(cpu_kernels._loaded, "ok", False)
    reference = _products(graph, torch.Generator().manual_seed(1), heads, channels, dtype)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    for got, expected in zip(cpp, reference, strict=True):
        assert got.is_contiguous() and expected.is_contiguous()
        torch.testing.assert_close(got, expected, rtol=tol, atol=tol)


def test_cpp_products_split_between_threads_equal_one_thread() -> None:
    gen = torch.Generator().manual_seed(6)
    graph = build_csr_graph(torch.randint(0, 20_000, (2, 120_000), generator=gen), 20_000, 20_000)
    weights, dense = torch.rand(120_000, 2, generator=gen), torch.randn(20_000, 2, 4, generator=gen)
    previous = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            results.append(
                (
                    sparse_kernels.spmm(weights, dense, graph.target_ptr, graph.source),
                    sparse_kernels.sddmm(dense, dense, graph.target_ptr, graph.source, graph.target),
                )
            )
    finally:
        torch.set_num_threads(previous)
    for single, several in zip(*results, strict=True):
        assert torch.equal(single, several)


def test_cpp_products_reject_indices_out_of_range() -> None:
    ptr, dense = torch.tensor([0, 1, 3]), torch.zeros(2, 1, 2)
    with pytest.raises(RuntimeError, match="column index out of range"):
        torch.ops.tg_metricattn_cpu.spmm(torch.zeros(3, 1), dense, ptr, torch.tensor([0, 2, 1]), None)
    with pytest.raises(RuntimeError, match="column index out of range"):
        torch.ops.tg_metricattn_cpu.sddmm(dense, dense, ptr, torch.tensor([0, -1, 1]))
    with pytest.raises(RuntimeError, match="order out of range"):
        order = torch.tensor([0, 3, 1])
        torch.ops.tg_metricattn_cpu.spmm(torch.zeros(3, 1), dense, ptr, torch.tensor([0, 1, 1]), order)
    with pytest.raises(RuntimeError, match="must not decrease"):
        torch.ops.tg_metricattn_cpu.sddmm(dense, dense, torch.tensor([0, 4, 3]), torch.tensor([0, 1, 1]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpp_squared_distance_and_gradients_equal_the_float64_direct_formula(dtype: torch.dtype) -> None:
    """Forward and both gradients (distinct target and source points, and one shared tensor) against the
    chunked float64 direct formula; points far from the origin against their spacing, where the
    expansion would cancel."""
    graph, gen = _sorted_graph(60, 400, seed=21)
    dst = (1e4 + torch.randn(60, 3, 5, generator=gen)).to(dtype).requires_grad_()
    src = (1e4 + torch.randn(60, 3, 5, generator=gen)).to(dtype).requires_grad_()
    grad = torch.randn(graph.target.numel(), 3, generator=gen).to(dtype)
    for left, right in ((dst, src), (dst, dst)):
        got = sparse_kernels.edge_squared_distance_direct(left, right, graph)
        expected = sparse_kernels.edge_squared_distance(left.double(), right.double(), graph.source, graph.target)
        assert got.dtype == dtype
        torch.testing.assert_close(got.double(), expected, rtol=1e-6, atol=1e-6)
        inputs = (left,) if left is right else (left, right)
        got_grads = torch.autograd.grad(got, inputs, grad)
        expected_grads = torch.autograd.grad(expected, inputs, grad.double())
        for g_got, g_expected in zip(got_grads, expected_grads, strict=True):
            torch.testing.assert_close(g_got.double(), g_expected.double(), rtol=1e-5, atol=1e-3)


def test_cpp_squared_distance_passes_gradcheck_and_opcheck() -> None:
    graph, gen = _sorted_graph(20, 90, seed=22)
    dst = torch.randn(20, 2, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    src = torch.randn(20, 2, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: sparse_kernels.edge_squared_distance_direct(a, b, graph), (dst, src))
    opcheck(sparse_kernels.squared_distance, (dst, src, graph.target_ptr, graph.source, *graph.transpose))


def test_distance_layers_take_the_cpp_squared_distance() -> None:
    edge_index, gen = random_graph(50, 300, seed=23)
    x = torch.randn(50, 12, generator=gen)
    for layer in (L2AttnConv(12, 4, heads=2), MetricAttnConv(12, 4, heads=2)):
        with torch.profiler.profile() as profile:
            layer(x, edge_index)
        names = {event.name for event in profile.events()}
        assert "tg_metricattn_cpu::squared_distance" in names
        assert "tg_metricattn::replace_cancelled" not in names


def test_cpp_edge_bias_sum_and_gradients_equal_the_gathers() -> None:
    graph, gen = _sorted_graph(60, 400, seed=31)
    target_bias = torch.randn(60, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    source_bias = torch.randn(60, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(graph.target.numel(), 3, generator=gen, dtype=torch.float64)
    got = sparse_kernels.edge_bias_sum(target_bias, source_bias, graph)
    expected = target_bias.index_select(0, graph.target) + source_bias.index_select(0, graph.source)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    got_grads = torch.autograd.grad(got, (target_bias, source_bias), grad)
    expected_grads = torch.autograd.grad(expected, (target_bias, source_bias), grad)
    for g_got, g_expected in zip(got_grads, expected_grads, strict=True):
        torch.testing.assert_close(g_got, g_expected, rtol=1e-12, atol=1e-12)
    opcheck(
        sparse_kernels.edge_node_sum,
        (target_bias, source_bias, graph.target_ptr, graph.source, graph.transpose[0], graph.transpose[2]),
    )
    opcheck(sparse_kernels.edge_node_sum_backward, (grad, graph.target_ptr, graph.transpose[0], graph.transpose[2]))
    opcheck(sparse_kernels.edge_node_sum_backward, (grad, graph.target_ptr, None, None))


def test_gat_takes_the_cpp_edge_bias_sum() -> None:
    edge_index, gen = random_graph(50, 300, seed=32)
    x = torch.randn(50, 12, generator=gen, requires_grad=True)
    with torch.profiler.profile() as profile:
        SparseGATConv(12, 4, heads=2)(x, edge_index).sum().backward()
    names = {event.name for event in profile.events()}
    assert {"tg_metricattn_cpu::edge_sum", "tg_metricattn_cpu::row_sum"} <= names
    assert "aten::index_add_" not in names and "aten::scatter_add_" not in names
