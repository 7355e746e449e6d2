"""A stack of attention layers of one kind: node classifiers, mesh segmenters, graph regressors.

:class:`AttentionNet` stacks ``num_layers`` attention convolutions. With ``output='conv'``
(the GAT paper's node model) the last convolution maps to the classes with ``out_heads``
averaged heads; with ``output='linear'`` every convolution is hidden and a linear head
follows (meshes and graphs, optionally after global mean pooling). Mini-batches from a
neighbour sampler are run bipartitely: layer ``l`` maps the nodes within ``L - l`` hops
of the seeds onto those within ``L - l - 1`` hops, as ``(x_src, x_dst)`` with ``size=``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import global_mean_pool

from tg_metricattn.models.layer_registry import layer_class

__all__ = ["AttentionNet"]


class AttentionNet(nn.Module):
    """A stack of attention layers with ELU and dropout between them.

    Args:
        layer: ``'gat' | 'gatv2' | 'dot' | 'l2' | 'metric'``, or ``'none'``: every attention layer
            replaced by a per-node linear map (:class:`NoAttention`), i.e. an MLP.
        in_channels: input width (ignored when ``encoder`` is given).
        hidden: channels per head of the hidden layers.
        out_channels: classes (or tasks).
        heads: heads of the hidden layers (concatenated).
        num_layers: attention layers.
        dropout: on the input of every layer and on the attention weights.
        out_heads: averaged heads of the output convolution (``output='conv'``).
        output: ``'conv'`` (last attention layer predicts) or ``'linear'`` (linear head).
        encoder: optional module mapping the raw input to ``heads * hidden`` features
            (e.g. OGB's ``AtomEncoder``); then hidden layers also get residual connections.
        pool: average the node features per graph (``batch``) before the linear head.
        layer_kwargs: further arguments of every attention layer (e.g. ``{"time_scale": "auto"}``;
            with an ``edge_encoder``, ``edge_dim`` its output width).
        edge_encoder: optional module mapping the raw edge features to the layers' ``edge_dim``
            (e.g. OGB's ``BondEncoder``); the model then needs ``edge_attr``.
    """

    def __init__(
        self,
        layer: str,
        in_channels: int,
        hidden: int,
        out_channels: int,
        heads: int = 8,
        num_layers: int = 2,
        dropout: float = 0.6,
        out_heads: int = 1,
        output: str = "conv",
        encoder: nn.Module | None = None,
        pool: bool = False,
        layer_kwargs: dict | None = None,
        edge_encoder: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if output not in ("conv", "linear"):
            raise ValueError(f"output must be 'conv' or 'linear', got {output!r}.")
        kwargs = dict(layer_kwargs or {})
        conv = layer_class(layer)  # 'none': NoAttention, the same network as an MLP
        self.layer_name, self.dropout, self.output, self.pool = layer, dropout, output, pool
        self.encoder, self.edge_encoder = encoder, edge_encoder
        self.residual = encoder is not None
        width = heads * hidden
        num_hidden = num_layers - 1 if output == "conv" else num_layers
        self.convs = nn.ModuleList()
        channels = width if encoder is not None else in_channels
        for _ in range(num_hidden):
            self.convs.append(conv(channels, hidden, heads=heads, dropout=dropout, **kwargs))
            channels = width
        if output == "conv":
            self.convs.append(conv(channels, out_channels, heads=out_heads, concat=False, dropout=dropout, **kwargs))
            self.head = None
        else:
            self.head = nn.Linear(channels, out_channels)

    def inputs(self, data) -> dict:
        """The keyword arguments of a call on a PyG ``Data`` (its ``edge_attr`` when the model reads edge features)."""
        inputs = {"x": data.x, "edge_index": data.edge_index}
        if self.edge_encoder is not None:
            inputs["edge_attr"] = data.edge_attr
        return inputs

    def reset_parameters(self) -> None:
        """Re-initialise every layer."""
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        batch: Tensor | None = None,
        num_sampled_nodes: list[int] | None = None,
        edge_attr: Tensor | None = None,
    ) -> Tensor:
        """Logits per node (or per graph when ``pool``).

        ``edge_attr`` (for a model with an ``edge_encoder``) is encoded once and given to every
        attention layer as its edge features.

        ``num_sampled_nodes[k]`` is the number of nodes first reached at hop ``k`` (seeds at
        hop 0, nodes ordered by hop, as from a neighbour sampler); then only the seeds'
        outputs are computed and returned.
        """
        if self.encoder is not None:
            x = self.encoder(x)
        if self.edge_encoder is not None:
            if edge_attr is None:
                raise ValueError(
                    "This model encodes edge features: pass edge_attr (or build it without an edge_encoder)."
                )
            if num_sampled_nodes is not None:
                raise ValueError("Edge features are not supported with sampled mini-batches (num_sampled_nodes).")
            edge_attr = self.edge_encoder(edge_attr)
        elif edge_attr is not None:
            raise ValueError("edge_attr was given but the model has no edge_encoder to read it.")
        bounds = None
        if num_sampled_nodes is not None:
            if len(num_sampled_nodes) != len(self.convs) + 1:
                raise ValueError(
                    f"num_sampled_nodes needs {len(self.convs) + 1} hop counts (one per layer plus the seeds), "
                    f"got {len(num_sampled_nodes)}."
                )
            bounds = torch.tensor(num_sampled_nodes).cumsum(0).tolist()
        last = len(self.convs) - 1
        for i, conv in enumerate(self.convs):
            x_in = F.dropout(x, p=self.dropout, training=self.training)
            if bounds is None:
                h = conv(x_in, edge_index) if edge_attr is None else conv(x_in, edge_index, edge_attr)
                skip = x
            else:
                n_src, n_dst = bounds[len(self.convs) - i], bounds[len(self.convs) - i - 1]
                keep = (edge_index[0] < n_src) & (edge_index[1] < n_dst)
                edge_index = edge_index[:, keep]
                h = conv((x_in[:n_src], x_in[:n_dst]), edge_index, size=(n_src, n_dst))
                skip = x[:n_dst]
            is_output_conv = self.output == "conv" and i == last
            if not is_output_conv:
                h = F.elu(h)
                if self.residual and h.shape == skip.shape:
                    h = h + skip
            x = h
        if self.head is None:
            return x
        if self.pool:
            if batch is None:
                batch = torch.zeros(x.size(0), dtype=torch.long, device=x.device)
            x = global_mean_pool(x, batch)
        return self.head(F.dropout(x, p=self.dropout, training=self.training))
