"""Prepared graphs (self-loops added, edges sorted into CSR) kept by the identity of their edge-index tensor.

One cache serves every attention layer: the layers of a model that attend over the same
``edge_index`` tensor share one prepared graph, and a training set of meshes (one
``edge_index`` tensor per mesh, passed again every epoch) is prepared once per mesh, not
once per step. An entry is found only for the very tensor object it was made from, not
modified in place since (``Tensor._version``), with the same sizes and self-loop setting;
it is dropped when that tensor is garbage-collected, or when more than ``capacity``
entries would be kept (least recently used first).
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import Any

from torch import Tensor

__all__ = ["GRAPH_CACHE", "GraphCache"]


class GraphCache:
    """A least-recently-used map from ``(edge_index tensor, key)`` to a prepared graph (module docstring)."""

    def __init__(self, capacity: int = 256) -> None:
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}.")
        self.capacity = capacity
        self._entries: OrderedDict[int, tuple[weakref.ref, tuple, Any]] = OrderedDict()

    def get(self, edge_index: Tensor, key: tuple) -> Any | None:
        """The value stored for this very tensor (unmodified) and ``key``, or ``None``."""
        entry = self._entries.get(id(edge_index))
        if entry is None or entry[0]() is not edge_index or entry[1] != (edge_index._version, *key):
            return None
        self._entries.move_to_end(id(edge_index))
        return entry[2]

    def put(self, edge_index: Tensor, key: tuple, value: Any) -> None:
        """Keep ``value`` for ``edge_index`` in its current version and ``key``."""
        if self.capacity == 0:
            return
        ident = id(edge_index)
        entries = self._entries

        def forget(ref: weakref.ref, ident: int = ident) -> None:
            if ident in entries and entries[ident][0] is ref:
                del entries[ident]

        entries[ident] = (weakref.ref(edge_index, forget), (edge_index._version, *key), value)
        entries.move_to_end(ident)
        while len(entries) > self.capacity:
            entries.popitem(last=False)

    def clear(self) -> None:
        """Drop every entry."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


#: the cache every attention layer uses (``cache_graph=True``)
GRAPH_CACHE = GraphCache()
