"""Mini-batches of seed nodes with sampled multi-hop neighbourhoods (GraphSAGE-style).

:func:`neighbor_batches` uses PyG's ``NeighborLoader`` when its sampling backend
(``pyg-lib`` or ``torch-sparse``) is installed, and otherwise :class:`UniformNeighborSampler`,
a pure-torch sampler with the same output: nodes ordered by hop (the seeds first),
``num_sampled_nodes`` per hop, and the sampled edges ``source -> target`` in local ids.
That order is what :class:`~tg_metricattn.models.AttentionNet` needs to run
each layer bipartitely.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch
import torch_geometric.typing
from torch import Tensor

__all__ = ["SampledBatch", "UniformNeighborSampler", "neighbor_batches"]


class SampledBatch(NamedTuple):
    """One mini-batch: global ids ``n_id`` (seeds first), local ``edge_index`` and hop sizes."""

    n_id: Tensor
    edge_index: Tensor
    num_sampled_nodes: list[int]
    batch_size: int


class UniformNeighborSampler:
    """Sample up to ``num_neighbors[k]`` incoming neighbours per node at hop ``k``, without replacement.

    Uses the global torch random state, so a seeded run samples the same batches.
    """

    def __init__(self, edge_index: Tensor, num_nodes: int, num_neighbors: list[int]) -> None:
        order = torch.argsort(edge_index[1], stable=True)
        self.col = edge_index[0, order]  # sources, grouped by target
        counts = torch.bincount(edge_index[1], minlength=num_nodes)
        self.rowptr = torch.zeros(num_nodes + 1, dtype=torch.long)
        self.rowptr[1:] = counts.cumsum(0)
        self.num_nodes, self.num_neighbors = num_nodes, list(num_neighbors)

    def _sample_hop(self, frontier: Tensor, fanout: int) -> tuple[Tensor, Tensor]:
        """Return ``(src, dst)`` global ids of the sampled edges into ``frontier``."""
        start, deg = self.rowptr[frontier], self.rowptr[frontier + 1] - self.rowptr[frontier]
        group = torch.repeat_interleave(torch.arange(frontier.numel()), deg)
        offset = torch.arange(group.numel()) - torch.repeat_interleave(deg.cumsum(0) - deg, deg)
        edge = start[group] + offset
        shuffled = torch.randperm(group.numel())
        by_group = shuffled[torch.argsort(group[shuffled], stable=True)]
        rank = torch.arange(group.numel()) - torch.repeat_interleave(deg.cumsum(0) - deg, deg)
        chosen = by_group[rank < fanout]
        return self.col[edge[chosen]], frontier[group[chosen]]

    def sample(self, seeds: Tensor) -> SampledBatch:
        """Sample the neighbourhood of ``seeds`` (global node ids)."""
        local = torch.full((self.num_nodes,), -1, dtype=torch.long)
        local[seeds] = torch.arange(seeds.numel())
        nodes, sizes, edges = [seeds], [seeds.numel()], []
        frontier, count = seeds, seeds.numel()
        for fanout in self.num_neighbors:
            src, dst = self._sample_hop(frontier, fanout)
            new = torch.unique(src[local[src] < 0])
            local[new] = torch.arange(count, count + new.numel())
            count += new.numel()
            nodes.append(new)
            sizes.append(new.numel())
            edges.append(torch.stack([local[src], local[dst]]))
            frontier = new
        edge_index = torch.cat(edges, 1) if edges else torch.empty(2, 0, dtype=torch.long)
        return SampledBatch(torch.cat(nodes), edge_index, sizes, seeds.numel())


def neighbor_batches(
    edge_index: Tensor,
    num_nodes: int,
    seeds: Tensor,
    num_neighbors: list[int],
    batch_size: int,
) -> Iterator[SampledBatch]:
    """Yield sampled mini-batches of ``batch_size`` consecutive ``seeds`` (shuffle them beforehand)."""
    if torch_geometric.typing.WITH_PYG_LIB or torch_geometric.typing.WITH_TORCH_SPARSE:
        from torch_geometric.data import Data
        from torch_geometric.loader import NeighborLoader

        data = Data(edge_index=edge_index, num_nodes=num_nodes)
        loader = NeighborLoader(data, num_neighbors, input_nodes=seeds, batch_size=batch_size, shuffle=False)
        for batch in loader:
            yield SampledBatch(batch.n_id, batch.edge_index, list(batch.num_sampled_nodes), batch.batch_size)
        return
    sampler = UniformNeighborSampler(edge_index, num_nodes, num_neighbors)
    for chunk in seeds.split(batch_size):
        yield sampler.sample(chunk)
