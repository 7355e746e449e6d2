"""SpectralHeatDiffusion against the dense matrix exponential of the mesh operator."""

import numpy as np
import pytest
import scipy.linalg
import torch

from tests.dataset_fixtures import icosphere
from tg_metricattn.geometry import generalized_eigenpairs, laplacian_and_mass
from tg_metricattn.layers import SpectralHeatDiffusion


def _operator(subdivisions=1, stretch=(1.0, 0.7, 0.4)):
    v, f = icosphere(subdivisions)
    v = v * np.array(stretch)  # not a sphere: eigenvalues without symmetry
    L, m = laplacian_and_mass(v, f.T)
    return L, m


def _layer_inputs(L, m, k):
    evals, evecs = generalized_eigenpairs(L, m, k)
    as64 = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
    return as64(m), as64(evals), as64(evecs)


def test_full_eigenbasis_equals_the_dense_matrix_exponential():
    L, m = _operator()
    n = L.shape[0]
    mass, evals, evecs = _layer_inputs(L, m, n)
    layer = SpectralHeatDiffusion(3, learn_time=False).double()
    times = torch.tensor([0.0, 0.05, 0.4], dtype=torch.float64)
    with torch.no_grad():
        layer.diffusion_time.copy_(times)
    x = torch.randn(n, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = layer(x, mass, evals, evecs)
    operator = np.diag(1.0 / m) @ L.toarray()  # Δ = M^{-1} L
    for c, t in enumerate(times.tolist()):
        expected = scipy.linalg.expm(-t * operator) @ x[:, c].numpy()
        np.testing.assert_allclose(out[:, c].numpy(), expected, atol=1e-9)
    # heat flow keeps the mass-weighted mean and smooths
    assert torch.allclose((mass * out[:, 2]).sum(), (mass * x[:, 2]).sum())
    assert out[:, 2].std() < 0.5 * x[:, 2].std()


def test_truncated_basis_is_the_projection_then_decay():
    L, m = _operator(2)
    mass, evals, evecs = _layer_inputs(L, m, 16)
    layer = SpectralHeatDiffusion(2).double()
    x = evecs[:, [3, 10]] * torch.tensor([2.0, -1.0], dtype=torch.float64) + 0.0
    with torch.no_grad():
        layer.diffusion_time.fill_(0.1)
    out = layer(x, mass, evals, evecs)
    expected = x * torch.exp(-0.1 * evals[[3, 10]])  # an eigenvector decays by exp(-λ t) and stays itself
    assert torch.allclose(out, expected, atol=1e-10)


def test_gradients_reach_input_and_times():
    L, m = _operator()
    mass, evals, evecs = _layer_inputs(L, m, 10)
    layer = SpectralHeatDiffusion(2, init_time=0.05).double()
    x = torch.randn(mass.numel(), 2, dtype=torch.float64, requires_grad=True)
    time = layer.diffusion_time

    def run(x, t):
        return SpectralHeatDiffusion._diffuse(x, mass, evals, evecs, t)

    assert torch.autograd.gradcheck(run, (x, time.detach().clone().requires_grad_()))
    layer(x, mass, evals, evecs).square().sum().backward()
    assert time.grad is not None and torch.all(time.grad != 0) and x.grad is not None


def test_times_stay_non_negative():
    L, m = _operator()
    mass, evals, evecs = _layer_inputs(L, m, 10)
    layer = SpectralHeatDiffusion(2).double()
    with torch.no_grad():
        layer.diffusion_time.copy_(torch.tensor([-0.3, 0.25]))
    assert layer.time.tolist() == [0.0, 0.25]
    layer.train()
    x = torch.randn(mass.numel(), 2, dtype=torch.float64)
    out = layer(x, mass, evals, evecs)
    assert layer.diffusion_time.tolist() == [0.0, 0.25]  # projected in place
    assert torch.allclose(out[:, 0], evecs @ (evecs.T @ (mass * x[:, 0])))  # t = 0: the projection onto span Φ
    with pytest.raises(ValueError, match="init_time"):
        SpectralHeatDiffusion(2, init_time=-1.0)
    with pytest.raises(ValueError, match="channels"):
        SpectralHeatDiffusion(0)


def test_a_batch_is_each_mesh_on_its_own():
    L1, m1 = _operator(1)
    L2, m2 = _operator(2, stretch=(1.0, 1.0, 0.5))
    k = 12
    a, b = _layer_inputs(L1, m1, k), _layer_inputs(L2, m2, k)
    layer = SpectralHeatDiffusion(4, init_time=0.02).double()
    xa = torch.randn(a[0].numel(), 4, dtype=torch.float64)
    xb = torch.randn(b[0].numel(), 4, dtype=torch.float64)
    batch = torch.cat([torch.zeros(a[0].numel(), dtype=torch.long), torch.ones(b[0].numel(), dtype=torch.long)])
    out = layer(torch.cat([xa, xb]), torch.cat([a[0], b[0]]), torch.cat([a[1], b[1]]), torch.cat([a[2], b[2]]), batch)
    assert torch.allclose(out, torch.cat([layer(xa, *a), layer(xb, *b)]))


def test_shapes_are_checked():
    L, m = _operator()
    mass, evals, evecs = _layer_inputs(L, m, 6)
    layer = SpectralHeatDiffusion(2).double()
    x = torch.zeros(mass.numel(), 2, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"x must have shape \[V, 2\]"):
        layer(x[:, :1], mass, evals, evecs)
    with pytest.raises(ValueError, match="mass must be"):
        layer(x, mass[:-1], evals, evecs)
    with pytest.raises(ValueError, match="evals must have K = 6"):
        layer(x, mass, evals[:-1], evecs)
    assert repr(layer) == "SpectralHeatDiffusion(2, init_time=0)"


def _two_meshes(k=12):
    L1, m1 = _operator(1)
    L2, m2 = _operator(2, stretch=(1.0, 1.0, 0.5))
    a, b = _layer_inputs(L1, m1, k), _layer_inputs(L2, m2, k)
    batch = torch.cat([torch.zeros(a[0].numel(), dtype=torch.long), torch.ones(b[0].numel(), dtype=torch.long)])
    return a, b, batch


def test_an_unsorted_batch_is_each_mesh_on_its_own():
    """Vertices of two meshes interleaved (``batch`` not sorted): each vertex still diffuses on its own mesh."""
    a, b, batch = _two_meshes()
    layer = SpectralHeatDiffusion(3, init_time=0.05).double()
    generator = torch.Generator().manual_seed(0)
    xa = torch.randn(a[0].numel(), 3, dtype=torch.float64, generator=generator)
    xb = torch.randn(b[0].numel(), 3, dtype=torch.float64, generator=generator)
    expected = torch.cat([layer(xa, *a), layer(xb, *b)])  # each mesh diffused alone
    x, mass, evecs = torch.cat([xa, xb]), torch.cat([a[0], b[0]]), torch.cat([a[2], b[2]])
    perm = torch.randperm(x.size(0), generator=generator)
    assert not torch.equal(batch[perm], batch[perm].sort().values)  # really interleaved
    evals = torch.stack([a[1], b[1]])  # [B, K]
    out = layer(x[perm], mass[perm], evals, evecs[perm], batch[perm])
    assert torch.allclose(out, expected[perm], atol=1e-12)
    evals_b_first = torch.stack([b[1], a[1]])  # mesh ids, not order of appearance, index evals
    out = layer(x[perm], mass[perm], evals_b_first, evecs[perm], 1 - batch[perm])
    assert torch.allclose(out, expected[perm], atol=1e-12)


def test_bad_batch_and_dtypes_are_named():
    a, b, batch = _two_meshes(k=5)
    layer = SpectralHeatDiffusion(2).double()
    mass, evecs = torch.cat([a[0], b[0]]), torch.cat([a[2], b[2]])
    evals = torch.cat([a[1], b[1]])
    x = torch.zeros(mass.numel(), 2, dtype=torch.float64)
    v = mass.numel()
    with pytest.raises(
        ValueError, match=rf"batch must be a 1-D integer tensor of V = {v} mesh ids .*got shape \[{v - 1}\]"
    ):
        layer(x, mass, evals, evecs, batch[:-1])
    with pytest.raises(ValueError, match=r"batch must be a 1-D integer tensor .*got shape \[\d+\] of torch.float64"):
        layer(x, mass, evals, evecs, batch.double())
    with pytest.raises(ValueError, match=r"batch must hold mesh ids >= 0, got -1"):
        layer(x, mass, evals, evecs, batch - 1)
    with pytest.raises(ValueError, match=r"evals must be \[B=2, K=5\] or B\*K=10 values .*got shape \[5\]"):
        layer(x, mass, evals[:5], evecs, batch)
    with pytest.raises(ValueError, match=r"evals must be \[B=2, K=5\] or B\*K=10 values .*got shape \[5, 2\]"):
        layer(x, mass, evals.reshape(5, 2), evecs, batch)
    with pytest.raises(
        ValueError, match=r"x, mass, evals and evecs must have the dtype of the layer \(torch.float64\)"
    ):
        layer(x.float(), mass, evals, evecs, batch)
    with pytest.raises(ValueError, match=r"must have the dtype of the layer \(torch.float32\).*evecs torch.float64"):
        SpectralHeatDiffusion(2)(x.float(), mass.float(), evals.float(), evecs, batch)


def test_under_autocast_the_dtype_check_stands_aside():
    a, b, batch = _two_meshes(k=5)
    layer = SpectralHeatDiffusion(2, init_time=0.1)
    mass, evecs, evals = (torch.cat([a[i], b[i]]).float() for i in (0, 2, 1))
    x = torch.randn(mass.numel(), 2, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="dtype of the layer"):
        layer(x, mass, evals, evecs, batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x, mass, evals, evecs, batch)
    assert out.shape == x.shape and torch.isfinite(out).all()
