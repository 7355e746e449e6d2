import shutil
import warnings

import numpy as np
import pytest
import torch

from tests.dataset_fixtures import copy_shared, icosphere, missing_data, write_labels, write_maron, write_off
from tg_metricattn.datasets import (
    HumanSegmentation,
    MeshFolder,
    MeshFormatError,
    RNASegmentation,
    get_data_root,
)

RNA = "rna_surface_segmentation"


def _rna_subset(tmp_path, names):
    base = get_data_root()
    if base is None or not (base / RNA).is_dir():
        missing_data("TGMA_DATA/rna_surface_segmentation is absent: real-data test skipped")
    root = tmp_path / "rna"
    for sub in ("off", "labels"):
        (root / sub).mkdir(parents=True)
    for name in names:
        shutil.copyfile(base / RNA / "off" / f"{name}.off", root / "off" / f"{name}.off")
        shutil.copyfile(base / RNA / "labels" / f"{name}.txt", root / "labels" / f"{name}.txt")
    (root / "train.txt").write_text("\n".join(f"{n}.off" for n in names) + "\n")
    return root, base / RNA


def test_rna_two_real_meshes_and_cache(tmp_path, monkeypatch):
    root, source = _rna_subset(tmp_path, ["5JUO_D", "5T62_B"])
    dataset = RNASegmentation(root, "train", hks_eigenpairs=16, hks_times=8)
    assert len(dataset) == 2 and dataset.num_classes == 260
    first = dataset[0]
    assert first.name == "5JUO_D"
    assert first.pos.shape == (15073, 3) and first.face.shape == (3, 30142)
    assert first.x.shape == (15073, 3 + 8) and torch.isfinite(first.x).all()
    assert int(first.y.unique().numel()) == 121
    for data in dataset:
        raw = np.loadtxt(source / "labels" / f"{data.name}.txt", dtype=np.int64)
        assert data.y.shape[0] == raw.shape[0] == data.num_nodes
        assert torch.equal(data.y, torch.as_tensor(raw + 1))
        assert int(data.y.min()) >= 0 and int(data.y.max()) <= 259
        assert data.edge_index.max() < data.num_nodes
        # the Laplace-Beltrami operator of the unit-scaled mesh, 128 eigenpairs, stored once
        assert data.mass.shape == (data.num_nodes,) and data.evals.shape == (128,)
        assert data.evecs.shape == (data.num_nodes, 128) and data.evecs.dtype == torch.float32
        gram = data.evecs.double().T @ (data.mass.double()[:, None] * data.evecs.double())
        assert torch.allclose(gram, torch.eye(128, dtype=torch.float64), atol=1e-3)
        assert 1 <= int((data.evals < 1e-4).sum()) <= 10 and data.evals[-1] > 100  # components; unit scale

    def no_processing(self):
        raise AssertionError("process() called although the processed file exists")

    monkeypatch.setattr(RNASegmentation, "process", no_processing)
    with warnings.catch_warnings():  # the processed file loads with weights_only=True, no pickle fallback
        warnings.filterwarnings("error", message=".*[Ww]eights only load failed.*")
        cached = RNASegmentation(root, "train", hks_eigenpairs=16, hks_times=8)
    assert torch.equal(cached[1].x, dataset[1].x) and torch.equal(cached[1].evecs, dataset[1].evecs)


def test_a_mesh_without_a_spectrum_is_named_and_nothing_is_cached(tmp_path, monkeypatch):
    import tg_metricattn.geometry.eigenpairs as eigenpairs

    v, f = icosphere(1)
    write_off(tmp_path / "meshes" / "ball.off", v, f)
    write_labels(tmp_path / "labels" / "ball.txt", np.zeros(len(v), dtype=np.int64))

    def fails(*args, **kwargs):
        raise eigenpairs.EigenSolveError("the eigen-solve failed (ArpackNoConvergence: no convergence).")

    monkeypatch.setattr(eigenpairs, "generalized_eigenpairs", fails)
    with pytest.raises(MeshFormatError, match=r"ball\.off: no Laplace.Beltrami spectrum: the eigen-solve failed"):
        MeshFolder(tmp_path, features=("xyz",), eigenpairs=8)
    assert not list((tmp_path / "processed").glob("*.pt"))  # nothing cached from the failed mesh
    monkeypatch.undo()
    assert MeshFolder(tmp_path, features=("xyz",), eigenpairs=8)[0].evecs.shape == (len(v), 8)


def test_rna_full_copy_limit(tmp_path):
    root = copy_shared(RNA, tmp_path)
    dataset = RNASegmentation(root, "test", features=("xyz",), limit=2)
    assert len(dataset) == 2 and dataset[0].x.shape[1] == 3
    assert (root / "processed").is_dir()


def test_rna_wrong_label_count(tmp_path):
    root, _ = _rna_subset(tmp_path, ["5JUO_D"])
    labels = (root / "labels" / "5JUO_D.txt").read_text().splitlines()
    (root / "labels" / "5JUO_D.txt").write_text("\n".join(labels[:-1]) + "\n")
    with pytest.raises(MeshFormatError, match=r"5JUO_D.txt: holds 15072 vertex labels, but its mesh needs 15073"):
        RNASegmentation(root, "train", features=("xyz",))


def test_human_segmentation_maron_layout(tmp_path):
    counts = write_maron(tmp_path)
    train = HumanSegmentation(tmp_path, "train", hks_eigenpairs=8, hks_times=4)
    test = HumanSegmentation(tmp_path, "test", features=("xyz",))
    assert len(train) == counts["train"] == 12 and len(test) == counts["test"] == 18
    assert train.num_classes == 8
    names = [d.name for d in train]
    assert "faust/tr_reg_001" in names and "mit_squat2/mesh_0000" in names and names[0] == "adobe/man_a"
    data = test[0]
    assert data.face_y.shape == (80,) and data.face_y.min() == 0 and data.face_y.max() == 7
    assert data.y.shape == (42,) and set(data.y.unique().tolist()) <= set(range(8))
    # majority rule: a vertex whose incident faces all share a label gets that label
    for vertex in range(42):
        incident = data.face_y[(data.face == vertex).any(0)]
        if (incident == incident[0]).all():
            assert data.y[vertex] == incident[0]
    assert "12_fix_orientation" in {d.name.split("/")[1] for d in test}


def test_human_segmentation_missing_file(tmp_path):
    write_maron(tmp_path)
    (tmp_path / "segs" / "test" / "shrec" / "shrec_7_full.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"shrec_7_full\.txt"):
        HumanSegmentation(tmp_path, "test", features=("xyz",))
    with pytest.raises(ValueError, match="split must be one of"):
        HumanSegmentation(tmp_path, "val")


def test_mesh_folder_vertex_face_and_errors(tmp_path):
    v, f = icosphere(1)
    write_off(tmp_path / "meshes" / "a.off", v, f)
    write_labels(tmp_path / "labels" / "a.txt", (v[:, 2] > 0).astype(int))  # per vertex
    import trimesh

    trimesh.Trimesh(v, f, process=False).export(tmp_path / "meshes" / "b.ply")
    write_labels(tmp_path / "labels" / "b.txt", (v[f].mean(1)[:, 0] > 0).astype(int) + 1)  # per face, 1-based
    dataset = MeshFolder(tmp_path, label_offset=0, features=("xyz",), num_classes=3)
    a, b = dataset[0], dataset[1]
    assert (
        a.name == "a"
        and bool((a.face_y == -100).all())
        and torch.equal(a.y, torch.as_tensor((v[:, 2] > 0).astype(int)))
    )
    assert b.face_y.shape == (80,) and set(b.y.tolist()) == {1, 2}
    assert torch.allclose(b.pos, a.pos, atol=1e-5)  # ply vertex order kept

    write_labels(tmp_path / "labels" / "a.txt", np.zeros(41, dtype=int))
    with pytest.raises(MeshFormatError, match=r"holds 41 labels, but its mesh .* has 42 vertices and 80 triangles"):
        MeshFolder(tmp_path, features=("xyz",), force_reload=True)
    write_labels(tmp_path / "labels" / "a.txt", np.zeros(42, dtype=int))
    with pytest.raises(MeshFormatError, match=r"holds 42 face labels"):
        MeshFolder(tmp_path, label_on="face", features=("xyz",))
    with pytest.raises(ValueError, match="label_on must be"):
        MeshFolder(tmp_path, label_on="edge")


def test_mesh_folder_truncated_off_is_reported(tmp_path):
    v, f = icosphere(1)
    write_off(tmp_path / "meshes" / "c.off", v, f)
    write_labels(tmp_path / "labels" / "c.txt", np.zeros(42, dtype=int))
    text = (tmp_path / "meshes" / "c.off").read_text().splitlines()
    (tmp_path / "meshes" / "c.off").write_text("\n".join(text[:50]) + "\n")
    with pytest.raises(MeshFormatError, match=r"c.off: the file ends after 6 of the 80 faces"):
        MeshFolder(tmp_path, features=("xyz",))


def test_unreferenced_vertices_do_not_move_the_unit_scaling(tmp_path):
    """Two stray vertices (in no triangle) at (9, 9, 9): the same spectrum and xyz as the mesh without them.

    They stay in the sample (labels are per vertex of the file, as RNA's are), each with its own label.
    """
    v, f = icosphere(2)
    labels = (v[:, 2] > 0).astype(int)
    write_off(tmp_path / "meshes" / "clean.off", v, f)
    write_labels(tmp_path / "labels" / "clean.txt", labels)
    at = 100  # the strays go in the middle of the vertex order: the faces after them are renumbered
    stray_v = np.concatenate([v[:at], [[9.0, 9.0, 9.0], [9.0, 9.0, 9.0]], v[at:]])
    stray_f = np.where(f >= at, f + 2, f)
    write_off(tmp_path / "meshes" / "stray.off", stray_v, stray_f)
    write_labels(tmp_path / "labels" / "stray.txt", np.concatenate([labels[:at], [2, 2], labels[at:]]))
    clean, stray = MeshFolder(tmp_path, label_on="vertex", features=("xyz", "hks"), hks_times=4, eigenpairs=16)
    if clean.name != "clean":
        clean, stray = stray, clean
    kept = torch.as_tensor(np.r_[0:at, at + 2 : len(stray_v)])
    assert stray.num_nodes == len(v) + 2 and torch.equal(stray.y[[at, at + 1]], torch.tensor([2, 2]))
    assert torch.equal(stray.y[kept], clean.y)
    assert abs(float(clean.evals[3]) - float(stray.evals[3])) < 1e-3 * float(clean.evals[3])
    assert torch.allclose(stray.evals, clean.evals, rtol=1e-4, atol=1e-5)
    assert torch.allclose(stray.x[kept], clean.x, atol=1e-5)  # xyz and hks of every referenced vertex
    assert torch.allclose(stray.mass[kept], clean.mass, rtol=1e-5, atol=1e-9)
    assert torch.isfinite(stray.x).all()
