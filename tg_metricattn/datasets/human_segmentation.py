"""The human body segmentation benchmark of Maron et al. 2017.

Maron et al., "Convolutional neural networks on surfaces via seamless toric covers", SIGGRAPH 2017.
"""

from __future__ import annotations

from pathlib import Path

from tg_metricattn.datasets.mesh_dataset import MeshItem, MeshSegmentationDataset
from tg_metricattn.datasets.mesh_io import MESH_SUFFIXES

__all__ = ["HumanSegmentation"]

MIT_POSES = ("bouncing", "handstand", "march1", "squat1", "crane", "jumping", "march2", "squat2")
SHREC_IDS = tuple(i for i in range(1, 21) if i not in (16, 18))


def _meshes(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{str(folder)!r} does not exist; is root the Maron et al. 2017 dataset folder?")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in MESH_SUFFIXES)


class HumanSegmentation(MeshSegmentationDataset):
    """Human bodies in 8 parts, labelled per face (1-based in the files), in the published layout.

    ``root`` holds ``meshes/`` and ``segs/``::

        train: meshes/train/adobe/*.off                     segs/train/adobe/<same name>.txt
               meshes/train/faust/*.off                     segs/train/faust/faust_corrected.txt (shared)
               meshes/train/MIT_animation/meshes_<pose>/meshes/*.off
                                                            segs/train/mit/mit_<pose>_corrected.txt (shared)
               meshes/train/scape/*.off                     segs/train/scape/scape_corrected.txt (shared)
               with <pose> in bouncing, handstand, march1, squat1, crane, jumping, march2, squat2
        test:  meshes/test/shrec/<i>.off, i in 1..20 except 16 and 18 (12 is 12_fix_orientation.off)
                                                            segs/test/shrec/shrec_<i>_full.txt

    Labels: ``face_y = file label - 1`` in 0..7 is kept per face; the vertex label ``y`` is
    the label of the majority of its incident faces (ties: the smallest label; a vertex in
    no face gets ``-100``, ignored by ``cross_entropy``). Report accuracy per vertex with
    ``y`` or per face with ``face_y``. The data is not downloaded by this class.
    """

    fixed_num_classes = 8
    splits = ("train", "test")

    def mesh_items(self) -> list[MeshItem]:
        root = Path(self.root)
        meshes, segs = root / "meshes", root / "segs"
        items: list[MeshItem] = []

        def add(prefix: str, mesh: Path, label: Path) -> None:
            items.append(MeshItem(f"{prefix}/{mesh.stem}", mesh, label, "face", -1))

        if self.split == "train":
            for mesh in _meshes(meshes / "train" / "adobe"):
                add("adobe", mesh, segs / "train" / "adobe" / f"{mesh.stem}.txt")
            for mesh in _meshes(meshes / "train" / "faust"):
                add("faust", mesh, segs / "train" / "faust" / "faust_corrected.txt")
            for pose in MIT_POSES:
                for mesh in _meshes(meshes / "train" / "MIT_animation" / f"meshes_{pose}" / "meshes"):
                    add(f"mit_{pose}", mesh, segs / "train" / "mit" / f"mit_{pose}_corrected.txt")
            for mesh in _meshes(meshes / "train" / "scape"):
                add("scape", mesh, segs / "train" / "scape" / "scape_corrected.txt")
        else:
            for i in SHREC_IDS:
                name = "12_fix_orientation.off" if i == 12 else f"{i}.off"
                add("shrec", meshes / "test" / "shrec" / name, segs / "test" / "shrec" / f"shrec_{i}_full.txt")
        missing = [str(p) for item in items for p in (item.mesh_path, item.label_path) if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"HumanSegmentation({self.split!r}): {len(missing)} "
                "file(s) of the Maron et al. layout are missing, "
                f"first {missing[0]!r}."
            )
        return items
