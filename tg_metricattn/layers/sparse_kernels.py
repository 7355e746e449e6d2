"""Sparse-dense kernels on a :class:`CSRGraph`, with backward passes that store no per-edge features.

Two primitives, each the other's gradient (per head h, E edges, A_h the sparse matrix
with the pattern of the graph and values w[:, h]):

    spmm:   out_h = A_h V_h                       [N_dst, C]   (aggregation)
    sddmm:  s_e   = <L_h[target_e], R_h[source_e]> for every edge e   (edge dot products)

    d spmm / d w_e  = <dOut_h[target_e], V_h[source_e]>   (an sddmm)
    d spmm / d V_h  = A_h^T dOut_h                         (an spmm on the transposed graph)
    d sddmm / d L_h = S_h R_h,  d sddmm / d R_h = S_h^T L_h   (spmms with S_h = dS[:, h])

Only node-sized tensors and the E x H edge values are kept for backward: never an
E x H x C tensor of gathered features. On CPU the kernels are C++ loops over
the rows that take all heads of an entry at once (:mod:`cpu_kernels`: each entry reads its
node's ``[H, C]`` row once); elsewhere (and without a compiler) torch's CSR matrix product
and ``torch.sparse.sampled_addmm`` per head (cuSPARSE on GPU), for float32 and float64;
registered as torch custom ops (``tg_metricattn::spmm``, ``::sddmm``) with fake
implementations, so that ``torch.compile`` traces the code around them and keeps them whole.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from tg_metricattn.layers import cpu_kernels
from tg_metricattn.layers.csr_graph import CSRGraph, row_pointers

SUPPORTED_DTYPES = (torch.float32, torch.float64)

# torch flags every CSR construction as beta; the kernels used here are stable MKL/cuSPARSE calls.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state", category=UserWarning)


def _csr(ptr: Tensor, columns: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    return torch.sparse_csr_tensor(ptr, columns, values, shape, check_invariants=False)


@torch.library.custom_op("tg_metricattn::spmm", mutates_args=())
def spmm(values: Tensor, dense: Tensor, ptr: Tensor, columns: Tensor, order: Tensor | None = None) -> Tensor:
    """Per head h: ``out[:, h] = A_h @ dense[:, h]``, A_h the CSR matrix ``(ptr, columns, values[order, h])``
    (``order``: the identity if ``None``) of shape ``[len(ptr) - 1, dense.shape[0]]``; ``[rows, H, C]``.
    On CPU the C++ kernel (all heads of an entry at once, :mod:`cpu_kernels`), elsewhere one MKL/cuSPARSE
    product per head. Forward only (a torch custom op, so that ``torch.compile`` keeps it whole)."""
    if cpu_kernels.applies_to(dense):
        return torch.ops.tg_metricattn_cpu.spmm(values, dense, ptr, columns, order)
    if order is not None:
        values = values.index_select(0, order)
    heads, channels = dense.shape[1], dense.shape[2]
    shape = (ptr.numel() - 1, dense.shape[0])
    values_by_head = values.t().contiguous()
    dense_by_head = dense.transpose(0, 1).contiguous()
    out = dense.new_empty(heads, shape[0], channels)
    for h in range(heads):
        torch.mm(_csr(ptr, columns, values_by_head[h], shape), dense_by_head[h], out=out[h])
    return out.transpose(0, 1).contiguous()


@spmm.register_fake
def _(values: Tensor, dense: Tensor, ptr: Tensor, columns: Tensor, order: Tensor | None = None) -> Tensor:
    return dense.new_empty(ptr.shape[0] - 1, dense.shape[1], dense.shape[2])


def _merged_duplicates(ptr: Tensor, columns: Tensor, rows: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
    """``(ptr, columns, expand)`` of the pattern with repeated (row, column) entries merged, ``expand[e]``
    the merged position of entry e (``None`` and the pattern itself when there are no repeats)."""
    is_first = torch.ones_like(columns, dtype=torch.bool)
    is_first[1:] = (columns[1:] != columns[:-1]) | (rows[1:] != rows[:-1])
    if bool(is_first.all()):
        return ptr, columns, None
    first = is_first.nonzero().flatten()
    merged_ptr = row_pointers(rows.index_select(0, first), ptr.numel() - 1)
    return merged_ptr, columns.index_select(0, first), is_first.cumsum(0) - 1


@torch.library.custom_op("tg_metricattn::sddmm", mutates_args=())
def sddmm(left: Tensor, right: Tensor, ptr: Tensor, columns: Tensor, rows: Tensor) -> Tensor:
    """Per head and entry e of the sorted CSR pattern: ``<left[rows_e, h], right[columns_e, h]>``, ``[E, H]``.
    On CPU the C++ kernel (all heads of an entry at once); elsewhere one sampled product per head, with
    repeated entries merged before it (it needs a duplicate-free pattern) and expanded after. Forward
    only, a torch custom op as :func:`spmm`."""
    if cpu_kernels.applies_to(left):
        return torch.ops.tg_metricattn_cpu.sddmm(left, right, ptr, columns)
    heads = left.shape[1]
    shape = (ptr.numel() - 1, right.shape[0])
    left_by_head = left.transpose(0, 1).contiguous()
    right_by_head = right.transpose(0, 1).contiguous()
    ptr, columns, expand = _merged_duplicates(ptr, columns, rows)
    out = left.new_empty(heads, columns.numel())
    pattern = _csr(ptr, columns, left.new_zeros(columns.numel()), shape)
    for h in range(heads):
        product = torch.sparse.sampled_addmm(pattern, left_by_head[h], right_by_head[h].t(), beta=0.0)
        out[h] = product.values()
    return (out if expand is None else out.index_select(1, expand)).t().contiguous()


@sddmm.register_fake
def _(left: Tensor, right: Tensor, ptr: Tensor, columns: Tensor, rows: Tensor) -> Tensor:
    return left.new_empty(columns.shape[0], left.shape[1])


def _transpose_if(needed: bool, graph: CSRGraph) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    return graph.transpose if needed else (None, None, None)


class _Aggregate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weights, values, ptr, source, target, t_order, t_columns, t_ptr):
        ctx.save_for_backward(weights, values, ptr, source, target, t_order, t_columns, t_ptr)
        return spmm(weights, values, ptr, source)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        weights, values, ptr, source, target, t_order, t_columns, t_ptr = ctx.saved_tensors
        grad_weights = sddmm(grad_out, values, ptr, source, target) if ctx.needs_input_grad[0] else None
        grad_values = None
        if ctx.needs_input_grad[1]:
            grad_values = spmm(weights, grad_out, t_ptr, t_columns, t_order)
        return grad_weights, grad_values, None, None, None, None, None, None


class _EdgeDot(torch.autograd.Function):
    """``right=None``: the right rows are ``left`` (one tensor, one summed gradient)."""

    @staticmethod
    def forward(ctx, left, right, ptr, source, target, t_order, t_columns, t_ptr):
        ctx.save_for_backward(left, right, ptr, source, t_order, t_columns, t_ptr)
        return sddmm(left, left if right is None else right, ptr, source, target)

    @staticmethod
    def backward(ctx, grad_scores: Tensor):
        left, right, ptr, source, t_order, t_columns, t_ptr = ctx.saved_tensors
        shared = right is None
        right = left if shared else right
        grad_left = spmm(grad_scores, right, ptr, source) if ctx.needs_input_grad[0] else None
        grad_right = None
        if shared or ctx.needs_input_grad[1]:
            grad_right = spmm(grad_scores, left, t_ptr, t_columns, t_order)
        if shared:
            return grad_left + grad_right, None, None, None, None, None, None, None
        return grad_left, grad_right, None, None, None, None, None, None


def aggregate(weights: Tensor, values: Tensor, graph: CSRGraph) -> Tensor:
    """out[i, h] = sum_{e: j -> i} weights[e, h] values[j, h]; weights [E, H] target-major.

    Returns ``[N_dst, H, C]``.
    """
    transposed = _transpose_if(torch.is_grad_enabled() and values.requires_grad, graph)
    return _Aggregate.apply(weights, values, graph.target_ptr, graph.source, graph.target, *transposed)


def edge_dot(left: Tensor, right: Tensor, graph: CSRGraph) -> Tensor:
    """s[e, h] = <left[i, h], right[j, h]> for each edge e = (j -> i), target-major; ``[E, H]``."""
    transposed = _transpose_if(torch.is_grad_enabled() and right.requires_grad, graph)
    other = None if right is left else right  # autograd.Function under torch.compile takes each tensor once
    return _EdgeDot.apply(left, other, graph.target_ptr, graph.source, graph.target, *transposed)


#: edges per chunk of every edge-chunked kernel (direct squared distance, GATv2's score, the edge-feature
#: dot and sum): about 2^22 gathered floats per side at a time
_EDGE_CHUNK_FLOATS = 1 << 22


def _edge_chunks(num_edges: int, width: int):
    step = max(1, _EDGE_CHUNK_FLOATS // max(1, width))
    for start in range(0, num_edges, step):
        yield slice(start, min(start + step, num_edges))


def _direct_squared_distance(dst: Tensor, src: Tensor, source: Tensor, target: Tensor) -> Tensor:
    """‖dst[target_e] - src[source_e]‖² per edge and head, differences in the input dtype, squares summed in
    float64, chunk by chunk: ``[E, H]`` float64."""
    heads, width = src.shape[1], src.shape[1] * src.shape[2]
    out = src.new_empty(source.numel(), heads, dtype=torch.float64)
    for part in _edge_chunks(source.numel(), width):
        diff = dst.index_select(0, target[part]) - src.index_select(0, source[part])
        out[part] = diff.double().square_().sum(-1)
    return out


def _direct_squared_distance_backward(
    grad: Tensor, dst: Tensor, src: Tensor, source: Tensor, target: Tensor, grad_dst: Tensor, grad_src: Tensor
) -> None:
    """Add ``2 g_e (p_i - p_j)`` to ``grad_dst[i]`` and subtract it from ``grad_src[j]``, chunk by chunk
    (the two may be one tensor)."""
    for part in _edge_chunks(source.numel(), src.shape[1] * src.shape[2]):
        diff = dst.index_select(0, target[part]) - src.index_select(0, source[part])
        weighted = diff.mul_(2 * grad[part].to(diff.dtype).unsqueeze(-1))
        grad_dst.index_add_(0, target[part], weighted)
        grad_src.index_add_(0, source[part], weighted, alpha=-1)


class _EdgeSquaredDistance(torch.autograd.Function):
    """``points_dst=None``: the targets' points are ``points_src`` (one tensor, one gradient)."""

    @staticmethod
    def forward(ctx, points_src: Tensor, points_dst: Tensor | None, source: Tensor, target: Tensor) -> Tensor:
        ctx.save_for_backward(points_src, points_dst, source, target)
        return _direct_squared_distance(points_src if points_dst is None else points_dst, points_src, source, target)

    @staticmethod
    def backward(ctx, grad: Tensor):
        points_src, points_dst, source, target = ctx.saved_tensors
        grad_src = torch.zeros_like(points_src)
        grad_dst = grad_src if points_dst is None else torch.zeros_like(points_dst)
        dst = points_src if points_dst is None else points_dst
        _direct_squared_distance_backward(grad, dst, points_src, source, target, grad_dst, grad_src)
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


@torch.library.custom_op("tg_metricattn::replace_cancelled", mutates_args=())
def replace_cancelled(
    expanded: Tensor, norms: Tensor, points_dst: Tensor, points_src: Tensor, source: Tensor, target: Tensor
) -> tuple[Tensor, Tensor]:
    """The expansion ``expanded`` [E, H] with the direct formula on the edges where it cancels
    (``norms > 2^EXPANSION_BITS_LOST · expanded`` for some head), and the mask of the edges kept
    (``[E]`` bool). A custom op: which edges take the direct formula depends on the values."""
    mild = norms.mul(2.0**-EXPANSION_BITS_LOST).le(expanded).all(-1)
    direct = (~mild).nonzero().flatten()
    out = expanded.clone()
    if direct.numel():
        source, target = source.index_select(0, direct), target.index_select(0, direct)
        exact = _direct_squared_distance(points_dst, points_src, source, target)
        out.index_copy_(0, direct, exact.to(out.dtype))
    return out, mild


@replace_cancelled.register_fake
def _(expanded: Tensor, norms: Tensor, points_dst: Tensor, points_src: Tensor, source: Tensor, target: Tensor):
    return torch.empty_like(expanded), expanded.new_empty(expanded.shape[0], dtype=torch.bool)


@torch.library.custom_op("tg_metricattn::replace_cancelled_backward", mutates_args=())
def replace_cancelled_backward(
    grad: Tensor, mild: Tensor, points_dst: Tensor, points_src: Tensor, source: Tensor, target: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients of :func:`replace_cancelled` for ``expanded`` (``grad`` where the expansion was kept,
    0 elsewhere) and for the points through the direct formula on the other edges."""
    grad = grad.contiguous()
    grad_dst, grad_src = torch.zeros_like(points_dst), torch.zeros_like(points_src)
    direct = (~mild).nonzero().flatten()
    if direct.numel():
        _direct_squared_distance_backward(
            grad.index_select(0, direct),
            points_dst,
            points_src,
            source.index_select(0, direct),
            target.index_select(0, direct),
            grad_dst,
            grad_src,
        )
    return grad * mild.unsqueeze(-1).to(grad.dtype), grad_dst, grad_src


@replace_cancelled_backward.register_fake
def _(grad: Tensor, mild: Tensor, points_dst: Tensor, points_src: Tensor, source: Tensor, target: Tensor):
    return grad.new_empty(grad.shape), torch.empty_like(points_dst), torch.empty_like(points_src)


def _replace_cancelled_setup(ctx, inputs: tuple, output: tuple) -> None:
    _, _, points_dst, points_src, source, target = inputs
    ctx.save_for_backward(output[1], points_dst, points_src, source, target)


def _replace_cancelled_grad(ctx, grad: Tensor, _grad_mild: Tensor | None):
    mild, points_dst, points_src, source, target = ctx.saved_tensors
    grad_expanded, grad_dst, grad_src = replace_cancelled_backward(grad, mild, points_dst, points_src, source, target)
    return grad_expanded, None, grad_dst, grad_src, None, None


replace_cancelled.register_autograd(_replace_cancelled_grad, setup_context=_replace_cancelled_setup)


def edge_squared_distance_sampled(points_dst: Tensor, points_src: Tensor, graph: CSRGraph) -> Tensor:
    """d[e, h] = ‖p_i - p_j‖² on the edges of ``graph`` (target-major), in the points' dtype, ``[E, H]``.

    Where cancellation is mild the expansion ``‖p_i‖² + ‖p_j‖² - 2 <p_i, p_j>`` is taken,
    its dot products from the sampled sparse product of :func:`edge_dot` (no gathered
    ``E x H x D`` tensor, forward or backward); on the edges where
    ``‖p_i‖² + ‖p_j‖² > 2^EXPANSION_BITS_LOST · d`` for some head (self-loops, near-duplicate
    points, points far from the origin against their spacing) the direct formula of
    :func:`edge_squared_distance` replaces it (:func:`replace_cancelled`). Each value depends
    on p_i and p_j alone (no shared centre), and the gradient is that of the formula used on
    each edge. Values beyond the dtype's range come out infinite: callers fall back to the
    float64 direct formula.
    """
    norm_dst = points_dst.square().sum(-1)
    norm_src = norm_dst if points_src is points_dst else points_src.square().sum(-1)
    norms = norm_dst.index_select(0, graph.target) + norm_src.index_select(0, graph.source)
    expanded = norms - 2 * edge_dot(points_dst, points_src, graph)
    return replace_cancelled(expanded, norms.detach(), points_dst, points_src, graph.source, graph.target)[0]


@torch.library.custom_op("tg_metricattn::squared_distance", mutates_args=())
def squared_distance(
    points_dst: Tensor,
    points_src: Tensor,
    ptr: Tensor,
    columns: Tensor,
    t_order: Tensor | None,
    t_columns: Tensor | None,
    t_ptr: Tensor | None,
) -> Tensor:
    """‖points_dst[i, h] - points_src[j, h]‖² on the entries (i, j = columns_e) of a CSR pattern, ``[E, H]``,
    by the C++ kernel (CPU only: callers check :func:`cpu_kernels.applies_to`). The transposed pattern
    ``(t_order, t_columns, t_ptr)`` serves the backward pass (``None`` when no gradient is wanted)."""
    return torch.ops.tg_metricattn_cpu.squared_distance(points_dst, points_src, ptr, columns)


@squared_distance.register_fake
def _(points_dst, points_src, ptr, columns, t_order, t_columns, t_ptr) -> Tensor:
    return points_dst.new_empty(columns.shape[0], points_dst.shape[1])


@torch.library.custom_op("tg_metricattn::squared_distance_backward", mutates_args=())
def squared_distance_backward(
    grad: Tensor,
    points_dst: Tensor,
    points_src: Tensor,
    ptr: Tensor,
    columns: Tensor,
    t_order: Tensor,
    t_columns: Tensor,
    t_ptr: Tensor,
) -> tuple[Tensor, Tensor]:
    """Gradients of :func:`squared_distance` for both sides of points: ``2 g (p_i - p_j)`` summed over each
    target's incoming edges and ``-2 g (p_i - p_j)`` over each source's outgoing ones (the transposed rows)."""
    return torch.ops.tg_metricattn_cpu.squared_distance_backward(
        grad.contiguous(), points_dst, points_src, ptr, columns, t_order, t_columns, t_ptr
    )


@squared_distance_backward.register_fake
def _(grad, points_dst, points_src, ptr, columns, t_order, t_columns, t_ptr):
    return points_dst.new_empty(points_dst.shape), points_src.new_empty(points_src.shape)


def _squared_distance_setup(ctx, inputs: tuple, output: Tensor) -> None:
    ctx.save_for_backward(*inputs)


def _squared_distance_grad(ctx, grad: Tensor):
    points_dst, points_src, ptr, columns, t_order, t_columns, t_ptr = ctx.saved_tensors
    if t_order is None:
        raise RuntimeError("squared_distance: a gradient was asked for but no transposed pattern was given")
    grad_dst, grad_src = squared_distance_backward(
        grad, points_dst, points_src, ptr, columns, t_order, t_columns, t_ptr
    )
    return grad_dst, grad_src, None, None, None, None, None


squared_distance.register_autograd(_squared_distance_grad, setup_context=_squared_distance_setup)


def edge_squared_distance_direct(points_dst: Tensor, points_src: Tensor, graph: CSRGraph) -> Tensor:
    """d[e, h] = ‖p_i - p_j‖² on the edges of ``graph`` (target-major), in the points' dtype, ``[E, H]``:
    the direct formula, all heads of an edge at once, by the C++ CPU kernel (differences in the points'
    dtype, squares summed in float64, rounded once: no cancellation, no ``E x H x D`` tensor, no float64
    ``E x H`` buffer). Values beyond the dtype's range come out infinite: callers fall back to the float64
    direct formula. Only where :func:`cpu_kernels.applies_to` holds; elsewhere :func:`edge_squared_distance_sampled`."""
    wants_grad = torch.is_grad_enabled() and (points_dst.requires_grad or points_src.requires_grad)
    transposed = _transpose_if(wants_grad, graph)
    return squared_distance(points_dst, points_src, graph.target_ptr, graph.source, *transposed)


@torch.library.custom_op("tg_metricattn::edge_node_sum", mutates_args=())
def edge_node_sum(
    target_term: Tensor, source_term: Tensor, ptr: Tensor, columns: Tensor, t_order: Tensor | None, t_ptr: Tensor | None
) -> Tensor:
    """``s[e, h] = target_term[i, h] + source_term[columns_e, h]`` on the entries of a CSR pattern, ``[E, H]``,
    by the C++ kernel (CPU only). ``(t_order, t_ptr)`` of the transposed pattern serve the source term's
    gradient (``None`` when it needs none)."""
    return torch.ops.tg_metricattn_cpu.edge_sum(target_term, source_term, ptr, columns)


@edge_node_sum.register_fake
def _(target_term, source_term, ptr, columns, t_order, t_ptr) -> Tensor:
    return target_term.new_empty(columns.shape[0], target_term.shape[1])


def _edge_node_sum_setup(ctx, inputs: tuple, output: Tensor) -> None:
    _, _, ptr, _, t_order, t_ptr = inputs
    ctx.save_for_backward(ptr, t_order, t_ptr)


@torch.library.custom_op("tg_metricattn::edge_node_sum_backward", mutates_args=())
def edge_node_sum_backward(
    grad: Tensor, ptr: Tensor, t_order: Tensor | None, t_ptr: Tensor | None
) -> tuple[Tensor, Tensor]:
    """The gradients of :func:`edge_node_sum`'s two terms from ``grad`` ``[E, H]``, by the C++ row sums:
    ``d target_term[i, h] = sum_{e in row i} grad[e, h]`` over the pattern and ``d source_term[j, h] =
    sum_{e out of j} grad[e, h]`` over its transpose (``[0, H]`` without one). One op for both, so that a
    compiled graph hands it one edge gradient instead of a copy per sum."""
    grad = grad.contiguous()
    grad_target = torch.ops.tg_metricattn_cpu.row_sum(grad, ptr, None)
    if t_order is None or t_ptr is None:
        return grad_target, grad.new_empty(0, grad.shape[1])
    return grad_target, torch.ops.tg_metricattn_cpu.row_sum(grad, t_ptr, t_order)


@edge_node_sum_backward.register_fake
def _(grad, ptr, t_order, t_ptr) -> tuple[Tensor, Tensor]:
    sources = 0 if t_order is None or t_ptr is None else t_ptr.shape[0] - 1
    return grad.new_empty(ptr.shape[0] - 1, grad.shape[1]), grad.new_empty(sources, grad.shape[1])


def _edge_node_sum_grad(ctx, grad: Tensor):
    ptr, t_order, t_ptr = ctx.saved_tensors
    if ctx.needs_input_grad[1] and t_order is None:
        raise RuntimeError("edge_node_sum: a source gradient was asked for but no transposed pattern was given")
    grad_target, grad_source = edge_node_sum_backward(grad, ptr, t_order, t_ptr)
    return (
        grad_target if ctx.needs_input_grad[0] else None,
        grad_source if ctx.needs_input_grad[1] else None,
        None,
        None,
        None,
        None,
    )


edge_node_sum.register_autograd(_edge_node_sum_grad, setup_context=_edge_node_sum_setup)


def edge_bias_sum(target_bias: Tensor, source_bias: Tensor, graph: CSRGraph) -> Tensor:
    """b[e, h] = target_bias[i, h] + source_bias[j, h] for every edge e = (j -> i) of ``graph`` (target-major),
    ``[E, H]``: GAT's per-node score terms on the edges, by the C++ CPU kernel (only where
    :func:`cpu_kernels.applies_to` holds). Its gradient sums each edge's value into its target's row and,
    through the transposed pattern, its source's row: no scatter."""
    wants_grad = torch.is_grad_enabled() and source_bias.requires_grad
    t_order, _, t_ptr = _transpose_if(wants_grad, graph)
    return edge_node_sum(target_bias, source_bias, graph.target_ptr, graph.source, t_order, t_ptr)


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
