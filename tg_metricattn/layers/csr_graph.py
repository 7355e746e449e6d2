"""A graph in compressed sparse row form, by target and (lazily) by source, for sparse kernels.

Row i of the target-major form holds the edges j -> i: it is the pattern of the
propagation matrix A (out = A V). The source-major form holds the same edges grouped
by source: the pattern of A^T, needed only by backward passes, so it is built on first use.

Every step is a sort, a gather or a search over arrays of fixed length: no shape depends
on the values of the edges.
"""

from __future__ import annotations

import torch
from torch import Tensor


def row_pointers(sorted_rows: Tensor, num_rows: int) -> Tensor:
    """``ptr[r]`` = number of entries of ``sorted_rows`` below r, for r = 0 .. num_rows."""
    return torch.searchsorted(sorted_rows, torch.arange(num_rows + 1, device=sorted_rows.device))


class CSRGraph:
    """Edges sorted by (target, source), with the transposed pattern built on demand.

    Attributes:
        order: ``[E]`` position in the caller's edge list of each target-major edge.
        source, target: ``[E]`` endpoints of each edge in target-major order (``source``
            is the CSR column index array of A).
        target_ptr: ``[N_dst + 1]`` row pointers of A.
        masked: ``[E]`` bool in target-major order, or ``None``: edges kept in the pattern
            but given no weight (the self-loops of the input that the layer replaces, under
            ``torch.compile``, where removing them would make the edge count data-dependent).
    """

    def __init__(
        self,
        order: Tensor,
        source: Tensor,
        target: Tensor,
        target_ptr: Tensor,
        num_sources: int,
        num_targets: int,
        masked: Tensor | None = None,
        transpose: tuple[Tensor, Tensor, Tensor] | None = None,
    ) -> None:
        self.order, self.source, self.target, self.target_ptr = order, source, target, target_ptr
        self.num_sources, self.num_targets = num_sources, num_targets
        self.masked = masked
        self._transpose = transpose

    @property
    def transpose(self) -> tuple[Tensor, Tensor, Tensor]:
        """``(order, columns, ptr)`` of A^T: the target-major position of each source-major
        edge, the CSR column indices (targets) and the row pointers over sources."""
        if self._transpose is None:
            order = torch.argsort(self.source * self.num_targets + self.target)
            columns = self.target.index_select(0, order)
            self._transpose = (order, columns, row_pointers(self.source.index_select(0, order), self.num_sources))
        return self._transpose


def build_csr_graph(edge_index: Tensor, num_sources: int, num_targets: int, masked: Tensor | None = None) -> CSRGraph:
    """Sort ``edge_index`` [2, E] (row 0 source, row 1 target) into target-major CSR form;
    ``masked`` ``[E]`` (bool, in the order of ``edge_index``) marks edges to be given no weight."""
    source, target = edge_index[0].long(), edge_index[1].long()  # int64: the key overflows int32 past ~46k nodes
    order = torch.argsort(target * num_sources + source)
    source, target = source.index_select(0, order), target.index_select(0, order)
    masked = None if masked is None else masked.index_select(0, order)
    return CSRGraph(order, source, target, row_pointers(target, num_targets), num_sources, num_targets, masked)
