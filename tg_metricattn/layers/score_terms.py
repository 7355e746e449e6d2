"""Edge scores written with per-node terms.

Every score in this package has the form

    s_ij = act( <q_i, k_j> + b_i + c_j - ‖p_i - p_j‖² / t + e_ij )

with q, b, p_i computed once per target node i and k, c, p_j once per source node j:

- GAT:          b_i = a_dst . W x_i,  c_j = a_src . W x_j,  act = LeakyReLU
- dot-product:  q_i = W_q x_i / sqrt(C),  k_j = W_k x_j
- squared distance -‖y_i - y_j‖² / t (L2 and metric attention): p = y, one t per head;
- edge features: e_ij, one term per edge and head (computed by the layer);
- GATv2: a . LeakyReLU(W_t x_i + W_s x_j [+ W_e e_ij]), evaluated edge-chunk by edge-chunk.

Per edge there is one gather and one dot product, or (squared distance) one difference,
in chunks of edges: no ``E x H x D`` tensor is ever whole. On the sparse-kernel path on CPU
the squared distance is the direct formula in one C++ pass over the edges (differences in
the points' dtype, squares summed in float64: no cancellation). Elsewhere on that path it
is the expansion ‖y_i‖² - 2 <y_i, y_j> + ‖y_j‖² (one sampled product)
on the edges where its cancellation costs at most ``EXPANSION_BITS_LOST`` bits, and the
direct formula on the others (self-loops, near-duplicates, points far from the origin
against their spacing): each score still depends on y_i and y_j alone, with no centre
shared by all nodes. Where a float32 score would overflow, or off that path, the direct
formula is summed in float64 (in eager mode only: under ``torch.compile`` such scores stay
infinite, as they would in PyG's layers).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from tg_metricattn.layers import cpu_kernels
from tg_metricattn.layers.csr_graph import CSRGraph
from tg_metricattn.layers.sparse_kernels import (
    edge_additive_score,
    edge_bias_sum,
    edge_dot,
    edge_squared_distance,
    edge_squared_distance_direct,
    edge_squared_distance_sampled,
)


class AdditiveTerms(NamedTuple):
    """GATv2's score a . LeakyReLU(dst_i + src_j [+ W_e e_ij]): node pieces, the vector a, the slope,
    and (with edge features) the features ``[E, D]`` in the order of the edges scored and W_e ``[H C, D]``."""

    dst: Tensor  # [N_dst, H, C]
    src: Tensor  # [N_src, H, C]
    att: Tensor  # [H, C]
    negative_slope: float
    edge_attr: Tensor | None = None
    edge_weight: Tensor | None = None


class ScoreTerms(NamedTuple):
    """Per-node pieces of s_ij = <query_i, key_j> + target_bias_i + source_bias_j - ‖p_i - p_j‖² / t."""

    query: Tensor | None = None  # [N_dst, H, D]
    key: Tensor | None = None  # [N_src, H, D]
    target_bias: Tensor | None = None  # [N_dst, H]
    source_bias: Tensor | None = None  # [N_src, H]
    points_dst: Tensor | None = None  # [N_dst, H, D]
    points_src: Tensor | None = None  # [N_src, H, D]
    inv_time: Tensor | float = 1.0  # 1 / t, per head [H] or a scalar
    edge_bias: Tensor | None = None  # [E, H], one term per edge, in the order of the edges scored
    additive: AdditiveTerms | None = None  # GATv2's score


def edge_scores(terms: ScoreTerms, source: Tensor, target: Tensor, csr_graph: CSRGraph | None = None) -> Tensor:
    """Evaluate s_ij = <q_i, k_j> + b_i + c_j - ‖p_i - p_j‖² / t on the edges ``source[e] -> target[e]``.

    With ``csr_graph`` (whose target-major edges must be ``source``/``target``) the dot
    products come from a sampled sparse product that keeps no per-edge features;
    otherwise from gathered rows. Returns a tensor of shape ``[E, H]`` (float64 only when a
    squared distance would overflow the points' dtype, see :func:`_scaled_squared_distance`).
    """
    score: Tensor | None = None
    if terms.query is not None and terms.key is not None:
        if csr_graph is not None:
            score = edge_dot(terms.query, terms.key, csr_graph)
        else:
            score = (terms.query.index_select(0, target) * terms.key.index_select(0, source)).sum(-1)
    if terms.points_dst is not None and terms.points_src is not None:
        distance = _scaled_squared_distance(terms, source, target, csr_graph)
        score = -distance if score is None else score - distance
    both_biases = terms.target_bias is not None and terms.source_bias is not None
    if csr_graph is not None and both_biases and cpu_kernels.applies_to(terms.target_bias):
        summed = edge_bias_sum(terms.target_bias, terms.source_bias, csr_graph)  # one C++ pass, no scatter back
        score = summed if score is None else score + summed
    else:
        for bias, index in ((terms.target_bias, target), (terms.source_bias, source)):
            if bias is not None:
                gathered = bias.index_select(0, index)
                score = gathered if score is None else score + gathered
    if terms.edge_bias is not None:
        score = terms.edge_bias if score is None else score + terms.edge_bias
    if terms.additive is not None:
        a = terms.additive
        added = edge_additive_score(a.dst, a.src, a.att, source, target, a.negative_slope, a.edge_attr, a.edge_weight)
        score = added if score is None else score + added
    if score is None:
        raise ValueError("ScoreTerms must define a query/key pair, a pair of points or at least one bias.")
    return score


def _scaled_squared_distance(terms: ScoreTerms, source: Tensor, target: Tensor, csr_graph: CSRGraph | None) -> Tensor:
    """‖p_i - p_j‖² / t per edge: sampled on the CSR path, in float64 where that overflows or without it."""
    inv_t = terms.inv_time
    if csr_graph is not None:
        scale = inv_t.to(terms.points_dst.dtype) if isinstance(inv_t, Tensor) else inv_t
        kernel = (
            edge_squared_distance_direct if cpu_kernels.applies_to(terms.points_dst) else edge_squared_distance_sampled
        )
        distance = kernel(terms.points_dst, terms.points_src, csr_graph) * scale
        if torch.compiler.is_compiling() or bool(torch.isfinite(distance).all()):
            return distance  # compiled: no data-dependent fallback (overflowing distances stay infinite)
    scale = inv_t.double() if isinstance(inv_t, Tensor) else inv_t
    return edge_squared_distance(terms.points_dst, terms.points_src, source, target) * scale


def squared_distance_terms(y_dst: Tensor, y_src: Tensor, time_scale: Tensor | float) -> ScoreTerms:
    """Terms of the Gaussian-kernel score s_ij = -‖y_i - y_j‖² / t (module docstring).

    Each score depends on y_i and y_j alone, so a node's attention depends only on its
    in-neighbourhood; distances come in the embeddings' dtype, with a relative error of at
    most ``(D + 3) eps 2^EXPANSION_BITS_LOST`` (module docstring), or in float64 where that
    dtype would overflow (finite for float32 embeddings up to 1e150); the edge softmax
    subtracts each target's maximum and gives the weights in the values' dtype.

    Args:
        y_dst: target embeddings ``[N_dst, H, D]``.
        y_src: source embeddings ``[N_src, H, D]``.
        time_scale: t > 0 per head, shape ``[H]`` (or a scalar).
    """
    inv_t = time_scale.reciprocal() if isinstance(time_scale, Tensor) else 1.0 / time_scale
    return ScoreTerms(points_dst=y_dst, points_src=y_src, inv_time=inv_t)
