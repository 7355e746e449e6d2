"""Edge-masked softmax: normalise edge scores over each target node's incoming edges.

For target node i with incoming edges j -> i and scores s_ij (one per head),

    a_ij = exp(s_ij - m_i) / sum_k exp(s_ik - m_i),    m_i = max_k s_ik.

Subtracting the per-target maximum keeps every exponent <= 0 and at least one of them
equal to 0, so the denominator is >= 1: the result is finite for any finite scores and
no epsilon is needed. Targets without incoming edges simply receive no weights.

The backward pass uses only the output, da/ds applied to g being

    ds_ij = a_ij (g_ij - sum_k a_ik g_ik),

so a single E x H tensor (a) is kept for backward.

When the edges are sorted by target (the CSR order of the sparse-kernel path), both passes
run row by row in a C++ kernel on CPU (:func:`csr_softmax`; :mod:`cpu_kernels`): no
scatter and no gather, the same formulas.

With ``dtype`` the weights come out in that dtype: the maximum is subtracted in the
scores' own dtype, then ``s_ij - m_i`` is cast. Float64 squared-distance scores (finite
where their float32 values would overflow) thus give float32 weights, and only the float32
``a`` is kept for backward; the gradient goes back in the scores' dtype.
"""

from __future__ import annotations

import torch
from torch import Tensor

from tg_metricattn.layers import cpu_kernels


def _softmax_by_scatter(scores: Tensor, target: Tensor, num_targets: int, dtype: torch.dtype) -> Tensor:
    shape = (num_targets, *scores.shape[1:])
    index = target.view(-1, *([1] * (scores.dim() - 1))).expand_as(scores)
    row_max = scores.new_zeros(shape).scatter_reduce_(0, index, scores, "amax", include_self=False)
    weights = (scores - row_max.index_select(0, target)).to(dtype).exp_()
    row_sum = weights.new_zeros(shape).index_add_(0, target, weights)
    return weights.div_(row_sum.index_select(0, target))


def _softmax_backward_by_scatter(alpha: Tensor, grad_alpha: Tensor, target: Tensor, num_targets: int) -> Tensor:
    weighted = alpha * grad_alpha.to(alpha.dtype)
    row_dot = alpha.new_zeros((num_targets, *alpha.shape[1:])).index_add_(0, target, weighted)
    return weighted.sub_(alpha * row_dot.index_select(0, target))


class _EdgeSoftmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, scores: Tensor, target: Tensor, num_targets: int, dtype: torch.dtype) -> Tensor:
        alpha = _softmax_by_scatter(scores, target, num_targets, dtype)
        ctx.num_targets, ctx.scores_dtype = num_targets, scores.dtype
        ctx.save_for_backward(alpha, target)
        return alpha

    @staticmethod
    def backward(ctx, grad_alpha: Tensor):
        alpha, target = ctx.saved_tensors
        grad = _softmax_backward_by_scatter(alpha, grad_alpha, target, ctx.num_targets)
        return grad.to(ctx.scores_dtype), None, None, None


@torch.library.custom_op("tg_metricattn::csr_softmax", mutates_args=())
def csr_softmax(scores: Tensor, ptr: Tensor, target: Tensor) -> Tensor:
    """Softmax of ``scores`` ``[E, H]`` over the rows of a CSR pattern (edges sorted by target, ``ptr`` the
    row pointers, ``target`` the row of each edge): one pass per row by the C++ kernel on CPU, the
    scatter formula elsewhere. A torch custom op (``torch.compile`` keeps it whole)."""
    if cpu_kernels.applies_to(scores):
        return torch.ops.tg_metricattn_cpu.csr_softmax(scores, ptr)
    return _softmax_by_scatter(scores, target, ptr.numel() - 1, scores.dtype).contiguous()


@csr_softmax.register_fake
def _(scores: Tensor, ptr: Tensor, target: Tensor) -> Tensor:
    return scores.new_empty(scores.shape)


@torch.library.custom_op("tg_metricattn::csr_softmax_backward", mutates_args=())
def csr_softmax_backward(alpha: Tensor, grad: Tensor, ptr: Tensor, target: Tensor) -> Tensor:
    """``ds = a (g - sum_row a g)`` for :func:`csr_softmax`'s output ``alpha`` and incoming gradient ``grad``."""
    grad = grad.contiguous()
    if cpu_kernels.applies_to(alpha):
        return torch.ops.tg_metricattn_cpu.csr_softmax_backward(alpha, grad, ptr)
    return _softmax_backward_by_scatter(alpha, grad, target, ptr.numel() - 1).contiguous()


@csr_softmax_backward.register_fake
def _(alpha: Tensor, grad: Tensor, ptr: Tensor, target: Tensor) -> Tensor:
    return alpha.new_empty(alpha.shape)


def _csr_softmax_setup(ctx, inputs: tuple, output: Tensor) -> None:
    _, ptr, target = inputs
    ctx.save_for_backward(output, ptr, target)


def _csr_softmax_grad(ctx, grad: Tensor):
    alpha, ptr, target = ctx.saved_tensors
    return csr_softmax_backward(alpha, grad, ptr, target), None, None


csr_softmax.register_autograd(_csr_softmax_grad, setup_context=_csr_softmax_setup)


def edge_softmax(
    scores: Tensor, target: Tensor, num_targets: int, dtype: torch.dtype | None = None, ptr: Tensor | None = None
) -> Tensor:
    """Softmax of ``scores`` [E, H] over the edges that share a target node.

    Args:
        scores: edge scores s_ij, shape ``[E, H]`` (or ``[E]``).
        target: target node i of every edge, shape ``[E]``, values in ``[0, num_targets)``.
        num_targets: number of target nodes.
        dtype: dtype of the weights (default: that of ``scores``; see the module docstring).
        ptr: ``[num_targets + 1]`` row pointers when ``target`` is sorted (CSR order): the weights
            then come from :func:`csr_softmax`, one pass per target row (same values).

    Returns:
        a_ij with the shape of ``scores``; sums to 1 over each target's incoming edges.
    """
    dtype = scores.dtype if dtype is None else dtype
    if scores.numel() == 0:
        return scores.to(dtype)
    if ptr is not None and dtype == scores.dtype and scores.dim() == 2:
        return csr_softmax(scores, ptr, target)
    return _EdgeSoftmax.apply(scores, target, num_targets, dtype)


def log_partition(scores: Tensor, target: Tensor, num_targets: int) -> Tensor:
    """``log q_i = log sum_k exp(s_ik)`` over each target's incoming edges, ``[num_targets, H]``.

    The per-target maximum is subtracted before the exponential (and detached: the value,
    hence the gradient, does not depend on it). A target with edges has a sum >= 1 (its
    maximum contributes exp(0)); one without keeps maximum 0 and sum 0, clamped to 1: log q = 0.
    """
    shape = (num_targets, *scores.shape[1:])
    index = target.view(-1, *([1] * (scores.dim() - 1))).expand_as(scores)
    row_max = scores.detach().new_zeros(shape).scatter_reduce_(0, index, scores.detach(), "amax", include_self=False)
    shifted = (scores - row_max.index_select(0, target)).exp()
    return shifted.new_zeros(shape).index_add(0, target, shifted).clamp_min(1.0).log() + row_max
