"""Platonov et al.'s residual backbone for node classification, with any attention kind.

Platonov, Kuznedelev, Diskin, Babenko, Prokhorenkova (ICLR 2023), "A critical look at the
evaluation of GNNs under heterophily": input linear -> dropout -> GELU; ``num_layers``
pre-LayerNorm residual blocks; final LayerNorm -> linear head. With ego/neighbour separation
("-sep") a node is kept out of its own softmax and reaches the feed-forward block on a path
of its own: for a distance score (L2, metric) the self-loop has distance 0 and the highest
score of its row, so sharper attention would otherwise mean "look at yourself"
(``../shared/DESIGN.md`` §2c). The layers stay PyG layers: the backbone only calls them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from tg_metricattn.models.layer_registry import LAYERS, NO_LAYER, layer_class

__all__ = ["FeedForward", "ResidualAttentionNet"]


class FeedForward(nn.Module):
    """Platonov et al.'s feed-forward module: ``dropout(W_2 GELU(dropout(W_1 z + b_1)) + b_2)``,
    ``W_1``: ``in_multiplier * dim -> ffn_multiplier * dim``, ``W_2``: ``-> dim`` (the order of
    dropout and GELU as in their code)."""

    def __init__(self, dim: int, in_multiplier: int, ffn_multiplier: int, dropout: float) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(in_multiplier * dim, ffn_multiplier * dim)
        self.linear_2 = nn.Linear(ffn_multiplier * dim, dim)
        self.dropout = nn.Dropout(dropout)
        self.act = nn.GELU()

    def forward(self, z: Tensor) -> Tensor:
        """``[N, in_multiplier * dim] -> [N, dim]``."""
        return self.dropout(self.linear_2(self.act(self.dropout(self.linear_1(z)))))


class ResidualAttentionNet(nn.Module):
    r"""Pre-norm residual attention network (Platonov et al. 2023) over any attention kind.

    .. math::
        x^{(0)} &= \mathrm{GELU}(\mathrm{dropout}(x W_{in} + b_{in})) \\
        h &= \mathrm{LayerNorm}_l(x^{(l)}), \qquad
        m_i = \sum_{j \in N(i)} \alpha_{ij} W_v h_j \quad (\text{the attention layer of the kind}) \\
        x^{(l+1)} &= x^{(l)} + \mathrm{FFN}_l([h \,\Vert\, m]) \quad (\text{sep}), \qquad
        x^{(l+1)} = x^{(l)} + \mathrm{FFN}_l(m) \quad (\text{no sep}) \\
        y &= \mathrm{LayerNorm}(x^{(L)}) W_{out} + b_{out}

    With ``sep=True`` the softmax runs over the neighbours j != i only (self-loops in
    ``edge_index`` are dropped; a node with no neighbour gets m_i = bias) and the ego h_i
    enters the FFN beside m; with ``sep=False`` one self-loop per node is in the softmax
    and the FFN sees m alone. ``layer='none'`` is the ResNet (MLP) row:
    x <- x + FFN(LayerNorm(x)), no graph. The attention layer maps ``hidden`` to
    ``heads`` heads of ``hidden // heads`` channels, concatenated, with no skip term of its
    own (the block is the residual); FFN is :class:`FeedForward`.

    Args:
        layer: ``'gat' | 'gatv2' | 'dot' | 'l2' | 'metric'`` or ``'none'``.
        in_channels: input features.
        hidden: model width d (divisible by ``heads``).
        out_channels: classes.
        heads: attention heads.
        num_layers: residual blocks (>= 1).
        dropout: on the input map and inside every FFN.
        sep: separate the ego from the neighbours.
        ffn_multiplier: FFN hidden width ``ffn_multiplier * hidden``.
        attention_dropout: dropout on the attention weights (Platonov et al.: none).
        layer_kwargs: further arguments of every attention layer (e.g. ``time_scale``).

    Shapes:
        ``x`` ``[N, in_channels]``, ``edge_index`` ``[2, E]`` -> logits ``[N, out_channels]``.
    """

    def __init__(
        self,
        layer: str,
        in_channels: int,
        hidden: int,
        out_channels: int,
        heads: int = 8,
        num_layers: int = 5,
        dropout: float = 0.2,
        sep: bool = True,
        ffn_multiplier: int = 1,
        attention_dropout: float = 0.0,
        layer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("hidden", hidden), ("heads", heads), ("num_layers", num_layers)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if hidden % heads:
            raise ValueError(f"hidden {hidden} must be a multiple of heads {heads} (each head gets hidden // heads).")
        if not isinstance(ffn_multiplier, int) or ffn_multiplier < 1:
            raise ValueError(f"ffn_multiplier must be a positive integer, got {ffn_multiplier!r}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout!r}.")
        conv = layer_class(layer)
        self.layer_name, self.sep, self.hidden, self.heads = layer, sep, hidden, heads
        self.attends = layer != NO_LAYER
        kwargs = dict(layer_kwargs or {})
        if self.attends:  # the block is the residual: no skip term of x_i inside the layer
            kwargs[LAYERS[layer].skip_argument] = False
        self.input = nn.Linear(in_channels, hidden)
        self.input_dropout = nn.Dropout(dropout)
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(num_layers))
        self.convs = nn.ModuleList(
            conv(hidden, hidden // heads, heads=heads, dropout=attention_dropout, add_self_loops=not sep, **kwargs)
            for _ in range(num_layers if self.attends else 0)
        )
        in_multiplier = 2 if self.attends and sep else 1
        self.ffns = nn.ModuleList(
            FeedForward(hidden, in_multiplier, ffn_multiplier, dropout) for _ in range(num_layers)
        )
        self.final_norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, out_channels)

    def reset_parameters(self) -> None:
        """Re-initialise every layer."""
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """Logits per node (see the class docstring)."""
        if self.attends and self.sep and bool((edge_index[0] == edge_index[1]).any()):
            edge_index = edge_index[:, edge_index[0] != edge_index[1]]  # the ego has its own path
        x = nn.functional.gelu(self.input_dropout(self.input(x)))
        for block, (norm, ffn) in enumerate(zip(self.norms, self.ffns, strict=True)):
            h = norm(x)
            if self.attends:
                m = self.convs[block](h, edge_index)
                h = torch.cat([h, m], dim=-1) if self.sep else m
            x = x + ffn(h)
        return self.head(self.final_norm(x))
