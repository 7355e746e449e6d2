"""Edge scores written as products of per-node terms.

Every score in this package has the form

    s_ij = act( <q_i, k_j> + b_i + c_j )

with q, b computed once per target node i and k, c once per source node j:

- GAT:          q, k absent,  b_i = a_dst . W x_i,  c_j = a_src . W x_j,  act = LeakyReLU
- dot-product:  q_i = W_q x_i / sqrt(C),  k_j = W_k x_j
- squared distance -‖y_i - y_j‖² / t (L2 and metric attention): since ‖y_i‖² is the same
  for every edge into i it cancels in the softmax, leaving
  q_i = 2 y_i / t,  k_j = y_j,  c_j = -‖y_j‖² / t.

Only per-node tensors are formed; per edge there is one gather and one dot product.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor

from tg_metricattn.layers.csr_graph import CSRGraph
from tg_metricattn.layers.sparse_kernels import edge_dot


class ScoreTerms(NamedTuple):
    """Per-node pieces of s_ij = <query_i, key_j> + target_bias_i + source_bias_j."""

    query: Tensor | None = None  # [N_dst, H, D]
    key: Tensor | None = None  # [N_src, H, D]
    target_bias: Tensor | None = None  # [N_dst, H]
    source_bias: Tensor | None = None  # [N_src, H]


def edge_scores(terms: ScoreTerms, source: Tensor, target: Tensor, csr_graph: CSRGraph | None = None) -> Tensor:
    """Evaluate s_ij = <q_i, k_j> + b_i + c_j on the edges ``source[e] -> target[e]``.

    With ``csr_graph`` (whose target-major edges must be ``source``/``target``) the dot
    products come from a sampled sparse product that keeps no per-edge features;
    otherwise from gathered rows. Returns a tensor of shape ``[E, H]``.
    """
    score: Tensor | None = None
    if terms.query is not None and terms.key is not None:
        if csr_graph is not None:
            score = edge_dot(terms.query, terms.key, csr_graph)
        else:
            score = (terms.query.index_select(0, target) * terms.key.index_select(0, source)).sum(-1)
    for bias, index in ((terms.target_bias, target), (terms.source_bias, source)):
        if bias is not None:
            gathered = bias.index_select(0, index)
            score = gathered if score is None else score + gathered
    if score is None:
        raise ValueError("ScoreTerms must define a query/key pair or at least one bias.")
    return score


def squared_distance_terms(y_dst: Tensor, y_src: Tensor, time_scale: Tensor | float) -> ScoreTerms:
    """Terms of the Gaussian-kernel score s_ij = -‖y_i - y_j‖² / t, up to a per-target constant.

    Uses ‖y_i - y_j‖² = ‖y_i‖² - 2 <y_i, y_j> + ‖y_j‖² and drops ‖y_i‖², which is constant
    over the edges into i and cancels in the softmax. Each score depends on y_i and y_j
    alone (no statistic over other nodes), so a node's attention depends only on its
    in-neighbourhood. The expansion loses ``eps · ‖y‖² / t`` to cancellation, so the terms
    and scores are float64 whatever the input dtype (the layer shifts the scores by each
    target's maximum before casting them back for the softmax):
    ``eps = 1.1e-16`` keeps the scores of embeddings up to 1e4 as accurate as the direct
    float32 formula, and squares of embeddings up to 1e150 finite.

    Args:
        y_dst: target embeddings ``[N_dst, H, D]``.
        y_src: source embeddings ``[N_src, H, D]``.
        time_scale: t > 0 per head, shape ``[H]`` (or a scalar).
    """
    y_dst, y_src = y_dst.double(), y_src.double()
    if isinstance(time_scale, Tensor):  # one t per head: [H] -> [H, 1], broadcast over [N, H, D]
        inv_t = time_scale.double().reciprocal().reshape(-1, 1)
        inv_t_per_head = inv_t.view(-1)
    else:
        inv_t = inv_t_per_head = 1.0 / time_scale
    return ScoreTerms(
        query=2.0 * y_dst * inv_t,
        key=y_src,
        source_bias=-(y_src * y_src).sum(-1) * inv_t_per_head,
    )
