"""Edge-masked softmax: normalise edge scores over each target node's incoming edges.

For target node i with incoming edges j -> i and scores s_ij (one per head),

    a_ij = exp(s_ij - m_i) / sum_k exp(s_ik - m_i),    m_i = max_k s_ik.

Subtracting the per-target maximum keeps every exponent <= 0 and at least one of them
equal to 0, so the denominator is >= 1: the result is finite for any finite scores and
no epsilon is needed. Targets without incoming edges simply receive no weights.

The backward pass uses only the output, da/ds applied to g being

    ds_ij = a_ij (g_ij - sum_k a_ik g_ik),

so a single E x H tensor (a) is kept for backward.

With ``dtype`` the weights come out in that dtype: the maximum is subtracted in the
scores' own dtype, then ``s_ij - m_i`` is cast. Float64 squared-distance scores (finite
where their float32 values would overflow) thus give float32 weights, and only the float32
``a`` is kept for backward; the gradient goes back in the scores' dtype.
"""

from __future__ import annotations

import torch
from torch import Tensor


class _EdgeSoftmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, scores: Tensor, target: Tensor, num_targets: int, dtype: torch.dtype) -> Tensor:
        shape = (num_targets, *scores.shape[1:])
        index = target.view(-1, *([1] * (scores.dim() - 1))).expand_as(scores)
        row_max = scores.new_zeros(shape).scatter_reduce_(0, index, scores, "amax", include_self=False)
        weights = (scores - row_max.index_select(0, target)).to(dtype).exp_()
        row_sum = weights.new_zeros(shape).index_add_(0, target, weights)
        alpha = weights.div_(row_sum.index_select(0, target))
        ctx.num_targets, ctx.scores_dtype = num_targets, scores.dtype
        ctx.save_for_backward(alpha, target)
        return alpha

    @staticmethod
    def backward(ctx, grad_alpha: Tensor):
        alpha, target = ctx.saved_tensors
        weighted = alpha * grad_alpha.to(alpha.dtype)
        shape = (ctx.num_targets, *alpha.shape[1:])
        row_dot = alpha.new_zeros(shape).index_add_(0, target, weighted)
        return weighted.sub_(alpha * row_dot.index_select(0, target)).to(ctx.scores_dtype), None, None, None


def edge_softmax(scores: Tensor, target: Tensor, num_targets: int, dtype: torch.dtype | None = None) -> Tensor:
    """Softmax of ``scores`` [E, H] over the edges that share a target node.

    Args:
        scores: edge scores s_ij, shape ``[E, H]`` (or ``[E]``).
        target: target node i of every edge, shape ``[E]``, values in ``[0, num_targets)``.
        num_targets: number of target nodes.
        dtype: dtype of the weights (default: that of ``scores``; see the module docstring).

    Returns:
        a_ij with the shape of ``scores``; sums to 1 over each target's incoming edges.
    """
    dtype = scores.dtype if dtype is None else dtype
    if scores.numel() == 0:
        return scores.to(dtype)
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
