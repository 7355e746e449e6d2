"""tg_metricattn: attention as diffusion on graphs, for PyTorch Geometric."""

from tg_metricattn.layers import (
    AttentionConv,
    DotAttnConv,
    L2AttnConv,
    MetricAttnConv,
    SparseGATConv,
    SparseGATv2Conv,
    SpectralHeatDiffusion,
    edge_softmax,
)

__version__ = "0.1.0"

__all__ = [
    "AttentionConv",
    "DotAttnConv",
    "L2AttnConv",
    "MetricAttnConv",
    "SparseGATConv",
    "SparseGATv2Conv",
    "SpectralHeatDiffusion",
    "__version__",
    "edge_softmax",
]
