"""Edge-masked softmax: normalise edge scores over each target node's incoming edges.

For target node i with incoming edges j -> i and scores s_ij (one per head),

    a_ij = exp(s_ij - m_i) / sum_k exp(s_ik - m_i),    m_i = max_k s_ik.

Subtracting the per-target maximum keeps every exponent <= 0 and at least one of them
equal to 0, so the denominator is >= 1: the result is finite for any finite scores and
no epsilon is needed. Targets without incoming edges simply receive no weights.
"""

from __future__ import annotations

from torch import Tensor


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
    index = target.view(-1, *([1] * (scores.dim() - 1))).expand_as(scores)
    shape = (num_targets, *scores.shape[1:])
    # The shift m_i does not change the softmax, so it carries no gradient.
    row_max = scores.detach().new_full(shape, float("-inf"))
    row_max = row_max.scatter_reduce(0, index, scores.detach(), reduce="amax")
    weights = (scores - row_max.gather(0, index)).exp()
    row_sum = weights.new_zeros(shape).scatter_add(0, index, weights)
    return weights / row_sum.gather(0, index)
