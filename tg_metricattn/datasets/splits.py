"""Train/validation/test splits: seeded random ones (no official split) and the check of published ones."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["check_published_splits", "random_per_class_split"]


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


def check_published_splits(train: Tensor, val: Tensor, test: Tensor, where: str, first_split: int = 0) -> None:
    """Raise ``ValueError`` unless every split's train, val and test masks are non-empty and pairwise disjoint.

    The masks are boolean ``[N]`` (one split) or ``[N, S]`` (column ``s`` is published split
    ``first_split + s``), as read from a file; ``where`` (the file, or the dataset) starts the
    message, which names the split and the masks at fault. A node in two masks would be
    trained on and tested on (or selected on); an empty mask leaves nothing to train,
    select or measure on.
    """
    masks = {"train": train, "val": val, "test": test}
    if len({tuple(m.shape) for m in masks.values()}) != 1:
        shapes = ", ".join(f"{k} {list(m.shape)}" for k, m in masks.items())
        raise ValueError(f"{where}: the train, val and test masks must have the same shape, got {shapes}.")
    masks = {k: (m.bool().unsqueeze(1) if m.dim() == 1 else m.bool()) for k, m in masks.items()}
    counts = {k: m.sum(dim=0) for k, m in masks.items()}
    for name, count in counts.items():
        empty = (count == 0).nonzero().view(-1)
        if empty.numel():
            split = first_split + int(empty[0])
            raise ValueError(
                f"{where}: published split {split}: the {name} mask is empty in the file (no node is in it); "
                "use another published split, or a complete copy of the data."
            )
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        shared = (masks[a] & masks[b]).sum(dim=0)
        bad = shared.nonzero().view(-1)
        if bad.numel():
            column = int(bad[0])
            node = int((masks[a][:, column] & masks[b][:, column]).nonzero()[0])
            raise ValueError(
                f"{where}: published split {first_split + column}: the {a} and {b} masks share "
                f"{int(shared[column])} nodes (node {node} first); a node must be in at most one of "
                "train, val and test. The file is damaged: use a correct copy of it."
            )
