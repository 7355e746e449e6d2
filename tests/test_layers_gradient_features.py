"""Tangent gradients on meshes and the rotation-invariant spatial gradient features."""

import warnings

import numpy as np
import pytest
import torch

from tests.dataset_fixtures import icosphere
from tg_metricattn.datasets import mesh_edge_index, mesh_to_data
from tg_metricattn.geometry import gradient_stencil, tangent_frames, vertex_normals
from tg_metricattn.layers import SpatialGradientFeatures
from tg_metricattn.layers.spatial_gradient_features import tangent_gradient


def _grid(n=7, angle=0.3):
    xs, ys = np.meshgrid(np.arange(n, dtype=float), np.arange(n, dtype=float))
    flat = np.stack([xs.ravel(), ys.ravel(), np.zeros(n * n)], axis=1)
    c, s = np.cos(angle), np.sin(angle)
    tilt = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])  # a tilted plane: normals are not +z
    faces = []
    for i in range(n - 1):
        for j in range(n - 1):
            a = i * n + j
            faces += [[a, a + 1, a + n], [a + 1, a + n + 1, a + n]]
    return flat @ tilt.T, np.array(faces).T


def test_the_gradient_of_a_linear_function_on_a_plane_is_exact():
    pos, face = _grid()
    edge_index = mesh_edge_index(torch.as_tensor(face), len(pos))
    weight = torch.as_tensor(gradient_stencil(pos, face, edge_index))
    direction = np.array([2.0, -3.0, 0.5])
    f = torch.as_tensor(pos @ direction)[:, None]
    g_x, g_y = tangent_gradient(f, edge_index, weight)
    normals = vertex_normals(pos, face)
    b_x, b_y = tangent_frames(normals)
    tangential = direction - (normals @ direction)[:, None] * normals  # the gradient lies in the plane
    assert np.allclose(g_x[:, 0].numpy(), (b_x * tangential).sum(1), atol=1e-3)
    assert np.allclose(g_y[:, 0].numpy(), (b_y * tangential).sum(1), atol=1e-3)
    assert np.allclose(np.cross(b_x, b_y), normals) and np.allclose((b_x * normals).sum(1), 0)


def test_features_do_not_depend_on_the_tangent_frames():
    """Turning every vertex's frame by its own angle leaves the features unchanged."""
    v, f = icosphere(2)
    edge_index = mesh_edge_index(torch.as_tensor(f.T), len(v))
    weight = torch.as_tensor(gradient_stencil(v, f.T, edge_index), dtype=torch.float32)
    angle = torch.rand(len(v), generator=torch.Generator().manual_seed(0)) * 6.28
    c, s = torch.cos(angle)[edge_index[1]], torch.sin(angle)[edge_index[1]]  # the frame of the target vertex
    turned = torch.stack([c * weight[:, 0] - s * weight[:, 1], s * weight[:, 0] + c * weight[:, 1]], dim=1)
    torch.manual_seed(0)
    layer = SpatialGradientFeatures(6)
    x = torch.randn(len(v), 6)
    out = layer(x, edge_index, weight)
    assert torch.allclose(layer(x, edge_index, turned), out, atol=1e-5)
    assert out.abs().max() > 1e-3  # not trivially zero
    mirrored = torch.stack([weight[:, 0], -weight[:, 1]], dim=1)  # a reflection is not a rotation
    assert not torch.allclose(layer(x, edge_index, mirrored), out, atol=1e-3)


def test_mesh_samples_carry_the_stencil_and_bad_shapes_are_named():
    v, f = icosphere(1)
    data = mesh_to_data(v, f, np.zeros(len(v), dtype=np.int64), features=("xyz",), eigenpairs=8)
    assert data.grad_weight.shape == (data.edge_index.size(1), 2) and data.grad_weight.dtype == torch.float32
    layer = SpatialGradientFeatures(3)
    with pytest.raises(ValueError, match=r"grad_weight must be \[E, 2\]"):
        layer(data.x, data.edge_index, data.grad_weight[:-1])
    with pytest.raises(ValueError, match="channels"):
        SpatialGradientFeatures(0)


def test_vertices_without_neighbours_give_finite_weights_silently():
    v, f = icosphere(1)
    pos = np.concatenate([v, [[5.0, 5.0, 5.0]]])  # an unreferenced vertex
    edge_index = mesh_edge_index(torch.as_tensor(f.T), len(pos))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        weight = gradient_stencil(pos, f.T, edge_index)
    assert np.isfinite(weight).all()


def test_gradients_flow_through_the_cached_operator():
    v, f = icosphere(1)
    edge_index = mesh_edge_index(torch.as_tensor(f.T), len(v))
    weight = torch.as_tensor(gradient_stencil(v, f.T, edge_index))  # float64
    x = torch.randn(len(v), 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: torch.cat(tangent_gradient(x, edge_index, weight)), (x,))
    layer = SpatialGradientFeatures(3).double()
    assert torch.autograd.gradcheck(lambda x: layer(x, edge_index, weight), (x,))
    first = tangent_gradient(x, edge_index, weight)
    from tg_metricattn.layers.spatial_gradient_features import gradient_operator

    assert gradient_operator(edge_index, weight, len(v))[0] is gradient_operator(edge_index, weight, len(v))[0]
    assert torch.equal(tangent_gradient(x, edge_index, weight)[0], first[0])
