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


#: edges per chunk of every edge-chunked kernel (direct squared distance, GATv2's score, the edge-feature
#: dot and sum): about 2^22 gathered floats per side at a time
_EDGE_CHUNK_FLOATS = 1 << 22


def _edge_chunks(num_edges: int, width: int):
    step = max(1, _EDGE_CHUNK_FLOATS // max(1, width))
    for start in range(0, num_edges, step):
        yield slice(start, min(start + step, num_edges))


class _EdgeSquaredDistance(torch.autograd.Function):
    """``points_dst=None``: the targets' points are ``points_src`` (one tensor, one gradient)."""

    @staticmethod
    def forward(ctx, points_src: Tensor, points_dst: Tensor | None, source: Tensor, target: Tensor) -> Tensor:
        ctx.save_for_backward(points_src, points_dst, source, target)
        dst = points_src if points_dst is None else points_dst
        heads, width = points_src.shape[1], points_src.shape[1] * points_src.shape[2]
        out = points_src.new_empty(source.numel(), heads, dtype=torch.float64)
        for part in _edge_chunks(source.numel(), width):
            diff = dst.index_select(0, target[part]) - points_src.index_select(0, source[part])
            out[part] = diff.double().square_().sum(-1)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        points_src, points_dst, source, target = ctx.saved_tensors
        dst = points_src if points_dst is None else points_dst
        grad_src = torch.zeros_like(points_src)
        grad_dst = grad_src if points_dst is None else torch.zeros_like(points_dst)
        width = points_src.shape[1] * points_src.shape[2]
        for part in _edge_chunks(source.numel(), width):
            diff = dst.index_select(0, target[part]) - points_src.index_select(0, source[part])
            weighted = diff.mul_(2 * grad[part].to(diff.dtype).unsqueeze(-1))
            grad_dst.index_add_(0, target[part], weighted)
            grad_src.index_add_(0, source[part], weighted, alpha=-1)
        return grad_src, None if points_dst is None else grad_dst, None, None


def edge_squared_distance(points_dst: Tensor, points_src: Tensor, source: Tensor, target: Tensor) -> Tensor:
    """d[e, h] = ‖points_dst[target_e, h] - points_src[source_e, h]‖² for every edge, ``[E, H]`` float64.

    The direct formula, evaluated in chunks of edges (about 2^22 gathered floats at a time)
    so that no ``E x H x D`` tensor is ever whole; the difference is taken in the input
    dtype and squared and summed in float64, so distances of float32 points up to 1e150
    stay finite. The backward pass recomputes the differences chunk by chunk:
    ``d d_e / d p_i = 2 (p_i - p_j)``, ``d d_e / d p_j = -2 (p_i - p_j)``.
    """
    shared = points_dst is points_src
    return _EdgeSquaredDistance.apply(points_src, None if shared else points_dst, source, target)


#: the expansion is kept on an edge while ‖p_i‖² + ‖p_j‖² <= 2^8 ‖p_i - p_j‖²: cancellation then costs
#: at most 8 bits (relative error <= (D + 3) eps 2^8: 3.4e-4 in float32 at D = 8; measured <= 6.2e-5 on trained models)
EXPANSION_BITS_LOST = 8


def edge_squared_distance_sampled(points_dst: Tensor, points_src: Tensor, graph: CSRGraph) -> Tensor:
    """d[e, h] = ‖p_i - p_j‖² on the edges of ``graph`` (target-major), in the points' dtype, ``[E, H]``.

    Where cancellation is mild the expansion ``‖p_i‖² + ‖p_j‖² - 2 <p_i, p_j>`` is taken,
    its dot products from the sampled sparse product of :func:`edge_dot` (no gathered
    ``E x H x D`` tensor, forward or backward); on the edges where
    ``‖p_i‖² + ‖p_j‖² > 2^EXPANSION_BITS_LOST · d`` for some head (self-loops, near-duplicate
    points, points far from the origin against their spacing) the direct formula of
    :func:`edge_squared_distance` replaces it. Each value depends on p_i and p_j alone
    (no shared centre), and the gradient is that of the formula used on each edge.
    Values beyond the dtype's range come out infinite: callers fall back to the float64
    direct formula.
    """
    norm_dst = points_dst.square().sum(-1)
    norm_src = norm_dst if points_src is points_dst else points_src.square().sum(-1)
    norms = norm_dst.index_select(0, graph.target).add_(norm_src.index_select(0, graph.source))
    expanded = torch.sub(norms, edge_dot(points_dst, points_src, graph), alpha=2)
    with torch.no_grad():  # the subtraction keeps nothing for backward: norms may be scaled in place
        mild = norms.mul_(2.0**-EXPANSION_BITS_LOST).le(expanded).all(-1)
        direct = (~mild).nonzero().flatten()
    if direct.numel() == 0:
        return expanded
    exact = edge_squared_distance(
        points_dst, points_src, graph.source.index_select(0, direct), graph.target.index_select(0, direct)
    )
    return expanded.index_put((direct,), exact.to(expanded.dtype))


def _edge_feature_dot(nodes: Tensor, edge_attr: Tensor, target: Tensor) -> Tensor:
    """s[e, h] = <nodes[target_e, h], edge_attr[e]>, chunk by chunk: ``[E, H]``."""
    out = nodes.new_empty(target.numel(), nodes.shape[1])
    for part in _edge_chunks(target.numel(), nodes.shape[1] * nodes.shape[2]):
        out[part] = (nodes.index_select(0, target[part]) * edge_attr[part].unsqueeze(1)).sum(-1)
    return out


def _edge_feature_sum(weights: Tensor, edge_attr: Tensor, target: Tensor, num_targets: int) -> Tensor:
    """out[i, h] = sum over edges e into i of weights[e, h] edge_attr[e], chunk by chunk: ``[N, H, D]``."""
    heads, width = weights.shape[1], edge_attr.shape[1]
    out = edge_attr.new_zeros(num_targets, heads, width)
    for part in _edge_chunks(target.numel(), heads * width):
        out.index_add_(0, target[part], weights[part].unsqueeze(-1) * edge_attr[part].unsqueeze(1))
    return out


def _edge_feature_mix(weights: Tensor, nodes: Tensor, target: Tensor) -> Tensor:
    """m[e] = sum_h weights[e, h] nodes[target_e, h], chunk by chunk: ``[E, D]`` (the edge features' gradient)."""
    out = nodes.new_empty(target.numel(), nodes.shape[2])
    for part in _edge_chunks(target.numel(), nodes.shape[1] * nodes.shape[2]):
        out[part] = (weights[part].unsqueeze(-1) * nodes.index_select(0, target[part])).sum(1)
    return out


class _EdgeFeatureDot(torch.autograd.Function):
    @staticmethod
    def forward(ctx, nodes: Tensor, edge_attr: Tensor, target: Tensor) -> Tensor:
        ctx.save_for_backward(nodes, edge_attr, target)
        return _edge_feature_dot(nodes, edge_attr, target)

    @staticmethod
    def backward(ctx, grad: Tensor):
        nodes, edge_attr, target = ctx.saved_tensors
        grad = grad.contiguous()
        grad_nodes = _edge_feature_sum(grad, edge_attr, target, nodes.shape[0]) if ctx.needs_input_grad[0] else None
        grad_attr = _edge_feature_mix(grad, nodes, target) if ctx.needs_input_grad[1] else None
        return grad_nodes, grad_attr, None


class _EdgeFeatureSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weights: Tensor, edge_attr: Tensor, target: Tensor, num_targets: int) -> Tensor:
        ctx.save_for_backward(weights, edge_attr, target)
        return _edge_feature_sum(weights, edge_attr, target, num_targets)

    @staticmethod
    def backward(ctx, grad: Tensor):
        weights, edge_attr, target = ctx.saved_tensors
        grad = grad.contiguous()
        grad_weights = _edge_feature_dot(grad, edge_attr, target) if ctx.needs_input_grad[0] else None
        grad_attr = _edge_feature_mix(weights, grad, target) if ctx.needs_input_grad[1] else None
        return grad_weights, grad_attr, None, None


def edge_feature_dot(nodes: Tensor, edge_attr: Tensor, target: Tensor) -> Tensor:
    """s[e, h] = <nodes[target_e, h], edge_attr[e]> for node rows ``[N, H, D]`` and edge features ``[E, D]``.

    Evaluated in chunks of edges, forward and backward, so no ``E x H x D`` tensor is ever
    whole; the gradient is :func:`edge_feature_sum` of the incoming gradient (for the
    nodes) and ``sum_h g[e, h] nodes[target_e, h]`` (for the edge features).
    """
    return _EdgeFeatureDot.apply(nodes, edge_attr, target)


def edge_feature_sum(weights: Tensor, edge_attr: Tensor, target: Tensor, num_targets: int) -> Tensor:
    """out[i, h] = sum_{e: target_e = i} weights[e, h] edge_attr[e], ``[num_targets, H, D]``.

    The edge features aggregated with per-head weights, in chunks of edges (no ``E x H x D``
    tensor, forward or backward); its weight gradient is :func:`edge_feature_dot`.
    """
    return _EdgeFeatureSum.apply(weights, edge_attr, target, num_targets)


class _EdgeAdditiveScore(torch.autograd.Function):
    @staticmethod
    def forward(ctx, dst, src, att, edge_attr, edge_weight, source, target, negative_slope):
        ctx.save_for_backward(dst, src, att, edge_attr, edge_weight, source, target)
        ctx.negative_slope = negative_slope
        heads, channels = att.shape
        out = src.new_empty(source.numel(), heads)
        for part in _edge_chunks(source.numel(), heads * channels):
            z = _additive_inputs(dst, src, edge_attr, edge_weight, source, target, part)
            out[part] = (torch.nn.functional.leaky_relu(z, negative_slope) * att).sum(-1)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        dst, src, att, edge_attr, edge_weight, source, target = ctx.saved_tensors
        slope = ctx.negative_slope
        heads, channels = att.shape
        grad_dst, grad_src, grad_att = torch.zeros_like(dst), torch.zeros_like(src), torch.zeros_like(att)
        grad_attr = None if edge_attr is None else torch.empty_like(edge_attr)
        grad_weight = None if edge_weight is None else torch.zeros_like(edge_weight)
        for part in _edge_chunks(source.numel(), heads * channels):
            z = _additive_inputs(dst, src, edge_attr, edge_weight, source, target, part)
            g = grad[part].unsqueeze(-1)
            grad_att += (g * torch.nn.functional.leaky_relu(z, slope)).sum(0)
            dz = g * att * torch.where(z > 0, 1.0, slope).to(z.dtype)  # [e, H, C]
            grad_dst.index_add_(0, target[part], dz)
            grad_src.index_add_(0, source[part], dz)
            if edge_attr is not None:
                flat = dz.reshape(dz.size(0), heads * channels)
                grad_attr[part] = flat @ edge_weight
                grad_weight += flat.t() @ edge_attr[part]
        return grad_dst, grad_src, grad_att, grad_attr, grad_weight, None, None, None


def _additive_inputs(dst, src, edge_attr, edge_weight, source, target, part: slice) -> Tensor:
    z = dst.index_select(0, target[part]) + src.index_select(0, source[part])
    if edge_attr is not None:
        z = z + (edge_attr[part] @ edge_weight.t()).view_as(z)
    return z


def edge_additive_score(
    dst: Tensor,
    src: Tensor,
    att: Tensor,
    source: Tensor,
    target: Tensor,
    negative_slope: float,
    edge_attr: Tensor | None = None,
    edge_weight: Tensor | None = None,
) -> Tensor:
    """s[e, h] = att_h . LeakyReLU(dst[target_e, h] + src[source_e, h] [+ (W_e e_e)_h]), ``[E, H]``.

    GATv2's score (Brody et al. 2022): the nonlinearity sits between the sum and the dot
    product, so the score has no per-node form; it is evaluated in chunks of edges, and the
    backward pass recomputes each chunk, so no ``E x H x C`` tensor is ever whole. ``dst``
    ``[N_dst, H, C]``, ``src`` ``[N_src, H, C]``, ``att`` ``[H, C]``; edge features
    ``edge_attr`` ``[E, D]`` with ``edge_weight`` ``[H * C, D]`` (W_e) or neither.
    """
    return _EdgeAdditiveScore.apply(dst, src, att, edge_attr, edge_weight, source, target, negative_slope)
