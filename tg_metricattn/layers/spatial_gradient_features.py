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

__all__ = ["SpatialGradientFeatures", "tangent_gradient"]


def tangent_gradient(x: Tensor, edge_index: Tensor, grad_weight: Tensor) -> tuple[Tensor, Tensor]:
    """``(g_x, g_y)`` ``[V, C]`` each: ``Σ_j w_ij (x_j - x_i)`` over the edges ``j -> i`` of ``edge_index``."""
    source, target = edge_index[0], edge_index[1]
    difference = x.index_select(0, source) - x.index_select(0, target)  # [E, C]
    g_x = torch.zeros_like(x).index_add_(0, target, grad_weight[:, :1] * difference)
    g_y = torch.zeros_like(x).index_add_(0, target, grad_weight[:, 1:] * difference)
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
