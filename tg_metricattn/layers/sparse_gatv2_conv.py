"""GATv2 attention (Brody, Alon, Yahav 2022), parameter-compatible with PyG's GATv2Conv."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn import Parameter
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.nn.inits import glorot

from tg_metricattn.layers.attention_conv import AttentionConv
from tg_metricattn.layers.score_terms import AdditiveTerms, ScoreTerms


class SparseGATv2Conv(AttentionConv):
    r"""GATv2 attention on the edges of a sparse graph ("How attentive are graph attention networks?").

    .. math::
        s_{ij} = a^\top \mathrm{LeakyReLU}\big(W_t x_i + W_s x_j \,[+\, W_e e_{ij}]\big),
        \qquad x'_i = \sum_j \alpha_{ij} W_s x_j

    The nonlinearity sits between the sum and the attention vector, so, unlike GAT, the
    score has no per-node form ("dynamic" attention: the ranking of the neighbours can
    depend on the target). It is evaluated in chunks of edges by
    :func:`~tg_metricattn.layers.sparse_kernels.edge_additive_score`, whose backward
    recomputes each chunk: no ``E x H x C`` tensor is kept. The rest is the shared
    propagation. Parameters carry the names and shapes of
    :class:`torch_geometric.nn.GATv2Conv` (``lin_l`` = W_s, ``lin_r`` = W_t, ``att``,
    ``lin_edge``, ``res``, ``bias``), so state_dicts load in both directions.

    Args:
        negative_slope: slope of the LeakyReLU for negative inputs.
        edge_dim: width of the edge features (the bracketed term; ``None``: none).
        fill_value: the added self-loops' edge features (see :class:`AttentionConv`).
        bias: biases in ``lin_l``/``lin_r`` and on the output (as GATv2Conv).
        share_weights: W_t = W_s (one linear map).
        residual: add a learnable skip connection ``res(x_i)`` (no bias).
        **kwargs: see :class:`AttentionConv` (``heads``, ``concat``, ``dropout``,
            ``add_self_loops``, ...).
    """

    edge_attention_vector = False  # GATv2Conv's lin_edge enters the sum inside the LeakyReLU

    def __init__(
        self,
        in_channels: int | tuple[int, int],
        out_channels: int,
        heads: int = 1,
        concat: bool = True,
        negative_slope: float = 0.2,
        dropout: float = 0.0,
        add_self_loops: bool = True,
        edge_dim: int | None = None,
        fill_value: float | Tensor | str = "mean",
        bias: bool = True,
        share_weights: bool = False,
        residual: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            in_channels, out_channels, heads, concat, dropout, add_self_loops,
            edge_dim=edge_dim, fill_value=fill_value, **kwargs,
        )  # fmt: skip
        self.negative_slope = negative_slope
        self.share_weights = share_weights
        self.residual = residual
        src, dst = (in_channels, in_channels) if isinstance(in_channels, int) else in_channels
        width = heads * out_channels
        self.lin_l = Linear(src, width, bias=bias, weight_initializer="glorot")
        self.lin_r = self.lin_l if share_weights else Linear(dst, width, bias=bias, weight_initializer="glorot")
        self.att = Parameter(torch.empty(1, heads, out_channels))
        self.build_residual_and_bias(residual, bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot for the maps and the attention vector, zeros for the bias (as GATv2Conv)."""
        super().reset_parameters()
        self.lin_l.reset_parameters()
        self.lin_r.reset_parameters()
        glorot(self.att)

    def node_terms(self, x_src: Tensor, x_dst: Tensor) -> tuple[Tensor, ScoreTerms]:
        """W_s x_j as values; W_t x_i and W_s x_j inside the score."""
        H, C = self.heads, self.out_channels
        h_src = self.lin_l(x_src).view(-1, H, C)
        h_dst = h_src if self.share_weights and x_dst is x_src else self.lin_r(x_dst).view(-1, H, C)
        additive = AdditiveTerms(h_dst, h_src, self.att.view(H, C), self.negative_slope)
        return h_src, ScoreTerms(additive=additive)

    def with_edge_features(self, terms: ScoreTerms, edge_attr: Tensor, target: Tensor) -> ScoreTerms:
        """W_e e_ij joins the sum inside the LeakyReLU (evaluated chunk by chunk with the score)."""
        additive = terms.additive._replace(edge_attr=edge_attr, edge_weight=self.lin_edge.weight)
        return terms._replace(additive=additive)

    def repr_settings(self) -> dict[str, Any]:
        """``negative_slope`` when it is not 0.2, ``share_weights`` when set, and the common settings."""
        extra: dict[str, Any] = {"negative_slope": self.negative_slope} if self.negative_slope != 0.2 else {}
        if self.share_weights:
            extra["share_weights"] = True
        return {**super().repr_settings(), **extra}
