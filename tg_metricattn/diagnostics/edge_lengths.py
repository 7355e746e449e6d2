"""Learned edge lengths of metric and L2 attention against the geometric lengths of a mesh.

For an edge ``j -> i`` (self-loops excluded) and head h:

- learned length   ``ℓ_ij = ‖y_i - y_j‖`` with ``y = embed(x)`` of the layer (f(x) for
  metric attention, W_q x for L2 attention; :class:`~tg_metricattn.layers.DistanceAttnConv`);
- geometric length ``g_ij = ‖pos_i - pos_j‖``;
- distortion ratio ``r_ij = ℓ_ij / g_ij``, summarised by mean, std, coefficient of
  variation, quantiles and the std of ``log r`` (0 for a similarity);
- conformal factor ``u`` [N]: least squares fit of ``log r_ij ≈ (u_i + u_j)/2``, i.e.
  ``ℓ_ij ≈ exp((u_i + u_j)/2) g_ij`` (a discrete conformal change of metric ``e^{2u} g``
  has length scale ``e^u``), solved with :func:`scipy.sparse.linalg.lsqr`. The share of
  ``Var(log r)`` it leaves unexplained, ``conformal_residual``, is 0 when the learned metric
  is conformal to the geometric one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import lsqr
from torch import Tensor

from tg_metricattn.layers import DistanceAttnConv

__all__ = [
    "DistortionStats",
    "conformal_factor",
    "distortion_stats",
    "geometric_edge_lengths",
    "layer_embedding",
    "learned_edge_lengths",
]

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def _edges(edge_index: Tensor) -> np.ndarray:
    edge_index = torch.as_tensor(edge_index)
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index must have shape [2, E]; got {tuple(edge_index.shape)}.")
    ei = edge_index.detach().cpu().numpy()
    return ei[:, ei[0] != ei[1]]


@torch.no_grad()
def layer_embedding(layer: DistanceAttnConv, x: Tensor) -> Tensor:
    """The embedding whose distances the layer's score uses, ``[N, heads, D]``."""
    if isinstance(layer, DistanceAttnConv):
        return layer.embed(x)
    raise ValueError(f"Learned edge lengths need a MetricAttnConv or L2AttnConv; got {type(layer).__name__}.")


@torch.no_grad()
def learned_edge_lengths(layer: DistanceAttnConv, x: Tensor, edge_index: Tensor) -> np.ndarray:
    """``‖y_i - y_j‖`` per edge (self-loops dropped, edge order kept) and head: ``[E', heads]``."""
    was_training = layer.training
    layer.eval()
    try:
        y = layer_embedding(layer, x).double().cpu().numpy()
    finally:
        layer.train(was_training)
    ei = _edges(edge_index)
    return np.linalg.norm(y[ei[1]] - y[ei[0]], axis=-1)


def geometric_edge_lengths(pos, edge_index: Tensor) -> np.ndarray:
    """``‖pos_i - pos_j‖`` per edge (self-loops dropped, edge order kept): ``[E']``."""
    pos = np.asarray(pos.detach().cpu().double().numpy() if isinstance(pos, Tensor) else pos, dtype=np.float64)
    ei = _edges(edge_index)
    if pos.ndim != 2 or (ei.size and ei.max() >= pos.shape[0]):
        raise ValueError(f"pos must have shape [N, d] covering every node of edge_index; got {pos.shape}.")
    return np.linalg.norm(pos[ei[1]] - pos[ei[0]], axis=-1)


@dataclass
class DistortionStats:
    """Summary of the ratios ``r = learned / geometric`` (module docstring)."""

    mean: float
    std: float
    cv: float
    log_std: float
    quantiles: dict[str, float]
    conformal_residual: float

    def to_dict(self) -> dict:
        return asdict(self)


def conformal_factor(learned: np.ndarray, geometric: np.ndarray, edge_index: Tensor, num_nodes: int):
    """Least-squares ``u`` [N] with ``log(learned/geometric) ≈ (u_i + u_j)/2`` and its unexplained share.

    Nodes without an edge get ``u = 0``. Returns ``(u, conformal_residual)`` where the
    residual is ``‖B u - log r‖² / ‖log r - mean(log r)‖²`` (``B`` the edge-node incidence
    with entries 1/2); 0 when the ratio is constant.
    """
    ei = _edges(edge_index)
    learned, geometric = np.asarray(learned, dtype=np.float64), np.asarray(geometric, dtype=np.float64)
    if learned.shape != geometric.shape or learned.shape[0] != ei.shape[1]:
        raise ValueError(
            f"learned {learned.shape} and geometric {geometric.shape} need one length per non-loop edge ({ei.shape[1]})"
        )
    ok = (learned > 0) & (geometric > 0)
    log_r = np.log(learned[ok] / geometric[ok])
    rows = np.repeat(np.arange(log_r.size), 2)
    cols = np.stack([ei[0, ok], ei[1, ok]], axis=1).ravel()
    B = sp.csr_matrix((np.full(rows.size, 0.5), (rows, cols)), shape=(log_r.size, num_nodes))
    u = lsqr(B, log_r, atol=1e-10, btol=1e-10, iter_lim=10 * num_nodes + 1000)[0]
    spread = float(np.sum((log_r - log_r.mean()) ** 2))
    # a (numerically) constant ratio is a similarity: nothing left to explain
    residual = float(np.sum((B @ u - log_r) ** 2)) / spread if spread > 1e-12 * log_r.size else 0.0
    return u, residual


def distortion_stats(learned: np.ndarray, geometric: np.ndarray, conformal_residual: float = float("nan")):
    """:class:`DistortionStats` of ``learned / geometric`` over the edges with positive lengths."""
    learned, geometric = np.asarray(learned, dtype=np.float64), np.asarray(geometric, dtype=np.float64)
    if learned.shape != geometric.shape:
        raise ValueError(f"learned {learned.shape} and geometric {geometric.shape} must have the same shape.")
    ok = (learned > 0) & (geometric > 0)
    if not ok.any():
        raise ValueError("No edge has positive learned and geometric length.")
    r = learned[ok] / geometric[ok]
    mean, std = float(r.mean()), float(r.std())
    return DistortionStats(
        mean=mean,
        std=std,
        cv=std / mean,
        log_std=float(np.log(r).std()),
        quantiles={f"q{int(q * 100):02d}": float(np.quantile(r, q)) for q in QUANTILES},
        conformal_residual=float(conformal_residual),
    )
