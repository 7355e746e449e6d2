"""Shared machinery of the mesh segmentation datasets: list the meshes, read, featurise, cache.

A subclass lists its samples (:meth:`MeshSegmentationDataset.mesh_items`); processing
reads every mesh and label file, computes the features and saves the collated samples in
``<root>/processed/<file>.pt``, whose name records the split and the feature settings.
Later constructions with the same settings load that file and do not process again
(``force_reload=True`` processes anew). Data is read from where it is (``root``); there
is nothing to download. When some meshes are labelled per face and others per vertex,
the vertex-labelled ones get ``face_y`` filled with ``-100`` so that all samples share keys.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Data, InMemoryDataset

from tg_metricattn.datasets.mesh_features import FEATURE_NAMES
from tg_metricattn.datasets.mesh_io import MeshFormatError, read_labels, read_mesh
from tg_metricattn.datasets.mesh_sample import DEFAULT_EIGENPAIRS, IGNORE_INDEX, face_to_vertex_labels, mesh_to_data
from tg_metricattn.datasets.safe_load import open_dataset_safely
from tg_metricattn.geometry import EigenSolveError

__all__ = ["MAX_INFERRED_CLASSES", "MeshItem", "MeshSegmentationDataset"]

#: labels of a dataset whose class count is inferred from them must lie below this (the
#: class count sizes the model's output layer: a label of 10^9 must not allocate it)
MAX_INFERRED_CLASSES = 2**16


@dataclass(frozen=True)
class MeshItem:
    """One sample to read: its name, mesh file, label file and how labels are given.

    ``label_on`` is ``'vertex'``, ``'face'`` or ``'auto'`` (decided by the label count);
    ``label_offset`` is added to every label read (``-1`` for 1-based files, ``+1`` for RNA).
    """

    name: str
    mesh_path: Path
    label_path: Path
    label_on: str = "vertex"
    label_offset: int = 0


class MeshSegmentationDataset(InMemoryDataset):
    """Base class: a list of meshes with per-vertex (or per-face) segmentation labels.

    Args:
        root: the dataset folder (data is read there; ``processed/`` is written there).
        split: the split name the subclass understands.
        features: input features, a non-empty subset of ``('xyz', 'hks')`` in the order
            wanted in ``x``.
        hks_eigenpairs: number ``k`` of Laplace–Beltrami eigenpairs for ``hks``.
        hks_times: number of diffusion times for ``hks``.
        eigenpairs: Laplace–Beltrami eigenpairs ``k`` stored per mesh as ``mass``, ``evals``,
            ``evecs`` (see :mod:`~tg_metricattn.datasets.mesh_sample`); default 128.
        limit: process only the first ``limit`` meshes of the split (quick runs, tests).
        transform, pre_transform, pre_filter, force_reload: as in PyG's ``InMemoryDataset``.
    """

    #: set by subclasses with a fixed label set; otherwise inferred from the labels
    fixed_num_classes: int | None = None

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        features: Sequence[str] = ("xyz", "hks"),
        hks_eigenpairs: int = 32,
        hks_times: int = 16,
        limit: int | None = None,
        transform: Callable[[Data], Data] | None = None,
        pre_transform: Callable[[Data], Data] | None = None,
        pre_filter: Callable[[Data], bool] | None = None,
        force_reload: bool = False,
        eigenpairs: int = DEFAULT_EIGENPAIRS,
    ) -> None:
        features = tuple(features)
        if not features or any(f not in FEATURE_NAMES for f in features):
            raise ValueError(f"features must be a non-empty subset of {FEATURE_NAMES}, got {features!r}.")
        if hks_eigenpairs < 1 or hks_times < 1:
            raise ValueError(f"hks_eigenpairs and hks_times must be >= 1, got {hks_eigenpairs} and {hks_times}.")
        if eigenpairs < 1:
            raise ValueError(f"eigenpairs must be >= 1, got {eigenpairs}.")
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be None or >= 1, got {limit}.")
        if not Path(root).is_dir():
            raise FileNotFoundError(f"Mesh dataset folder {str(root)!r} does not exist.")
        self.split = split
        self.features = features
        self.hks_eigenpairs = int(hks_eigenpairs)
        self.hks_times = int(hks_times)
        self.eigenpairs = int(eigenpairs)
        self.limit = limit
        self._check_split(split)

        def construct() -> None:
            InMemoryDataset.__init__(self, str(root), transform, pre_transform, pre_filter, force_reload=force_reload)
            self.load(self.processed_paths[0])

        open_dataset_safely(construct, root)  # nothing unpickled; a refused processed file is rebuilt

    # -- to be provided by subclasses -------------------------------------------------
    splits: tuple[str, ...] = ("train", "test")

    def mesh_items(self) -> list[MeshItem]:
        raise NotImplementedError

    # -- PyG plumbing ----------------------------------------------------------------
    def _check_split(self, split: str) -> None:
        if split not in self.splits:
            raise ValueError(f"split must be one of {self.splits}, got {split!r}.")

    @property
    def raw_dir(self) -> str:
        return self.root

    @property
    def raw_file_names(self) -> list[str]:
        return []

    @property
    def processed_file_names(self) -> str:
        limit = "all" if self.limit is None else str(self.limit)
        hks = f"k{self.hks_eigenpairs}_t{self.hks_times}"
        tags = "gu"  # g: grad_weight; u: unit scale of the referenced vertices (older files are rebuilt)
        return f"{self.split}_{'-'.join(self.features)}_{hks}_e{self.eigenpairs}_{tags}_{limit}.pt"

    @property
    def num_classes(self) -> int:
        if self.fixed_num_classes is not None:
            return self.fixed_num_classes
        return super().num_classes

    @property
    def feature_names(self) -> list[str]:
        """Name of every column of ``x`` (``x``, ``y``, ``z``, ``hks_0`` ...)."""
        names: list[str] = []
        for f in self.features:
            names += ["x", "y", "z"] if f == "xyz" else [f"hks_{i}" for i in range(self.hks_times)]
        return names

    def process(self) -> None:
        items = self.mesh_items()
        if self.limit is not None:
            items = items[: self.limit]
        if not items:
            raise FileNotFoundError(f"No meshes found for split {self.split!r} in {self.root!r}.")
        data_list = []
        for item in items:
            data = self.read_item(item)
            if self.pre_filter is not None and not self.pre_filter(data):
                continue
            if self.pre_transform is not None:
                data = self.pre_transform(data)
            data_list.append(data)
        if any("face_y" in d for d in data_list):  # mixed per-vertex / per-face files: keep keys uniform
            for d in data_list:
                if "face_y" not in d:
                    d.face_y = torch.full((d.face.size(1),), IGNORE_INDEX, dtype=torch.long)
        self.save(data_list, self.processed_paths[0])

    def read_item(self, item: MeshItem) -> Data:
        """Read one mesh and its labels into a ``Data`` sample."""
        vertices, faces = read_mesh(item.mesh_path)
        num_v, num_f = vertices.shape[0], faces.shape[0]
        label_on = item.label_on
        if label_on == "auto":
            labels = read_labels(item.label_path)
            if num_v == num_f and labels.shape[0] == num_v:
                raise MeshFormatError(
                    f"{item.label_path}: {num_v} labels fit both the "
                    f"vertices and the faces of {item.mesh_path}; "
                    "pass label_on='vertex' or label_on='face'."
                )
            if labels.shape[0] == num_v:
                label_on = "vertex"
            elif labels.shape[0] == num_f:
                label_on = "face"
            else:
                raise MeshFormatError(
                    f"{item.label_path}: holds {labels.shape[0]} labels, but its mesh {item.mesh_path} has "
                    f"{num_v} vertices and {num_f} triangles; expected one label per vertex or per face."
                )
        else:
            expected = num_v if label_on == "vertex" else num_f
            what = "vertex labels" if label_on == "vertex" else "face labels (one per triangle)"
            labels = read_labels(item.label_path, expected=expected, what=what)
        labels = labels + item.label_offset
        self._check_label_range(labels, item)
        face_y = None
        if label_on == "face":
            face_y = labels
            y = face_to_vertex_labels(faces, face_y, num_v)
        else:
            y = labels
        try:
            return mesh_to_data(
                vertices,
                faces,
                np.asarray(y),
                face_y=face_y,
                features=self.features,
                hks_eigenpairs=self.hks_eigenpairs,
                hks_times=self.hks_times,
                eigenpairs=self.eigenpairs,
                name=item.name,
            )
        except EigenSolveError as error:
            raise MeshFormatError(f"{item.mesh_path}: no Laplace–Beltrami spectrum: {error}") from error
        except ValueError as error:  # e.g. no triangle with three distinct vertices
            raise MeshFormatError(f"{item.mesh_path}: {error}") from error

    def _check_label_range(self, labels: np.ndarray, item: MeshItem) -> None:
        if labels.size == 0:
            return
        upper = self.fixed_num_classes if self.fixed_num_classes is not None else MAX_INFERRED_CLASSES
        if labels.min() < 0 or labels.max() >= upper:
            allowed = f"0..{upper - 1}"
            raise MeshFormatError(
                f"{item.label_path}: labels after adding {item.label_offset} range over "
                f"{labels.min()}..{labels.max()}, expected {allowed}."
            )

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({len(self)}, split={self.split!r}, features={self.features})"
