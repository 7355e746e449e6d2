"""The propagation matrix of an attention layer, read from its own attention weights.

Per head h the layer computes ``out_i = sum_{j -> i} a_ij v_j``, i.e. ``out = P_h V`` with

    P_h[i, j] = sum of a_ij over the edges j -> i actually used (self-loops included),

a row-stochastic matrix (rows of nodes without incoming edge are zero). The weights come
from calling the layer in eval mode with ``return_attention_weights=True``, so the
diagnostics see exactly what the layer computes (dropout off).
"""

from __future__ import annotations

from collections.abc import Iterator

import scipy.sparse as sp
import torch
from torch import Tensor, nn

from tg_metricattn.layers import AttentionConv

__all__ = ["attention_layers", "capture_layer_inputs", "propagation_matrix", "weights_to_matrices"]


def weights_to_matrices(edge_index: Tensor, alpha: Tensor, shape: tuple[int, int]) -> list[sp.csr_matrix]:
    """One CSR matrix ``[N_dst, N_src]`` per head with ``P[i, j] = sum alpha`` over edges ``j -> i``.

    Args:
        edge_index: ``[2, E]`` (row 0 source j, row 1 target i).
        alpha: ``[E]`` or ``[E, heads]`` edge weights.
        shape: ``(N_dst, N_src)``.
    """
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index must have shape [2, E]; got {tuple(edge_index.shape)}.")
    alpha = alpha.detach().cpu().double()
    if alpha.dim() == 1:
        alpha = alpha[:, None]
    if alpha.dim() != 2 or alpha.size(0) != edge_index.size(1):
        raise ValueError(f"alpha must have shape [E, heads] with E = {edge_index.size(1)}; got {tuple(alpha.shape)}.")
    src, dst = edge_index.detach().cpu().numpy()
    out = []
    for h in range(alpha.size(1)):
        mat = sp.csr_matrix((alpha[:, h].numpy(), (dst, src)), shape=shape)  # duplicates are summed
        mat.sum_duplicates()
        out.append(mat)
    return out


@torch.no_grad()
def propagation_matrix(layer: AttentionConv, x, edge_index, edge_attr=None) -> list[sp.csr_matrix]:
    """The row-stochastic propagation matrix ``P_h`` [N_dst, N_src] of every head of ``layer``.

    The layer is called once in eval mode (its training flag is restored afterwards) with
    ``return_attention_weights=True``; ``P_h[i, j] = alpha_ij`` for the edge ``j -> i``
    (duplicate edges summed). Accepts what the layer accepts (``x`` or ``(x_src, x_dst)``;
    an edge index ``[2, E]`` or a torch sparse ``adj_t``; ``edge_attr`` for a layer with ``edge_dim``).

    Returns:
        A list of ``heads`` scipy CSR matrices (float64).
    """
    if not isinstance(layer, AttentionConv):
        raise ValueError(f"layer must be an AttentionConv; got {type(layer).__name__}.")
    was_training = layer.training
    layer.eval()
    try:
        _, (used, alpha) = layer(x, edge_index, edge_attr, return_attention_weights=True)
    finally:
        layer.train(was_training)
    shape = (x[1].size(0), x[0].size(0)) if isinstance(x, (tuple, list)) else (x.size(0), x.size(0))
    if isinstance(used, Tensor) and used.layout != torch.strided:  # torch sparse adj_t [N_dst, N_src]
        coo = used.to_sparse_coo().coalesce()
        edge = coo.indices().flip(0)  # adj_t rows are targets: back to (source, target)
        if alpha.dim() == 1:
            alpha = alpha[:, None]
        return weights_to_matrices(edge, alpha.reshape(edge.size(1), -1), shape)
    return weights_to_matrices(used, alpha, shape)


def attention_layers(model: nn.Module) -> Iterator[tuple[str, AttentionConv]]:
    """``(qualified name, layer)`` for every :class:`AttentionConv` inside ``model`` (itself included)."""
    for name, module in model.named_modules():
        if isinstance(module, AttentionConv):
            yield name or type(module).__name__, module


@torch.no_grad()
def capture_layer_inputs(model: nn.Module, *inputs, **kwargs) -> tuple[dict[str, tuple], object]:
    """Run ``model(*inputs, **kwargs)`` once in eval mode and record what each attention layer received.

    Forward pre-hooks on every :class:`AttentionConv` store the layer's ``(x, edge_index, edge_attr)``
    (the first call of a layer used several times; ``edge_attr`` ``None`` when not given).
    Returns ``({name: (x, edge_index, edge_attr)}, output)``.
    """
    captured: dict[str, tuple] = {}
    handles = []
    for name, layer in attention_layers(model):

        def hook(module, args, kw, name=name):
            if name in captured:
                return
            x = args[0] if args else kw.get("x")
            edge_index = args[1] if len(args) > 1 else kw.get("edge_index")
            edge_attr = args[2] if len(args) > 2 else kw.get("edge_attr")
            captured[name] = (x, edge_index, edge_attr)

        handles.append(layer.register_forward_pre_hook(hook, with_kwargs=True))
    was_training = model.training
    model.eval()
    try:
        output = model(*inputs, **kwargs)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return captured, output
