"""Per-vertex input features for meshes: ``xyz`` and the heat kernel signature ``hks``.

- ``xyz``: positions centred at the mean of the vertices in triangles and divided by
  their largest distance to it, so every mesh lies in the unit ball (vertices in no
  triangle do not count, see :func:`normalize_positions`). Real meshes are not aligned: combine with
  :class:`~tg_metricattn.datasets.mesh_transforms.RandomRotation` for augmentation.
- ``hks`` (Sun, Ovsjanikov, Guibas 2009): with the ``k`` smallest eigenpairs
  ``L φ_n = λ_n M φ_n`` (``φ^T M φ = I``) of the Laplace–Beltrami operator of the
  unit-scaled mesh (:func:`~tg_metricattn.geometry.mesh_eigenpairs`),

      hks(x, t) = Σ_{n<k} exp(-λ_n t) φ_n(x)²

  at ``num_times`` times log-spaced in ``[1e-2, 1]`` (the DiffusionNet choice for
  unit-scale meshes). It is intrinsic, so invariant to rotations. Vertices in no
  triangle get ``hks = 0``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from tg_metricattn.geometry import mesh_eigenpairs

__all__ = ["FEATURE_NAMES", "heat_kernel_signature", "mesh_feature_width", "mesh_features", "normalize_positions"]

FEATURE_NAMES = ("xyz", "hks")


def mesh_feature_width(name: str, hks_times: int = 16) -> int:
    """Columns of ``x`` that feature ``name`` takes: 3 for ``xyz``, ``hks_times`` for ``hks``."""
    if name not in FEATURE_NAMES:
        raise ValueError(f"Unknown mesh feature {name!r}; choose from {FEATURE_NAMES}.")
    return 3 if name == "xyz" else hks_times


def normalize_positions(pos: Tensor, face: Tensor | None = None) -> Tensor:
    """``(pos - c) / s``: the triangles of ``face`` [3, F] scaled into the unit ball.

    ``c`` is the mean and ``s = max |p - c|`` the radius of the vertices that ``face``
    references (of all vertices when ``face`` is ``None`` or empty), so vertices in no
    triangle (stray points a mesh file may hold) move neither the centre nor the scale,
    and hence neither ``xyz`` nor the spectrum of the mesh. They are mapped the same way
    and may land outside the ball (bounded by the float32 range, so ``x`` stays finite).
    """
    referenced = pos[torch.unique(face.reshape(-1))] if face is not None and face.numel() else pos
    centre = referenced.mean(dim=0, keepdim=True)
    scale = (referenced - centre).norm(dim=1).max().clamp_min(torch.finfo(pos.dtype).tiny)
    limit = float(torch.finfo(torch.float32).max)
    return ((pos - centre) / scale).clamp(-limit, limit)


def heat_kernel_signature(evals, evecs, times: Sequence[float] | np.ndarray) -> np.ndarray:
    """``hks[x, s] = Σ_n exp(-λ_n t_s) φ_n(x)²`` for ``evals [k]``, ``evecs [V, k]`` (numpy or torch).

    Returns numpy ``[V, T]``.
    """
    evals, evecs = np.asarray(evals, dtype=np.float64), np.asarray(evecs, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    return (evecs**2) @ np.exp(-np.outer(evals, times))


def mesh_features(
    pos: Tensor,
    face: Tensor,
    features: Sequence[str] = ("xyz", "hks"),
    hks_eigenpairs: int = 32,
    hks_times: int = 16,
    eigenpairs: tuple[Tensor, Tensor] | None = None,
) -> Tensor:
    """Concatenate the requested features (in the order given) into ``x`` [V, D] (float32).

    ``pos`` [V, 3] and PyG's ``face`` [3, F]. ``xyz`` gives 3 columns, ``hks`` gives
    ``hks_times`` columns from the first ``hks_eigenpairs`` eigenpairs of the unit-scaled
    mesh; pass them as ``eigenpairs=(evals, evecs)`` when already computed (at least
    ``hks_eigenpairs`` of them, or all the mesh has), else they are computed here.
    """
    unknown = [f for f in features if f not in FEATURE_NAMES]
    if unknown or not features:
        raise ValueError(f"features must be a non-empty subset of {FEATURE_NAMES}, got {tuple(features)!r}.")
    unit = normalize_positions(torch.as_tensor(pos).double(), torch.as_tensor(face))
    columns = []
    for name in features:
        if name == "xyz":
            columns.append(unit.float())
            continue
        if eigenpairs is None:
            _, evals, evecs = mesh_eigenpairs(unit, face, hks_eigenpairs)
        else:
            evals, evecs = eigenpairs
        hks = heat_kernel_signature(evals[:hks_eigenpairs], evecs[:, :hks_eigenpairs], np.logspace(-2, 0, hks_times))
        columns.append(torch.from_numpy(hks).float())
    return torch.cat(columns, dim=1)
