"""A graph in compressed sparse row form, by target and by source, for sparse kernels.

Row i of the target-major form holds the edges j -> i: it is the pattern of the
propagation matrix A (out = A V). The source-major form holds the same edges grouped
by source: the pattern of A^T, needed by the backward pass.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class CSRGraph(NamedTuple):
    """Edges sorted by (target, source) plus the permutation to source-major order.

    ``order[e]`` is the position in the caller's edge list of the e-th edge in target-major
    order; ``transpose_order[e]`` is the target-major position of the e-th edge in
    source-major order.
    """

    source: Tensor  # [E] source of each edge, target-major order (the CSR column indices)
    target: Tensor  # [E] target of each edge, target-major order
    target_ptr: Tensor  # [N_dst + 1] row pointers of A
    order: Tensor  # [E] caller position of each target-major edge
    transpose_target: Tensor  # [E] column indices of A^T (targets, source-major order)
    source_ptr: Tensor  # [N_src + 1] row pointers of A^T
    transpose_order: Tensor  # [E] target-major position of each source-major edge
    num_sources: int
    num_targets: int


def _row_pointers(sorted_rows: Tensor, num_rows: int) -> Tensor:
    counts = torch.bincount(sorted_rows, minlength=num_rows)
    return torch.cat([counts.new_zeros(1), counts.cumsum(0)])


def build_csr_graph(edge_index: Tensor, num_sources: int, num_targets: int) -> CSRGraph:
    """Sort ``edge_index`` [2, E] (row 0 source, row 1 target) into both CSR forms."""
    source, target = edge_index[0], edge_index[1]
    order = torch.argsort(target * num_sources + source)
    source, target = source[order], target[order]
    transpose_order = torch.argsort(source * num_targets + target)
    return CSRGraph(
        source=source,
        target=target,
        target_ptr=_row_pointers(target, num_targets),
        order=order,
        transpose_target=target[transpose_order],
        source_ptr=_row_pointers(source[transpose_order], num_sources),
        transpose_order=transpose_order,
        num_sources=num_sources,
        num_targets=num_targets,
    )
