"""Reversibility of a propagation matrix: the stationary distribution and the drift share.

The stationary distribution ``π`` solves ``π^T P = π^T``, ``π >= 0``, ``sum π = 1``. The
probability flux ``F = diag(π) P`` (``F_ij`` = flow from i to j in one step of the chain
``P``) is symmetric exactly when the chain is reversible (detailed balance), as a pure
diffusion is. With ``F°`` the flux without its diagonal (self-loops are always balanced),
the *drift share* is

    drift_share = ‖F° - F°^T‖_F / ‖F° + F°^T‖_F   ∈ [0, 1]        (F° >= 0)

0 for a reversible chain, 1 for flow that only ever goes one way along each edge.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import ArpackNoConvergence, eigs
from scipy.sparse.linalg import norm as sparse_norm

from tg_metricattn.diagnostics._validation import as_signals, as_square_csr
from tg_metricattn.diagnostics.spectra import arnoldi_size

__all__ = ["drift_share", "stationary_distribution"]

#: classes up to this many states get a dense eigendecomposition (ARPACK needs more states than vectors)
DENSE_STATES = 200


def _irreducible_stationary(P: sp.csr_matrix, tol: float, max_iter: int) -> np.ndarray:
    """``π`` of an irreducible chain: dense eigenvectors up to 200 states; ARPACK on ``P^T`` beyond
    (eigenvalue 1 is simple), else power iteration."""
    n = P.shape[0]
    if n <= DENSE_STATES:
        values, vectors = np.linalg.eig(P.toarray().T)
        pi = np.abs(vectors[:, np.argmin(np.abs(values - 1))].real)
        return pi / pi.sum()
    PT = sp.csr_matrix(P.T)
    start = np.asarray(P.sum(axis=0)).ravel() + 1e-12
    start /= start.sum()
    pi = None
    try:
        _, vec = eigs(PT, k=1, which="LR", v0=start, tol=tol, maxiter=max(1000, 10 * n), ncv=arnoldi_size(1, n))
        pi = np.abs(vec[:, 0].real)
    except (ArpackNoConvergence, RuntimeError):
        pi = None
    if pi is None or not np.isfinite(pi).all() or pi.sum() == 0:
        pi = start
        for _ in range(max_iter):
            new = PT @ pi
            new /= new.sum()
            if np.abs(new - pi).sum() < tol:
                pi = new
                break
            pi = new
    return pi / pi.sum()


def stationary_distribution(P, tol: float = 1e-10, max_iter: int = 10_000) -> np.ndarray:
    """``π`` with ``π^T P = π^T``, ``π >= 0``, ``sum π = 1``.

    Per closed communicating class (a strongly connected component of the pattern of ``P``
    that no transition leaves): its own stationary distribution, from a dense
    eigendecomposition up to :data:`DENSE_STATES` states, else ARPACK (``eigs`` on its block
    of ``P^T``, started from the column sums) or power iteration if that fails;
    the classes are weighted by their sizes and transient nodes get 0. A mesh of several
    components is several classes: one at a time, eigenvalue 1 is simple and ARPACK
    converges fast, where on the whole matrix it is repeated and ARPACK crawls.
    """
    P = as_square_csr(P, "P")
    n = P.shape[0]
    count, label = connected_components(P, directed=True, connection="strong")
    pattern = P.tocoo()
    leaving = label[pattern.row] != label[pattern.col]
    open_classes = np.unique(label[pattern.row[leaving & (pattern.data != 0)]])
    pi = np.zeros(n)
    for c in np.setdiff1d(np.arange(count), open_classes):
        members = np.flatnonzero(label == c)
        block = P[members][:, members]
        pi[members] = members.size * _irreducible_stationary(sp.csr_matrix(block), tol, max_iter)
    return pi / pi.sum()


def drift_share(P, pi=None) -> float:
    """``‖F° - F°^T‖_F / ‖F° + F°^T‖_F`` with ``F° = diag(π) P`` off the diagonal (module docstring)."""
    P = as_square_csr(P, "P")
    pi = stationary_distribution(P) if pi is None else as_signals(pi, P.shape[0], "pi")[:, 0]
    F = sp.csr_matrix(sp.diags(pi) @ P)
    F.setdiag(0)
    F.eliminate_zeros()
    total = sparse_norm(F + F.T)
    return float(sparse_norm(F - F.T) / total) if total > 0 else 0.0
