"""Data augmentation for meshes."""

from __future__ import annotations

import torch
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform

__all__ = ["RandomRotation", "random_rotation_matrix"]


def random_rotation_matrix(
    generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """A rotation drawn uniformly from SO(3) (QR of a Gaussian matrix, signs fixed, det = +1)."""
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=generator, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q.to(dtype)


class RandomRotation(BaseTransform):
    """Rotate a mesh by a uniformly random rotation (real meshes have no canonical pose).

    Rotates ``pos`` and the ``xyz`` columns of ``x`` (``x_columns``, default the first
    three, where the mesh datasets put ``xyz`` when it is requested first); features that
    are rotation invariant (``hks``) are left alone. Pass ``x_columns=None`` when ``x``
    holds no coordinates.
    """

    def __init__(self, x_columns: tuple[int, int, int] | None = (0, 1, 2), generator: torch.Generator | None = None):
        self.x_columns = list(x_columns) if x_columns is not None else None
        self.generator = generator

    def forward(self, data: Data) -> Data:
        rotation = random_rotation_matrix(self.generator)
        data = data.clone()
        if getattr(data, "pos", None) is not None:
            data.pos = data.pos @ rotation.T.to(data.pos.dtype)
        if self.x_columns is not None and getattr(data, "x", None) is not None:
            x = data.x.clone()
            x[:, self.x_columns] = x[:, self.x_columns] @ rotation.T.to(x.dtype)
            data.x = x
        return data

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(x_columns={self.x_columns})"
