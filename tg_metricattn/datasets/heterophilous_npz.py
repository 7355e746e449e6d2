"""Graphs stored as Platonov et al.'s ``.npz`` files (filtered Chameleon and Squirrel, and any graph in that format).

Platonov et al. (2023, "A critical look at the evaluation of GNNs under heterophily")
publish each dataset as one ``.npz`` with the arrays ``node_features`` ``[N, F]``,
``node_labels`` ``[N]``, ``edges`` ``[E, 2]`` and ``train_masks``, ``val_masks``,
``test_masks`` ``[S, N]`` (S published splits, 10). Their filtered Chameleon and Squirrel
(``chameleon_filtered.npz``, ``squirrel_filtered.npz``) remove the duplicate nodes that
leak between training and test in the original WikipediaNetwork graphs.

The file is read with ``allow_pickle=False``; every array's declared size is checked
against the bytes the archive holds for it before it is allocated (object arrays are
refused), then shapes, dtypes, index and label ranges are checked, and every published
split must have non-empty, pairwise disjoint train/val/test masks. The graph is made
undirected, as in the authors' loader.
"""

from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from tg_metricattn.datasets.mesh_dataset import MAX_INFERRED_CLASSES
from tg_metricattn.datasets.splits import check_published_splits

__all__ = ["MAX_ARRAY_BYTES", "NPZ_KEYS", "read_heterophilous_npz"]

NPZ_KEYS = ("node_features", "node_labels", "edges", "train_masks", "val_masks", "test_masks")
#: the largest array accepted from a file (a guard against a header that declares a huge array)
MAX_ARRAY_BYTES = 4 * 2**30


def _declared_nbytes(path: Path, archive: zipfile.ZipFile, member: str) -> tuple[int, int]:
    """``(bytes the .npy header declares, bytes the archive holds for the member)``.

    The declared size ``prod(shape) * itemsize`` is computed with Python integers (it cannot
    wrap around as an int64 product would); an array of Python objects is refused.
    """
    info = archive.getinfo(member)
    try:
        with archive.open(info) as handle:
            major, _ = np.lib.format.read_magic(handle)
            read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(handle)
    except ValueError as error:
        raise ValueError(f"{path}: {member} has no readable .npy header ({error}).") from None
    key = member.removesuffix(".npy")
    if dtype.hasobject:
        raise ValueError(
            f"{path}: array {key!r} holds Python objects (dtype {dtype}), which are read only by unpickling; "
            "a Platonov et al. file holds numeric and boolean arrays only. Use a correct copy of the file."
        )
    return math.prod(int(n) for n in shape) * dtype.itemsize, info.file_size


def _checked_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = [key for key in NPZ_KEYS if f"{key}.npy" not in names]
            if missing:
                raise ValueError(f"{path}: not a Platonov et al. graph file, arrays {missing} are missing.")
            for key in NPZ_KEYS:
                declared, held = _declared_nbytes(path, archive, f"{key}.npy")
                if declared > held or declared > MAX_ARRAY_BYTES:
                    raise ValueError(
                        f"{path}: array {key!r} declares {declared} bytes but the file holds {held} for it "
                        f"(limit {MAX_ARRAY_BYTES}); the file is damaged."
                    )
        with np.load(path, allow_pickle=False) as arrays:
            return {key: arrays[key] for key in NPZ_KEYS}
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(f"{path}: not a readable .npz archive ({error}).") from None


def read_heterophilous_npz(path: str | os.PathLike) -> Data:
    """A :class:`~torch_geometric.data.Data` with ``x``, ``y``, undirected ``edge_index`` and
    ``train_mask``/``val_mask``/``test_mask`` of shape ``[N, S]`` (one column per published split)."""
    path = Path(path)
    arrays = _checked_arrays(path)
    x, y, edges = arrays["node_features"], arrays["node_labels"], arrays["edges"]
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
        raise ValueError(f"{path}: node_features must be a finite numeric [N, F] array, got {x.dtype} {x.shape}.")
    n = x.shape[0]
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer) or (n and y.min() < 0):
        raise ValueError(f"{path}: node_labels must be {n} integers >= 0, got {y.dtype} {y.shape}.")
    if n and y.max() >= MAX_INFERRED_CLASSES:  # the class count sizes the model's output layer
        raise ValueError(
            f"{path}: node_labels go up to {y.max()}; labels must lie below {MAX_INFERRED_CLASSES} "
            "(the number of classes is inferred from them). The file is damaged: use a correct copy of it."
        )
    if edges.ndim != 2 or edges.shape[1] != 2 or not np.issubdtype(edges.dtype, np.integer):
        raise ValueError(f"{path}: edges must be an integer [E, 2] array, got {edges.dtype} {edges.shape}.")
    if edges.size and (edges.min() < 0 or edges.max() >= n):
        raise ValueError(f"{path}: edges index nodes {edges.min()}..{edges.max()} of {n}.")
    masks = {}
    for split in ("train", "val", "test"):
        mask = arrays[f"{split}_masks"]
        if mask.ndim != 2 or mask.shape[1] != n or mask.dtype != np.bool_:
            raise ValueError(f"{path}: {split}_masks must be a boolean [S, {n}] array, got {mask.dtype} {mask.shape}.")
        masks[split] = torch.from_numpy(mask.T.copy())
    if len({m.shape[1] for m in masks.values()}) != 1:
        raise ValueError(f"{path}: the train, val and test masks list different numbers of splits.")
    check_published_splits(masks["train"], masks["val"], masks["test"], str(path))
    edge_index = to_undirected(torch.from_numpy(edges.T.astype(np.int64)), num_nodes=n)
    data = Data(x=torch.from_numpy(x.astype(np.float32)), y=torch.from_numpy(y.astype(np.int64)), edge_index=edge_index)
    data.train_mask, data.val_mask, data.test_mask = masks["train"], masks["val"], masks["test"]
    return data
