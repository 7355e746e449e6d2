"""The attention layers by name: the one list the models, the command line and the benchmarks read."""

from __future__ import annotations

from torch import nn

from tg_metricattn.layers import AttentionConv, DotAttnConv, L2AttnConv, MetricAttnConv, SparseGATConv, SparseGATv2Conv
from tg_metricattn.models.no_attention import NoAttention

__all__ = ["LAYERS", "NO_LAYER", "count_parameters", "layer_class"]

#: name -> attention layer class
LAYERS: dict[str, type[AttentionConv]] = {
    "gat": SparseGATConv,
    "gatv2": SparseGATv2Conv,
    "dot": DotAttnConv,
    "l2": L2AttnConv,
    "metric": MetricAttnConv,
}

#: the name of no attention: :class:`~tg_metricattn.models.no_attention.NoAttention`, a per-node linear map
NO_LAYER = "none"


def layer_class(name: str) -> type[AttentionConv] | type[NoAttention]:
    """The layer class for ``'gat' | 'gatv2' | 'dot' | 'l2' | 'metric'``, or :class:`NoAttention` for ``'none'``."""
    if name == NO_LAYER:
        return NoAttention
    try:
        return LAYERS[name]
    except KeyError:
        raise ValueError(f"Unknown layer {name!r}; choose from {', '.join((*LAYERS, NO_LAYER))}.") from None


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
