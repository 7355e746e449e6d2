"""The prepared CSR graph of a compiled layer: sorted once per edge-index tensor, as in eager mode.

Under ``torch.compile`` a layer cannot look its graph up in
:data:`~tg_metricattn.layers.graph_cache.GRAPH_CACHE` (a Python dictionary keyed by tensor
identity) nor remove the input's self-loops (the edge count would depend on the values),
and sorting the edges inside the compiled code costs a sort per layer and call (a third
of a compiled GAT layer's time at 1M edges). So the preparation is one torch custom op,
``tg_metricattn::prepare_csr_graph``, that the compiled code calls as an opaque kernel:
it checks the edge index, appends one self-loop per node while keeping (and marking) the
input's own loops, sorts by target, builds the transposed pattern, and keeps the result
in the shared cache under the edge-index tensor, returning copies. Every output's shape
follows from the input's: E' = E (+ min(N_src, N_dst) with self-loops).
"""

from __future__ import annotations

import torch
from torch import Tensor

from tg_metricattn.layers.csr_graph import CSRGraph, build_csr_graph
from tg_metricattn.layers.graph_cache import GRAPH_CACHE
from tg_metricattn.layers.graph_input import to_graph, with_masked_self_loops


@torch.library.custom_op("tg_metricattn::prepare_csr_graph", mutates_args=())
def prepare_csr_graph(
    edge_index: Tensor, num_sources: int, num_targets: int, add_self_loops: bool, cache: bool
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``(order, source, target, target_ptr, masked, t_order, t_columns, t_ptr)`` of the graph (module
    docstring); ``masked`` is all false without ``add_self_loops``. Raises on a malformed edge index."""
    key = (num_sources, num_targets, add_self_loops, "compiled")
    arrays = GRAPH_CACHE.get(edge_index, key) if cache else None
    if arrays is None:
        graph = to_graph(edge_index, None, num_sources, num_targets)
        masked = torch.zeros(edge_index.size(1), dtype=torch.bool, device=edge_index.device)
        if add_self_loops:
            graph, masked = with_masked_self_loops(graph)
        csr = build_csr_graph(graph.edge_index, num_sources, num_targets, masked)
        arrays = (csr.order, csr.source, csr.target, csr.target_ptr, csr.masked, *csr.transpose)
        if cache:
            GRAPH_CACHE.put(edge_index, key, arrays)
    return tuple(array.clone() for array in arrays)


@prepare_csr_graph.register_fake
def _(edge_index: Tensor, num_sources: int, num_targets: int, add_self_loops: bool, cache: bool):
    num_edges = edge_index.shape[1] + (min(num_sources, num_targets) if add_self_loops else 0)
    edges = edge_index.new_empty(num_edges, dtype=torch.long)
    return (
        edges,
        torch.empty_like(edges),
        torch.empty_like(edges),
        edges.new_empty(num_targets + 1),
        edges.new_empty(num_edges, dtype=torch.bool),
        torch.empty_like(edges),
        torch.empty_like(edges),
        edges.new_empty(num_sources + 1),
    )


def compiled_csr_graph(
    edge_index: Tensor, num_sources: int, num_targets: int, add_self_loops: bool, cache: bool
) -> CSRGraph:
    """The :class:`CSRGraph` of :func:`prepare_csr_graph` (``masked`` set only with ``add_self_loops``)."""
    order, source, target, ptr, masked, *transpose = prepare_csr_graph(
        edge_index, num_sources, num_targets, add_self_loops, cache
    )
    masked = masked if add_self_loops else None
    return CSRGraph(order, source, target, ptr, num_sources, num_targets, masked, tuple(transpose))
