"""Networks built from the layers: attention stacks (nodes, meshes, graphs), Platonov et al.'s
residual node backbone, the heat flow of one attention (node task), the mesh diffusion-attention
net, and IPN for vector data (the metric-attention paper).

Import models from here without the command line::

    from tg_metricattn.models import AttentionNet, DiffusionAttentionNet
"""

from tg_metricattn.models.attention_flow_net import FLOW_DYNAMICS, AttentionFlowNet
from tg_metricattn.models.attention_net import AttentionNet
from tg_metricattn.models.diffusion_attention_net import DiffusionAttentionBlock, DiffusionAttentionNet
from tg_metricattn.models.ipn import IPN
from tg_metricattn.models.layer_registry import LAYERS, NO_LAYER, count_parameters, layer_class
from tg_metricattn.models.no_attention import NoAttention
from tg_metricattn.models.parameter_groups import metric_parameter_groups
from tg_metricattn.models.residual_attention_net import FeedForward, ResidualAttentionNet

__all__ = [
    "FLOW_DYNAMICS",
    "IPN",
    "LAYERS",
    "NO_LAYER",
    "AttentionFlowNet",
    "AttentionNet",
    "DiffusionAttentionBlock",
    "DiffusionAttentionNet",
    "FeedForward",
    "NoAttention",
    "ResidualAttentionNet",
    "count_parameters",
    "layer_class",
    "metric_parameter_groups",
]
