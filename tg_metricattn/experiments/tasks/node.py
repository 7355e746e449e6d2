"""Node classification on one graph: full batch or neighbour-sampled mini-batches run bipartitely;
accuracy (through the OGB ``Evaluator`` for ``ogbn-*``), or ROC-AUC for the binary datasets published with it."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.transforms import NormalizeFeatures

from tg_metricattn.datasets import contextual_sbm, load_node_dataset
from tg_metricattn.experiments.config import TrainConfig
from tg_metricattn.experiments.data import check_present, resolve_root
from tg_metricattn.experiments.distributed import DistContext, shard_indices
from tg_metricattn.experiments.sampling import neighbor_batches
from tg_metricattn.experiments.tasks.base import Task, accuracy, optimizer_step
from tg_metricattn.models import AttentionFlowNet, AttentionNet, ResidualAttentionNet

__all__ = ["CSBM_SETTINGS", "NodeTask"]

#: the synthetic node graph (``--dataset csbm``): 4-class contextual SBM, 1,000 nodes
CSBM_SETTINGS = {"num_nodes": 1000, "num_classes": 4, "homophily": 0.7, "num_features": 32, "feature_snr": 1.0}


class NodeTask(Task):
    """Node classification with train/val/test masks (see the module docstring)."""

    def __init__(self, config: TrainConfig, ctx: DistContext | None = None) -> None:
        super().__init__(config, ctx)
        self.evaluator = None
        if config.dataset.lower() == "csbm":
            if config.split != 0:
                raise ValueError("csbm draws a new graph and split per seed; use --seed/--runs, not --split/--splits.")
            data = contextual_sbm(seed=config.seed, **CSBM_SETTINGS)
            self.info: dict[str, Any] = {"name": "csbm", **CSBM_SETTINGS}
        else:
            root = resolve_root(config.dataset, config.root)
            check_present(config.dataset, root)
            transform = NormalizeFeatures() if config.normalize_features else None
            data, info = load_node_dataset(
                config.dataset,
                root,
                config.split,
                transform=transform,
                train_per_class=config.train_per_class,
                val_per_class=config.val_per_class,
            )
            self.evaluator = info.evaluator
            self.metric = info.metric
            self.info = {"name": info.name, "split": info.split_kind, "num_nodes": info.num_nodes}
            if info.split_index is not None:
                self.info["split_index"] = info.split_index
        sizes = {split: int(getattr(data, f"{split}_mask").sum()) for split in ("train", "val", "test")}
        if min(sizes.values()) == 0:
            raise ValueError(
                f"{config.dataset}: the split leaves an empty set ({sizes['train']} train, {sizes['val']} validation, "
                f"{sizes['test']} test nodes); with a random split, lower --train-per-class / --val-per-class "
                f"(now {config.train_per_class} / {config.val_per_class})."
            )
        self.data = data.to(self.device)
        self.in_channels = int(data.x.size(1))
        self.num_classes = int(data.y.max()) + 1
        self.train_idx = data.train_mask.nonzero().view(-1)

    def build_model(self, config: TrainConfig) -> nn.Module:
        c = config
        if c.arch == "flow":
            return AttentionFlowNet(
                c.layer, self.in_channels, c.hidden, self.num_classes, c.heads, time=c.flow_time, steps=c.flow_steps,
                method=c.flow_method, dynamics=c.flow_dynamics, dropout=c.dropout, source=c.flow_source,
                layer_kwargs=c.layer_kwargs(),
            )  # fmt: skip
        if c.arch == "residual":
            return ResidualAttentionNet(
                c.layer, self.in_channels, c.hidden, self.num_classes, c.heads, c.layers, c.dropout, sep=c.sep,
                layer_kwargs=c.layer_kwargs(),
            )  # fmt: skip
        return AttentionNet(
            c.layer, self.in_channels, c.hidden, self.num_classes, c.heads, c.layers, c.dropout,
            layer_kwargs=c.layer_kwargs(),
        )  # fmt: skip

    def train_epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, float]:
        model.train()
        data, c = self.data, self.config
        if c.batch_size == 0:
            idx = shard_indices(self.train_idx, self.ctx)
            return {
                "train_loss": optimizer_step(
                    optimizer, F.cross_entropy(model(data.x, data.edge_index)[idx], data.y[idx])
                )
            }
        seeds = self._shuffled_shard(self.train_idx.cpu())
        total, count = 0.0, 0
        for batch in neighbor_batches(data.edge_index.cpu(), data.num_nodes, seeds, c.num_neighbors, c.batch_size):
            n_id = batch.n_id.to(self.device)
            out = model(data.x[n_id], batch.edge_index.to(self.device), num_sampled_nodes=batch.num_sampled_nodes)
            loss = optimizer_step(optimizer, F.cross_entropy(out[: batch.batch_size], data.y[n_id[: batch.batch_size]]))
            total, count = total + loss * batch.batch_size, count + batch.batch_size
        return {"train_loss": total / max(count, 1)}

    def _metric(self, out: Tensor, mask: Tensor) -> float:
        """Accuracy (OGB's ``Evaluator`` for ``ogbn-*``), or ROC-AUC of class 1's probability
        (NaN when the nodes hold one class only)."""
        y = self.data.y[mask].cpu()
        if self.metric == "roc_auc":
            if y.unique().numel() < 2:
                return float("nan")
            return float(roc_auc_score(y.numpy(), out[mask].softmax(-1)[:, 1].cpu().numpy()))
        pred = out[mask].argmax(-1).cpu()
        if self.evaluator is not None:
            return float(self.evaluator.eval({"y_true": y.view(-1, 1), "y_pred": pred.view(-1, 1)})["acc"])
        return accuracy(pred, y)

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        model.eval()
        data = self.data
        out = model(data.x, data.edge_index)
        return {
            "val_loss": float(F.cross_entropy(out[data.val_mask], data.y[data.val_mask])),
            "train_metric": self._metric(out, data.train_mask),
            "val_metric": self._metric(out, data.val_mask),
            "test_metric": self._metric(out, data.test_mask),
        }

    def diagnostic_data(self) -> Data:
        return self.data.cpu()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), **self.info}
