"""L2 (squared-distance) self-attention on graph edges (Kim, Papamakarios, Mnih 2021)."""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor
from torch_geometric.nn.dense.linear import Linear

from tg_metricattn.layers.attention_conv import AttentionConv
from tg_metricattn.layers.score_terms import ScoreTerms, squared_distance_terms


def shared_width(in_channels: int | tuple[int, int], layer: str) -> int:
    """The one input width of a layer whose score compares x_i and x_j in one space."""
    if isinstance(in_channels, int):
        return in_channels
    if in_channels[0] != in_channels[1]:
        raise ValueError(
            f"{layer} compares source and target nodes with one shared map, so both need the "
            f"same width; got in_channels={tuple(in_channels)}. Project them to one width first."
        )
    return in_channels[0]


class L2AttnConv(AttentionConv):
    r"""Attention whose score is a negative squared distance with tied query and key maps.

    .. math::
        s_{ij} = -\frac{\lVert W_q x_i - W_q x_j \rVert^2}{\sqrt{C}},
        \qquad x'_i = \sum_j \alpha_{ij} W_v x_j

    Tying :math:`W_k = W_q` (Kim et al. 2021, "The Lipschitz constant of self-attention")
    makes the score a function of a distance. The term :math:`\lVert W_q x_i\rVert^2` is
    constant over the edges into i and cancels in the softmax, so the score is evaluated
    as :math:`(2\langle q_i, q_j\rangle - \lVert q_j\rVert^2)/\sqrt{C}` without forming
    per-edge differences. Parameters: ``lin_query``, ``lin_value``, ``res``, ``bias``.

    Args:
        residual: add a learnable skip connection ``res(x_i)``.
        bias: add a learnable bias to the output.
        **kwargs: see :class:`AttentionConv`.
    """

    def __init__(
        self,
        in_channels: int | tuple[int, int],
        out_channels: int,
        heads: int = 1,
        concat: bool = True,
        dropout: float = 0.0,
        add_self_loops: bool = True,
        bias: bool = True,
        residual: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(in_channels, out_channels, heads, concat, dropout, add_self_loops, **kwargs)
        width = shared_width(in_channels, type(self).__name__)
        self.residual = residual
        self.lin_query = Linear(width, heads * out_channels, bias=False, weight_initializer="glorot")
        self.lin_value = Linear(width, heads * out_channels, bias=False, weight_initializer="glorot")
        self.build_residual_and_bias(residual, bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot for the query and value maps, zeros for the bias."""
        super().reset_parameters()
        self.lin_query.reset_parameters()
        self.lin_value.reset_parameters()

    def query(self, x: Tensor) -> Tensor:
        """The tied query/key embedding W_q x, shape ``[N, heads, out_channels]``."""
        return self.lin_query(x).view(-1, self.heads, self.out_channels)

    def node_terms(self, x_src: Tensor, x_dst: Tensor) -> tuple[Tensor, ScoreTerms]:
        """Values W_v x_j and the squared-distance terms of q = W_q x with t = sqrt(C)."""
        q_src = self.query(x_src)
        q_dst = q_src if x_dst is x_src else self.query(x_dst)
        value = self.lin_value(x_src).view(-1, self.heads, self.out_channels)
        return value, squared_distance_terms(q_dst, q_src, math.sqrt(self.out_channels))
