r"""The attention kinds whose score is a negative squared distance in an embedding (L2, metric).

.. math::
    y = \mathrm{embed}(x) \in \mathbb{R}^{N \times H \times D}, \qquad
    s_{ij} = -\frac{\lVert y_i - y_j \rVert^2}{t_h}

Subclasses say what the embedding is (:meth:`DistanceAttnConv.embed`) and what the scale
t is (:meth:`DistanceAttnConv.distance_scale`); the scores are taken per edge by the
squared-distance kernel of :mod:`~tg_metricattn.layers.score_terms`. The diagnostics read
learned edge lengths ‖y_i - y_j‖ through :meth:`~DistanceAttnConv.embed` for either kind.
"""

from __future__ import annotations

from torch import Tensor

from tg_metricattn.layers.attention_conv import AttentionConv
from tg_metricattn.layers.score_terms import ScoreTerms, squared_distance_terms

__all__ = ["DistanceAttnConv", "shared_width"]


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


class DistanceAttnConv(AttentionConv):
    """Base class: score -‖embed(x_i) - embed(x_j)‖² / t, values ``lin_value(x_j)``."""

    def embed(self, x: Tensor) -> Tensor:
        """The embedding whose distances the score uses, ``[N, heads, D]``."""
        raise NotImplementedError

    def distance_scale(self) -> float | Tensor:
        """t: one number, or one per head (``[heads]``)."""
        raise NotImplementedError

    def node_terms(self, x_src: Tensor, x_dst: Tensor) -> tuple[Tensor, ScoreTerms]:
        """Values W_v x_j and the squared-distance terms of y = embed(x) with scale t."""
        y_src = self.embed(x_src)
        y_dst = y_src if x_dst is x_src else self.embed(x_dst)
        value = self.lin_value(x_src).view(-1, self.heads, self.out_channels)
        return value, squared_distance_terms(y_dst, y_src, self.distance_scale())
