"""Prepared graphs (self-loops added, edges sorted into CSR) kept by the identity of their edge-index tensor.

One cache serves every attention layer: the layers of a model that attend over the same
``edge_index`` tensor share one prepared graph, and a training set of meshes (one
``edge_index`` tensor per mesh, passed again every epoch) is prepared once per mesh, not
once per step. One tensor keeps one entry per key (sizes, self-loop setting, eager or
compiled), so layers that prepare the same tensor differently (a layer with self-loops and
one without, an eager and a compiled copy) do not evict each other's graphs. An entry is
found only for the very tensor object it was made from, not modified in place since
(``Tensor._version``), with the same key; a tensor's entries are dropped when it is
garbage-collected or modified, or when more than ``capacity`` tensors would be kept
(least recently used first).
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import Any

from torch import Tensor

__all__ = ["GRAPH_CACHE", "GraphCache"]


class GraphCache:
    """A least-recently-used map from ``(edge_index tensor, key)`` to a prepared graph (module docstring);
    ``capacity`` counts tensors, each with its values by key."""

    def __init__(self, capacity: int = 256) -> None:
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}.")
        self.capacity = capacity
        # id(tensor) -> (weak reference, the tensor's version when stored, {key: value})
        self._entries: OrderedDict[int, tuple[weakref.ref, int, dict[tuple, Any]]] = OrderedDict()

    def get(self, edge_index: Tensor, key: tuple) -> Any | None:
        """The value stored for this very tensor (unmodified) and ``key``, or ``None``."""
        entry = self._entries.get(id(edge_index))
        if entry is None or entry[0]() is not edge_index or entry[1] != edge_index._version:
            return None
        self._entries.move_to_end(id(edge_index))
        return entry[2].get(key)

    def put(self, edge_index: Tensor, key: tuple, value: Any) -> None:
        """Keep ``value`` for ``edge_index`` in its current version and ``key`` (beside its other keys)."""
        if self.capacity == 0:
            return
        ident = id(edge_index)
        entries = self._entries
        entry = entries.get(ident)
        if entry is None or entry[0]() is not edge_index or entry[1] != edge_index._version:

            def forget(ref: weakref.ref, ident: int = ident) -> None:
                if ident in entries and entries[ident][0] is ref:
                    del entries[ident]

            entry = entries[ident] = (weakref.ref(edge_index, forget), edge_index._version, {})
        entry[2][key] = value
        entries.move_to_end(ident)
        while len(entries) > self.capacity:
            entries.popitem(last=False)

    def clear(self) -> None:
        """Drop every entry."""
        self._entries.clear()

    def __len__(self) -> int:
        """The number of tensors with entries."""
        return len(self._entries)


#: the cache every attention layer uses (``cache_graph=True``)
GRAPH_CACHE = GraphCache()
