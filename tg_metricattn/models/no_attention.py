"""The attention-free stand-in of an attention layer: the same call, a per-node linear map.

``NoAttention(in_channels, out_channels, heads, concat)`` computes ``x_i W + b`` for every
target node i (``heads * out_channels`` wide when ``concat``, else ``out_channels``) and
ignores the graph, so a network built with it is the same network as an MLP: the row
every comparison of attention kinds needs.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

__all__ = ["NoAttention"]


class NoAttention(nn.Module):
    """``x_i W + b`` per target node, with an attention layer's signature.

    Shapes:
        ``x`` ``[N, F]`` or ``(x_src, x_dst)``, any ``edge_index`` -> ``[N_dst, heads * out_channels]``
        (``[N_dst, out_channels]`` when ``concat=False``).
    """

    def __init__(self, in_channels: int, out_channels: int, heads: int = 1, concat: bool = True, **_: Any) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.heads, self.concat = in_channels, out_channels, heads, concat
        self.lin = nn.Linear(in_channels, out_channels * heads if concat else out_channels)

    def reset_parameters(self) -> None:
        """Re-initialise the linear map."""
        self.lin.reset_parameters()

    def forward(
        self, x: Tensor | tuple[Tensor, Tensor], edge_index: Any = None, edge_attr: Any = None, size: Any = None
    ) -> Tensor:
        """The linear map of the target nodes' features (the graph and its edge features are not used)."""
        x_dst = x[1] if isinstance(x, (tuple, list)) else x
        return self.lin(x_dst)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, heads={self.heads})"
