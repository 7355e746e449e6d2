"""Sparse-dense kernels on a :class:`CSRGraph`, with backward passes that store no per-edge features.

Two primitives, each the other's gradient (per head h, E edges, A_h the sparse matrix
with the pattern of the graph and values w[:, h]):

    spmm:   out_h = A_h V_h                       [N_dst, C]   (aggregation)
    sddmm:  s_e   = <L_h[target_e], R_h[source_e]> for every edge e   (edge dot products)

    d spmm / d w_e  = <dOut_h[target_e], V_h[source_e]>   (an sddmm)
    d spmm / d V_h  = A_h^T dOut_h                         (an spmm on the transposed graph)
    d sddmm / d L_h = S_h R_h,  d sddmm / d R_h = S_h^T L_h   (spmms with S_h = dS[:, h])

Only node-sized tensors and the E x H edge values are kept for backward: never an
E x H x C tensor of gathered features. The kernels are torch's CSR matrix product and
``torch.sparse.sampled_addmm`` (MKL on CPU, cuSPARSE on GPU), for float32 and float64.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from tg_metricattn.layers.csr_graph import CSRGraph

SUPPORTED_DTYPES = (torch.float32, torch.float64)

# torch flags every CSR construction as beta; the kernels used here are stable MKL/cuSPARSE calls.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state", category=UserWarning)


def _csr(ptr: Tensor, columns: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    return torch.sparse_csr_tensor(ptr, columns, values, shape, check_invariants=False)


def _spmm(values: Tensor, dense: Tensor, graph: CSRGraph, transpose: bool) -> Tensor:
    """Per head: A_h @ dense_h (or A_h^T @ dense_h); values [E, H] in target-major order."""
    heads, channels = dense.shape[1], dense.shape[2]
    if transpose:
        order, columns, ptr = graph.transpose
        shape = (graph.num_sources, graph.num_targets)
        values = values.index_select(0, order)
    else:
        ptr, columns, shape = graph.target_ptr, graph.source, (graph.num_targets, graph.num_sources)
    values_by_head = values.t().contiguous()
    dense_by_head = dense.transpose(0, 1).contiguous()
    out = dense.new_empty(heads, shape[0], channels)
    for h in range(heads):
        torch.mm(_csr(ptr, columns, values_by_head[h], shape), dense_by_head[h], out=out[h])
    return out.transpose(0, 1)


def _sddmm(left: Tensor, right: Tensor, graph: CSRGraph) -> Tensor:
    """Per head and edge: <left[target_e, h], right[source_e, h]>, shape [E, H]."""
    heads = left.shape[1]
    shape = (graph.num_targets, graph.num_sources)
    left_by_head = left.transpose(0, 1).contiguous()
    right_by_head = right.transpose(0, 1).contiguous()
    ptr, columns, expand = graph.unique if graph.has_duplicates else (graph.target_ptr, graph.source, None)
    out = left.new_empty(heads, columns.numel())
    pattern = _csr(ptr, columns, left.new_zeros(columns.numel()), shape)
    for h in range(heads):
        product = torch.sparse.sampled_addmm(pattern, left_by_head[h], right_by_head[h].t(), beta=0.0)
        out[h] = product.values()
    return (out if expand is None else out.index_select(1, expand)).t()


class _Aggregate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weights: Tensor, values: Tensor, graph: CSRGraph) -> Tensor:
        ctx.graph = graph
        ctx.save_for_backward(weights, values)
        return _spmm(weights, values, graph, transpose=False)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        weights, values = ctx.saved_tensors
        graph = ctx.graph
        grad_weights = _sddmm(grad_out, values, graph) if ctx.needs_input_grad[0] else None
        grad_values = _spmm(weights, grad_out, graph, transpose=True) if ctx.needs_input_grad[1] else None
        return grad_weights, grad_values, None


class _EdgeDot(torch.autograd.Function):
    @staticmethod
    def forward(ctx, left: Tensor, right: Tensor, graph: CSRGraph) -> Tensor:
        ctx.graph = graph
        ctx.save_for_backward(left, right)
        return _sddmm(left, right, graph)

    @staticmethod
    def backward(ctx, grad_scores: Tensor):
        left, right = ctx.saved_tensors
        graph = ctx.graph
        grad_left = _spmm(grad_scores, right, graph, False) if ctx.needs_input_grad[0] else None
        grad_right = _spmm(grad_scores, left, graph, True) if ctx.needs_input_grad[1] else None
        return grad_left, grad_right, None


def aggregate(weights: Tensor, values: Tensor, graph: CSRGraph) -> Tensor:
    """out[i, h] = sum_{e: j -> i} weights[e, h] values[j, h]; weights [E, H] target-major.

    Returns ``[N_dst, H, C]``.
    """
    return _Aggregate.apply(weights, values, graph)


def edge_dot(left: Tensor, right: Tensor, graph: CSRGraph) -> Tensor:
    """s[e, h] = <left[i, h], right[j, h]> for each edge e = (j -> i), target-major; ``[E, H]``."""
    return _EdgeDot.apply(left, right, graph)
