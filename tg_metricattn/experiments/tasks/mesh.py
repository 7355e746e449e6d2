"""Per-vertex mesh segmentation: one (or ``batch_size``) meshes per step, ``xyz`` rotated at random per
training step when ``augment``; accuracy per vertex, and per face where labels are per face."""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from tg_metricattn.datasets import IGNORE_INDEX, mesh_feature_width, random_rotation_matrix
from tg_metricattn.experiments.config import NO_LAYER, TrainConfig
from tg_metricattn.experiments.data import load_mesh_splits
from tg_metricattn.experiments.distributed import DistContext
from tg_metricattn.experiments.tasks.base import Task, optimizer_step
from tg_metricattn.models import AttentionNet, DiffusionAttentionNet

__all__ = ["MeshTask"]


class MeshTask(Task):
    """Per-vertex mesh segmentation (see the module docstring)."""

    def __init__(self, config: TrainConfig, ctx: DistContext | None = None) -> None:
        super().__init__(config, ctx)
        self.features = config.features
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
