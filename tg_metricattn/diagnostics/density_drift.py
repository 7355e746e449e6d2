"""The density drift of a propagation: how much of the sampling density's pull it keeps.

A kernel K with row sums q (a kernel estimate of the sampling density p), density-normalised
with exponent α and row-normalised, has the limit generator Δ + 2(1 − α) ∇log p · ∇
(``../shared/DESIGN.md`` §2c): a reversible drift up the potential Φ = 2(1 − α) log p. Where
the drift leads is the chain's stationary density per volume, π_i q_i (π per sample, times the
samples per volume), so Φ = log π + log q; and for a reversible chain detailed balance gives
its differences along every edge without solving for π: Φ_j − Φ_i = log(P_ij / P_ji) +
log q_j − log q_i. The *density drift share* is the least-squares slope of those differences
on twice the differences of log density, over the pairs i ≠ j with P_ij > 0 and P_ji > 0:

    ΔΦ_ij = log(P_ij / P_ji) + Δℓ_ij,   Δℓ_ij = log q_j − log q_i,
    density_drift_share = Σ ΔΦ_ij Δℓ_ij / (2 Σ Δℓ_ij²).

For a symmetric kernel it is exactly 1 at α = 0 (P_ij / P_ji = q_j / q_i), and 1 − α in the
limit of points on a manifold: 1 for attention as it is, 0 once α = 1 has removed the
density. On a graph, whose "density" q jumps from node to node, α = 1 removes less (with
uniform scores and neighbour degrees unrelated to a node's own, 1 − α/2). For a chain that is
not reversible (GAT's scores) it is the slope of the gradient part of log(P_ij / P_ji). The
reversibility drift share (:mod:`~tg_metricattn.diagnostics.reversibility`) cannot see this
drift, since it is reversible; this number does, given the layer's own q
(:meth:`~tg_metricattn.layers.AttentionConv.kernel_log_partition`). It needs no stationary
distribution, so it is as exact on sharp attention, whose chain splits into nearly closed
pieces, as on a diffusion.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from tg_metricattn.diagnostics._validation import as_signals, as_square_csr
from tg_metricattn.layers import AttentionConv

__all__ = ["density_drift_share", "layer_log_partition"]

#: below this mean square of the differences of log q (over the pairs used) the density is uniform and the
#: share undefined
UNIFORM_DENSITY_SPREAD = 1e-12


def density_drift_share(P, log_q) -> float | None:
    """``Σ ΔΦ_ij Δℓ_ij / (2 Σ Δℓ_ij²)`` over the pairs with ``P_ij, P_ji > 0`` (module docstring).

    Args:
        P: row-stochastic ``[N, N]`` propagation (scipy, torch or numpy).
        log_q: ``[N]`` the log kernel mass of each node's incoming edges.

    Returns:
        The share, or ``None`` where no pair has transitions both ways or log q is the same at
        both ends of every such pair (no density to drift to).
    """
    P = as_square_csr(P, "P")
    log_q = as_signals(log_q, P.shape[0], "log_q")[:, 0]
    if not np.isfinite(log_q).all():
        raise ValueError("log_q must be finite; got NaN or infinite values.")
    if (P.data < 0).any() or not np.isfinite(P.data).all():
        raise ValueError("P must be finite and nonnegative (a propagation matrix); got negative, NaN or inf entries.")
    P.eliminate_zeros()  # a weight that underflowed to 0 is no transition
    both_ways = sp.triu(P.multiply(P.T > 0), k=1).tocoo()  # each pair once, i < j
    i, j = both_ways.row, both_ways.col
    density = log_q[j] - log_q[i]
    spread = float(density @ density)
    if spread < UNIFORM_DENSITY_SPREAD * max(i.size, 1):
        return None
    forward = np.asarray(P[i, j]).ravel()
    backward = np.asarray(P[j, i]).ravel()
    potential = np.log(forward) - np.log(backward) + density
    return float(potential @ density) / (2 * spread)


@torch.no_grad()
def layer_log_partition(layer: AttentionConv, x: Tensor, edge_index, edge_attr=None) -> np.ndarray:
    """``[N, heads]`` float64: ``log q`` of every head of ``layer`` on its input, in eval mode
    (the training flag is restored afterwards)."""
    if not isinstance(layer, AttentionConv):
        raise ValueError(f"layer must be an AttentionConv; got {type(layer).__name__}.")
    was_training = layer.training
    layer.eval()
    try:
        log_q = layer.kernel_log_partition(x, edge_index, edge_attr)
    finally:
        layer.train(was_training)
    return log_q.detach().cpu().double().reshape(log_q.size(0), -1).numpy()
