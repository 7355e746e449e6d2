"""The three tasks: what a training epoch is, how a model is built and how it is evaluated.

- :class:`NodeTask`: node classification on one graph (full batch, or neighbour-sampled
  mini-batches run bipartitely); accuracy, through the OGB ``Evaluator`` for ``ogbn-*``.
- :class:`MeshTask`: per-vertex segmentation of meshes (one or ``batch_size`` meshes per
  step) with the diffusion-attention net (``arch='diffusion'``) or an attention stack,
  ``xyz`` input rotated at random per training step when ``augment``; accuracy per vertex
  on the original meshes, and per face where labels are per face (a face's prediction is
  the argmax of the mean logits of its three vertices).
- :class:`GraphTask`: ``ogbg-*`` graph property prediction with global mean pooling; the
  metric is the dataset's own (ROC-AUC for ``ogbg-molbace``) from the OGB ``Evaluator``.

Every epoch's metrics come as a dictionary with ``train_loss``, ``val_loss``,
``train_metric``, ``val_metric``, ``test_metric`` (and ``*_face_metric`` for meshes).
Training items are shuffled with :attr:`Task.generator`, whose state the checkpoint saves.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from typing import Any

import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch import Tensor, nn
from torch_geometric.data import Batch, Data
from torch_geometric.transforms import NormalizeFeatures

from tg_metricattn.datasets import (
    IGNORE_INDEX,
    contextual_sbm,
    load_graph_dataset,
    load_node_dataset,
    mesh_feature_width,
    random_rotation_matrix,
)
from tg_metricattn.experiments.config import NO_LAYER, TrainConfig
from tg_metricattn.experiments.data import check_present, load_mesh_splits, resolve_root
from tg_metricattn.experiments.distributed import DistContext, shard_indices
from tg_metricattn.experiments.sampling import neighbor_batches
from tg_metricattn.models import AttentionNet, DiffusionAttentionNet

__all__ = ["GraphTask", "MeshTask", "NodeTask", "Task", "build_task", "optimizer_step"]

#: the synthetic node graph (``--dataset csbm``): 4-class contextual SBM, 1,000 nodes
CSBM_SETTINGS = {"num_nodes": 1000, "num_classes": 4, "homophily": 0.7, "num_features": 32, "feature_snr": 1.0}


def optimizer_step(optimizer: torch.optim.Optimizer, loss: Tensor) -> float:
    """One gradient step on ``loss`` (gradients cleared first); returns the loss value."""
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def _accuracy(pred: Tensor, y: Tensor) -> float:
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
        return _accuracy(pred, y)

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


class MeshTask(Task):
    """Per-vertex mesh segmentation (see the module docstring)."""

    def __init__(self, config: TrainConfig, ctx: DistContext | None = None) -> None:
        super().__init__(config, ctx)
        self.features = tuple(config.features.split(","))
        self.splits, self.num_classes = load_mesh_splits(
            config.dataset,
            config.root,
            self.features,
            config.limit,
            config.num_meshes,
            config.seed,
            config.mesh_resolution,
            config.eigenpairs,
        )
        self.in_channels = int(self.splits["train"][0].x.size(1))
        self.diffusion = config.arch == "diffusion"

    def build_model(self, config: TrainConfig) -> nn.Module:
        c = config
        if self.diffusion:
            layer = None if c.layer == NO_LAYER else c.layer
            return DiffusionAttentionNet(
                self.in_channels,
                self.num_classes,
                c.heads * c.hidden,
                c.layers,
                layer,
                c.heads,
                c.dropout,
                gradient_features=c.gradient_features,
                layer_kwargs=c.layer_kwargs(),
            )
        encoder = nn.Linear(self.in_channels, c.heads * c.hidden)
        return AttentionNet(
            c.layer, self.in_channels, c.hidden, self.num_classes, c.heads, c.layers, c.dropout,
            output="linear", encoder=encoder, layer_kwargs=c.layer_kwargs(),
        )  # fmt: skip

    def _rotated(self, mesh: Data) -> Data:
        """``mesh`` with its ``xyz`` input columns turned by a random rotation (drawn from the task's generator)."""
        start = 0
        for name in self.features[: self.features.index("xyz")]:
            start += mesh_feature_width(name)
        x = mesh.x.clone()
        rotation = random_rotation_matrix(self.generator, x.dtype).to(x.device)
        x[:, start : start + 3] = x[:, start : start + 3] @ rotation.T
        rotated = copy.copy(mesh)  # a shallow copy: every other tensor (edge_index, evecs) is the mesh's own
        rotated.x = x
        return rotated

    def _logits(self, model: nn.Module, mesh: Data) -> Tensor:
        if self.diffusion:
            return model(**DiffusionAttentionNet.inputs(mesh))
        return model(mesh.x, mesh.edge_index)

    def train_epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, float]:
        model.train()
        meshes = self.splits["train"]
        order = self._shuffled_shard(torch.arange(len(meshes))).tolist()
        step = max(self.config.batch_size, 1)
        total = correct = labelled = 0.0
        for start in range(0, len(order), step):
            chosen = [meshes[i] for i in order[start : start + step]]
            # one mesh per step: the sample itself, so per-mesh caches (the layers' sorted graph) stay valid
            batch = chosen[0] if step == 1 else Batch.from_data_list(chosen)
            batch = batch.to(self.device)
            if self.config.augment:
                batch = self._rotated(batch)
            out = self._logits(model, batch)
            loss = optimizer_step(optimizer, F.cross_entropy(out, batch.y, ignore_index=IGNORE_INDEX))
            valid = batch.y != IGNORE_INDEX
            total += loss * int(valid.sum())
            correct += float((out.argmax(-1)[valid] == batch.y[valid]).sum())
            labelled += int(valid.sum())
        return {"train_loss": total / max(labelled, 1), "train_metric": correct / max(labelled, 1)}

    @torch.no_grad()
    def predict(self, model: nn.Module, mesh: Data) -> Tensor:
        """Logits per vertex of one mesh."""
        model.eval()
        return self._logits(model, mesh.to(self.device))

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        metrics: dict[str, float] = {}
        for split in ("val", "test"):
            loss = correct = labelled = face_correct = face_labelled = 0.0
            for mesh in self.splits[split]:
                out = self.predict(model, mesh)
                y = mesh.y.to(out.device)
                valid = y != IGNORE_INDEX
                loss += float(F.cross_entropy(out, y, ignore_index=IGNORE_INDEX, reduction="sum"))
                correct += float((out.argmax(-1)[valid] == y[valid]).sum())
                labelled += int(valid.sum())
                if getattr(mesh, "face_y", None) is not None:
                    face_pred = out[mesh.face.to(out.device)].mean(0).argmax(-1)
                    face_y = mesh.face_y.to(out.device)
                    face_valid = face_y != IGNORE_INDEX
                    face_correct += float((face_pred[face_valid] == face_y[face_valid]).sum())
                    face_labelled += int(face_valid.sum())
            metrics[f"{split}_loss"] = loss / max(labelled, 1)
            metrics[f"{split}_metric"] = correct / max(labelled, 1)
            if face_labelled:
                metrics[f"{split}_face_metric"] = face_correct / face_labelled
        metrics.pop("test_loss")
        return metrics

    def diagnostic_data(self) -> Data:
        return self.splits["test"][0]

    def describe(self) -> dict[str, Any]:
        sizes = {f"num_{k}_meshes": len(v) for k, v in self.splits.items()}
        return {**super().describe(), **sizes, "features": self.config.features, "arch": self.config.arch}


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
        if self.config.dataset.lower().startswith("ogbg-mol"):
            from ogb.graphproppred.mol_encoder import AtomEncoder

            encoder: nn.Module = AtomEncoder(width)
        else:
            encoder = nn.Linear(self.in_channels, width)
        return AttentionNet(
            c.layer, self.in_channels, c.hidden, self.num_classes, c.heads, c.layers, c.dropout,
            output="linear", encoder=encoder, pool=True, layer_kwargs=c.layer_kwargs(),
        )  # fmt: skip

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
            loss = optimizer_step(optimizer, self._loss(model(batch.x, batch.edge_index, batch.batch), batch.y))
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
                outs.append(model(batch.x, batch.edge_index, batch.batch).cpu())
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


def build_task(config: TrainConfig, ctx: DistContext | None = None) -> Task:
    """The task object for ``config.task`` (data loaded, model not yet built)."""
    cls = {"node": NodeTask, "mesh": MeshTask, "graph": GraphTask}[config.task]
    return cls(config, ctx)
