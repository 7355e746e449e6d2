"""Any folder of meshes with one label file per mesh."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from torch_geometric.data import Data

from tg_metricattn.datasets.mesh_dataset import MeshItem, MeshSegmentationDataset
from tg_metricattn.datasets.mesh_io import MESH_SUFFIXES, MeshFormatError
from tg_metricattn.datasets.mesh_sample import DEFAULT_EIGENPAIRS

__all__ = ["MeshFolder"]


class MeshFolder(MeshSegmentationDataset):
    """Meshes ``<root>/<mesh_dir>/<name>.{off,obj,ply}`` with labels ``<root>/<label_dir>/<name>.txt``.

    Label files hold one integer per line, per vertex (in the file's vertex order, which
    is kept) or per face (then ``face_y`` is kept and ``y`` is the majority label of the
    incident faces, ``-100`` for a vertex in no face).

    Args:
        root: the folder; ``processed/`` is written there.
        mesh_dir, label_dir: sub-folders of meshes and labels (``'.'`` for root itself).
        label_on: ``'vertex'``, ``'face'`` or ``'auto'`` (by the label count; an error when
            a mesh has as many vertices as faces).
        label_offset: added to every label (``-1`` for 1-based files).
        split: a name; with ``split_file`` (default ``<root>/<split>.txt`` when it
            exists) only the meshes it lists (one name per line, suffix optional) are used,
            otherwise all meshes.
        num_classes: the number of classes; inferred from the labels when ``None``.
        other arguments: see :class:`~tg_metricattn.datasets.mesh_dataset.MeshSegmentationDataset`.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "all",
        *,
        mesh_dir: str = "meshes",
        label_dir: str = "labels",
        label_on: str = "auto",
        label_offset: int = 0,
        split_file: str | os.PathLike | None = None,
        num_classes: int | None = None,
        features: Sequence[str] = ("xyz", "hks"),
        hks_eigenpairs: int = 32,
        hks_times: int = 16,
        limit: int | None = None,
        transform: Callable[[Data], Data] | None = None,
        pre_transform: Callable[[Data], Data] | None = None,
        force_reload: bool = False,
        eigenpairs: int = DEFAULT_EIGENPAIRS,
    ) -> None:
        if label_on not in ("vertex", "face", "auto"):
            raise ValueError(f"label_on must be 'vertex', 'face' or 'auto', got {label_on!r}.")
        if num_classes is not None and num_classes < 1:
            raise ValueError(f"num_classes must be None or >= 1, got {num_classes}.")
        self.mesh_dir, self.label_dir, self.label_on = mesh_dir, label_dir, label_on
        self.label_offset, self.split_file = int(label_offset), split_file
        self.fixed_num_classes = num_classes
        self.splits = (split,)
        super().__init__(
            root,
            split,
            features,
            hks_eigenpairs,
            hks_times,
            limit,
            transform,
            pre_transform,
            force_reload=force_reload,
            eigenpairs=eigenpairs,
        )

    @property
    def processed_file_names(self) -> str:
        base = super().processed_file_names
        return f"{self.mesh_dir.strip('./') or 'root'}_{self.label_on}{self.label_offset:+d}_{base}"

    def mesh_items(self) -> list[MeshItem]:
        root = Path(self.root)
        mesh_dir, label_dir = root / self.mesh_dir, root / self.label_dir
        if not mesh_dir.is_dir():
            raise FileNotFoundError(f"Mesh folder {str(mesh_dir)!r} does not exist; set mesh_dir.")
        meshes: dict[str, Path] = {}
        for path in sorted(mesh_dir.iterdir()):
            if path.suffix.lower() not in MESH_SUFFIXES:
                continue
            if path.stem in meshes:  # one label file per name: two meshes cannot share it
                raise MeshFormatError(
                    f"{meshes[path.stem]} and {path} have the same name {path.stem!r}; rename one "
                    "(each mesh's labels are found by its name)."
                )
            meshes[path.stem] = path
        split_file = Path(self.split_file) if self.split_file is not None else root / f"{self.split}.txt"
        if self.split_file is not None or split_file.is_file():
            names = [Path(s.strip()).stem for s in split_file.read_text().splitlines() if s.strip()]
            unknown = [n for n in names if n not in meshes]
            if unknown:
                raise FileNotFoundError(f"{split_file} lists {unknown[0]!r}, which is not a mesh in {str(mesh_dir)!r}.")
        else:
            names = list(meshes)
        items = []
        for name in names:
            label = label_dir / f"{name}.txt"
            if not label.is_file():
                raise FileNotFoundError(f"Mesh {str(meshes[name])!r} has no label file {str(label)!r}.")
            items.append(MeshItem(name, meshes[name], label, self.label_on, self.label_offset))
        return items
