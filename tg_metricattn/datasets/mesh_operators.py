"""Discrete Laplace–Beltrami operator of a triangle mesh: cotangent stiffness and lumped mass.

For a triangle mesh with vertex positions ``p`` and faces ``f``:

- cotangent Laplacian (stiffness), positive semi-definite, rows summing to zero::

      L_ij = -1/2 (cot α_ij + cot β_ij)        for an edge (i, j)
      L_ii = -Σ_{j≠i} L_ij

  where α_ij and β_ij are the angles opposite the edge in its (one or two) triangles;
  in a triangle the cotangent of the angle at corner k, between edges u = p_i - p_k and
  v = p_j - p_k, is ``cot = <u, v> / |u × v|``.
- lumped (barycentric) mass: ``M_ii = (1/3) Σ_{faces t ∋ i} area(t)``.

The Laplace–Beltrami eigenproblem is then ``L φ = λ M φ`` with ``φ^T M φ = 1``; on the
unit sphere λ → l(l+1) with multiplicity 2l+1 as the mesh is refined.

Real meshes: faces with a repeated vertex or an area below ``1e-12`` times the mean
face area are left out of both matrices (their cotangents are undefined); unreferenced
vertices get an empty row and zero mass. :func:`laplace_beltrami_eigenpairs` solves on
the vertices with positive mass only. Several components simply give several zero
eigenvalues.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import eigsh

__all__ = ["cotangent_laplacian", "laplace_beltrami_eigenpairs", "lumped_mass", "valid_faces"]


def _as_numpy(pos, face) -> tuple[np.ndarray, np.ndarray]:
    pos = np.asarray(pos.detach().cpu().numpy() if hasattr(pos, "detach") else pos, dtype=np.float64)
    face = np.asarray(face.detach().cpu().numpy() if hasattr(face, "detach") else face, dtype=np.int64)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ValueError(f"pos must have shape [V, 3], got {pos.shape}.")
    if face.ndim != 2 or 3 not in face.shape:
        raise ValueError(f"face must have shape [F, 3] or PyG's [3, F], got {face.shape}.")
    if face.shape[1] != 3:  # PyG convention [3, F]
        face = face.T
    if face.size and (face.min() < 0 or face.max() >= pos.shape[0]):
        raise ValueError(f"face indices must lie in 0..{pos.shape[0] - 1}, found {face.min()}..{face.max()}.")
    return pos, face


def valid_faces(pos, face, rel_eps: float = 1e-12) -> np.ndarray:
    """Faces ``[F', 3]`` without a repeated vertex and with area above ``rel_eps`` × mean area."""
    pos, face = _as_numpy(pos, face)
    distinct = (face[:, 0] != face[:, 1]) & (face[:, 1] != face[:, 2]) & (face[:, 0] != face[:, 2])
    face = face[distinct]
    if face.size == 0:
        return face
    area = 0.5 * np.linalg.norm(np.cross(pos[face[:, 1]] - pos[face[:, 0]], pos[face[:, 2]] - pos[face[:, 0]]), axis=1)
    return face[area > rel_eps * max(area.mean(), np.finfo(np.float64).tiny)]


def cotangent_laplacian(pos, face) -> sp.csr_matrix:
    """The cotangent stiffness matrix ``L`` [V, V] (positive semi-definite; see the module docstring).

    Args:
        pos: vertex positions ``[V, 3]`` (numpy or torch).
        face: triangles ``[F, 3]`` or PyG's ``[3, F]``.
    """
    pos, _ = _as_numpy(pos, face)
    face = valid_faces(pos, face)
    n = pos.shape[0]
    rows, cols, vals = [], [], []
    for k in range(3):  # corner k is opposite the edge (i, j)
        i, j, c = face[:, (k + 1) % 3], face[:, (k + 2) % 3], face[:, k]
        u, v = pos[i] - pos[c], pos[j] - pos[c]
        cot = np.einsum("ij,ij->i", u, v) / np.linalg.norm(np.cross(u, v), axis=1)
        w = 0.5 * cot
        rows += [i, j]
        cols += [j, i]
        vals += [-w, -w]
    if not rows:
        return sp.csr_matrix((n, n))
    off = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)).tocsr()
    diag = -np.asarray(off.sum(axis=1)).ravel()
    return (off + sp.diags(diag)).tocsr()


def lumped_mass(pos, face) -> sp.dia_matrix:
    """Lumped mass ``M = diag(m)``, ``m_i = (1/3) Σ_{t ∋ i} area(t)`` (zero for unreferenced vertices)."""
    pos, _ = _as_numpy(pos, face)
    face = valid_faces(pos, face)
    area = 0.5 * np.linalg.norm(np.cross(pos[face[:, 1]] - pos[face[:, 0]], pos[face[:, 2]] - pos[face[:, 0]]), axis=1)
    mass = np.bincount(face.ravel(), weights=np.repeat(area / 3.0, 3), minlength=pos.shape[0])
    return sp.diags(mass)


def laplace_beltrami_eigenpairs(
    L: sp.spmatrix, M: sp.spmatrix, k: int, dense_below: int = 600
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` smallest eigenpairs of ``L φ = λ M φ``, with ``φ^T M φ = I``.

    Vertices with zero mass (unreferenced, or only in degenerate faces) are left out of the
    solve and get ``φ = 0``. Uses ``scipy.sparse.linalg.eigsh`` in shift-invert mode around
    a small negative shift (``L - σM`` is then positive definite), or a dense solver for
    fewer than ``dense_below`` active vertices. ``k`` is reduced to the number of active
    vertices when the mesh is smaller.

    Returns:
        ``(eigenvalues [k], eigenvectors [V, k])``, eigenvalues ascending and clipped at 0.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}.")
    mass = np.asarray(M.diagonal()).ravel()
    active = np.flatnonzero(mass > 0)
    n = mass.shape[0]
    if active.size == 0:
        raise ValueError("The mesh has no face with positive area, so it has no Laplace–Beltrami spectrum.")
    L_a = sp.csr_matrix(L)[active][:, active]
    m_a = mass[active]
    k = min(k, active.size)
    if active.size < dense_below or k >= active.size - 1:
        import scipy.linalg

        evals, evecs = scipy.linalg.eigh(L_a.toarray(), np.diag(m_a), subset_by_index=(0, k - 1))
    else:
        # Shift well below the first nonzero eigenvalue: a tiny fraction of the typical diagonal ratio.
        sigma = -1e-6 * float(np.mean(L_a.diagonal() / m_a))
        v0 = np.random.default_rng(0).uniform(0.5, 1.5, size=active.size)  # fixed start: reproducible
        evals, evecs = eigsh(L_a.tocsc(), k=k, M=sp.diags(m_a).tocsc(), sigma=sigma, which="LM", v0=v0)
    order = np.argsort(evals)
    evals, evecs = np.clip(evals[order], 0.0, None), evecs[:, order]
    full = np.zeros((n, k), dtype=np.float64)
    full[active] = evecs
    return evals, full
