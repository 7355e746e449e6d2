"""Input checks shared by the diagnostics (clear ``ValueError`` messages, scikit-learn style)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch


def as_square_csr(matrix, name: str) -> sp.csr_matrix:
    """A float64 CSR copy of a square scipy/torch/numpy matrix, or a ``ValueError``."""
    if isinstance(matrix, torch.Tensor):
        if matrix.is_sparse or matrix.layout != torch.strided:
            coo = matrix.detach().cpu().to_sparse_coo().coalesce()
            index = coo.indices().numpy()
            matrix = sp.coo_matrix((coo.values().double().numpy(), (index[0], index[1])), shape=tuple(coo.shape))
        else:
            matrix = matrix.detach().cpu().double().numpy()
    if not sp.issparse(matrix):
        matrix = np.asarray(matrix, dtype=np.float64)
        if matrix.ndim != 2:
            raise ValueError(f"{name} must be a 2-D matrix; got an array of shape {matrix.shape}.")
    if matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"{name} must be square; got shape {tuple(matrix.shape)}.")
    return sp.csr_matrix(matrix, dtype=np.float64, copy=True)  # a float64 CSR input is not shared


def same_size(a: sp.spmatrix, b: sp.spmatrix, name_a: str, name_b: str) -> None:
    """Raise a ``ValueError`` unless the two square matrices have the same size."""
    if a.shape != b.shape:
        raise ValueError(f"{name_a} {tuple(a.shape)} and {name_b} {tuple(b.shape)} must have the same shape.")


def as_signals(x, num_nodes: int, name: str = "X") -> np.ndarray:
    """Signals as a float64 array ``[N, K]`` (a vector becomes one column)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] != num_nodes:
        raise ValueError(f"{name} must have shape [{num_nodes}, K] (one row per node); got {x.shape}.")
    return x
