"""Vector data of the metric-attention paper: two moons and handwritten digits, split and standardised.

Both come from scikit-learn, offline: ``make_moons`` draws the two interleaving half
circles with Gaussian noise of standard deviation ``noise``; ``load_digits`` is the 8x8
handwritten-digit set bundled with scikit-learn (1,797 images, 64 grey levels 0..16, 10
classes; the paper's MNIST cannot be downloaded here). A seeded stratified split gives
60% / 20% / 20% of every class to training / validation / test, and the features are
standardised with the mean and standard deviation of the training points only:
``x' = (x - mean_train) / std_train`` (a feature constant on the training points keeps
std 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = ["MAX_POINTS", "VectorData", "handwritten_digits", "stratified_split", "two_moons"]

#: the most points :func:`two_moons` draws (the kNN and complete graphs are built densely)
MAX_POINTS = 200_000


@dataclass(frozen=True)
class VectorData:
    """Points with class labels and a split.

    Attributes:
        name: e.g. ``"moons-0.1"`` or ``"digits"``.
        x: ``[N, F]`` float32 standardised features.
        y: ``[N]`` int64 labels ``0..num_classes-1``.
        train, val, test: int64 indices into the points (disjoint, together all of them).
    """

    name: str
    x: Tensor
    y: Tensor
    train: Tensor
    val: Tensor
    test: Tensor

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return int(self.y.max()) + 1

    @property
    def num_features(self) -> int:
        """Input width F."""
        return int(self.x.size(1))


def stratified_split(
    y: Tensor, fractions: tuple[float, float] = (0.6, 0.2), seed: int = 0
) -> tuple[Tensor, Tensor, Tensor]:
    """Seeded per-class split: of the n_c points of class c, ``round(fractions[0] n_c)`` go to
    training, ``round(fractions[1] n_c)`` to validation and the rest to testing.

    Returns ``(train, val, test)`` as sorted int64 index tensors.
    """
    train_fraction, val_fraction = fractions
    if not (train_fraction > 0 and val_fraction > 0 and train_fraction + val_fraction < 1):
        raise ValueError(f"fractions must be positive with a sum below 1, got {fractions}.")
    generator = torch.Generator().manual_seed(int(seed))
    parts: tuple[list[Tensor], list[Tensor], list[Tensor]] = ([], [], [])
    for c in torch.unique(y).tolist():
        idx = (y == c).nonzero().view(-1)
        idx = idx[torch.randperm(idx.numel(), generator=generator)]
        n_train, n_val = round(train_fraction * idx.numel()), round(val_fraction * idx.numel())
        for part, chunk in zip(
            parts, (idx[:n_train], idx[n_train : n_train + n_val], idx[n_train + n_val :]), strict=True
        ):
            part.append(chunk)
    train, val, test = (torch.cat(p).sort().values for p in parts)
    if min(train.numel(), val.numel(), test.numel()) == 0:
        raise ValueError(f"{y.numel()} points are too few for a train/val/test split with fractions {fractions}.")
    return train, val, test


def _standardised(name: str, x: np.ndarray, y: np.ndarray, seed: int) -> VectorData:
    x_t = torch.as_tensor(x, dtype=torch.float32)
    y_t = torch.as_tensor(y, dtype=torch.int64)
    train, val, test = stratified_split(y_t, seed=seed)
    mean = x_t[train].mean(0)
    std = x_t[train].std(0)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return VectorData(name, (x_t - mean) / std, y_t, train, val, test)


def two_moons(num_points: int = 1000, noise: float = 0.1, seed: int = 0) -> VectorData:
    """Two interleaving half circles in the plane (scikit-learn's ``make_moons``), 2 classes.

    The points and the split are drawn with ``seed``. ``noise`` is the standard deviation
    of the Gaussian noise added to every coordinate.
    """
    from sklearn.datasets import make_moons

    if not isinstance(num_points, int) or not 10 <= num_points <= MAX_POINTS:
        raise ValueError(f"num_points must be an integer in [10, {MAX_POINTS}], got {num_points!r}.")
    if not (isinstance(noise, (int, float)) and math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}.")
    x, y = make_moons(n_samples=num_points, noise=float(noise), random_state=int(seed))
    return _standardised(f"moons-{noise:g}", x, y, seed)


def handwritten_digits(seed: int = 0) -> VectorData:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 points, 64 features, 10 classes); split with ``seed``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return _standardised("digits", digits.data, digits.target, seed)
