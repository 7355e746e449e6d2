"""Edge-masked softmax: normalise edge scores over each target node's incoming edges.

For target node i with incoming edges j -> i and scores s_ij (one per head),

    a_ij = exp(s_ij - m_i) / sum_k exp(s_ik - m_i),    m_i = max_k s_ik.

Subtracting the per-target maximum keeps every exponent <= 0 and at least one of them
equal to 0, so the denominator is >= 1: the result is finite for any finite scores and
no epsilon is needed. Targets without incoming edges simply receive no weights.

The backward pass uses only the output, da/ds applied to g being

    ds_ij = a_ij (g_ij - sum_k a_ik g_ik),

so a single E x H tensor (a) is kept for backward.
"""

from __future__ import annotations

import torch
from torch import Tensor


class _EdgeSoftmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, scores: Tensor, target: Tensor, num_targets: int) -> Tensor:
        shape = (num_targets, *scores.shape[1:])
        index = target.view(-1, *([1] * (scores.dim() - 1))).expand_as(scores)
        row_max = scores.new_zeros(shape).scatter_reduce_(0, index, scores, "amax", include_self=False)
        weights = (scores - row_max.index_select(0, target)).exp_()
        row_sum = scores.new_zeros(shape).index_add_(0, target, weights)
        alpha = weights.div_(row_sum.index_select(0, target))
        ctx.num_targets = num_targets
        ctx.save_for_backward(alpha, target)
        return alpha

    @staticmethod
    def backward(ctx, grad_alpha: Tensor):
        alpha, target = ctx.saved_tensors
        weighted = alpha * grad_alpha
        shape = (ctx.num_targets, *alpha.shape[1:])
        row_dot = alpha.new_zeros(shape).index_add_(0, target, weighted)
        return weighted.sub_(alpha * row_dot.index_select(0, target)), None, None


def shift_by_target_max(scores: Tensor, target: Tensor, num_targets: int) -> Tensor:
    """``s_ij - max_k s_ik``: the scores relative to each target's largest, which the softmax ignores.

    The maximum is taken without gradient (the softmax is invariant to a per-target shift,
    so the gradient is exact). Float64 squared-distance scores of size ``‖y‖²`` come out of
    size ``‖y_i - y_j‖²`` and can then be cast to float32 without losing their differences.
    """
    if scores.numel() == 0:
        return scores
    with torch.no_grad():
        index = target.view(-1, *([1] * (scores.dim() - 1))).expand_as(scores)
        shape = (num_targets, *scores.shape[1:])
        row_max = scores.new_zeros(shape).scatter_reduce_(0, index, scores, "amax", include_self=False)
    return scores - row_max.index_select(0, target)


def edge_softmax(scores: Tensor, target: Tensor, num_targets: int) -> Tensor:
    """Softmax of ``scores`` [E, H] over the edges that share a target node.

    Args:
        scores: edge scores s_ij, shape ``[E, H]`` (or ``[E]``).
        target: target node i of every edge, shape ``[E]``, values in ``[0, num_targets)``.
        num_targets: number of target nodes.

    Returns:
        a_ij with the shape of ``scores``; sums to 1 over each target's incoming edges.
    """
    if scores.numel() == 0:
        return scores
    return _EdgeSoftmax.apply(scores, target, num_targets)
