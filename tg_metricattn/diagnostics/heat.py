"""The heat operator ``H_t = exp(-t L)`` applied to signals, never formed as a dense matrix.

``heat_apply(L, X, t)`` returns ``exp(-t L) X`` with :func:`scipy.sparse.linalg.expm_multiply`
(a truncated Taylor series with scaling, Al-Mohy & Higham 2011): only sparse
matrix-vector products with ``L``, cost ``O(nnz(L) · K · (1 + t ‖L‖_1))`` for ``K`` signals.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import expm_multiply

from tg_metricattn.diagnostics._validation import as_signals, as_square_csr
from tg_metricattn.diagnostics.laplacians import ReferenceLaplacian

__all__ = ["heat_apply"]


def heat_apply(laplacian: ReferenceLaplacian | sp.spmatrix, signals, t: float) -> np.ndarray:
    """``exp(-t L) X`` for signals ``X`` [N] or [N, K] and a time ``t >= 0``.

    Args:
        laplacian: a :class:`ReferenceLaplacian` or a sparse square matrix ``L``.
        signals: ``X`` (numpy or torch), one row per node.
        t: diffusion time.

    Returns:
        ``[N, K]`` float64 array (a vector input gives one column).
    """
    L = laplacian.matrix if isinstance(laplacian, ReferenceLaplacian) else as_square_csr(laplacian, "L")
    X = as_signals(signals, L.shape[0])
    t = float(t)
    if not np.isfinite(t) or t < 0:
        raise ValueError(f"t must be a finite number >= 0; got {t!r}.")
    if t == 0:
        return X.copy()
    return np.asarray(expm_multiply(-t * L, X, traceA=-t * float(L.diagonal().sum())))
