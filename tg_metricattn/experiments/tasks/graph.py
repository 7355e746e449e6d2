"""``ogbg-*`` graph property prediction with global mean pooling, scored by the OGB ``Evaluator``.

Node features enter through OGB's ``AtomEncoder`` (molecules) or a linear map; edge features,
unless ``--no-edge-features``, through ``BondEncoder`` (molecules) or a linear map, into every
attention layer's ``edge_attr`` (as OGB's own examples).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from tg_metricattn.datasets import load_graph_dataset
from tg_metricattn.experiments.config import TrainConfig
from tg_metricattn.experiments.data import check_present, resolve_root
from tg_metricattn.experiments.distributed import DistContext
from tg_metricattn.experiments.tasks.base import Task, optimizer_step
from tg_metricattn.models import NO_LAYER, AttentionNet

__all__ = ["GraphTask"]


class GraphTask(Task):
    """OGB graph property prediction (see the module docstring)."""

    def __init__(self, config: TrainConfig, ctx: DistContext | None = None) -> None:
        super().__init__(config, ctx)
        if not config.dataset.lower().startswith("ogbg-"):
            raise ValueError(f"The graph task reads OGB datasets 'ogbg-*', got {config.dataset!r}.")
        root = resolve_root(config.dataset, config.root)
        check_present(config.dataset, root)
        self.dataset, self.info = load_graph_dataset(config.dataset.lower(), root)
        if self.info.task_type not in ("binary classification", "regression"):
            raise ValueError(f"{config.dataset}: task type {self.info.task_type!r} is not supported.")
        self.metric = self.info.eval_metric
        self.higher_is_better = self.metric not in ("rmse", "mae")
        self.in_channels = self.info.num_node_features
        self.num_classes = self.info.num_tasks
        self.batch_size = config.batch_size or 32

    def build_model(self, config: TrainConfig) -> nn.Module:
        c = config
        width = c.heads * c.hidden
        molecules = self.config.dataset.lower().startswith("ogbg-mol")
        if molecules:
            from ogb.graphproppred.mol_encoder import AtomEncoder, BondEncoder

            encoder: nn.Module = AtomEncoder(width)
        else:
            encoder = nn.Linear(self.in_channels, width)
        layer_kwargs, edge_encoder = c.layer_kwargs(), None
        if self.uses_edge_features:  # as OGB's examples: AtomEncoder + BondEncoder (a linear map otherwise)
            edge_encoder = BondEncoder(width) if molecules else nn.Linear(self.info.num_edge_features, width)
            layer_kwargs["edge_dim"] = width
        return AttentionNet(
            c.layer, self.in_channels, c.hidden, self.num_classes, c.heads, c.layers, c.dropout,
            output="linear", encoder=encoder, pool=True, layer_kwargs=layer_kwargs, edge_encoder=edge_encoder,
        )  # fmt: skip

    @property
    def uses_edge_features(self) -> bool:
        """``--edge-features`` (the default) on a dataset whose graphs have them, for an attention kind
        (``--layer none``, the MLP row, reads no graph)."""
        return bool(self.config.edge_features) and self.info.num_edge_features > 0 and self.config.layer != NO_LAYER

    def _forward(self, model: nn.Module, batch: Batch) -> Tensor:
        edge_attr = batch.edge_attr if self.uses_edge_features else None
        return model(batch.x, batch.edge_index, batch.batch, edge_attr=edge_attr)

    def _loss(self, out: Tensor, y: Tensor) -> Tensor:
        y = y.view(out.shape).to(out.dtype)
        labelled = ~torch.isnan(y)
        if self.info.task_type == "regression":
            return F.mse_loss(out[labelled], y[labelled])
        return F.binary_cross_entropy_with_logits(out[labelled], y[labelled])

    def _batches(self, indices: Tensor) -> list[Batch]:
        graphs = self.dataset[indices]
        return [
            Batch.from_data_list([graphs[i] for i in range(s, min(s + self.batch_size, len(graphs)))])
            for s in range(0, len(graphs), self.batch_size)
        ]

    def train_epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, float]:
        model.train()
        total, count = 0.0, 0
        for batch in self._batches(self._shuffled_shard(self.info.split["train"])):
            batch = batch.to(self.device)
            loss = optimizer_step(optimizer, self._loss(self._forward(model, batch), batch.y))
            total, count = total + loss * batch.num_graphs, count + batch.num_graphs
        return {"train_loss": total / max(count, 1)}

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        model.eval()
        metrics: dict[str, float] = {}
        for ours, theirs in (("val", "valid"), ("test", "test")):
            outs, ys = [], []
            for batch in self._batches(self.info.split[theirs]):
                batch = batch.to(self.device)
                outs.append(self._forward(model, batch).cpu())
                ys.append(batch.y.view(outs[-1].shape).cpu().to(outs[-1].dtype))
            out, y = torch.cat(outs), torch.cat(ys)
            result = self.info.evaluator.eval({"y_true": y, "y_pred": out})
            metrics[f"{ours}_metric"] = float(result[self.metric])
            if ours == "val":
                metrics["val_loss"] = float(self._loss(out, y))
        return metrics

    def diagnostic_data(self) -> Data:
        return self.dataset[self.info.split["test"][0]]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "num_graphs": self.info.num_graphs, "task_type": self.info.task_type}
