r"""Ablating a trained attention: the same model with every edge scored 0.

Inside :func:`uniform_attention` each attention layer of a model propagates with the
uniform mean over each target's incoming edges N(i) (self-loops as the layer adds them)
instead of its learned softmax,

.. math::
    P_{ij} = \frac{\exp s_{ij}}{\sum_{k \in N(i)} \exp s_{ik}}
    \;\longrightarrow\;
    U_{ij} = \frac{1}{|N(i)|} \qquad (j \in N(i)),

(under density normalisation with exponent α, the softmax of :math:`-\alpha \log |N(j)|`),
while the values, skip terms, biases and every other weight stay as trained. The change of a
metric between the two is what the learned score contributes to *this* trained model; a
model trained with uniform attention from the start may do better or worse.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

from tg_metricattn.diagnostics.propagation import attention_layers
from tg_metricattn.layers.attention_conv import AttentionConv

__all__ = ["uniform_attention"]


@contextmanager
def uniform_attention(model: nn.Module) -> Iterator[list[AttentionConv]]:
    """Within the block, every :class:`AttentionConv` in ``model`` scores each edge 0 (module docstring);
    yields those layers, and restores their learned scores on exit, also after an exception.

    Raises ``ValueError`` when ``model`` holds no attention layer (e.g. the residual backbone
    with ``layer='none'``): there is nothing to ablate.
    """
    layers = [layer for _, layer in attention_layers(model)]
    if not layers:
        raise ValueError(
            f"{type(model).__name__} holds no attention layer, so there is no attention to ablate "
            "(a model built with layer='none' aggregates nothing)."
        )
    for layer in layers:
        layer.uniform_scores = True
    try:
        yield layers
    finally:
        for layer in layers:
            layer.uniform_scores = False
