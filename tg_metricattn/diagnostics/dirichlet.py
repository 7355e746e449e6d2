"""Dirichlet energy of node features (oversmoothing).

For features ``X`` [N, C] on a graph with adjacency ``A`` (``A[i, j] = 1`` for an edge
``j -> i``, self-loops dropped, duplicates counted) and degrees ``D = diag(A 1)``:

- unnormalised: ``E(X) = tr(X^T (D - A) X)`` (``= 1/2 sum_{ij} A_ij ‖x_i - x_j‖²`` when A is symmetric);
- normalised:   ``E_sym(X) = tr(X^T (I - D^{-1/2} A D^{-1/2}) X)``
  (``= 1/2 sum_{ij} A_ij ‖x_i/√d_i - x_j/√d_j‖²`` for symmetric A);
- Rayleigh quotient ``E_sym(X) / ‖X‖_F²`` in ``[0, 2]``: 0 when every channel is a multiple
  of ``D^{1/2} 1`` (oversmoothed), scale free.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from tg_metricattn.diagnostics._validation import as_signals
from tg_metricattn.diagnostics.laplacians import ReferenceLaplacian, graph_laplacian

__all__ = ["dirichlet_energies", "dirichlet_energy"]


def dirichlet_energy(x, laplacian: ReferenceLaplacian) -> float:
    """``tr(X^T L X)`` for features ``X`` [N, C] and a Laplacian ``L`` [N, N]."""
    X = as_signals(x, laplacian.num_nodes, "x")
    return float(np.sum(X * (laplacian.matrix @ X)))


def dirichlet_energies(x, edge_index: Tensor, num_nodes: int | None = None) -> dict[str, float]:
    """``{"unnormalized", "normalized", "rayleigh"}`` energies of ``x`` (module docstring)."""
    num_nodes = int(x.shape[0]) if num_nodes is None else num_nodes
    X = as_signals(x, num_nodes, "x")
    unnormalized = dirichlet_energy(X, graph_laplacian(edge_index, num_nodes, "combinatorial"))
    normalized = dirichlet_energy(X, graph_laplacian(edge_index, num_nodes, "sym"))
    norm2 = float(np.sum(X * X))
    return {
        "unnormalized": unnormalized,
        "normalized": normalized,
        "rayleigh": normalized / norm2 if norm2 > 0 else 0.0,
    }
