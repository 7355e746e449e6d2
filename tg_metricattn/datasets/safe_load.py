"""Reading PyG's processed files with ``torch.load(weights_only=True)`` and nothing more.

PyG's ``InMemoryDataset`` and ogb save processed data as pickles that name PyG classes
(``Data``, its storages). ``torch.load(weights_only=True)`` refuses them, and PyG then
falls back to ``weights_only=False`` (full unpickling, which can run code from the file);
ogb 1.3.6 calls a bare ``torch.load``. :func:`pyg_safe_load` keeps ``weights_only=True``
and, only while it is open, adds PyG's plain data-container classes to the allow-list
(``torch.serialization.safe_globals``). Those classes hold tensors and dictionaries and
run no code when unpickled, so loading stays safe and no fallback happens; on exit the
allow-list is what it was before (classes PyG allowed itself stay allowed). We never set ``weights_only=False`` or
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``, which would switch the safe unpickler off for every
file loaded meanwhile.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch_geometric.data import Data
from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
from torch_geometric.data.storage import EdgeStorage, GlobalStorage, NodeStorage

__all__ = ["PYG_SAFE_GLOBALS", "pyg_safe_load"]

#: The classes a processed PyG/OGB file pickles besides tensors and builtins.
PYG_SAFE_GLOBALS: tuple[type, ...] = (Data, DataEdgeAttr, DataTensorAttr, GlobalStorage, NodeStorage, EdgeStorage)


@contextlib.contextmanager
def pyg_safe_load() -> Iterator[None]:
    """Allow ``torch.load(weights_only=True)`` to read PyG ``Data`` objects, inside this block only.

    Only the classes not yet allowed are added, and only those are removed on exit: PyG
    allows ``Data`` globally when imported, and that must survive the block.
    """
    allowed = set(torch.serialization.get_safe_globals())
    with torch.serialization.safe_globals([cls for cls in PYG_SAFE_GLOBALS if cls not in allowed]):
        yield
