"""Where each task's data comes from: the data root, private copies of shared data, mesh splits.

``--root`` is used as it is when it is writable and outside ``$TGMA_DATA``. Without ``--root`` the folder named by
``$TGMA_DATA`` is used through a private copy (processing writes ``processed/`` next to
``raw/``, and a shared copy may be read-only) in ``$TGMA_CACHE`` (default
``~/.cache/tg_metricattn``), one copy per source folder. Missing data raises :class:`DataNotFoundError` with a hint.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from torch_geometric.data import Data

from tg_metricattn.datasets import (
    DATA_ENV_VAR,
    DEFAULT_EIGENPAIRS,
    PART_NAMES,
    DataNotFoundError,
    HumanSegmentation,
    MeshFolder,
    RNASegmentation,
    SyntheticMeshSegmentation,
    copy_dataset,
    family_root,
    get_data_root,
    node_dataset_folder,
)
from tg_metricattn.datasets.ogb_datasets import check_ogb_name

__all__ = [
    "MESH_DATASETS",
    "DataNotFoundError",
    "check_present",
    "dataset_folder",
    "load_mesh_splits",
    "resolve_root",
]

MESH_DATASETS = ("rna", "human", "folder", "synthetic")

# mesh dataset -> its folder under a data root laid out like $TGMA_DATA
_MESH_FOLDERS = {"rna": "rna_surface_segmentation", "human": "human_segmentation"}


def dataset_folder(name: str) -> str:
    """The folder holding dataset ``name`` relative to a data root (for node datasets: its family's folder).

    Raises ``ValueError`` for a name that no loader knows.
    """
    key = name.lower()
    if key.startswith(("ogbn-", "ogbg-")):
        return "ogb/" + key.replace("-", "_")
    if key in _MESH_FOLDERS:
        return _MESH_FOLDERS[key]
    return node_dataset_folder(name)


def _cache_dir() -> Path:
    return Path(os.environ.get("TGMA_CACHE", Path.home() / ".cache" / "tg_metricattn")).expanduser()


def resolve_root(name: str, root: str | None) -> Path:
    """The data root to load ``name`` from (see the module docstring)."""
    folder = dataset_folder(name)
    if root is not None:
        path = Path(root).expanduser()
        if path.exists() and not path.is_dir():
            raise DataNotFoundError(f"--root {str(path)!r} is a file; pass the folder that holds the data.")
        if path.is_dir() and not os.access(path, os.R_OK | os.X_OK):
            raise DataNotFoundError(f"--root {str(path)!r} cannot be read (permission denied); check its permissions.")
        if not path.is_dir():
            raise DataNotFoundError(
                f"--root {str(path)!r} does not exist. Pass the folder that holds the data (laid out like "
                f"$TGMA_DATA: Planetoid/Cora, ogb/ogbg_molbace, ...), or omit --root and set {DATA_ENV_VAR}."
            )
        shared = get_data_root()
        inside_shared = shared is not None and (path.resolve() == shared or shared in path.resolve().parents)
        if os.access(path, os.W_OK) and not inside_shared:
            return path
        if (path / folder).is_dir():
            return _copy(folder, path)
        return copy_dataset(path.resolve(), _cache_for(path))  # ``root`` is the dataset folder itself
    base = get_data_root()
    if base is None:
        raise DataNotFoundError(
            f"No data root: pass --root DIR or set {DATA_ENV_VAR} to the folder of real data "
            f"(for example `export {DATA_ENV_VAR}=../shared/data`)."
        )
    if not (base / folder).is_dir():
        raise DataNotFoundError(
            f"Dataset {name!r} not found under {DATA_ENV_VAR}={str(base)!r} (looked for {str(base / folder)!r}). "
            "Place it there or pass --root DIR."
        )
    return _copy(folder, base)


def _cache_for(source: Path) -> Path:
    """The private copy of data root ``source``: one folder per source (a hash of its resolved path), so two
    roots never share a copy."""
    return _cache_dir() / "data" / hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:16]


def _copy(folder: str, base: Path) -> Path:
    cache = _cache_for(base)
    copy_dataset(folder, cache, data_root=base)
    return cache


def check_present(name: str, root: Path) -> None:
    """Fail early (instead of trying to download without a network) when the dataset's folder is missing."""
    folder = dataset_folder(name)
    if not (family_root(root, folder) / folder).is_dir():
        if name.lower().startswith(("ogbn-", "ogbg-")):
            check_ogb_name(name.lower())  # an unknown OGB name: say so (and the known names), not "no network"
        raise DataNotFoundError(
            f"Dataset {name!r} not found: {str(root / folder)!r} does not exist, and downloading needs a network. "
            f"Point --root or {DATA_ENV_VAR} at a folder that holds {folder}/."
        )


def _split_off(items: list[Data], every: int) -> tuple[list[Data], list[Data]]:
    """Every ``every``-th item goes to the second list (a fixed, seed-free validation split)."""
    keep = [d for i, d in enumerate(items) if i % every != every - 1]
    held = [d for i, d in enumerate(items) if i % every == every - 1]
    return keep, held


def load_mesh_splits(
    name: str,
    root: str | None,
    features: tuple[str, ...],
    limit: int | None,
    num_meshes: int,
    seed: int,
    resolution: int = 16,
    eigenpairs: int = DEFAULT_EIGENPAIRS,
) -> tuple[dict[str, list[Data]], int]:
    """``({'train', 'val', 'test'}: meshes, num_classes)`` for a mesh dataset.

    ``rna`` and ``human`` have train/test files: every 10th training mesh is held out for
    validation. ``folder`` uses ``train.txt``/``test.txt`` in the folder when present,
    otherwise all meshes (70/15/15 in file order). ``synthetic`` generates ``num_meshes``
    figures (seeded by ``seed``, ``resolution`` segments per limb) split 2/3, 1/6, 1/6.
    Every mesh carries ``eigenpairs`` Laplace–Beltrami eigenpairs (cached with the processed files).
    """
    key = name.lower()
    if key not in MESH_DATASETS:
        raise ValueError(f"Unknown mesh dataset {name!r}; choose from {', '.join(MESH_DATASETS)}.")
    if key == "synthetic":
        meshes = list(
            SyntheticMeshSegmentation(
                num_meshes, seed=seed, resolution=resolution, features=features, eigenpairs=eigenpairs
            )
        )
        if num_meshes < 3:
            raise ValueError(f"--num-meshes must be >= 3 for train/val/test meshes, got {num_meshes}.")
        n_test = n_val = max(1, num_meshes // 6)
        return {
            "train": meshes[: num_meshes - n_val - n_test],
            "val": meshes[num_meshes - n_val - n_test : num_meshes - n_test],
            "test": meshes[num_meshes - n_test :],
        }, len(PART_NAMES)
    if key == "folder" and root is None:
        raise DataNotFoundError("--dataset folder needs --root DIR (the folder with meshes/ and labels/).")
    base = resolve_root(key, root) if key != "folder" else Path(root)  # type: ignore[arg-type]
    if not base.is_dir():
        raise DataNotFoundError(f"Mesh folder {str(base)!r} does not exist.")
    nested = base / _MESH_FOLDERS.get(key, "")
    folder = nested if key in _MESH_FOLDERS and nested.is_dir() else base
    kwargs = {"features": features, "limit": limit, "eigenpairs": eigenpairs}
    if key in ("rna", "human"):
        cls = RNASegmentation if key == "rna" else HumanSegmentation
        train, test = list(cls(folder, "train", **kwargs)), list(cls(folder, "test", **kwargs))
        num_classes = cls.fixed_num_classes
    elif (folder / "train.txt").is_file() and (folder / "test.txt").is_file():
        train_set = MeshFolder(folder, "train", **kwargs)
        train, test = list(train_set), list(MeshFolder(folder, "test", **kwargs))
        num_classes = max(train_set.num_classes, int(max(int(d.y.max()) for d in test)) + 1)
    else:
        every = MeshFolder(folder, "all", **kwargs)
        items = list(every)
        n_test = max(1, round(0.15 * len(items)))
        train, test = items[:-n_test], items[-n_test:]
        num_classes = every.num_classes
    train, val = _split_off(train, 10 if len(train) >= 10 else 2)
    if not train or not val or not test:
        raise ValueError(f"Mesh dataset {name!r} at {str(folder)!r} has too few meshes for train/val/test.")
    return {"train": train, "val": val, "test": test}, int(num_classes)
