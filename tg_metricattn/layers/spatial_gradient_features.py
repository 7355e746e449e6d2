"""Rotation-invariant features from tangent gradients: DiffusionNet's spatial gradient features.

For every channel ``c`` the gradient at vertex ``i`` in its tangent frame,
``g_c(i) = Σ_j w_ij (x_c(j) - x_c(i))`` (``w_ij`` from
:func:`~tg_metricattn.geometry.gradient_stencil`, stored on mesh samples as
``grad_weight``), is read as a complex number ``g = g_x + i g_y``. A learned complex-linear
map across channels, ``A g`` (``A = A_re + i A_im``), rotates and mixes the gradients, and
the feature is their real inner product::

    out_c(i) = tanh(Re(conj(g_c(i)) · (A g(i))_c)) = tanh(g_x (A g)_x + g_y (A g)_y)

Turning vertex ``i``'s frame by an angle multiplies every ``g_c(i)`` and ``(A g(i))_c`` by the
same unit complex number, so the features do not depend on the arbitrary frames: they
see directions relative to each other (e.g. whether two channels vary along the same
direction), which isotropic diffusion and a mean over neighbours cannot express.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tg_metricattn.layers.graph_cache import GRAPH_CACHE

__all__ = ["SpatialGradientFeatures", "gradient_operator", "tangent_gradient"]


def gradient_operator(edge_index: Tensor, grad_weight: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
    """``G = [G_x; G_y]`` as CSR ``[2V, V]`` and its transpose: ``(G x)_i = Σ_j w_ij (x_j - x_i)`` per component.

    Built once per ``grad_weight`` tensor (kept in the shared graph cache while that tensor lives
    and is unmodified): a mesh's stencil is the same at every step.
    """
    key = ("tangent gradient", num_nodes, edge_index.data_ptr(), edge_index._version, grad_weight.dtype)
    cached = GRAPH_CACHE.get(grad_weight, key)
    if cached is not None:
        return cached
    source, target = edge_index[0].long(), edge_index[1].long()
    nodes = torch.arange(num_nodes, device=grad_weight.device)
    weights = grad_weight.t().reshape(-1)  # w_x of every edge, then w_y
    rows = torch.cat([target, target + num_nodes, nodes, nodes + num_nodes])
    diagonal = torch.zeros(2 * num_nodes, dtype=grad_weight.dtype, device=grad_weight.device)
    diagonal.index_add_(0, rows[: 2 * source.numel()], -weights)  # -Σ_j w_ij: gradients of constants vanish
    columns = torch.cat([source, source, nodes, nodes])
    values, shape = torch.cat([weights, diagonal]), (2 * num_nodes, num_nodes)
    coo = torch.sparse_coo_tensor(torch.stack([rows, columns]), values, shape, check_invariants=False)  # in range
    coo = coo.detach().coalesce()
    operator = (coo.to_sparse_csr(), coo.t().coalesce().to_sparse_csr())
    GRAPH_CACHE.put(grad_weight, key, operator)
    return operator


class _ApplyOperator(torch.autograd.Function):
    """``G x`` with the backward ``Gᵀ g`` from a precomputed CSR transpose (both cached per mesh)."""

    @staticmethod
    def forward(ctx, x: Tensor, operator: Tensor, transpose: Tensor) -> Tensor:
        ctx.transpose = transpose
        return operator @ x

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
        return ctx.transpose @ grad.contiguous(), None, None


def tangent_gradient(x: Tensor, edge_index: Tensor, grad_weight: Tensor) -> tuple[Tensor, Tensor]:
    """``(g_x, g_y)`` ``[V, C]`` each: ``Σ_j w_ij (x_j - x_i)`` over the edges ``j -> i`` of ``edge_index``."""
    operator, transpose = gradient_operator(edge_index, grad_weight.to(x.dtype), x.size(0))
    g_x, g_y = _ApplyOperator.apply(x, operator, transpose).chunk(2, dim=0)
    return g_x, g_y


class SpatialGradientFeatures(nn.Module):
    """``tanh(Re(conj(g) · A g))`` per channel (see the module docstring).

    Args:
        channels: channels ``C`` in and out.

    Shapes:
        - input: ``x`` ``[V, C]``, ``edge_index`` ``[2, E]`` (mesh edges, both directions),
          ``grad_weight`` ``[E, 2]`` aligned with ``edge_index``.
        - output: ``[V, C]``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive integer, got {channels!r}.")
        self.channels = channels
        self.a_re = nn.Linear(channels, channels, bias=False)
        self.a_im = nn.Linear(channels, channels, bias=False)

    def reset_parameters(self) -> None:
        """Re-initialise ``A``."""
        self.a_re.reset_parameters()
        self.a_im.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, grad_weight: Tensor) -> Tensor:
        """The features ``[V, C]`` (see the class docstring for shapes)."""
        if grad_weight.dim() != 2 or grad_weight.shape != (edge_index.size(1), 2):
            raise ValueError(
                f"grad_weight must be [E, 2] with E = {edge_index.size(1)} (the edges), got {list(grad_weight.shape)}."
            )
        g_x, g_y = tangent_gradient(x, edge_index, grad_weight)
        a_x = self.a_re(g_x) - self.a_im(g_y)
        a_y = self.a_re(g_y) + self.a_im(g_x)
        return torch.tanh(g_x * a_x + g_y * a_y)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.channels})"
