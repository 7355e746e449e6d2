"""Mesh geometry: one face layout, the robust Laplace–Beltrami operator and its eigenpairs."""

import warnings

import numpy as np
import pytest
import scipy.sparse.linalg
import torch

from tests.dataset_fixtures import icosphere
from tg_metricattn.datasets import (
    RandomRotation,
    face_to_vertex_labels,
    heat_kernel_signature,
    mesh_eigenpairs,
    mesh_features,
    mesh_to_data,
)
from tg_metricattn.geometry import EigenSolveError, face_rows, laplacian_and_mass

EXACT = np.concatenate([[n * (n + 1)] * (2 * n + 1) for n in range(5)])  # unit sphere, l = 0..4


@pytest.mark.parametrize(("subdivisions", "tol"), [(3, 0.03), (4, 0.008)])
def test_icosphere_spectrum_converges(subdivisions, tol):
    v, f = icosphere(subdivisions)
    L, m = laplacian_and_mass(v, f.T)
    assert abs(L - L.T).max() < 1e-12
    assert np.abs(np.asarray(L.sum(axis=1))).max() < 1e-10
    assert m.sum() == pytest.approx(4 * np.pi, rel=5e-3 * 4 ** (4 - subdivisions))
    mass, evals, evecs = mesh_eigenpairs(v, f.T, k=25)
    assert evals.dtype == evecs.dtype == mass.dtype == torch.float32
    assert evals[0] == pytest.approx(0.0, abs=1e-6)
    rel = np.abs(evals.double().numpy() - EXACT) / np.maximum(EXACT, 1)
    assert rel.max() < tol
    gram = evecs.double().T @ (mass.double()[:, None] * evecs.double())
    assert torch.allclose(gram, torch.eye(25, dtype=torch.float64), atol=1e-4)


def test_real_world_defects_are_tolerated():
    v, f = icosphere(2)
    v2 = np.concatenate([v, v + 3.0, [[10.0, 10.0, 10.0]]])  # two components + one unreferenced vertex
    f2 = np.concatenate([f, f + len(v), [[0, 0, 1], [0, 1, 1]]])  # plus two faces with a repeated vertex
    L, m = laplacian_and_mass(v2, f2.T)
    assert np.isfinite(L.data).all() and m[-1] == 0 and L[-1].nnz == 0
    assert np.abs(np.asarray(L.sum(axis=1))).max() < 1e-10
    mass, evals, evecs = mesh_eigenpairs(v2, f2.T, k=6)
    assert torch.allclose(evals[:2], torch.zeros(2), atol=1e-6) and evals[2] > 1.0  # one zero per component
    assert torch.all(evecs[-1] == 0) and mass[-1] == 0
    x = mesh_features(torch.as_tensor(v2), torch.as_tensor(f2).t(), ("hks",), 8, 4)
    assert torch.isfinite(x).all() and torch.all(x[-1] == 0)


def test_face_layout_is_pygs_and_never_guessed():
    # a fan of 3 triangles around vertex 0: as PyG's [3, F] with F = 3 it differs from its transpose
    pos = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [-1, 0.2, 0], [0.3, -1, 0]])
    fan = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 4]]).T  # [3, F]: columns are triangles
    assert face_rows(fan, 5).tolist() == [[0, 1, 2], [0, 2, 3], [0, 3, 4]]
    L_fan, _ = laplacian_and_mass(pos, fan)
    L_transposed, _ = laplacian_and_mass(pos, fan.T)
    assert abs(L_fan - L_transposed).max() > 0.1
    with pytest.raises(ValueError, match=r"\[3, F\].*pass face.T"):
        face_rows(np.zeros((5, 3), dtype=np.int64), 5)
    with pytest.raises(ValueError, match=r"indices must lie in 0\.\.4"):
        face_rows(np.array([[0], [1], [5]]), 5)
    with pytest.raises(ValueError, match="NaN or infinite"):
        laplacian_and_mass(np.full((5, 3), np.nan), fan)
    with pytest.raises(ValueError, match="no triangle"):
        laplacian_and_mass(pos, np.array([[0], [0], [1]]))


def test_more_eigenpairs_than_vertices_gives_fewer_with_a_warning():
    v, f = icosphere(0)  # 12 vertices
    with pytest.warns(UserWarning, match="asked for 20 eigenpairs of a mesh with 12"):
        _, evals, evecs = mesh_eigenpairs(v, f.T, k=20)
    assert evals.shape == (12,) and evecs.shape == (12, 12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = mesh_to_data(v, f, np.zeros(12, dtype=np.int64), features=("xyz",), eigenpairs=12)
    assert data.evecs.shape == (12, 12)
    with pytest.warns(UserWarning):
        padded = mesh_to_data(v, f, np.zeros(12, dtype=np.int64), features=("xyz",), eigenpairs=16)
    assert padded.evecs.shape == (12, 16) and torch.all(padded.evecs[:, 12:] == 0)
    assert torch.all(padded.evals[12:] == padded.evals[11])


def test_a_failed_eigen_solve_is_a_named_error(monkeypatch):
    v, f = icosphere(3)  # above the dense-solver size: goes through eigsh

    def no_convergence(*args, **kwargs):
        raise scipy.sparse.linalg.ArpackNoConvergence("no convergence", np.zeros(0), np.zeros((0, 0)))

    monkeypatch.setattr("tg_metricattn.geometry.eigenpairs.eigsh", no_convergence)
    with pytest.raises(EigenSolveError, match="eigen-solve failed"):
        mesh_eigenpairs(v, f.T, k=8)


def test_a_laplacian_singular_beyond_its_components_is_refused(monkeypatch):
    import tg_metricattn.geometry.eigenpairs as module

    v, f = icosphere(1)
    original = module.generalized_eigenpairs

    def two_zeros(*args, **kwargs):  # the spectrum of a connected mesh whose operator lost rank
        vals, vecs = original(*args, **kwargs)
        vals[1] = 0.0
        return vals, vecs

    assert mesh_eigenpairs(v, f.T, k=4)[1][1] > 1.0
    monkeypatch.setattr(module, "generalized_eigenpairs", two_zeros)
    with pytest.raises(EigenSolveError, match="2 zero eigenvalues but 1 connected components"):
        mesh_eigenpairs(v, f.T, k=4)


def test_hks_formula_and_rotation_invariance():
    v, f = icosphere(2)
    evals = np.array([0.0, 2.0])
    evecs = np.array([[1.0, 2.0], [0.5, 0.0]])
    hks = heat_kernel_signature(evals, evecs, [0.0, 1.0])
    assert np.allclose(hks, [[5.0, 1 + 4 * np.exp(-2)], [0.25, 0.25]])
    v = v * np.array([1.0, 0.6, 0.3])  # a non-symmetric shape: stretch the sphere
    data = mesh_to_data(v, f, np.zeros(len(v), dtype=np.int64), features=("xyz", "hks"), hks_eigenpairs=16, hks_times=4)
    rotated = RandomRotation(generator=torch.Generator().manual_seed(0))(data)
    assert torch.allclose(rotated.x[:, 3:], data.x[:, 3:])
    assert torch.allclose(rotated.x[:, :3].norm(dim=1), data.x[:, :3].norm(dim=1), atol=1e-5)
    assert not torch.allclose(rotated.pos, data.pos)
    again = mesh_features(torch.as_tensor(rotated.pos, dtype=torch.float64), data.face, ("hks",), 16, 4)
    assert torch.allclose(again, data.x[:, 3:], atol=1e-4, rtol=1e-3)


def test_mesh_data_carries_the_operator_of_the_unit_scaled_mesh():
    v, f = icosphere(2)
    data = mesh_to_data(5.0 * v + 2.0, f, np.arange(len(v)) % 3, features=("xyz",), eigenpairs=10)
    assert data.face.shape == (3, 320) and data.pos.shape == (162, 3)
    assert data.x.norm(dim=1).max() == pytest.approx(1.0)
    assert data.mass.shape == (162,) and data.evals.shape == (10,) and data.evecs.shape == (162, 10)
    # eigenvalues of the unit sphere (not of the radius-5 one): l(l+1) = 0, 2, 2, 2, 6 ...
    assert data.evals[1:4].numpy() == pytest.approx([2.0, 2.0, 2.0], rel=0.05)
    gram = data.evecs.T @ (data.mass[:, None] * data.evecs)
    assert torch.allclose(gram, torch.eye(10), atol=1e-4)


def test_mesh_data_format():
    v, f = icosphere(1)
    data = mesh_to_data(v, f, np.arange(len(v)) % 3, features=("xyz",), eigenpairs=8)
    assert data.face.shape == (3, 80) and data.pos.shape == (42, 3)
    assert data.edge_index.size(1) == 2 * 120  # 120 edges of the icosahedron subdivided once, both directions
    assert data.x.mean(0).abs().max() < 1e-5


def test_face_to_vertex_majority():
    faces = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 1]])
    labels = face_to_vertex_labels(faces, np.array([5, 7, 7]), num_vertices=5)
    # vertex 0: 5,7,7 -> 7; vertex 1: 5,7 tie -> 5; vertex 3: 7,7 -> 7; vertex 4: no face -> -100
    assert labels.tolist() == [7, 5, 5, 7, -100]
