"""Attention layers (one shared propagation, four scores); heat diffusion and gradient features on meshes."""

from tg_metricattn.layers.attention_conv import Attention, AttentionConv
from tg_metricattn.layers.distance_attn_conv import DistanceAttnConv
from tg_metricattn.layers.dot_attn_conv import DotAttnConv
from tg_metricattn.layers.edge_softmax import edge_softmax
from tg_metricattn.layers.l2_attn_conv import L2AttnConv
from tg_metricattn.layers.metric_attn_conv import MetricAttnConv
from tg_metricattn.layers.sparse_gat_conv import SparseGATConv
from tg_metricattn.layers.sparse_gatv2_conv import SparseGATv2Conv
from tg_metricattn.layers.spatial_gradient_features import SpatialGradientFeatures
from tg_metricattn.layers.spectral_heat_diffusion import SpectralHeatDiffusion

__all__ = [
    "Attention",
    "AttentionConv",
    "DistanceAttnConv",
    "DotAttnConv",
    "L2AttnConv",
    "MetricAttnConv",
    "SparseGATConv",
    "SparseGATv2Conv",
    "SpatialGradientFeatures",
    "SpectralHeatDiffusion",
    "edge_softmax",
]
