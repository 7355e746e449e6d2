"""One entry point for the node-classification graphs: Planetoid, PyG benchmark classes, ``ogbn-*``.

Every loader returns a PyG :class:`~torch_geometric.data.Data` with ``x``, ``edge_index``,
``y`` (``[N]`` long) and one split as boolean masks ``train_mask``, ``val_mask``,
``test_mask`` (``[N]``), plus a :class:`NodeDatasetInfo` describing it.

Where the data is: ``root`` is a data root (e.g. ``$TGMA_DATA``) with one sub-folder per
family, the layout PyG/OGB use themselves: ``<root>/Planetoid/Cora``,
``<root>/Amazon/Photo``, ``<root>/Coauthor/CS``, ``<root>/Heterophilous/minesweeper``,
``<root>/WebKB/cornell``, ``<root>/Actor``, ``<root>/WikipediaNetwork/chameleon``,
``<root>/Heterophilous/chameleon_filtered/raw/chameleon_filtered.npz`` (Platonov et al.'s filtered
Chameleon and Squirrel, read by :mod:`~tg_metricattn.datasets.heterophilous_npz`),
``<root>/ogb/ogbn_arxiv``. Data already there is used as it is; data that is absent is
downloaded by the PyG/OGB class when a network is available; without one,
:class:`~tg_metricattn.datasets.DataNotFoundError` names the folder and what to put there.

Splits:
- Planetoid: the public split (Yang et al. 2016: 20 per class / 500 / 1000).
- HeterophilousGraphDataset, WebKB, Actor, WikipediaNetwork, the filtered Chameleon and
  Squirrel: the 10 published splits;
  ``split`` (0..9) chooses one.
- Amazon, Coauthor (and any other class without split masks): no official split exists;
  a seeded random split as Shchur et al. 2018, ``train_per_class`` (20) and
  ``val_per_class`` (30) nodes per class, the rest test; ``split`` is the seed.
- ``ogbn-*``: the official OGB split (``valid`` becomes ``val_mask``); the graph is made
  undirected and ``y`` squeezed to ``[N]``; ``info.evaluator`` is the OGB ``Evaluator``
  (it expects ``y_true``/``y_pred`` of shape ``[n, 1]``).

No file under ``root`` is unpickled (see :mod:`~tg_metricattn.datasets.safe_load`): a
processed file that cannot be read as tensors and plain data is moved aside and rebuilt
from ``raw/``; any other such file raises :class:`~tg_metricattn.datasets.safe_load.UnsafeFileError`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch_geometric.datasets as pyg_datasets
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from tg_metricattn.datasets.data_root import DataNotFoundError, family_root
from tg_metricattn.datasets.heterophilous_npz import read_heterophilous_npz
from tg_metricattn.datasets.ogb_datasets import ogb_split, open_ogb_dataset
from tg_metricattn.datasets.safe_load import open_dataset_safely
from tg_metricattn.datasets.splits import check_published_splits, random_per_class_split

__all__ = ["ROC_AUC_DATASETS", "NodeDatasetInfo", "known_node_datasets", "load_node_dataset", "node_dataset_folder"]

SPLIT_NAMES = ("train", "val", "test")

# alias (lower case) -> (PyG class name, sub-folder of root, name argument or None, extra kwargs)
_ALIASES: dict[str, tuple[str, str, str | None, dict[str, Any]]] = {
    "cora": ("Planetoid", "Planetoid", "Cora", {"split": "public"}),
    "citeseer": ("Planetoid", "Planetoid", "CiteSeer", {"split": "public"}),
    "pubmed": ("Planetoid", "Planetoid", "PubMed", {"split": "public"}),
    "amazon-photo": ("Amazon", "Amazon", "Photo", {}),
    "amazon-computers": ("Amazon", "Amazon", "Computers", {}),
    "photo": ("Amazon", "Amazon", "Photo", {}),
    "computers": ("Amazon", "Amazon", "Computers", {}),
    "coauthor-cs": ("Coauthor", "Coauthor", "CS", {}),
    "coauthor-physics": ("Coauthor", "Coauthor", "Physics", {}),
    "roman-empire": ("HeterophilousGraphDataset", "Heterophilous", "Roman-empire", {}),
    "amazon-ratings": ("HeterophilousGraphDataset", "Heterophilous", "Amazon-ratings", {}),
    "minesweeper": ("HeterophilousGraphDataset", "Heterophilous", "Minesweeper", {}),
    "tolokers": ("HeterophilousGraphDataset", "Heterophilous", "Tolokers", {}),
    "questions": ("HeterophilousGraphDataset", "Heterophilous", "Questions", {}),
    "cornell": ("WebKB", "WebKB", "Cornell", {}),
    "texas": ("WebKB", "WebKB", "Texas", {}),
    "wisconsin": ("WebKB", "WebKB", "Wisconsin", {}),
    "actor": ("Actor", "Actor", None, {}),
    "chameleon": ("WikipediaNetwork", "WikipediaNetwork", "chameleon", {"geom_gcn_preprocess": True}),
    "squirrel": ("WikipediaNetwork", "WikipediaNetwork", "squirrel", {"geom_gcn_preprocess": True}),
}

#: alias -> file stem of the graphs read from Platonov et al.'s ``.npz`` files under ``<root>/Heterophilous``
_NPZ_DATASETS = {"chameleon-filtered": "chameleon_filtered", "squirrel-filtered": "squirrel_filtered"}

#: binary datasets whose published metric is ROC-AUC (Platonov et al. 2023)
ROC_AUC_DATASETS = ("Minesweeper", "Tolokers", "Questions")


@dataclass
class NodeDatasetInfo:
    """A short description of a node-classification graph and of the split in use.

    Attributes:
        split_kind: ``'public'``, ``'official'`` (OGB), ``'published'`` (one of several
            published splits, ``split_index`` says which) or ``'random-per-class'`` (seeded,
            ``split_index`` is the seed).
        num_splits: how many published splits exist (1 for a single official split).
        metric: ``'accuracy'``, or ``'roc_auc'`` for the binary datasets whose published
            results are ROC-AUC (:data:`ROC_AUC_DATASETS`).
    """

    name: str
    num_nodes: int
    num_edges: int
    num_features: int
    num_classes: int
    split_names: tuple[str, ...] = SPLIT_NAMES
    split_kind: str = "public"
    split_index: int | None = None
    num_splits: int = 1
    metric: str = "accuracy"
    evaluator: Any = field(default=None, repr=False)


def known_node_datasets() -> list[str]:
    """The short names :func:`load_node_dataset` accepts besides ``'ogbn-*'`` and ``'Class/name'``."""
    return sorted([*_ALIASES, *_NPZ_DATASETS])


def node_dataset_folder(name: str) -> str:
    """The folder under a data root that holds node dataset ``name`` (e.g. ``'Planetoid'`` for Cora).

    Raises ``ValueError`` for a name no loader knows.
    """
    return _resolve(name)[1]


def _resolve(name: str) -> tuple[str, str, str | None, dict[str, Any]]:
    key = name.strip().lower().replace("_", "-")
    if key in _ALIASES:
        return _ALIASES[key]
    if key in _NPZ_DATASETS:
        return "npz", "Heterophilous", _NPZ_DATASETS[key], {}
    class_name, _, arg = name.partition("/")
    if class_name and hasattr(pyg_datasets, class_name):
        return class_name, class_name, (arg or None), {}
    raise ValueError(
        f"Unknown node dataset {name!r}. Use one of {', '.join(known_node_datasets())}, an OGB name "
        "such as 'ogbn-arxiv', or 'ClassName/name' for any class in torch_geometric.datasets "
        "(for example 'Amazon/Photo')."
    )


def _pick_mask(mask: torch.Tensor, split: int, name: str) -> torch.Tensor:
    if mask.dim() == 1:
        return mask.bool()
    if not 0 <= split < mask.size(1):
        raise ValueError(
            f"{name} has {mask.size(1)} published splits; split must be in 0..{mask.size(1) - 1}, got {split}."
        )
    return mask[:, split].bool()


def load_node_dataset(
    name: str,
    root: str | os.PathLike,
    split: int = 0,
    *,
    train_per_class: int = 20,
    val_per_class: int = 30,
    transform: Any = None,
) -> tuple[Data, NodeDatasetInfo]:
    """Load a node-classification graph with one train/val/test split as masks.

    Args:
        name: a short name (``'Cora'``, ``'CiteSeer'``, ``'PubMed'``, ``'Amazon-Photo'``,
            ``'Coauthor-CS'``, ``'Minesweeper'``, ``'Tolokers'``, ``'Cornell'``, ``'Actor'``,
            ``'Chameleon'``, ... see :func:`known_node_datasets`), an OGB name
            (``'ogbn-arxiv'``), or ``'ClassName/name'`` for any ``torch_geometric.datasets``
            class that takes ``(root, name)``.
        root: the data root; see the module docstring for the folder of each family. The
            family folder itself (PyG's ``root``, e.g. ``data/Planetoid``) works too.
        split: which published split (0-based) for datasets with several; the seed of the
            random split for datasets without one; 0 for datasets with one split (Planetoid, OGB).
        train_per_class, val_per_class: sizes of the random split (Shchur et al. 2018).
        transform: an optional transform applied to the returned ``Data``.

    Returns:
        ``(data, info)``.
    """
    if not isinstance(split, int) or isinstance(split, bool) or split < 0:
        raise ValueError(f"split must be a non-negative int, got {split!r}.")
    folder = "ogb" if name.lower().startswith("ogbn-") else _resolve(name)[1]
    root = family_root(root, folder)
    if name.lower().startswith("ogbn-"):
        if split != 0:
            raise ValueError(f"{name} has one official split; split must be 0, got {split}.")
        data, info = _load_ogbn(name.lower(), root)
    elif _resolve(name)[0] == "npz":
        _, folder, stem, _ = _resolve(name)
        path = root / folder / stem / "raw" / f"{stem}.npz"
        if not path.is_file():
            raise DataNotFoundError(
                f"{name!r} is not at {str(path)!r}: put Platonov et al.'s {stem}.npz there "
                "(github.com/yandex-research/heterophilous-graphs, data/)."
            )
        data = read_heterophilous_npz(path)
        data, info = _with_split(data, stem, int(data.y.max()) + 1, "npz", split, train_per_class, val_per_class)
    else:
        class_name, folder, arg, kwargs = _resolve(name)
        cls = getattr(pyg_datasets, class_name)
        args = (str(root / folder),) if arg is None else (str(root / folder), arg)
        try:  # nothing is unpickled; a processed file that cannot be read safely is rebuilt from raw/
            dataset = open_dataset_safely(lambda: cls(*args, **kwargs), root)
        except AssertionError as error:  # PyG checks a dataset's name with a bare assert
            detail = f": {error}" if str(error) else ""
            raise ValueError(
                f"{class_name} does not know the dataset name {arg!r} (PyG's own check failed{detail}); "
                f"see torch_geometric.datasets.{class_name} for the names it accepts."
            ) from None
        except OSError as error:  # the raw files are absent and the download failed (no network)
            raise DataNotFoundError(
                f"{name!r} is not under {args[0]!r} and could not be downloaded ({type(error).__name__}: {error}). "
                f"Copy the dataset's raw files there (the layout {class_name} writes when it downloads), or pass "
                f"the root of a data folder that has it (e.g. $TGMA_DATA)."
            ) from error
        data = dataset[0]
        display = class_name if arg is None else f"{arg}"
        if getattr(data, "y", None) is None or data.y.dim() != 1 or data.y.is_floating_point():
            raise ValueError(
                f"{name!r} is not a single-label node-classification dataset (y is not a 1-D long tensor)."
            )
        data, info = _with_split(
            data, display, int(dataset.num_classes), class_name, split, train_per_class, val_per_class
        )
    if transform is not None:
        data = transform(data)
    return data, info


def _with_split(
    data: Data, display: str, num_classes: int, class_name: str, split: int, train_per_class: int, val_per_class: int
) -> tuple[Data, NodeDatasetInfo]:
    """``data`` with one split as ``[N]`` masks (published split ``split``, or a seeded random one) and its info."""
    has_masks = all(getattr(data, f"{s}_mask", None) is not None for s in SPLIT_NAMES)
    if has_masks:
        num_splits = 1 if data.train_mask.dim() == 1 else int(data.train_mask.size(1))
        for s in SPLIT_NAMES:
            data[f"{s}_mask"] = _pick_mask(data[f"{s}_mask"], split, display)
        kind = "public" if class_name == "Planetoid" else ("published" if num_splits > 1 else "official")
        index = split if num_splits > 1 else None
        if num_splits == 1 and split != 0:
            raise ValueError(f"{display} has one {kind} split; split must be 0, got {split}.")
        check_published_splits(data.train_mask, data.val_mask, data.test_mask, display, first_split=index or 0)
    else:
        masks = random_per_class_split(data.y, num_classes, train_per_class, val_per_class, seed=split)
        for s, m in zip(SPLIT_NAMES, masks, strict=True):
            data[f"{s}_mask"] = m
        kind, index, num_splits = "random-per-class", split, 1
    info = NodeDatasetInfo(
        name=display,
        num_nodes=int(data.num_nodes),
        num_edges=int(data.edge_index.size(1)),
        num_features=int(data.x.size(1)),
        num_classes=num_classes,
        split_kind=kind,
        split_index=index,
        num_splits=num_splits,
        metric="roc_auc" if display in ROC_AUC_DATASETS else "accuracy",
    )
    return data, info


def _load_ogbn(name: str, root: Path) -> tuple[Data, NodeDatasetInfo]:
    from ogb.nodeproppred import Evaluator

    dataset = open_ogb_dataset(name, root)
    if getattr(dataset, "is_hetero", False):
        raise ValueError(f"{name} is heterogeneous; load_node_dataset handles homogeneous OGB graphs only.")
    data = dataset[0]
    num_nodes = int(data.num_nodes)
    y = data.y.view(-1).long() if data.y.dim() == 2 and data.y.size(1) == 1 else data.y
    edge_index = to_undirected(data.edge_index, num_nodes=num_nodes)
    out = Data(x=data.x, edge_index=edge_index, y=y, num_nodes=num_nodes)
    for key in ("node_year", "node_species"):
        if getattr(data, key, None) is not None:
            out[key] = data[key]
    split_idx = ogb_split(dataset)
    for ours, theirs in zip(SPLIT_NAMES, ("train", "valid", "test"), strict=True):
        mask = torch.zeros(num_nodes, dtype=torch.bool)
        mask[split_idx[theirs]] = True
        out[f"{ours}_mask"] = mask
    info = NodeDatasetInfo(
        name=name,
        num_nodes=num_nodes,
        num_edges=int(edge_index.size(1)),
        num_features=int(data.x.size(1)) if data.x is not None else 0,
        num_classes=int(dataset.num_classes),
        split_kind="official",
        evaluator=Evaluator(name),
    )
    return out, info
