"""The Laplace–Beltrami operator of a triangle mesh: stiffness ``L`` and lumped mass ``M``.

Both come from ``robust-laplacian`` (Sharp & Crane 2020, the operator DiffusionNet uses):
the cotangent Laplacian of the intrinsic Delaunay triangulation of the mesh's tufted
cover, with a small mollification of near-degenerate triangles. It is defined for real
meshes (non-manifold edges and vertices, several components, degenerate or sliver
faces) and equals the ordinary cotangent Laplacian on a Delaunay mesh::

    L_ij = -1/2 (cot α_ij + cot β_ij)  for an edge (i, j),   L_ii = -Σ_{j≠i} L_ij
    M_ii = (1/3) Σ_{triangles t ∋ i} area(t)

``L`` is symmetric positive semi-definite with rows summing to zero, one zero eigenvalue
per connected component. Vertices in no triangle ("unreferenced") get an empty row and
column and zero mass: they take no part in diffusion.

Array in, array out: ``pos`` ``[V, 3]`` and PyG's ``face`` ``[3, F]`` as torch tensors or
numpy arrays in; scipy/numpy (float64) out.
"""

from __future__ import annotations

import numpy as np
import robust_laplacian
import scipy.sparse as sp

from tg_metricattn.geometry.faces import face_rows, vertex_array

__all__ = ["laplacian_and_mass", "referenced_vertices"]

#: robust-laplacian's default: triangles are mollified so that no edge is shorter than
#: this fraction of the mean edge length (Sharp & Crane 2020, section 4.5)
MOLLIFY_FACTOR = 1e-5


def referenced_vertices(rows: np.ndarray, num_vertices: int) -> np.ndarray:
    """Boolean ``[V]``: the vertex lies in at least one triangle of ``rows`` ``[F, 3]``."""
    used = np.zeros(num_vertices, dtype=bool)
    used[rows.ravel()] = True
    return used


def laplacian_and_mass(pos, face, mollify_factor: float = MOLLIFY_FACTOR) -> tuple[sp.csr_matrix, np.ndarray]:
    """Stiffness ``L`` (CSR ``[V, V]``) and lumped mass ``m`` (``[V]``, ``M = diag(m)``) of a mesh.

    Args:
        pos: vertex positions ``[V, 3]``.
        face: triangles as PyG stores them, ``[3, F]``.
        mollify_factor: robust-laplacian's mollification (see the module docstring).

    Raises:
        ValueError: wrong shapes, indices out of range, non-finite positions, or no triangle.
    """
    pos = vertex_array(pos)
    rows = face_rows(face, pos.shape[0])
    distinct = (rows[:, 0] != rows[:, 1]) & (rows[:, 1] != rows[:, 2]) & (rows[:, 0] != rows[:, 2])
    rows = rows[distinct]  # a triangle with a repeated vertex has no area and no angles
    if rows.shape[0] == 0:
        raise ValueError("The mesh has no triangle with three distinct vertices, so it has no Laplacian.")
    stiffness, mass = robust_laplacian.mesh_laplacian(pos, rows, mollify_factor)
    used = referenced_vertices(rows, pos.shape[0])
    keep = sp.diags(used.astype(np.float64))
    stiffness = sp.csr_matrix(keep @ stiffness @ keep)  # robust-laplacian puts a 1 on an unreferenced diagonal
    stiffness.eliminate_zeros()
    return stiffness, np.where(used, np.asarray(mass.diagonal()).ravel(), 0.0)
