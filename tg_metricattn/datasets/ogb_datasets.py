"""OGB datasets (``ogbn-*`` node and ``ogbg-*`` graph property prediction) under torch >= 2.6.

ogb 1.3.6 saves its processed files with ``torch.save`` and reads them back with a bare
``torch.load(path)``. Since torch 2.6 that call means ``weights_only=True``: a restricted
unpickler that refuses every class not on an allow-list, and PyG's ``Data`` storage
classes (``DataEdgeAttr``, ``DataTensorAttr``, ``GlobalStorage``) are not on it.

We do **not** set ``weights_only=False`` or ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``; ogb
loads through :func:`~tg_metricattn.datasets.safe_load.open_dataset_safely`, where every
``torch.load`` is ``weights_only=True`` with only PyG's plain data containers allowed, even
when ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` is set. Nothing is unpickled: a processed file
that needs more is moved aside and rebuilt from ``raw/``; any other such file (the
``split_dict.pt`` of a split) raises :class:`~tg_metricattn.datasets.safe_load.UnsafeFileError`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tg_metricattn.datasets.data_root import family_root
from tg_metricattn.datasets.safe_load import open_dataset_safely, pyg_safe_load

__all__ = ["GraphDatasetInfo", "check_ogb_name", "load_graph_dataset"]


def _ogb_folder_check(name: str, ogb_root: Path, version: str) -> None:
    """ogb asks ``input()`` on stdin when a folder lacks ``RELEASE_v<version>.txt``; fail clearly instead."""
    dir_name = "_".join(name.split("-"))
    for candidate in (ogb_root / (dir_name + "_pyg"), ogb_root / dir_name):
        if candidate.is_dir():
            if not (candidate / f"RELEASE_v{version}.txt").exists():
                raise FileNotFoundError(
                    f"{str(candidate)!r} exists but has no RELEASE_v{version}.txt, so ogb would ask on stdin "
                    f"whether to delete it. Add the file if the data is the current release of {name}, or "
                    "remove the folder to download it again."
                )
            return


def _ogb_master(name: str) -> Any:
    """ogb's table of its datasets (``master.csv``) for the kind of ``name`` (``ogbn-*`` or ``ogbg-*``)."""
    if name.startswith("ogbn-"):
        import ogb.nodeproppred as package
    elif name.startswith("ogbg-"):
        import ogb.graphproppred as package
    else:
        raise ValueError(f"{name!r} is not an OGB node ('ogbn-*') or graph ('ogbg-*') property prediction dataset.")
    import pandas as pd

    return pd.read_csv(Path(package.__file__).parent / "master.csv", index_col=0, keep_default_na=False)


def check_ogb_name(name: str) -> None:
    """Raise ``ValueError`` naming the known datasets of its kind when ``name`` is not an OGB dataset."""
    master = _ogb_master(name)
    if name not in master:
        raise ValueError(
            f"{name!r} is not an OGB dataset (checked against ogb's own list); the known {name[:5]}* names "
            f"are {', '.join(master.keys())}."
        )


def open_ogb_dataset(name: str, root: str | os.PathLike, **kwargs: Any) -> Any:
    """Construct the OGB PyG dataset ``name`` from ``<root>/ogb`` (downloading when absent).

    ``root`` is the data root (the folder ``$TGMA_DATA`` points to); the OGB folder for
    ``ogbg-molbace`` is ``<root>/ogb/ogbg_molbace``, as OGB itself names it. OGB's own root
    (``<root>/ogb``) works too.
    """
    check_ogb_name(name)
    master = _ogb_master(name)
    if name.startswith("ogbn-"):
        from ogb.nodeproppred import PygNodePropPredDataset as DatasetClass
    else:
        from ogb.graphproppred import PygGraphPropPredDataset as DatasetClass
    ogb_root = family_root(root, "ogb") / "ogb"
    _ogb_folder_check(name, ogb_root, str(master[name]["version"]))
    ogb_root.mkdir(parents=True, exist_ok=True)
    return open_dataset_safely(lambda: DatasetClass(name=name, root=str(ogb_root), **kwargs), root)


def ogb_split(dataset: Any) -> dict[str, torch.Tensor]:
    """The official split of an OGB dataset as ``{'train', 'valid', 'test'}`` index tensors."""
    with pyg_safe_load():
        split = dataset.get_idx_split()
    return {key: torch.as_tensor(value, dtype=torch.long) for key, value in split.items()}


@dataclass
class GraphDatasetInfo:
    """What a graph-property dataset is: sizes, the official split and the OGB evaluator.

    ``split`` maps ``'train' | 'valid' | 'test'`` to graph indices; the evaluator takes
    ``{'y_true': [n, num_tasks], 'y_pred': [n, num_tasks]}`` and returns ``{eval_metric: value}``.
    """

    name: str
    num_graphs: int
    num_node_features: int
    num_edge_features: int
    num_tasks: int
    task_type: str
    eval_metric: str
    split: dict[str, torch.Tensor] = field(repr=False)
    evaluator: Any = field(repr=False)

    @property
    def split_names(self) -> tuple[str, ...]:
        return tuple(self.split)


def load_graph_dataset(name: str, root: str | os.PathLike, **kwargs: Any) -> tuple[Any, GraphDatasetInfo]:
    """Load an ``ogbg-*`` dataset with its official split and :class:`ogb.graphproppred.Evaluator`.

    Args:
        name: OGB name, e.g. ``'ogbg-molbace'`` or ``'ogbg-molhiv'``.
        root: the data root; the dataset lives in ``<root>/ogb/<ogbg_name>`` (downloaded
            there by OGB when it is absent and a network is available).
        **kwargs: passed to ``PygGraphPropPredDataset`` (``transform``, ``pre_transform``).

    Returns:
        ``(dataset, info)``; index the dataset with ``info.split['train']`` etc.
    """
    if not name.startswith("ogbg-"):
        raise ValueError(
            f"load_graph_dataset reads OGB graph property datasets ('ogbg-*'), got {name!r}; "
            "use load_node_dataset for node classification."
        )
    from ogb.graphproppred import Evaluator

    dataset = open_ogb_dataset(name, root, **kwargs)
    data = dataset._data if hasattr(dataset, "_data") else dataset.data
    info = GraphDatasetInfo(
        name=name,
        num_graphs=len(dataset),
        num_node_features=int(data.x.size(-1)) if data.x is not None else 0,
        num_edge_features=int(data.edge_attr.size(-1)) if getattr(data, "edge_attr", None) is not None else 0,
        num_tasks=int(dataset.num_tasks),
        task_type=str(dataset.task_type),
        eval_metric=str(dataset.eval_metric),
        split=ogb_split(dataset),
        evaluator=Evaluator(name),
    )
    return dataset, info
