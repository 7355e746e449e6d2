import numpy as np
import pytest
import torch

from tg_metricattn.datasets import (
    PART_NAMES,
    SyntheticMeshSegmentation,
    contextual_sbm,
    copy_dataset,
    edge_homophily,
    make_figure,
)
from tg_metricattn.datasets.synthetic_meshes import capsule_mesh


def test_synthetic_meshes_deterministic_and_labelled():
    a = SyntheticMeshSegmentation(num_meshes=2, seed=3, hks_eigenpairs=12, hks_times=4)
    b = SyntheticMeshSegmentation(num_meshes=1, seed=3, hks_eigenpairs=12, hks_times=4)
    c = SyntheticMeshSegmentation(num_meshes=1, seed=4, features=("xyz",))
    assert a.num_classes == len(PART_NAMES) == 6
    assert torch.equal(a[0].pos, b[0].pos) and torch.equal(a[0].x, b[0].x)
    assert not torch.equal(a[0].pos[:100], c[0].pos[:100])
    data = a[0]
    assert 2000 < data.num_nodes < 6000 and data.x.shape == (data.num_nodes, 3 + 4)
    assert set(data.y.unique().tolist()) == set(range(6))
    assert data.face.shape[0] == 3 and data.edge_index.max() < data.num_nodes
    # every part is a closed capsule: the figure has as many components as parts (10)
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    adj = sp.coo_matrix((np.ones(data.edge_index.size(1)), data.edge_index.numpy()), shape=(data.num_nodes,) * 2)
    assert connected_components(adj)[0] == 10


def test_capsule_is_closed_surface():
    v, f = capsule_mesh(0.3, 1.0, rings=4, segments=12)
    edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert (counts == 2).all()  # every edge in exactly two triangles
    assert len(v) - len(edges) // 2 + len(f) == 2  # Euler characteristic of a sphere
    with pytest.raises(ValueError, match="rings must be"):
        capsule_mesh(0.3, 1.0, rings=1, segments=12)


def test_parts_are_where_they_belong():
    v, _, labels = make_figure(np.random.default_rng(0), 12)
    z = {part: v[labels == part, 2].mean() for part in range(6)}
    assert z[0] > z[1] > z[4] > z[5]  # head above torso above thighs above shins


@pytest.mark.parametrize("homophily", [0.1, 0.5, 0.9])
def test_csbm_homophily_and_split(homophily):
    data = contextual_sbm(num_nodes=600, num_classes=3, avg_degree=8, homophily=homophily, seed=1)
    assert edge_homophily(data.edge_index, data.y) == pytest.approx(homophily, abs=0.05)
    assert data.edge_index.size(1) == pytest.approx(600 * 8, rel=0.05)
    assert (data.edge_index[0] != data.edge_index[1]).all()
    assert int(data.train_mask.sum()) == 60 and int(data.val_mask.sum()) == 90
    assert int((data.train_mask | data.val_mask | data.test_mask).sum()) == 600
    again = contextual_sbm(num_nodes=600, num_classes=3, avg_degree=8, homophily=homophily, seed=1)
    assert torch.equal(again.x, data.x) and torch.equal(again.edge_index, data.edge_index)


def test_csbm_features_carry_signal():
    data = contextual_sbm(num_nodes=900, num_classes=3, num_features=8, feature_snr=3.0, seed=0)
    means = torch.stack([data.x[data.y == c].mean(0) for c in range(3)])
    assert torch.allclose(means.norm(dim=1), torch.full((3,), 3.0), atol=0.3)
    flat = contextual_sbm(num_nodes=900, num_classes=3, num_features=8, feature_snr=0.0, seed=0)
    assert flat.x[flat.y == 0].mean(0).norm() < 0.3
    with pytest.raises(ValueError, match="homophily"):
        contextual_sbm(homophily=1.5)


def test_copy_dataset_makes_a_writable_copy(tmp_path):
    src = tmp_path / "shared" / "Family" / "Name"
    (src / "raw").mkdir(parents=True)
    (src / "processed").mkdir()
    (src / "raw" / "a.txt").write_text("x")
    (src / "raw" / "a.txt").chmod(0o444)
    out = copy_dataset("Family/Name", tmp_path / "work", data_root=tmp_path / "shared")
    assert out == tmp_path / "work" / "Family" / "Name"
    assert (out / "raw" / "a.txt").read_text() == "x" and not (out / "processed").exists()
    (out / "raw" / "a.txt").write_text("y")  # writable
    with pytest.raises(FileNotFoundError, match="does not exist"):
        copy_dataset("Family/Other", tmp_path / "work", data_root=tmp_path / "shared")
