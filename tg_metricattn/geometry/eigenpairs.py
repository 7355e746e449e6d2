"""The smallest eigenpairs of the Laplace–Beltrami operator: ``L φ = λ M φ``, ``Φᵀ M Φ = I``.

They are the basis in which heat flow on a mesh is cheap,

    exp(-t Δ) x  ≈  Φ · diag(exp(-λ_k t)) · Φᵀ M x,

and the input of the heat kernel signature. Computed once per mesh and stored with it.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, eigsh
from torch import Tensor

from tg_metricattn.geometry.laplacian import laplacian_and_mass

__all__ = ["EigenSolveError", "generalized_eigenpairs", "mesh_eigenpairs"]

#: eigenvalues below this (on a mesh scaled to the unit ball) count as zero: one per component
ZERO_EIGENVALUE = 1e-6


class EigenSolveError(ValueError):
    """The eigenproblem of a mesh could not be solved, or its spectrum is not that of a Laplacian."""


def generalized_eigenpairs(
    stiffness: sp.spmatrix, mass: np.ndarray, k: int, dense_below: int = 600
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` smallest eigenpairs of ``L φ = λ M φ`` with ``φᵀ M φ = 1`` (numpy in, numpy out).

    Vertices with zero mass are left out of the solve and get ``φ = 0``; ``k`` is reduced to
    the number of the others. Shift-invert ``eigsh`` around a small negative shift (``L - σM``
    is then positive definite), a dense solver below ``dense_below`` vertices.

    Returns:
        ``(evals [k], evecs [V, k])``, eigenvalues ascending and clipped at 0.

    Raises:
        EigenSolveError: no vertex with positive mass, or the solver did not converge.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}.")
    mass = np.asarray(mass, dtype=np.float64).ravel()
    active = np.flatnonzero(mass > 0)
    if active.size == 0:
        raise EigenSolveError("no vertex has positive mass (no triangle with positive area).")
    L_a = sp.csr_matrix(stiffness)[active][:, active]
    m_a = mass[active]
    k = min(k, active.size)
    try:
        if active.size < dense_below or k >= active.size - 1:
            evals, evecs = scipy.linalg.eigh(L_a.toarray(), np.diag(m_a), subset_by_index=(0, k - 1))
        else:
            sigma = -1e-6 * float(np.mean(L_a.diagonal() / m_a))
            v0 = np.random.default_rng(0).uniform(0.5, 1.5, size=active.size)  # fixed start: reproducible
            evals, evecs = eigsh(L_a.tocsc(), k=k, M=sp.diags(m_a).tocsc(), sigma=sigma, which="LM", v0=v0)
    except (ArpackNoConvergence, ArpackError, np.linalg.LinAlgError, RuntimeError) as error:
        raise EigenSolveError(f"the eigen-solve failed ({type(error).__name__}: {error}).") from error
    if not (np.isfinite(evals).all() and np.isfinite(evecs).all()):
        raise EigenSolveError("the eigen-solve returned non-finite values.")
    order = np.argsort(evals)
    full = np.zeros((mass.shape[0], k), dtype=np.float64)
    full[active] = evecs[:, order]
    return np.clip(evals[order], 0.0, None), full


def _count_components(stiffness: sp.csr_matrix, mass: np.ndarray) -> int:
    active = np.flatnonzero(mass > 0)
    pattern = sp.csr_matrix(stiffness)[active][:, active]
    return int(connected_components(pattern, directed=False)[0])


def mesh_eigenpairs(pos, face, k: int = 128) -> tuple[Tensor, Tensor, Tensor]:
    """Lumped mass and the ``k`` smallest Laplace–Beltrami eigenpairs of a triangle mesh.

    The operator is :func:`~tg_metricattn.geometry.laplacian_and_mass` (robust-laplacian).
    Eigenvalues scale as 1 / length²: pass positions at the scale the result is used at
    (the mesh datasets use the mesh scaled to the unit ball).

    Args:
        pos: ``[V, 3]`` vertex positions (torch or numpy).
        face: ``[3, F]`` triangles as PyG stores them (torch or numpy).
        k: eigenpairs wanted; a mesh with fewer vertices of positive mass gets that many,
            with a ``UserWarning``.

    Returns:
        ``(mass [V], evals [k], evecs [V, k])`` as float32 torch tensors, ``evecs`` M-orthonormal
        (``evecsᵀ diag(mass) evecs = I``) and zero at vertices in no triangle.

    Raises:
        EigenSolveError: the solve failed, or more eigenvalues are zero than the mesh has
            connected components (a Laplacian that is singular beyond its components).
    """
    stiffness, mass = laplacian_and_mass(pos, face)
    available = int((mass > 0).sum())
    if k > available:
        warnings.warn(
            f"asked for {k} eigenpairs of a mesh with {available} vertices of positive mass: computing {available}.",
            UserWarning,
            stacklevel=2,
        )
    evals, evecs = generalized_eigenpairs(stiffness, mass, k)
    zeros = int((evals < ZERO_EIGENVALUE * max(1.0, float(evals[-1]))).sum())
    if zeros > _count_components(stiffness, mass):
        raise EigenSolveError(
            f"{zeros} zero eigenvalues but {_count_components(stiffness, mass)} connected components: "
            "the Laplacian is singular beyond its components."
        )
    as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    return as_tensor(mass), as_tensor(evals), as_tensor(evecs)
