"""The density drift of a propagation: how much of the sampling density's pull it keeps.

A kernel K with row sums q (a kernel estimate of the sampling density p), density-normalised
with exponent α and row-normalised, has the limit generator Δ + 2(1 − α) ∇log p · ∇
(``../shared/DESIGN.md`` §2c): a reversible drift up the potential Φ = 2(1 − α) log p. The
chain's stationary distribution π says where the drift leads: for a symmetric kernel
π_i ∝ q_i^{-α} Σ_j K_ij q_j^{-α} exactly, so the continuous stationary density π_i q_i (π per
sample, times the samples per volume) is q_i^{2(1 − α)} to first order. The *density drift
share* is the least-squares slope of that potential on twice the log density,

    Φ_i = log π_i + log q_i,      density_drift_share = cov(Φ, log q) / (2 var(log q)),

over the nodes with π_i > 0, both centred in each closed class of P (π's factor per class is
arbitrary: on a graph of several components the classes are weighted by their sizes). It is
1 − α in the limit (exactly 1 at α = 0 for a symmetric kernel): 1 for attention as it is,
0 once α = 1 has removed the density. The reversibility drift share
(:mod:`~tg_metricattn.diagnostics.reversibility`) cannot see this drift, since it is
reversible; this number does, given the layer's own q
(:meth:`~tg_metricattn.layers.AttentionConv.kernel_log_partition`).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.sparse.csgraph import connected_components
from torch import Tensor

from tg_metricattn.diagnostics._validation import as_signals, as_square_csr
from tg_metricattn.diagnostics.reversibility import stationary_distribution
from tg_metricattn.layers import AttentionConv

__all__ = ["density_drift_share", "layer_log_partition"]

#: below this variance of log q (over the nodes kept) the density is uniform and the share undefined
UNIFORM_DENSITY_VARIANCE = 1e-12


def density_drift_share(P, log_q, pi=None) -> float | None:
    """``cov(Φ, log q) / (2 var(log q))`` with ``Φ = log π + log q`` (module docstring).

    Args:
        P: row-stochastic ``[N, N]`` propagation (scipy, torch or numpy).
        log_q: ``[N]`` the log kernel mass of each node's incoming edges.
        pi: ``P``'s stationary distribution, if already computed.

    Returns:
        The share, or ``None`` where log q is constant over each closed class of the nodes with
        π > 0 (no density to drift to).
    """
    P = as_square_csr(P, "P")
    log_q = as_signals(log_q, P.shape[0], "log_q")[:, 0]
    if not np.isfinite(log_q).all():
        raise ValueError("log_q must be finite; got NaN or infinite values.")
    pi = stationary_distribution(P) if pi is None else as_signals(pi, P.shape[0], "pi")[:, 0]
    keep = np.flatnonzero(pi > 0)
    if keep.size < 2:
        return None
    # π is fixed only up to a factor per closed class: the potential and the density are centred per class
    _, label = connected_components(P[keep][:, keep], directed=False)
    density = _centred(log_q[keep], label)
    potential = _centred(np.log(pi[keep]) + log_q[keep], label)
    variance = float(density @ density) / keep.size
    if variance < UNIFORM_DENSITY_VARIANCE:
        return None
    return float(potential @ density) / keep.size / (2 * variance)


def _centred(values: np.ndarray, label: np.ndarray) -> np.ndarray:
    """``values`` minus their mean over each label's nodes."""
    sums = np.bincount(label, weights=values)
    return values - (sums / np.bincount(label))[label]


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
