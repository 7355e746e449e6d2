"""L2 (squared-distance) self-attention on graph edges (Kim, Papamakarios, Mnih 2021)."""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor
from torch_geometric.nn.dense.linear import Linear

from tg_metricattn.layers.distance_attn_conv import DistanceAttnConv, shared_width


class L2AttnConv(DistanceAttnConv):
    r"""Attention whose score is a negative squared distance with tied query and key maps.

    .. math::
        s_{ij} = -\frac{\lVert W_q x_i - W_q x_j \rVert^2}{\sqrt{C}},
        \qquad x'_i = \sum_j \alpha_{ij} W_v x_j

    Tying :math:`W_k = W_q` (Kim et al. 2021, "The Lipschitz constant of self-attention")
    makes the score a function of a distance; :meth:`embed` is :math:`W_q x`, and the
    squared distances are taken per edge in chunks, as for every
    :class:`~tg_metricattn.layers.distance_attn_conv.DistanceAttnConv`. Parameters:
    ``lin_query``, ``lin_value``, ``res``, ``bias``.

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

    def embed(self, x: Tensor) -> Tensor:
        """The tied query/key embedding W_q x, shape ``[N, heads, out_channels]``."""
        return self.lin_query(x).view(-1, self.heads, self.out_channels)

    def distance_scale(self) -> float:
        """t = sqrt(C)."""
        return math.sqrt(self.out_channels)
