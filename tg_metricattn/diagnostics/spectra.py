"""Spectra of a propagation matrix against those of heat flow.

- leading eigenvalues ``μ_k`` of ``P`` (largest real part, :func:`scipy.sparse.linalg.eigs`),
  to compare with ``exp(-t* λ_k(L))`` for the smallest eigenvalues ``λ_k`` of ``L``;
- principal angles (:func:`scipy.linalg.subspace_angles`) between the span of the
  ``k`` leading right eigenvectors of ``P`` (real and imaginary parts of complex pairs)
  and the span of the ``k`` lowest eigenvectors of ``L``; 0 = same subspace, π/2 =
  orthogonal. With degenerate eigenvalues (e.g. the sphere, multiplicity 2l+1) choose
  ``k`` at the end of a cluster;
- spectral gap ``1 - Re μ_2`` and the number of eigenvalues of ``I - P`` with
  ``|1 - μ_k| < tol`` (near-invariant clusters: a lower bound when all ``k`` qualify).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import scipy.linalg
from scipy.sparse.linalg import ArpackNoConvergence, eigs

from tg_metricattn.diagnostics._validation import as_square_csr
from tg_metricattn.diagnostics.laplacians import ReferenceLaplacian, laplacian_eigenpairs

__all__ = [
    "ARPACK_RESTARTS",
    "SpectrumComparison",
    "arnoldi_size",
    "compare_spectra",
    "leading_eigenpairs",
    "near_zero_count",
    "spectral_gap",
]


def arnoldi_size(k: int, n: int) -> int:
    """ARPACK's ``ncv`` for ``k`` eigenpairs of an ``n x n`` propagation matrix: ``max(2k + 1, 40)``.

    A graph with many components (Cora has 78) gives ``P`` an eigenvalue 1 of that
    multiplicity; ARPACK's default ``2k + 1`` then needs tens of thousands of restarts (19 s
    on Cora), 40 vectors converge in 1.7 s.
    """
    return min(n - 1, max(2 * k + 1, 40))


#: ARPACK restarts before :func:`leading_eigenpairs` returns the pairs that converged. Attention
#: that keeps nearly all weight on the node itself (trained RNA metric attention: 3-9% of the vertices
#: keep > 0.99) puts its 8 leading eigenvalues within 1e-7 of 1, where ARPACK needs ~10 s per 1,000
#: restarts on a 15k-vertex mesh
#: and may converge none; chains that mix converge in far fewer (a 2,708-node Cora P: under 100).
ARPACK_RESTARTS = 300


def leading_eigenpairs(P, k: int = 8, dense_below: int = 500, tol: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` eigenvalues of ``P`` with largest real part (descending) and their right eigenvectors.

    Dense ``numpy.linalg.eig`` below ``dense_below`` nodes, ARPACK (``eigs``, ``which="LR"``,
    a Krylov space of :func:`arnoldi_size` vectors) above; if ARPACK does not converge within
    :data:`ARPACK_RESTARTS` restarts, the converged pairs (possibly none) are returned.
    """
    P = as_square_csr(P, "P")
    n = P.shape[0]
    if k < 1:
        raise ValueError(f"k must be >= 1; got {k}.")
    k = min(k, n)
    if n < dense_below or k >= n - 1:
        vals, vecs = np.linalg.eig(P.toarray())
    else:
        v0 = np.ones(n) / np.sqrt(n)
        try:
            vals, vecs = eigs(P, k=k, which="LR", v0=v0, tol=tol, maxiter=ARPACK_RESTARTS, ncv=arnoldi_size(k, n))
        except ArpackNoConvergence as err:
            vals, vecs = err.eigenvalues, err.eigenvectors
    order = np.argsort(-vals.real)[:k]
    return vals[order], vecs[:, order]


def spectral_gap(eigenvalues: np.ndarray) -> float:
    """``1 - Re μ_2`` from eigenvalues sorted by descending real part (``μ_1 = 1`` for connected P)."""
    eigenvalues = np.asarray(eigenvalues)
    if eigenvalues.size < 2:
        raise ValueError("The spectral gap needs at least two eigenvalues.")
    return float(1.0 - eigenvalues[1].real)


def near_zero_count(eigenvalues: np.ndarray, tol: float = 1e-3) -> int:
    """Number of eigenvalues ``1 - μ_k`` of ``I - P`` with modulus below ``tol``."""
    return int(np.sum(np.abs(1.0 - np.asarray(eigenvalues)) < tol))


def _real_basis(vecs: np.ndarray) -> np.ndarray:
    parts = [vecs.real]
    if np.any(np.abs(vecs.imag) > 1e-12):
        parts.append(vecs.imag[:, np.any(np.abs(vecs.imag) > 1e-12, axis=0)])
    return np.concatenate(parts, axis=1)


@dataclass
class SpectrumComparison:
    """Eigenvalues of ``P`` against ``exp(-t λ_k(L))`` and principal angles (radians, descending);
    ``requested`` pairs were asked for, ``len(p_eigenvalues)`` converged."""

    t: float
    p_eigenvalues: list[float]
    p_eigenvalues_imag: list[float]
    laplacian_eigenvalues: list[float]
    heat_eigenvalues: list[float]
    principal_angles: list[float]
    spectral_gap: float
    near_zero: int
    eigenvalue_error: float = field(default=0.0)
    requested: int = field(default=0)

    def to_dict(self) -> dict:
        return asdict(self)


def compare_spectra(P, laplacian: ReferenceLaplacian, t: float, k: int = 8, tol: float = 1e-3) -> SpectrumComparison:
    """Compare the ``k`` leading eigenpairs of ``P`` with those of ``exp(-t L)`` (module docstring).

    ``eigenvalue_error = max_k |Re μ_k - exp(-t λ_k)|``.
    """
    P = as_square_csr(P, "P")
    if P.shape[0] != laplacian.num_nodes:
        raise ValueError(f"P has {P.shape[0]} nodes but the Laplacian {laplacian.num_nodes}.")
    mu, vecs = leading_eigenpairs(P, k)
    lam, phi = laplacian_eigenpairs(laplacian, k)
    m = min(len(mu), len(lam))
    heat = np.exp(-t * lam)
    angles = scipy.linalg.subspace_angles(_real_basis(vecs[:, :m]), phi[:, :m]) if m else np.zeros(0)
    return SpectrumComparison(
        t=float(t),
        p_eigenvalues=[float(v) for v in mu.real],
        p_eigenvalues_imag=[float(v) for v in mu.imag],
        laplacian_eigenvalues=[float(v) for v in lam],
        heat_eigenvalues=[float(v) for v in heat],
        principal_angles=[float(a) for a in angles],
        spectral_gap=spectral_gap(mu) if len(mu) > 1 else float("nan"),
        near_zero=near_zero_count(mu, tol),
        eigenvalue_error=float(np.max(np.abs(mu.real[:m] - heat[:m]))) if m else float("nan"),
        requested=min(k, P.shape[0]),
    )
