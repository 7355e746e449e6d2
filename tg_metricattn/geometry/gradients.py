"""Tangent-plane gradients on a mesh: per-vertex frames and a least-squares gradient stencil per edge.

At every vertex ``i`` with unit normal ``n_i`` (area-weighted face normals) a tangent frame
``(b_x, b_y)`` is chosen (any: the features built on it are invariant to its rotation).
With ``u_ij`` the coordinates of ``p_j - p_i`` in that frame for each mesh edge ``j -> i``,
the gradient of a function ``f`` at ``i`` is the least-squares fit of
``<∇f(i), u_ij> ≈ f_j - f_i`` over the neighbours::

    ∇f(i) = Σ_j w_ij (f_j - f_i),     w_ij = (Σ_k u_ik u_ikᵀ + λ_i I)⁻¹ u_ij     (2-vectors)

exact for functions linear on a flat neighbourhood (up to the small ridge ``λ_i``, a
``1e-4`` fraction of the local scatter). This is the stencil of DiffusionNet's spatial
gradients (Sharp et al. 2022), stored per edge aligned with ``edge_index``.

Array in, array out: ``pos`` ``[V, 3]``, PyG's ``face`` ``[3, F]`` and ``edge_index``
``[2, E]`` (row 0 source ``j``, row 1 target ``i``), torch or numpy; numpy float64 out.
"""

from __future__ import annotations

import numpy as np

from tg_metricattn.geometry.faces import face_rows, vertex_array

__all__ = ["gradient_stencil", "tangent_frames", "vertex_normals"]

RIDGE = 1e-4


def vertex_normals(pos, face) -> np.ndarray:
    """Unit normals ``[V, 3]``: area-weighted sums of the incident faces' normals (``+z`` where undefined)."""
    pos = vertex_array(pos)
    rows = face_rows(face, pos.shape[0])
    face_normals = np.cross(pos[rows[:, 1]] - pos[rows[:, 0]], pos[rows[:, 2]] - pos[rows[:, 0]])  # 2 x area
    normals = np.zeros_like(pos)
    for corner in range(3):
        np.add.at(normals, rows[:, corner], face_normals)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    undefined = length[:, 0] <= 1e-12 * max(float(length.max(initial=0.0)), 1e-300)
    normals[undefined], length[undefined] = (0.0, 0.0, 1.0), 1.0
    return normals / length


def tangent_frames(normals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal ``(b_x, b_y)`` ``[V, 3]`` each, with ``b_x × b_y = n`` for unit ``normals`` ``[V, 3]``."""
    reference = np.where(np.abs(normals[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    b_x = reference - (reference * normals).sum(axis=1, keepdims=True) * normals
    b_x /= np.linalg.norm(b_x, axis=1, keepdims=True)
    return b_x, np.cross(normals, b_x)


def gradient_stencil(pos, face, edge_index) -> np.ndarray:
    """The weights ``w_ij`` ``[E, 2]`` of the least-squares tangent gradient (module docstring), per edge ``j -> i``.

    A vertex without neighbours gets no weights (its gradient is zero).
    """
    pos = vertex_array(pos)
    edge_index = np.asarray(edge_index.detach().cpu().numpy() if hasattr(edge_index, "detach") else edge_index)
    if edge_index.ndim != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"edge_index must have shape [2, E], got {list(edge_index.shape)}.")
    source, target = edge_index.astype(np.int64)
    b_x, b_y = tangent_frames(vertex_normals(pos, face))
    offset = pos[source] - pos[target]
    u = np.stack([(offset * b_x[target]).sum(axis=1), (offset * b_y[target]).sum(axis=1)], axis=1)  # [E, 2]
    scatter = np.zeros((pos.shape[0], 2, 2))
    np.add.at(scatter, target, u[:, :, None] * u[:, None, :])
    ridge = RIDGE * np.trace(scatter, axis1=1, axis2=2) / 2 + 1e-300
    a, b, d = scatter[:, 0, 0] + ridge, scatter[:, 0, 1], scatter[:, 1, 1] + ridge
    det = a * d - b * b
    det = np.where(det > 0, det, 1.0)  # a vertex without neighbours: no edge reads its (zero) row
    inverse = np.stack([np.stack([d, -b], axis=1), np.stack([-b, a], axis=1)], axis=1) / det[:, None, None]
    return np.einsum("eab,eb->ea", inverse[target], u)
