"""Turning a triangle mesh with labels into a PyG ``Data`` sample.

A mesh sample has ``pos`` [V, 3] (coordinates as in the file), ``face`` [3, F] (PyG's
convention), ``edge_index`` [2, 2E] (both directions of every mesh edge, no self loops),
``x`` [V, D] input features (:mod:`~tg_metricattn.datasets.mesh_features`), ``y`` [V]
long vertex labels and ``name``; meshes labelled per face also keep ``face_y`` [F].
The cotangent Laplacian and lumped mass are computed on demand with :func:`mesh_laplacian`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import coalesce, remove_self_loops

from tg_metricattn.datasets.mesh_features import mesh_features
from tg_metricattn.datasets.mesh_operators import cotangent_laplacian, lumped_mass

__all__ = ["IGNORE_INDEX", "face_to_vertex_labels", "mesh_edge_index", "mesh_laplacian", "mesh_to_data"]

#: Label of a vertex that has none (no incident face when labels are given per face);
#: the default ``ignore_index`` of ``torch.nn.functional.cross_entropy``.
IGNORE_INDEX = -100


def mesh_edge_index(face: Tensor, num_nodes: int) -> Tensor:
    """Both directions of every edge of the triangles ``face`` [3, F].

    Sorted, without duplicates or self loops.
    """
    if face.numel() == 0:
        return torch.empty(2, 0, dtype=torch.long)
    edges = torch.cat([face[[0, 1]], face[[1, 2]], face[[2, 0]]], dim=1)
    edges = torch.cat([edges, edges.flip(0)], dim=1)
    edges, _ = remove_self_loops(edges)
    return coalesce(edges, num_nodes=num_nodes)


def face_to_vertex_labels(face: np.ndarray, face_labels: np.ndarray, num_vertices: int) -> np.ndarray:
    """Vertex label = the label held by most of its incident faces (ties: the smallest label).

    Vertices in no face get :data:`IGNORE_INDEX`. ``face`` is ``[F, 3]``, ``face_labels`` ``[F]``.
    """
    face = np.asarray(face, dtype=np.int64).reshape(-1, 3)
    face_labels = np.asarray(face_labels, dtype=np.int64)
    out = np.full(num_vertices, IGNORE_INDEX, dtype=np.int64)
    if face.size == 0:
        return out
    shift = face_labels.min()
    labels = face_labels - shift
    num_labels = int(labels.max()) + 1
    counts = sp.coo_matrix(
        (np.ones(face.size), (face.ravel(), np.repeat(labels, 3))), shape=(num_vertices, num_labels)
    ).tocsr()
    counts.sum_duplicates()
    counts.sort_indices()
    referenced = np.asarray(counts.sum(axis=1)).ravel() > 0
    best = np.asarray(counts.argmax(axis=1)).ravel()
    out[referenced] = best[referenced] + shift  # argmax returns the first maximum
    return out


def mesh_to_data(
    vertices: np.ndarray,
    faces: np.ndarray,
    y: np.ndarray,
    *,
    face_y: np.ndarray | None = None,
    features: Sequence[str] = ("xyz", "hks"),
    hks_eigenpairs: int = 32,
    hks_times: int = 16,
    name: str | None = None,
) -> Data:
    """Build the ``Data`` sample of one mesh (``vertices`` [V, 3], ``faces`` [F, 3], ``y`` [V])."""
    pos = torch.as_tensor(np.asarray(vertices), dtype=torch.float32)
    face = torch.as_tensor(np.asarray(faces, dtype=np.int64)).reshape(-1, 3).t().contiguous()
    if y.shape[0] != pos.size(0):
        raise ValueError(f"y has {y.shape[0]} labels but the mesh has {pos.size(0)} vertices.")
    x = mesh_features(
        torch.as_tensor(np.asarray(vertices), dtype=torch.float64), face, features, hks_eigenpairs, hks_times
    )
    data = Data(
        x=x,
        pos=pos,
        face=face,
        edge_index=mesh_edge_index(face, pos.size(0)),
        y=torch.as_tensor(y, dtype=torch.long),
        num_nodes=pos.size(0),
    )
    if face_y is not None:
        data.face_y = torch.as_tensor(face_y, dtype=torch.long)
    if name is not None:
        data.name = name
    return data


def mesh_laplacian(data: Data) -> tuple[sp.csr_matrix, sp.dia_matrix]:
    """Cotangent Laplacian ``L`` and lumped mass ``M`` of a mesh sample (from ``pos`` and ``face``)."""
    return cotangent_laplacian(data.pos.double(), data.face), lumped_mass(data.pos.double(), data.face)
