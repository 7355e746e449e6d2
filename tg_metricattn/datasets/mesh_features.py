"""Per-vertex input features for meshes: ``xyz`` and the heat kernel signature ``hks``.

- ``xyz``: positions centred at the vertex mean and divided by the largest distance to
  it, so every mesh lies in the unit ball. Real meshes are not aligned: combine with
  :class:`~tg_metricattn.datasets.mesh_transforms.RandomRotation` for augmentation.
- ``hks`` (Sun, Ovsjanikov, Guibas 2009): with the ``k`` smallest eigenpairs
  ``L φ_n = λ_n M φ_n`` (``φ^T M φ = I``) of the cotangent Laplacian of the unit-scaled
  mesh,

      hks(x, t) = Σ_{n<k} exp(-λ_n t) φ_n(x)²

  at ``num_times`` times log-spaced in ``[1e-2, 1]`` (the DiffusionNet choice for
  unit-scale meshes). It is intrinsic, so invariant to rotations. Vertices with zero mass
  (unreferenced) get ``hks = 0``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from tg_metricattn.datasets.mesh_operators import (
    cotangent_laplacian,
    laplace_beltrami_eigenpairs,
    lumped_mass,
)

__all__ = ["FEATURE_NAMES", "heat_kernel_signature", "mesh_features", "normalize_positions"]

FEATURE_NAMES = ("xyz", "hks")


def normalize_positions(pos: Tensor) -> Tensor:
    """Centre ``pos`` [V, 3] at its mean and scale it so that ``max |p - mean| = 1``."""
    centred = pos - pos.mean(dim=0, keepdim=True)
    scale = centred.norm(dim=1).max().clamp_min(torch.finfo(pos.dtype).tiny)
    return centred / scale


def heat_kernel_signature(evals: np.ndarray, evecs: np.ndarray, times: Sequence[float] | np.ndarray) -> np.ndarray:
    """``hks[x, s] = Σ_n exp(-λ_n t_s) φ_n(x)²`` for ``evals [k]``, ``evecs [V, k]``: ``[V, T]``."""
    times = np.asarray(times, dtype=np.float64)
    return (evecs**2) @ np.exp(-np.outer(evals, times))


def mesh_features(
    pos: Tensor,
    face: Tensor,
    features: Sequence[str] = ("xyz", "hks"),
    hks_eigenpairs: int = 32,
    hks_times: int = 16,
) -> Tensor:
    """Concatenate the requested features (in the order given) into ``x`` [V, D].

    ``xyz`` gives 3 columns, ``hks`` gives ``hks_times`` columns; see the module docstring.
    """
    unknown = [f for f in features if f not in FEATURE_NAMES]
    if unknown or not features:
        raise ValueError(f"features must be a non-empty subset of {FEATURE_NAMES}, got {tuple(features)!r}.")
    unit = normalize_positions(pos.double())
    columns = []
    for name in features:
        if name == "xyz":
            columns.append(unit.float())
        else:
            L = cotangent_laplacian(unit, face)
            M = lumped_mass(unit, face)
            evals, evecs = laplace_beltrami_eigenpairs(L, M, hks_eigenpairs)
            hks = heat_kernel_signature(evals, evecs, np.logspace(-2.0, 0.0, hks_times))
            columns.append(torch.from_numpy(hks).float())
    return torch.cat(columns, dim=1)
