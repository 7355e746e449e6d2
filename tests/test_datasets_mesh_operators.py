import numpy as np
import pytest
import torch

from tests.dataset_fixtures import icosphere
from tg_metricattn.datasets import (
    RandomRotation,
    cotangent_laplacian,
    face_to_vertex_labels,
    heat_kernel_signature,
    laplace_beltrami_eigenpairs,
    lumped_mass,
    mesh_features,
    mesh_to_data,
)

EXACT = np.concatenate([[n * (n + 1)] * (2 * n + 1) for n in range(5)])  # unit sphere, l = 0..4


@pytest.mark.parametrize(("subdivisions", "tol"), [(3, 0.03), (4, 0.008)])
def test_icosphere_spectrum_converges(subdivisions, tol):
    v, f = icosphere(subdivisions)
    L, M = cotangent_laplacian(v, f), lumped_mass(v, f)
    assert abs(L - L.T).max() < 1e-12
    assert np.abs(np.asarray(L.sum(axis=1))).max() < 1e-10
    assert M.diagonal().sum() == pytest.approx(4 * np.pi, rel=5e-3 * 4 ** (4 - subdivisions))
    evals, evecs = laplace_beltrami_eigenpairs(L, M, k=25)
    assert evals[0] == pytest.approx(0.0, abs=1e-8)
    rel = np.abs(evals - EXACT) / np.maximum(EXACT, 1)
    assert rel.max() < tol
    gram = evecs.T @ (M @ evecs)
    assert np.allclose(gram, np.eye(25), atol=1e-6)


def test_real_world_defects_are_tolerated():
    v, f = icosphere(2)
    v2 = np.concatenate([v, v + 3.0, [[10.0, 10.0, 10.0]]])  # two components + one unreferenced vertex
    f2 = np.concatenate([f, f + len(v), [[0, 0, 1], [0, 1, 1]]])  # plus two degenerate faces
    f2 = np.concatenate([f2, [[0, len(v), 2 * len(v)]]])  # a face through the unreferenced vertex...
    f2 = f2[:-1]  # ...removed again: vertex 2V stays unreferenced
    L, M = cotangent_laplacian(v2, f2), lumped_mass(v2, f2)
    assert np.isfinite(L.data).all() and M.diagonal()[-1] == 0
    evals, evecs = laplace_beltrami_eigenpairs(L, M, k=6)
    assert np.allclose(evals[:2], 0, atol=1e-8) and evals[2] > 1.0  # one zero eigenvalue per component
    assert np.all(evecs[-1] == 0)
    x = mesh_features(torch.as_tensor(v2), torch.as_tensor(f2).t(), ("hks",), 8, 4)
    assert torch.isfinite(x).all() and torch.all(x[-1] == 0)


def test_hks_formula_and_rotation_invariance():
    v, f = icosphere(2)
    evals = np.array([0.0, 2.0])
    evecs = np.array([[1.0, 2.0], [0.5, 0.0]])
    hks = heat_kernel_signature(evals, evecs, [0.0, 1.0])
    assert np.allclose(hks, [[5.0, 1 + 4 * np.exp(-2)], [0.25, 0.25]])
    # a non-symmetric shape: stretch the sphere
    v = v * np.array([1.0, 0.6, 0.3])
    data = mesh_to_data(v, f, np.zeros(len(v), dtype=np.int64), features=("xyz", "hks"), hks_eigenpairs=16, hks_times=4)
    rotated = RandomRotation(generator=torch.Generator().manual_seed(0))(data)
    assert torch.allclose(rotated.x[:, 3:], data.x[:, 3:])
    assert torch.allclose(rotated.x[:, :3].norm(dim=1), data.x[:, :3].norm(dim=1), atol=1e-5)
    assert not torch.allclose(rotated.pos, data.pos)
    again = mesh_features(torch.as_tensor(rotated.pos, dtype=torch.float64), data.face, ("hks",), 16, 4)
    assert torch.allclose(again, data.x[:, 3:], atol=1e-4, rtol=1e-3)


def test_mesh_data_format():
    v, f = icosphere(1)
    data = mesh_to_data(v, f, np.arange(len(v)) % 3, features=("xyz",))
    assert data.face.shape == (3, 80) and data.pos.shape == (42, 3)
    assert data.edge_index.size(1) == 2 * 120  # 120 edges of the icosahedron subdivided once, both directions
    assert data.x.norm(dim=1).max() == pytest.approx(1.0)
    assert data.x.mean(0).abs().max() < 1e-5


def test_face_to_vertex_majority():
    faces = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 1]])
    labels = face_to_vertex_labels(faces, np.array([5, 7, 7]), num_vertices=5)
    # vertex 0: 5,7,7 -> 7; vertex 1: 5,7 tie -> 5; vertex 3: 7,7 -> 7; vertex 4: no face -> -100
    assert labels.tolist() == [7, 5, 5, 7, -100]
