"""The RNA surface segmentation dataset (Poulenard et al. 2019; as used by DiffusionNet)."""

from __future__ import annotations

from pathlib import Path

from tg_metricattn.datasets.mesh_dataset import MeshItem, MeshSegmentationDataset
from tg_metricattn.datasets.mesh_io import MeshFormatError

__all__ = ["RNASegmentation"]


class RNASegmentation(MeshSegmentationDataset):
    """RNA molecular surfaces with one functional label per vertex.

    Layout of ``root`` (the dataset's published layout)::

        off/<ID>.off        triangle meshes (~15k vertices; unreferenced vertices and
                            several components occur and are kept)
        labels/<ID>.txt     one integer per line, per vertex in vertex order, in -1..258
        train.txt, test.txt one mesh file name per line

    Labels: ``y = label + 1``, so the original ``-1`` becomes class 0 and the classes are
    0..259: ``num_classes = 260`` (259 functional labels plus the "-1" class; the same
    choice as DiffusionNet). Accuracy is per vertex on the original meshes.

    Args: see :class:`~tg_metricattn.datasets.mesh_dataset.MeshSegmentationDataset`;
    ``split`` is ``'train'`` or ``'test'``. The data cannot be downloaded by this class
    (get it from github.com/nmwsharp/RNA-Surface-Segmentation-Dataset).
    """

    fixed_num_classes = 260
    splits = ("train", "test")

    def mesh_items(self) -> list[MeshItem]:
        root = Path(self.root)
        list_file = root / f"{self.split}.txt"
        if not list_file.is_file():
            raise FileNotFoundError(
                f"{str(list_file)!r} does not exist; root must be "
                "the RNA dataset folder holding off/, labels/, "
                "train.txt and test.txt."
            )
        items = []
        for number, line in enumerate(list_file.read_text().splitlines(), start=1):
            name = line.strip()
            if not name:
                continue
            stem = Path(name).stem
            if Path(name).suffix not in ("", ".off"):
                raise MeshFormatError(f"{list_file}: line {number}: expected an .off file name, found {name!r}.")
            items.append(MeshItem(stem, root / "off" / f"{stem}.off", root / "labels" / f"{stem}.txt", "vertex", 1))
        return items
