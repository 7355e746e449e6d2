r"""IPN, the metric-attention paper's network for vector data: linear -> attention blocks -> linear.

.. math::
    h_0 = x W_{in} + b_{in}, \qquad
    h_{l+1} = h_l + \mathrm{ELU}(\mathrm{Attn}_l(h_l)), \qquad
    \mathrm{logits} = h_L W_{out} + b_{out}

Each point attends over its incoming edges (a kNN graph of the points, or the complete
graph of a batch: dense attention). Only the score differs between the attention kinds,
so a comparison of kinds in this network compares pseudo-metrics and nothing else.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from tg_metricattn.models.layer_registry import layer_class

__all__ = ["IPN"]


class IPN(nn.Module):
    """Linear encoder, ``blocks`` residual attention blocks of one kind, linear head.

    Args:
        layer: ``'gat' | 'gatv2' | 'dot' | 'l2' | 'metric'``.
        in_channels: input width F.
        out_channels: classes.
        width: width of the hidden features (``heads`` heads of ``width / heads`` channels).
        heads: attention heads per block (must divide ``width``).
        blocks: attention blocks.
        dropout: on the attention weights (training only).
        layer_kwargs: further arguments of every attention layer.

    Shapes:
        ``x`` ``[N, F]``, ``edge_index`` ``[2, E]`` -> logits ``[N, out_channels]``.
    """

    def __init__(
        self,
        layer: str,
        in_channels: int,
        out_channels: int,
        width: int = 32,
        heads: int = 1,
        blocks: int = 2,
        dropout: float = 0.0,
        layer_kwargs: dict | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(width, int) or not isinstance(heads, int) or width < 1 or heads < 1 or width % heads:
            raise ValueError(f"width must be a positive multiple of heads, got width={width!r}, heads={heads!r}.")
        if not isinstance(blocks, int) or blocks < 1:
            raise ValueError(f"blocks must be a positive integer, got {blocks!r}.")
        conv = layer_class(layer)
        self.layer_name = layer
        self.encoder = nn.Linear(in_channels, width)
        self.convs = nn.ModuleList(
            conv(width, width // heads, heads=heads, dropout=dropout, **(layer_kwargs or {})) for _ in range(blocks)
        )
        self.head = nn.Linear(width, out_channels)

    def reset_parameters(self) -> None:
        """Re-initialise every layer."""
        self.encoder.reset_parameters()
        for conv in self.convs:
            conv.reset_parameters()
        self.head.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """Logits per point."""
        h = self.encoder(x)
        for conv in self.convs:
            h = h + F.elu(conv(h, edge_index))
        return self.head(h)

    def __repr__(self) -> str:
        conv = self.convs[0]
        return (
            f"{type(self).__name__}({self.encoder.in_features}, {self.head.out_features}, layer={self.layer_name!r}, "
            f"width={self.encoder.out_features}, heads={conv.heads}, blocks={len(self.convs)})"
        )
