"""A graph in compressed sparse row form, by target and (lazily) by source, for sparse kernels.

Row i of the target-major form holds the edges j -> i: it is the pattern of the
propagation matrix A (out = A V). The source-major form holds the same edges grouped
by source: the pattern of A^T, needed only by backward passes, so it is built on first use.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _row_pointers(sorted_rows: Tensor, num_rows: int) -> Tensor:
    counts = torch.bincount(sorted_rows, minlength=num_rows)
    return torch.cat([counts.new_zeros(1), counts.cumsum(0)])


class CSRGraph:
    """Edges sorted by (target, source), with the transposed pattern built on demand.

    Attributes:
        source, target: ``[E]`` endpoints of each edge in target-major order (``source``
            is the CSR column index array of A).
        target_ptr: ``[N_dst + 1]`` row pointers of A.
        order: ``[E]`` position in the caller's edge list of each target-major edge.
    """

    def __init__(self, edge_index: Tensor, num_sources: int, num_targets: int) -> None:
        source, target = edge_index[0].long(), edge_index[1].long()  # int64: the key overflows int32 past ~46k nodes
        key = target * num_sources + source
        self.order = torch.argsort(key)
        self.source, self.target = source.index_select(0, self.order), target.index_select(0, self.order)
        self.target_ptr = _row_pointers(self.target, num_targets)
        self.num_sources, self.num_targets = num_sources, num_targets
        sorted_key = key.index_select(0, self.order)
        self.has_duplicates = bool((sorted_key[1:] == sorted_key[:-1]).any()) if key.numel() > 1 else False
        self._transpose: tuple[Tensor, Tensor, Tensor] | None = None
        self._unique: tuple[Tensor, Tensor, Tensor] | None = None

    @property
    def transpose(self) -> tuple[Tensor, Tensor, Tensor]:
        """``(order, columns, ptr)`` of A^T: the target-major position of each source-major
        edge, the CSR column indices (targets) and the row pointers over sources."""
        if self._transpose is None:
            order = torch.argsort(self.source * self.num_targets + self.target)
            columns = self.target.index_select(0, order)
            self._transpose = (order, columns, _row_pointers(self.source.index_select(0, order), self.num_sources))
        return self._transpose

    @property
    def unique(self) -> tuple[Tensor, Tensor, Tensor]:
        """``(ptr, columns, expand)`` of the pattern with duplicate edges merged; ``expand[e]``
        is the merged position of edge e. Sampled products need a duplicate-free pattern."""
        if self._unique is None:
            is_first = torch.ones_like(self.source, dtype=torch.bool)
            is_first[1:] = (self.source[1:] != self.source[:-1]) | (self.target[1:] != self.target[:-1])
            expand = torch.cumsum(is_first, 0) - 1
            first = is_first.nonzero().flatten()
            rows = self.target.index_select(0, first)
            self._unique = (_row_pointers(rows, self.num_targets), self.source.index_select(0, first), expand)
        return self._unique


def build_csr_graph(edge_index: Tensor, num_sources: int, num_targets: int) -> CSRGraph:
    """Sort ``edge_index`` [2, E] (row 0 source, row 1 target) into target-major CSR form."""
    return CSRGraph(edge_index, num_sources, num_targets)
