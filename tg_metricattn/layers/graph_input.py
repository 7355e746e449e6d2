"""Validation and normalisation of the inputs every attention layer accepts.

Node features come as one tensor ``x`` (source = target nodes) or a pair
``(x_src, x_dst)`` (bipartite message passing, e.g. NeighborLoader mini-batches).
The graph comes as a ``[2, E]`` edge index (row 0 = source j, row 1 = target i) or a
torch sparse adjacency (COO or CSR). As everywhere in PyG, a sparse adjacency is the
*transposed* adjacency ``adj_t`` of shape ``[N_dst, N_src]``: its row is the target and
its column the source. torch_sparse's ``SparseTensor`` is not accepted (torch-sparse has
no wheel for this torch and PyG moves to torch.sparse): pass
``adj_t.to_torch_sparse_csr_tensor()``, the same adjacency as a torch CSR tensor.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor
from torch_geometric.typing import SparseTensor
from torch_geometric.utils import (
    add_self_loops,
    is_torch_sparse_tensor,
    remove_self_loops,
    to_torch_coo_tensor,
    to_torch_csr_tensor,
)

NodeFeatures = Tensor | tuple[Tensor, Tensor]
Adjacency = Tensor


class Graph(NamedTuple):
    """A validated graph: edges ``source -> target`` and the bipartite size."""

    edge_index: Tensor  # [2, E], row 0 source, row 1 target
    num_sources: int
    num_targets: int
    layout: str  # 'edge_index', 'sparse_coo' or 'sparse_csr'


def split_node_features(x: NodeFeatures, in_channels: int | tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Return ``(x_src, x_dst)`` after checking rank and feature widths."""
    if isinstance(x, Tensor):
        x_src = x_dst = x
    elif isinstance(x, (tuple, list)) and len(x) == 2:
        x_src, x_dst = x
        if not isinstance(x_src, Tensor) or not isinstance(x_dst, Tensor):
            raise TypeError(
                "x must be a Tensor or a pair (x_src, x_dst) of Tensors; got a pair of "
                f"({type(x_src).__name__}, {type(x_dst).__name__})."
            )
    else:
        raise TypeError(f"x must be a Tensor or a pair (x_src, x_dst); got {type(x).__name__}.")
    widths = (in_channels, in_channels) if isinstance(in_channels, int) else in_channels
    for name, tensor, width in (("x_src", x_src, widths[0]), ("x_dst", x_dst, widths[1])):
        if tensor.dim() != 2:
            raise ValueError(f"{name} must be 2-D [num_nodes, features]; got shape {tuple(tensor.shape)}.")
        if not tensor.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor; got {tensor.dtype}.")
        if width != -1 and tensor.size(1) != width:
            raise ValueError(
                f"{name} has {tensor.size(1)} features but the layer was built with "
                f"in_channels={in_channels}; pass features of width {width}."
            )
    return x_src, x_dst


def check_finite(x_src: Tensor, x_dst: Tensor) -> None:
    """Raise if node features contain NaN or infinity (an O(N F) pass, opt-in)."""
    for name, tensor in (("x_src", x_src), ("x_dst", x_dst)):
        if not torch.isfinite(tensor).all():
            bad = (~torch.isfinite(tensor)).any(dim=1).nonzero().flatten()
            raise ValueError(
                f"{name} contains NaN or infinite values in {bad.numel()} rows "
                f"(first: node {int(bad[0])}); clean or impute the features first."
            )


def check_finite_scores(scores: Tensor) -> None:
    """Raise if attention scores overflowed (finite features whose embeddings or squares exceed the dtype)."""
    if not torch.isfinite(scores).all():
        raise ValueError(
            "attention scores overflowed to infinity or NaN although the features are finite: "
            "the features are too large for the layer's dtype; rescale them (e.g. standardise the columns)."
        )


def check_size(size: tuple[int, int] | None, num_sources: int, num_targets: int, validate: bool = True) -> None:
    """Check PyG's ``size=(N_src, N_dst)`` against the numbers of feature rows."""
    if size is None:
        return
    if len(size) != 2:
        raise ValueError(f"size must be a pair (num_src_nodes, num_dst_nodes); got {size}.")
    if validate and (size[0] != num_sources or size[1] != num_targets):
        raise ValueError(
            f"size={tuple(size)} does not match the node features: x_src has {num_sources} "
            f"rows and x_dst has {num_targets}; for a mini-batch pass (x_src, x_dst)."
        )


def to_graph(
    edge_index: Adjacency,
    size: tuple[int, int] | None,
    num_sources: int,
    num_targets: int,
    validate: bool = True,
) -> Graph:
    """Convert any accepted adjacency to a ``[2, E]`` edge index and check it.

    ``size`` is ``(N_src, N_dst)`` as in PyG; it must agree with the feature tensors.
    """
    check_size(size, num_sources, num_targets, validate)
    if isinstance(edge_index, SparseTensor):
        raise TypeError(
            "torch_sparse's SparseTensor is not supported; pass the same transposed adjacency as a torch "
            "sparse tensor: adj_t.to_torch_sparse_csr_tensor()."
        )
    if isinstance(edge_index, Tensor) and is_torch_sparse_tensor(edge_index):
        layout = "sparse_csr" if edge_index.layout == torch.sparse_csr else "sparse_coo"
        if edge_index.layout == torch.sparse_csr:
            target = torch.repeat_interleave(
                torch.arange(edge_index.size(0), device=edge_index.device),
                edge_index.crow_indices().diff(),
            )
            source = edge_index.col_indices()
        elif edge_index.layout == torch.sparse_coo:
            target, source = edge_index.coalesce().indices()
        else:
            raise TypeError(f"Sparse layout {edge_index.layout} is not supported; use COO or CSR.")
        graph = Graph(torch.stack([source, target]), num_sources, num_targets, layout)
        sparse_shape = (edge_index.size(0), edge_index.size(1))
    elif isinstance(edge_index, Tensor):
        graph = Graph(edge_index, num_sources, num_targets, "edge_index")
        sparse_shape = None
    else:
        raise TypeError(
            "edge_index must be a [2, E] LongTensor or a torch sparse adjacency adj_t; "
            f"got {type(edge_index).__name__}."
        )
    if validate:
        if sparse_shape is not None and sparse_shape != (num_targets, num_sources):
            raise ValueError(
                f"The sparse adjacency has shape {sparse_shape}; it must be the transposed "
                f"adjacency [num_dst_nodes, num_src_nodes] = [{num_targets}, {num_sources}]."
            )
        _check_edge_index(graph)
    return graph


def _check_edge_index(graph: Graph) -> None:
    edge_index = graph.edge_index
    if edge_index.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"edge_index must hold integer indices (torch.long); got {edge_index.dtype}.")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index must have shape [2, E]; got {tuple(edge_index.shape)}.")
    if edge_index.numel() == 0:
        return
    for row, name, bound in ((0, "source", graph.num_sources), (1, "target", graph.num_targets)):
        low, high = int(edge_index[row].min()), int(edge_index[row].max())
        if low < 0 or high >= bound:
            raise ValueError(
                f"edge_index has {name} indices in [{low}, {high}] but there are only {bound} "
                f"{name} nodes; indices must lie in [0, {bound - 1}]."
            )


FILL_REDUCTIONS = ("mean", "add", "max", "min", "mul")


def check_fill_value(fill_value: object, edge_dim: int | None) -> None:
    """Refuse a ``fill_value`` that PyG's ``add_self_loops`` would not take (naming the choices)."""
    if isinstance(fill_value, str):
        if fill_value not in FILL_REDUCTIONS:
            raise ValueError(f"fill_value must be one of {FILL_REDUCTIONS}, a number or a tensor; got {fill_value!r}.")
    elif isinstance(fill_value, Tensor):
        if edge_dim is not None and fill_value.numel() not in (1, edge_dim):
            raise ValueError(
                f"fill_value as a tensor must have edge_dim = {edge_dim} entries (or one); got shape "
                f"{tuple(fill_value.shape)}."
            )
    elif isinstance(fill_value, bool) or not isinstance(fill_value, (int, float)):
        raise ValueError(f"fill_value must be one of {FILL_REDUCTIONS}, a number or a tensor; got {fill_value!r}.")


def check_edge_attr(edge_attr: object, num_edges: int, edge_dim: int, finite: bool) -> Tensor:
    """``edge_attr`` as ``[E, edge_dim]`` (a 1-D tensor is one feature per edge), checked against the graph."""
    if not isinstance(edge_attr, Tensor):
        raise TypeError(f"edge_attr must be a Tensor [num_edges, edge_dim]; got {type(edge_attr).__name__}.")
    if edge_attr.dim() == 1:
        edge_attr = edge_attr.view(-1, 1)
    if edge_attr.dim() != 2:
        raise ValueError(f"edge_attr must be 2-D [num_edges, edge_dim]; got shape {tuple(edge_attr.shape)}.")
    if not edge_attr.is_floating_point():
        raise TypeError(f"edge_attr must be a floating-point tensor; got {edge_attr.dtype}.")
    if edge_attr.size(0) != num_edges:
        raise ValueError(f"edge_attr has {edge_attr.size(0)} rows but edge_index has {num_edges} edges.")
    if edge_attr.size(1) != edge_dim:
        raise ValueError(f"edge_attr has {edge_attr.size(1)} features per edge but the layer's edge_dim is {edge_dim}.")
    if finite and not torch.isfinite(edge_attr).all():
        bad = (~torch.isfinite(edge_attr)).any(dim=1).nonzero().flatten()
        raise ValueError(
            f"edge_attr contains NaN or infinite values in {bad.numel()} rows (first: edge {int(bad[0])})."
        )
    return edge_attr


def with_self_loops(
    graph: Graph, edge_attr: Tensor | None = None, fill_value: object = "mean"
) -> tuple[Graph, Tensor | None]:
    """Remove existing self-loops, then add one loop per node (as PyG's GATConv does).

    On a bipartite graph loops are added for the first ``min(N_src, N_dst)`` nodes. The
    loops' edge features come from ``fill_value`` (PyG's ``add_self_loops``); returns
    ``(graph, edge_attr)`` (``edge_attr`` ``None`` when none was given).
    """
    edge_index, edge_attr = remove_self_loops(graph.edge_index, edge_attr)
    num_nodes = min(graph.num_sources, graph.num_targets)
    edge_index, edge_attr = add_self_loops(edge_index, edge_attr, fill_value=fill_value, num_nodes=num_nodes)
    return graph._replace(edge_index=edge_index), edge_attr


def with_masked_self_loops(graph: Graph) -> tuple[Graph, Tensor]:
    """Append one loop per node (as :func:`with_self_loops`) but keep the input's own loops, marked:
    returns ``(graph, masked)`` with ``masked`` ``[E + N]`` true on the input's loops, which carry
    no weight. Every shape is known from the input's (for ``torch.compile``)."""
    edge_index = graph.edge_index.long()
    loops = torch.arange(min(graph.num_sources, graph.num_targets), device=edge_index.device)
    masked = torch.cat([edge_index[0] == edge_index[1], torch.zeros_like(loops, dtype=torch.bool)])
    edge_index = torch.cat([edge_index, loops.expand(2, -1)], dim=1)
    return graph._replace(edge_index=edge_index), masked


def attention_in_layout(graph: Graph, alpha: Tensor) -> object:
    """Return attention weights in the form PyG's GATConv returns them for this input.

    - edge index input:   ``(edge_index, alpha)``
    - torch sparse input: ``(adj_t_with_alpha_values, alpha_in_that_order)``
    """
    if graph.layout == "edge_index":
        return graph.edge_index, alpha
    transposed = graph.edge_index.flip(0)  # rows = targets, as adj_t
    shape = (graph.num_targets, graph.num_sources)
    if graph.layout == "sparse_csr":
        adj = to_torch_csr_tensor(transposed, alpha, size=shape)
        return adj, adj.values()
    adj = to_torch_coo_tensor(transposed, alpha, size=shape)
    return adj, adj.values()
