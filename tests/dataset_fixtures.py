"""Helpers shared by the dataset tests: real data from $TGMA_DATA, and small fixtures in known formats."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tg_metricattn.datasets import copy_dataset, get_data_root


def missing_data(reason: str) -> None:
    """Skip a real-data test whose data is absent; under ``CI=true`` (``.ci/run``) fail it instead."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: real data must be present)")
    pytest.skip(reason)


def copy_shared(relpath: str, dst_root: Path) -> Path:
    """Copy ``$TGMA_DATA/<relpath>`` into ``dst_root`` (same relative path), or skip the test."""
    base = get_data_root()
    if base is None:
        missing_data("TGMA_DATA is not set to an existing folder: real-data test skipped")
    if not (base / relpath).is_dir():
        missing_data(f"{base / relpath} is absent: real-data test skipped")
    return copy_dataset(relpath, dst_root, data_root=base)


def write_off(path: Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["OFF", f"{len(vertices)} {len(faces)} 0"]
    lines += [" ".join(f"{c:.6f}" for c in v) for v in vertices]
    lines += ["3 " + " ".join(str(int(i)) for i in f) for f in faces]
    path.write_text("\n".join(lines) + "\n")


def write_labels(path: Path, labels) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(str(int(v)) for v in labels) + "\n")


def icosphere(subdivisions: int = 1) -> tuple[np.ndarray, np.ndarray]:
    import trimesh

    mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=1.0)
    return np.asarray(mesh.vertices), np.asarray(mesh.faces)


def _gz(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, header=False, index=False, compression="gzip")


def write_ogbn_arxiv(root: Path, num_nodes: int = 30, num_edges: int = 60, seed: int = 0) -> dict:
    """A tiny graph in OGB's raw ogbn-arxiv format under ``<root>/ogb/ogbn_arxiv``."""
    rng = np.random.default_rng(seed)
    folder = root / "ogb" / "ogbn_arxiv"
    src = rng.integers(0, num_nodes, num_edges)
    dst = (src + rng.integers(1, num_nodes, num_edges)) % num_nodes  # no self loops
    edges = np.stack([src, dst], 1)
    feat = rng.normal(size=(num_nodes, 8)).round(4) + 0.5  # floats
    labels = rng.integers(0, 40, num_nodes)
    _gz(folder / "raw" / "edge.csv.gz", edges)
    _gz(folder / "raw" / "node-feat.csv.gz", feat)
    _gz(folder / "raw" / "node-label.csv.gz", labels[:, None])
    _gz(folder / "raw" / "node_year.csv.gz", rng.integers(2000, 2020, num_nodes)[:, None])
    _gz(folder / "raw" / "num-node-list.csv.gz", [[num_nodes]])
    _gz(folder / "raw" / "num-edge-list.csv.gz", [[num_edges]])
    perm = rng.permutation(num_nodes)
    split = {"train": perm[:18], "valid": perm[18:24], "test": perm[24:]}
    for key, idx in split.items():
        _gz(folder / "split" / "time" / f"{key}.csv.gz", idx[:, None])
    (folder / "RELEASE_v1.txt").write_text("fixture\n")
    return {"edges": edges, "labels": labels, "split": split, "num_nodes": num_nodes}


def write_maron(root: Path) -> dict[str, int]:
    """The Maron et al. 2017 layout with tiny icospheres; face labels 1..8 by octant."""
    from tg_metricattn.datasets.human_segmentation import MIT_POSES, SHREC_IDS

    vertices, faces = icosphere(1)  # 42 vertices, 80 faces
    centres = vertices[faces].mean(1)
    face_labels = 1 + (centres[:, 0] > 0) + 2 * (centres[:, 1] > 0) + 4 * (centres[:, 2] > 0)
    meshes, segs = root / "meshes", root / "segs"
    write_off(meshes / "train" / "adobe" / "man_a.off", vertices, faces)
    write_labels(segs / "train" / "adobe" / "man_a.txt", face_labels)
    for name in ("tr_reg_000", "tr_reg_001"):
        write_off(meshes / "train" / "faust" / f"{name}.off", vertices, faces)
    write_labels(segs / "train" / "faust" / "faust_corrected.txt", face_labels)
    for pose in MIT_POSES:
        write_off(
            meshes / "train" / "MIT_animation" / f"meshes_{pose}" / "meshes" / "mesh_0000.off",
            vertices,
            faces,
        )
        write_labels(segs / "train" / "mit" / f"mit_{pose}_corrected.txt", face_labels)
    write_off(meshes / "train" / "scape" / "mesh000.off", vertices, faces)
    write_labels(segs / "train" / "scape" / "scape_corrected.txt", face_labels)
    for i in SHREC_IDS:
        name = "12_fix_orientation.off" if i == 12 else f"{i}.off"
        write_off(meshes / "test" / "shrec" / name, vertices, faces)
        write_labels(segs / "test" / "shrec" / f"shrec_{i}_full.txt", face_labels)
    return {"train": 1 + 2 + len(MIT_POSES) + 1, "test": len(SHREC_IDS), "vertices": 42, "faces": 80}


def write_platonov_npz(root: Path, stem="chameleon_filtered", num_nodes=12, num_splits=10, **override):
    """Platonov et al.'s .npz layout under ``root/Heterophilous/<stem>/raw``: 12 nodes, 3 classes, 10 splits."""
    rng = np.random.default_rng(0)
    masks = np.zeros((3, num_splits, num_nodes), dtype=bool)
    for s in range(num_splits):
        order = rng.permutation(num_nodes)
        for part, idx in enumerate(np.array_split(order, 3)):
            masks[part, s, idx] = True
    arrays = {
        "node_features": rng.standard_normal((num_nodes, 5)).astype(np.float32),
        "node_labels": np.arange(num_nodes) % 3,
        "edges": np.array([[0, 1], [1, 2], [2, 3], [5, 4]]),
        "train_masks": masks[0],
        "val_masks": masks[1],
        "test_masks": masks[2],
        **override,
    }
    path = root / "Heterophilous" / stem / "raw" / f"{stem}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path, arrays
