"""Turning a triangle mesh with labels into a PyG ``Data`` sample.

A mesh sample has ``pos`` [V, 3] (coordinates as in the file), ``face`` [3, F] (PyG's
convention), ``edge_index`` [2, 2E] (both directions of every mesh edge, no self loops),
``x`` [V, D] input features (:mod:`~tg_metricattn.datasets.mesh_features`), ``y`` [V]
long vertex labels and ``name``; meshes labelled per face also keep ``face_y`` [F].
The Laplace–Beltrami operator of the mesh scaled to the unit ball is stored once, as
``mass`` [V], ``evals`` [k] and ``evecs`` [V, k] (float32, :func:`~tg_metricattn.geometry.mesh_eigenpairs`):
the heat-diffusion layers, the ``hks`` features and the diagnostics all use these; and
``grad_weight`` [2E, 2], the tangent-gradient stencil of every edge of ``edge_index``
(:func:`~tg_metricattn.geometry.gradient_stencil`, for the spatial gradient features).
A mesh with fewer than ``k`` vertices of positive mass gets zero columns in ``evecs``
past its own eigenpairs (with the last eigenvalue repeated in ``evals``), so that every
sample of a dataset has the same ``k``; a zero column adds nothing to a diffusion.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import coalesce, remove_self_loops

from tg_metricattn.datasets.mesh_features import mesh_features, normalize_positions
from tg_metricattn.geometry import gradient_stencil, mesh_eigenpairs

__all__ = ["DEFAULT_EIGENPAIRS", "IGNORE_INDEX", "face_to_vertex_labels", "mesh_edge_index", "mesh_to_data"]

#: Laplace–Beltrami eigenpairs stored per mesh by default (DiffusionNet's choice)
DEFAULT_EIGENPAIRS = 128

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
    eigenpairs: int = DEFAULT_EIGENPAIRS,
    name: str | None = None,
) -> Data:
    """Build the ``Data`` sample of one mesh (numpy ``vertices`` [V, 3], ``faces`` [F, 3] as read, ``y`` [V]).

    One eigen-solve of ``max(eigenpairs, hks_eigenpairs)`` pairs serves the stored operator
    and the ``hks`` features. Raises :class:`~tg_metricattn.geometry.EigenSolveError` when
    the mesh's Laplace–Beltrami eigenproblem cannot be solved.
    """
    if eigenpairs < 1:
        raise ValueError(f"eigenpairs must be >= 1, got {eigenpairs}.")
    pos = torch.as_tensor(np.asarray(vertices), dtype=torch.float32)
    face = torch.as_tensor(np.asarray(faces, dtype=np.int64)).reshape(-1, 3).t().contiguous()
    if y.shape[0] != pos.size(0):
        raise ValueError(f"y has {y.shape[0]} labels but the mesh has {pos.size(0)} vertices.")
    unit = normalize_positions(torch.as_tensor(np.asarray(vertices), dtype=torch.float64), face)
    wanted = max(eigenpairs, hks_eigenpairs if "hks" in features else 0)
    mass, evals, evecs = mesh_eigenpairs(unit, face, wanted)
    x = mesh_features(unit, face, features, hks_eigenpairs, hks_times, eigenpairs=(evals, evecs))
    evals, evecs = evals[:eigenpairs], evecs[:, :eigenpairs]
    missing = eigenpairs - evals.numel()  # a small mesh: pad to the dataset's k (see the module docstring)
    edge_index = mesh_edge_index(face, pos.size(0))
    data = Data(
        x=x,
        pos=pos,
        face=face,
        edge_index=edge_index,
        grad_weight=torch.from_numpy(gradient_stencil(unit, face, edge_index)).float(),
        y=torch.as_tensor(y, dtype=torch.long),
        mass=mass,
        evals=torch.cat([evals, evals[-1:].expand(missing)]),
        evecs=F.pad(evecs, (0, missing)),
        num_nodes=pos.size(0),
    )
    if face_y is not None:
        data.face_y = torch.as_tensor(face_y, dtype=torch.long)
    if name is not None:
        data.name = name
    return data
