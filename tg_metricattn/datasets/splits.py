"""Seeded random train/validation/test splits for datasets without an official split."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["random_per_class_split"]


def random_per_class_split(
    y: Tensor,
    num_classes: int | None = None,
    train_per_class: int = 20,
    val_per_class: int = 30,
    seed: int = 0,
) -> tuple[Tensor, Tensor, Tensor]:
    """Split nodes as Shchur et al. (2018): ``train_per_class`` nodes of every class for
    training, ``val_per_class`` of every class for validation, all the rest for testing.

    The nodes of each class are permuted with a ``torch.Generator`` seeded with ``seed``,
    so the split is the same on every machine for the same labels and seed. A class with
    fewer nodes than ``train_per_class + val_per_class`` gives what it has to training
    first, then to validation, and nothing to testing. Nodes with a negative label are in
    no split.

    Returns:
        ``(train_mask, val_mask, test_mask)``, boolean tensors of shape ``[N]``.
    """
    if y.dim() != 1:
        raise ValueError(f"y must be a 1-D tensor of class indices, got shape {tuple(y.shape)}; squeeze it first.")
    if train_per_class < 0 or val_per_class < 0:
        raise ValueError(f"train_per_class and val_per_class must be >= 0, got {train_per_class} and {val_per_class}.")
    y = y.long()
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.numel() else 0
    generator = torch.Generator().manual_seed(int(seed))
    train = torch.zeros(y.numel(), dtype=torch.bool)
    val = torch.zeros_like(train)
    test = torch.zeros_like(train)
    for c in range(num_classes):
        idx = (y == c).nonzero().view(-1)
        idx = idx[torch.randperm(idx.numel(), generator=generator)]
        train[idx[:train_per_class]] = True
        val[idx[train_per_class : train_per_class + val_per_class]] = True
        test[idx[train_per_class + val_per_class :]] = True
    return train, val, test
