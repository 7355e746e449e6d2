"""Short demo: a two-layer GAT and the same model with metric attention, on Cora.

Uses the real Cora graph under ``$TGMA_DATA/Planetoid`` when present (copied to a
temporary folder first), otherwise a generated stochastic-block-model graph.
Run with ``python -m tg_metricattn.experiments.demo``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.data import Data
from torch_geometric.datasets import Planetoid
from torch_geometric.utils import stochastic_blockmodel_graph

from tg_metricattn import DotAttnConv, L2AttnConv, MetricAttnConv, SparseGATConv


class TwoLayerAttentionNet(nn.Module):
    """The GAT paper's Cora model (8 heads x 8 hidden, dropout 0.6) with any attention layer."""

    def __init__(self, conv: type, in_channels: int, num_classes: int, hidden: int = 8, heads: int = 8):
        super().__init__()
        self.conv1 = conv(in_channels, hidden, heads=heads, dropout=0.6)
        self.conv2 = conv(hidden * heads, num_classes, heads=1, dropout=0.6)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        x = F.dropout(x, p=0.6, training=self.training)
        x = F.elu(self.conv1(x, edge_index))
        x = F.dropout(x, p=0.6, training=self.training)
        return self.conv2(x, edge_index)


def load_demo_graph(data_root: str | None) -> tuple[Data, str]:
    """Cora (public split) from ``data_root/Planetoid/Cora`` if it exists, else a generated graph."""
    source = Path(data_root) / "Planetoid" / "Cora" if data_root else None
    if source is not None and (source / "raw").is_dir():
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copytree(source, Path(tmp) / "Cora")
            return Planetoid(tmp, "Cora")[0], "Cora (public split)"
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    sizes = [300] * 4
    probs = torch.full((4, 4), 0.002) + torch.eye(4) * 0.02
    edge_index = stochastic_blockmodel_graph(sizes, probs, directed=False)
    y = torch.arange(4).repeat_interleave(300)
    class_means = torch.randn(4, 32, generator=gen) * 0.3
    x = class_means[y] + torch.randn(1200, 32, generator=gen)
    masks = torch.rand(3, 1200, generator=gen)
    data = Data(x=x, y=y, edge_index=edge_index)
    data.train_mask, data.val_mask, data.test_mask = masks[0] < 0.1, masks[1] < 0.2, masks[2] < 0.5
    return data, "generated 4-block SBM graph (no Cora under $TGMA_DATA)"


def train_node_classifier(conv: type, data: Data, epochs: int = 200, seed: int = 0) -> float:
    """Adam (lr 0.005, weight decay 5e-4); test accuracy at the best validation epoch."""
    torch.manual_seed(seed)
    model = TwoLayerAttentionNet(conv, data.num_features, int(data.y.max()) + 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.005, weight_decay=5e-4)
    best_val = best_test = 0.0
    for _ in range(epochs):
        model.train()
        optimizer.zero_grad()
        loss = F.cross_entropy(model(data.x, data.edge_index)[data.train_mask], data.y[data.train_mask])
        loss.backward()
        optimizer.step()
        model.eval()
        with torch.no_grad():
            pred = model(data.x, data.edge_index).argmax(-1)
        val = (pred[data.val_mask] == data.y[data.val_mask]).float().mean().item()
        if val > best_val:
            best_val = val
            best_test = (pred[data.test_mask] == data.y[data.test_mask]).float().mean().item()
    return best_test


def main() -> None:
    """Train each layer once and print test accuracies."""
    data, name = load_demo_graph(os.environ.get("TGMA_DATA"))
    print(f"graph: {name}, {data.num_nodes} nodes, {data.num_edges} edges")
    print(f"{'layer':<16}{'test acc':>10}{'seconds':>10}")
    for conv in (SparseGATConv, DotAttnConv, L2AttnConv, MetricAttnConv):
        start = time.perf_counter()
        acc = train_node_classifier(conv, data)
        print(f"{conv.__name__:<16}{acc:>10.3f}{time.perf_counter() - start:>10.1f}")


if __name__ == "__main__":
    main()
