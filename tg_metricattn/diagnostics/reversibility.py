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

import warnings

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import ArpackNoConvergence, MatrixRankWarning, eigs, spsolve
from scipy.sparse.linalg import norm as sparse_norm

from tg_metricattn.diagnostics._validation import as_signals, as_square_csr

__all__ = ["NEGLIGIBLE_TRANSITION", "drift_share", "stationary_distribution"]

#: classes up to this many states get a dense eigendecomposition, larger ones a sparse solver
DENSE_STATES = 200
#: restarts of the Arnoldi solve for the Perron vector before the sparse LU takes over, and its basis size
#: (20 vectors did not converge in 200 restarts on a 1M-node kNN chain; 40 did, in 107 s of one core)
ARNOLDI_RESTARTS = 300
ARNOLDI_VECTORS = 40


def _irreducible_stationary(P: sp.csr_matrix, tol: float, max_iter: int, lu_limit: int | None) -> np.ndarray | None:
    """``π`` of an irreducible chain: dense eigenvectors up to 200 states; beyond, the Perron
    vector of ``P^T`` by implicitly restarted Arnoldi (products with ``P^T`` only: seconds for
    a million edges), accepted when ARPACK converged to the eigenvalue 1 with one sign; else
    (a chain that mixes so slowly that 1 and the next eigenvalue do not separate in
    :data:`ARNOLDI_RESTARTS` restarts) the linear system ``(I - P)^T π = 0`` with ``π_0 = 1``
    (without state 0, ``(I - P)^T`` is a nonsingular M-matrix for an irreducible chain),
    solved by sparse LU; power iteration if that fails. ``None`` instead of the LU for a chain of
    more than ``lu_limit`` states (the LU's fill-in on a 3-D graph of a million nodes costs hours)."""
    n = P.shape[0]
    if n <= DENSE_STATES:
        values, vectors = np.linalg.eig(P.toarray().T)
        pi = np.abs(vectors[:, np.argmin(np.abs(values - 1))].real)
        return pi / pi.sum()
    pi = _arnoldi_stationary(P, tol)
    if pi is not None or (lu_limit is not None and n > lu_limit):
        return pi
    M = sp.csc_matrix((sp.identity(n, format="csr") - P).T)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MatrixRankWarning)  # a singular system gives NaN: caught below
        rest = spsolve(M[1:, 1:], -M[1:, 0].toarray().ravel())
    pi = np.concatenate(([1.0], rest))
    if np.isfinite(pi).all() and pi.sum() != 0:  # a negative sum: π_0 is ~0, the solution is -c π
        pi /= pi.sum()
        if np.abs(P.T @ pi - pi).sum() < max(tol, 1e-8):  # solved; negatives are round-off of ~0 entries
            pi = np.maximum(pi, 0.0)
            return pi / pi.sum()
    PT = sp.csr_matrix(P.T)
    pi = np.asarray(P.sum(axis=0)).ravel() + 1e-12
    pi /= pi.sum()
    for _ in range(max_iter):
        new = PT @ pi
        new /= new.sum()
        if np.abs(new - pi).sum() < tol:
            return new
        pi = new
    return pi


def _arnoldi_stationary(P: sp.csr_matrix, tol: float) -> np.ndarray | None:
    """The Perron vector of ``P^T`` by ARPACK, or ``None`` when it did not converge to a
    nonnegative eigenvector of the eigenvalue 1 (to round-off) within :data:`ARNOLDI_RESTARTS`."""
    try:
        values, vectors = eigs(
            sp.csr_matrix(P.T),
            k=1,
            which="LR",
            v0=np.ones(P.shape[0]),
            ncv=min(ARNOLDI_VECTORS, P.shape[0] - 1),
            tol=1e-12,
            maxiter=ARNOLDI_RESTARTS,
        )
    except ArpackNoConvergence:
        return None
    pi = vectors[:, 0].real
    pi = pi if pi.sum() > 0 else -pi
    if abs(values[0] - 1) > 1e-9 or pi.min() < -1e-9 * np.abs(pi).max():
        return None
    pi = np.maximum(pi, 0.0) / pi.sum()
    return pi if np.abs(P.T @ pi - pi).sum() < max(tol, 1e-8) else None


#: transitions of lower probability are treated as absent by :func:`stationary_distribution`
NEGLIGIBLE_TRANSITION = 1e-9


def stationary_distribution(
    P, tol: float = 1e-10, max_iter: int = 10_000, lu_limit: int | None = None
) -> np.ndarray | None:
    """``π`` with ``π^T P = π^T``, ``π >= 0``, ``sum π = 1`` (``None`` where a class of more than
    ``lu_limit`` states would need the sparse LU, i.e. where ARPACK did not converge on it).

    Per closed communicating class (a strongly connected component of the nonzero pattern of
    ``P`` that no transition leaves): its own stationary distribution, from a dense
    eigendecomposition up to :data:`DENSE_STATES` states, else ARPACK's Perron vector, or a
    sparse linear solve where that stalls (exact however slowly the chain mixes: attention that
    keeps almost all weight on the node itself makes ``1 - μ_2`` as small as 1e-7, where
    eigensolvers and power iteration crawl), or power iteration if that solve fails; the classes
    are weighted by their sizes and transient nodes get 0. Transitions of probability below
    :data:`NEGLIGIBLE_TRANSITION` are dropped first: attention computed in float32 has row sums
    off by ~1e-7, so a distribution that hinges on smaller transitions is not determined by
    ``P`` (on trained RNA metric attention, whose scores are symmetric and so reversible,
    keeping transitions of 1e-30 let the solve put π on a few nodes and report a drift share
    of 1.0 instead of 0.000). Then every row with transitions is rescaled to sum 1: float32 row sums
    are off by up to ~1e-6 on nodes of a hundred neighbours, which holds the Perron eigenvalue ~1e-8
    away from 1 and fails ARPACK's acceptance (on Tolokers' attention: a 1.4-s Arnoldi solve rejected
    for a sparse LU still running after 21 minutes).
    """
    P = as_square_csr(P, "P")
    P.data[P.data < NEGLIGIBLE_TRANSITION] = 0.0
    P.eliminate_zeros()
    row_sums = np.asarray(P.sum(axis=1)).ravel()
    P = sp.csr_matrix(sp.diags(np.divide(1.0, row_sums, out=np.ones_like(row_sums), where=row_sums > 0)) @ P)
    n = P.shape[0]
    count, label = connected_components(P, directed=True, connection="strong")
    pattern = P.tocoo()
    open_classes = np.unique(label[pattern.row[label[pattern.row] != label[pattern.col]]])
    pi = np.zeros(n)
    for c in np.setdiff1d(np.arange(count), open_classes):
        members = np.flatnonzero(label == c)
        block = P[members][:, members]
        class_pi = _irreducible_stationary(sp.csr_matrix(block), tol, max_iter, lu_limit)
        if class_pi is None:
            return None
        pi[members] = members.size * class_pi
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
