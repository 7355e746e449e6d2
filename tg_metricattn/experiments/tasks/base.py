"""The task interface every training loop drives, and what the tasks share (a gradient step, accuracy)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from tg_metricattn.datasets import IGNORE_INDEX
from tg_metricattn.experiments.config import TrainConfig
from tg_metricattn.experiments.distributed import DistContext, shard_indices

__all__ = ["Task", "accuracy", "optimizer_step"]


def optimizer_step(optimizer: torch.optim.Optimizer, loss: Tensor) -> float:
    """One gradient step on ``loss`` (gradients cleared first); returns the loss value."""
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def accuracy(pred: Tensor, y: Tensor) -> float:
    """Share of ``pred == y`` over the labelled items (NaN when none is labelled)."""
    valid = y != IGNORE_INDEX
    return float((pred[valid] == y[valid]).float().mean()) if bool(valid.any()) else float("nan")


class Task(ABC):
    """A dataset plus the rules for training on it and evaluating it."""

    #: name of the evaluation metric and whether larger is better
    metric: str = "accuracy"
    higher_is_better: bool = True

    def __init__(self, config: TrainConfig, ctx: DistContext | None = None) -> None:
        self.config = config
        self.ctx = ctx or DistContext()
        self.device = torch.device(config.device)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.in_channels = 0
        self.num_classes = 0

    def reseed(self, seed: int) -> None:
        """Reset the data-order generator (at the start of a run)."""
        self.generator.manual_seed(seed)

    def _shuffled_shard(self, indices: Tensor) -> Tensor:
        order = indices[torch.randperm(indices.numel(), generator=self.generator)]
        return shard_indices(order, self.ctx)

    @abstractmethod
    def build_model(self, config: TrainConfig) -> nn.Module:
        """A fresh model with ``config``'s layer and sizes (initialised from the global torch seed)."""

    @abstractmethod
    def train_epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, float]:
        """One pass over this rank's training items; returns ``train_loss`` (and ``train_metric`` if cheap)."""

    @abstractmethod
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Metrics on the validation and test splits (model in eval mode, no gradients)."""

    @abstractmethod
    def diagnostic_data(self) -> Data:
        """The graph (or one test mesh) on which to run :func:`~tg_metricattn.diagnostics.diagnose`."""

    def describe(self) -> dict[str, Any]:
        """Sizes of the data, for ``final.json``."""
        return {"in_channels": self.in_channels, "num_classes": self.num_classes, "metric": self.metric}
