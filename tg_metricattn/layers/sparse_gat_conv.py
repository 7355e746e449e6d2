"""Sparse-edge graph attention (Velickovic et al. 2018), parameter-compatible with PyG's GATConv."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.nn.inits import glorot

from tg_metricattn.layers.attention_conv import AttentionConv
from tg_metricattn.layers.score_terms import ScoreTerms


@torch.library.custom_op("tg_metricattn::edge_leaky_relu", mutates_args=())
def edge_leaky_relu(scores: Tensor, negative_slope: float) -> Tensor:
    """``LeakyReLU(s) = max(s, 0) + negative_slope * min(s, 0)`` of the edge scores ``[E, H]``, by ATen's kernel.

    An opaque op so that ``torch.compile`` keeps ATen's vectorised kernel: inductor's own loop for an
    ``[E, H]`` tensor with H below its vector width runs scalar (measured at 1M edges, 8 heads, one
    thread: 127-143 ms against ATen's 3-15 ms). The gradient is computed from the output (the sign of
    the output is the input's for a positive slope), so only the output is kept for backward."""
    return F.leaky_relu(scores, negative_slope)


@edge_leaky_relu.register_fake
def _(scores: Tensor, negative_slope: float) -> Tensor:
    return torch.empty_like(scores)


@torch.library.custom_op("tg_metricattn::edge_leaky_relu_backward", mutates_args=())
def edge_leaky_relu_backward(grad: Tensor, activated: Tensor, negative_slope: float) -> Tensor:
    """``grad * (1 if activated > 0 else negative_slope)``: the gradient of :func:`edge_leaky_relu` given
    its output ``activated``."""
    return torch.ops.aten.leaky_relu_backward(grad, activated, negative_slope, negative_slope > 0)


@edge_leaky_relu_backward.register_fake
def _(grad: Tensor, activated: Tensor, negative_slope: float) -> Tensor:
    return torch.empty_like(grad)


def _edge_leaky_relu_setup(ctx, inputs: tuple, output: Tensor) -> None:
    ctx.negative_slope = inputs[1]
    ctx.save_for_backward(output if inputs[1] > 0 else inputs[0])


def _edge_leaky_relu_grad(ctx, grad: Tensor):
    (kept,) = ctx.saved_tensors
    return edge_leaky_relu_backward(grad, kept, ctx.negative_slope), None


edge_leaky_relu.register_autograd(_edge_leaky_relu_grad, setup_context=_edge_leaky_relu_setup)


class SparseGATConv(AttentionConv):
    r"""GAT attention on the edges of a sparse graph.

    .. math::
        s_{ij} = \mathrm{LeakyReLU}\big(a_{dst}^\top W_{dst} x_i + a_{src}^\top W_{src} x_j
        \; [+\, a_e^\top W_e e_{ij}]\big),
        \qquad x'_i = \sum_{j} \alpha_{ij} W_{src} x_j

    with :math:`\alpha` the edge-masked softmax of :math:`s` over the incoming edges of i
    (per head). Parameters carry the names and shapes of
    :class:`torch_geometric.nn.GATConv` (``lin`` or ``lin_src``/``lin_dst``, ``att_src``,
    ``att_dst``, ``lin_edge``, ``att_edge``, ``res``, ``bias``), so
    ``GATConv.load_state_dict(conv.state_dict())`` works in both directions and gives the
    same outputs, edge features (``edge_dim``, ``fill_value``) included.

    Args:
        negative_slope: slope of the LeakyReLU for negative inputs.
        edge_dim: width of the edge features (the bracketed term; ``None``: none).
        fill_value: the added self-loops' edge features (see :class:`AttentionConv`).
        residual: add a learnable skip connection ``res(x_i)`` (no bias).
        bias: add a learnable bias to the output.
        **kwargs: see :class:`AttentionConv` (``heads``, ``concat``, ``dropout``,
            ``add_self_loops``, ...).
    """

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
        residual: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            in_channels, out_channels, heads, concat, dropout, add_self_loops,
            edge_dim=edge_dim, fill_value=fill_value, **kwargs,
        )  # fmt: skip
        self.negative_slope = negative_slope
        self.residual = residual
        width = heads * out_channels
        self.lin = self.lin_src = self.lin_dst = None
        if isinstance(in_channels, int):
            self.lin = Linear(in_channels, width, bias=False, weight_initializer="glorot")
        else:
            self.lin_src = Linear(in_channels[0], width, bias=False, weight_initializer="glorot")
            self.lin_dst = Linear(in_channels[1], width, bias=False, weight_initializer="glorot")
        self.att_src = Parameter(torch.empty(1, heads, out_channels))
        self.att_dst = Parameter(torch.empty(1, heads, out_channels))
        self.build_residual_and_bias(residual, bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot for weights and attention vectors, zeros for the bias (as GATConv)."""
        super().reset_parameters()
        for lin in (self.lin, self.lin_src, self.lin_dst):
            if lin is not None:
                lin.reset_parameters()
        glorot(self.att_src)
        glorot(self.att_dst)

    def repr_settings(self) -> dict[str, Any]:
        """``negative_slope`` when it is not 0.2, and the common settings."""
        slope = {"negative_slope": self.negative_slope} if self.negative_slope != 0.2 else {}
        return {**super().repr_settings(), **slope}

    def node_terms(self, x_src: Tensor, x_dst: Tensor) -> tuple[Tensor, ScoreTerms]:
        """W x_j as values; a_src . W x_j and a_dst . W x_i as the score's node terms."""
        H, C = self.heads, self.out_channels
        if self.lin is not None:
            h_src = self.lin(x_src).view(-1, H, C)
            h_dst = h_src if x_dst is x_src else self.lin(x_dst).view(-1, H, C)
        else:
            h_src = self.lin_src(x_src).view(-1, H, C)
            h_dst = self.lin_dst(x_dst).view(-1, H, C)
        terms = ScoreTerms(
            target_bias=(h_dst * self.att_dst).sum(-1),
            source_bias=(h_src * self.att_src).sum(-1),
        )
        return h_src, terms

    def score_activation(self, scores: Tensor) -> Tensor:
        """LeakyReLU with ``negative_slope`` (:func:`edge_leaky_relu`)."""
        return edge_leaky_relu(scores, float(self.negative_slope))
