"""Scaled dot-product attention on graph edges, parameter-compatible with PyG's TransformerConv."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torch_geometric.nn.dense.linear import Linear

from tg_metricattn.layers.attention_conv import Attention, AttentionConv
from tg_metricattn.layers.score_terms import ScoreTerms
from tg_metricattn.layers.sparse_kernels import edge_feature_dot, edge_feature_sum


class DotAttnConv(AttentionConv):
    r"""Transformer attention masked by the edges.

    .. math::
        s_{ij} = \frac{\langle W_q x_i, W_k x_j \,[+\, W_e e_{ij}]\rangle}{\sqrt{C}},
        \qquad x'_i = \sum_j \alpha_{ij} (W_v x_j \,[+\, W_e e_{ij}]) \;+\; W_{skip} x_i

    Parameters carry the names of :class:`torch_geometric.nn.TransformerConv`
    (``lin_query``, ``lin_key``, ``lin_value``, ``lin_skip``, biases inside the linear
    maps when ``bias=True``). With ``add_self_loops=False`` the layer equals
    ``TransformerConv(..., beta=False)`` for the same weights, ``root_weight`` included,
    and with edge features (``edge_dim``: ``lin_edge``, added to keys and values) as well.
    Like ``TransformerConv`` the module always owns ``lin_skip`` (so checkpoints load in
    both directions) and uses it only when ``root_weight=True``. ``beta`` gating is not
    supported.

    Args:
        root_weight: add the skip term ``lin_skip(x_i)``.
        bias: learn biases in the query, key, value and skip maps.
        **kwargs: see :class:`AttentionConv`.
    """

    skip_argument = "root_weight"
    edge_attention_vector = False  # TransformerConv's lin_edge alone, PyG's default initialisation
    edge_weight_initializer = None

    def __init__(
        self,
        in_channels: int | tuple[int, int],
        out_channels: int,
        heads: int = 1,
        concat: bool = True,
        dropout: float = 0.0,
        add_self_loops: bool = True,
        edge_dim: int | None = None,
        fill_value: float | Tensor | str = "mean",
        bias: bool = True,
        root_weight: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            in_channels, out_channels, heads, concat, dropout, add_self_loops,
            edge_dim=edge_dim, fill_value=fill_value, **kwargs,
        )  # fmt: skip
        self.root_weight = root_weight
        src, dst = (in_channels, in_channels) if isinstance(in_channels, int) else in_channels
        width = heads * out_channels
        self.lin_key = Linear(src, width, bias=bias)
        self.lin_query = Linear(dst, width, bias=bias)
        self.lin_value = Linear(src, width, bias=bias)
        self.lin_skip = Linear(dst, self.total_out_channels, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyG's default initialisation of every linear map."""
        super().reset_parameters()
        for lin in (self.lin_key, self.lin_query, self.lin_value, self.lin_skip):
            lin.reset_parameters()

    def node_terms(self, x_src: Tensor, x_dst: Tensor) -> tuple[Tensor, ScoreTerms]:
        """Values W_v x_j; query W_q x_i / sqrt(C) and key W_k x_j."""
        H, C = self.heads, self.out_channels
        query = self.lin_query(x_dst).view(-1, H, C) / math.sqrt(C)
        key = self.lin_key(x_src).view(-1, H, C)
        return self.lin_value(x_src).view(-1, H, C), ScoreTerms(query=query, key=key)

    def with_edge_features(self, terms: ScoreTerms, edge_attr: Tensor, target: Tensor) -> ScoreTerms:
        """TransformerConv's edge term: the key of j becomes k_j + W_e e_ij, so the score gains
        <q_i, W_e e_ij> / sqrt(C) = e_ij . (W_e^T q_i) / sqrt(C): per node W_e^T q_i ``[N, H, edge_dim]``,
        per edge one chunked dot product with it (no ``E x H x C`` or ``E x H x edge_dim`` tensor)."""
        H, C = self.heads, self.out_channels
        projected = torch.einsum("nhc,hcd->nhd", terms.query, self.lin_edge.weight.view(H, C, -1))
        return terms._replace(edge_bias=edge_feature_dot(projected, edge_attr, target))

    def edge_value_term(self, attention: Attention, weights: Tensor) -> Tensor | None:
        """TransformerConv's edge values: the value of j becomes v_j + W_e e_ij, so the output gains
        sum_j a_ij W_e e_ij = W_e (sum_j a_ij e_ij), aggregated over edges in ``edge_dim`` wide rows,
        chunk by chunk."""
        if attention.edge_attr is None:
            return None
        H, C = self.heads, self.out_channels
        summed = edge_feature_sum(weights, attention.edge_attr, attention.target, attention.graph.num_targets)
        return torch.einsum("nhd,hcd->nhc", summed, self.lin_edge.weight.view(H, C, -1))

    def repr_settings(self) -> dict[str, Any]:
        """``root_weight=False`` when set, and the common settings."""
        return {**super().repr_settings(), **({} if self.root_weight else {"root_weight": False})}

    def root_term(self, x_dst: Tensor) -> Tensor | None:
        """``lin_skip(x_i)`` when ``root_weight=True``."""
        return self.lin_skip(x_dst) if self.root_weight else None
