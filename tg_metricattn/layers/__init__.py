"""Attention layers: one shared propagation, four scores."""

from tg_metricattn.layers.attention_conv import AttentionConv
from tg_metricattn.layers.dot_attn_conv import DotAttnConv
from tg_metricattn.layers.edge_softmax import edge_softmax
from tg_metricattn.layers.l2_attn_conv import L2AttnConv
from tg_metricattn.layers.metric_attn_conv import MetricAttnConv
from tg_metricattn.layers.sparse_gat_conv import SparseGATConv

__all__ = [
    "AttentionConv",
    "DotAttnConv",
    "L2AttnConv",
    "MetricAttnConv",
    "SparseGATConv",
    "edge_softmax",
]
