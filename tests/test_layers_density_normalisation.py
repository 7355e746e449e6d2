"""Density normalisation (Coifman & Lafon's α) on every kind: a dense reference, the learned α, bad
input, and the truth on the circle: with α = 1 the operator is the Laplacian whatever the sampling
density, with α = 0 the drift 2∇log p·∇ is there, both with an error that shrinks with N."""

from __future__ import annotations

import pytest
import torch

from tests.layer_cases import circle_gaussian_layer, circle_quantiles, dense_mask, random_graph
from tg_metricattn import DotAttnConv, L2AttnConv, MetricAttnConv, SparseGATConv

KINDS = [SparseGATConv, DotAttnConv, L2AttnConv, MetricAttnConv]


def _recorded_scores(layer) -> list[torch.Tensor]:
    """Record the scores s_ij the layer's score activation returns (before the density term)."""
    seen: list[torch.Tensor] = []
    activation = layer.score_activation

    def record(scores):
        seen.append(activation(scores))
        return seen[-1]

    layer.score_activation = record
    return seen


@pytest.mark.parametrize("cls", KINDS)
@pytest.mark.parametrize("alpha", [0.5, 1.0])
@pytest.mark.parametrize("self_loops", [True, False])
def test_the_weights_are_the_density_normalised_kernel(cls, alpha, self_loops):
    edge_index, gen = random_graph(11, 40, seed=7)
    x = torch.randn(11, 5, generator=gen, dtype=torch.float64)
    # the scatter path keeps the edges in the order it returns them in, so its scores line up with them
    layer = cls(5, 3, heads=2, add_self_loops=self_loops, density_exponent=alpha, propagation="scatter").double()
    scores = _recorded_scores(layer)
    _, (used, weights) = layer(x, edge_index, return_attention_weights=True)
    csr = cls(5, 3, heads=2, add_self_loops=self_loops, density_exponent=alpha, propagation="csr").double()
    csr.load_state_dict(layer.state_dict())
    _, (used_csr, weights_csr) = csr(x, edge_index, return_attention_weights=True)
    assert torch.equal(used_csr, used) and torch.allclose(weights_csr, weights, atol=1e-14)
    # dense: K_ij = exp(s_ij) on the pattern (row = target), q_j = sum_k K_jk, W = K / (q_i^a q_j^a), rows normalised
    kernel = torch.zeros(2, 11, 11, dtype=torch.float64)
    kernel[:, used[1], used[0]] = scores[0].T.exp()
    q = kernel.sum(-1)  # [H, N]: node j's partition over its incoming edges
    q = torch.where(q > 0, q, torch.ones_like(q))  # a node that receives nothing is not rescaled
    normalised = kernel / (q.unsqueeze(2) ** alpha * q.unsqueeze(1) ** alpha)
    expected = normalised / normalised.sum(-1, keepdim=True).clamp_min(1e-300)
    assert torch.allclose(weights, expected[:, used[1], used[0]].T, atol=1e-12)
    assert dense_mask(edge_index, 11, 11, self_loops).sum() == used.size(1)


@pytest.mark.parametrize("cls", KINDS)
def test_alpha_zero_is_attention_as_it_is_and_adds_no_state(cls):
    edge_index, gen = random_graph(9, 30, seed=3)
    x = torch.randn(9, 4, generator=gen)
    torch.manual_seed(0)
    plain = cls(4, 2, heads=2)
    torch.manual_seed(0)
    zero = cls(4, 2, heads=2, density_exponent=0.0)
    assert torch.equal(plain(x, edge_index), zero(x, edge_index))
    assert plain.state_dict().keys() == zero.state_dict().keys()
    assert "density_exponent_param" not in cls(4, 2, density_exponent=1.0).state_dict()


@pytest.mark.parametrize("cls", KINDS)
def test_a_learned_alpha_per_head_gets_a_gradient_and_stays_in_the_unit_interval(cls):
    edge_index, gen = random_graph(10, 35, seed=5)
    x = torch.randn(10, 4, generator=gen)
    torch.manual_seed(0)
    layer = cls(4, 2, heads=3, density_exponent=0.5, learn_density_exponent=True)
    torch.manual_seed(0)
    fixed = cls(4, 2, heads=3, density_exponent=1.0)
    assert torch.equal(layer.density_exponent_param.detach(), torch.full((3,), 0.5))
    layer(x, edge_index).square().sum().backward()
    assert layer.density_exponent_param.grad is not None and layer.density_exponent_param.grad.abs().sum() > 0
    with torch.no_grad():
        layer.density_exponent_param.copy_(torch.tensor([-2.0, 0.3, 4.0]))
    assert torch.equal(layer.density_exponents(), torch.tensor([0.0, 0.3, 1.0]))
    with torch.no_grad():
        layer.density_exponent_param.fill_(7.0)  # clamped to 1 where it is used
        weights = layer(x, edge_index, return_attention_weights=True)[1][1]
        assert torch.allclose(weights, fixed(x, edge_index, return_attention_weights=True)[1][1], atol=1e-6)
    layer.reset_parameters()
    assert torch.equal(layer.density_exponent_param.detach(), torch.full((3,), 0.5))
    assert "density_exponent=1.0" in repr(fixed) and "learn_density_exponent=True" in repr(layer)


@pytest.mark.parametrize("cls", KINDS)
def test_bipartite_input_and_bad_exponents_are_refused(cls):
    edge_index, gen = random_graph(6, 10, seed=1, num_targets=4)
    layer = cls(3, 2, heads=1, add_self_loops=False, density_exponent=1.0)
    with pytest.raises(ValueError, match="density_exponent needs a graph whose sources are its targets"):
        layer((torch.randn(6, 3, generator=gen), torch.randn(4, 3, generator=gen)), edge_index)
    for bad in (-0.1, 1.5, float("nan"), "1", True):
        with pytest.raises(ValueError, match="density_exponent must"):
            cls(3, 2, density_exponent=bad)


def _generator_errors(n: int, alpha: float) -> tuple[float, float]:
    """Max error of (4/t)(P f - f) for f = cos 2θ against the Laplacian f'' and against f'' + 2(1-α)(log p)' f'
    (the limit operator), P the density-normalised Gaussian kernel exp(-|x_i - x_j|²/t) on n points, t = 2 n^(-2/3)."""
    theta = circle_quantiles(n)
    t = 2.0 * n ** (-2 / 3)
    conv = circle_gaussian_layer(t, alpha)
    pairs = torch.cartesian_prod(torch.arange(n), torch.arange(n)).T  # every j -> i (self-loops re-added)
    with torch.no_grad():
        _, (used, weights) = conv(torch.stack([theta.cos(), theta.sin()], 1), pairs, return_attention_weights=True)
    f = torch.cos(2 * theta)
    generator = 4 / t * (torch.zeros_like(f).index_add_(0, used[1], weights[:, 0] * f[used[0]]) - f)
    laplacian = -4 * f
    drift = -0.5 * torch.sin(theta) / (1 + 0.5 * torch.cos(theta)) * (-2 * torch.sin(2 * theta))  # (log p)' f'
    limit = laplacian + 2 * (1 - alpha) * drift
    return float((generator - laplacian).abs().max()), float((generator - limit).abs().max())


def test_on_the_circle_alpha_one_gives_the_laplacian_whatever_the_density():
    # measured (max error against the limit operator, n = 200 / 400 / 800): α=1 0.070 / 0.044 / 0.028,
    # α=0 0.143 / 0.091 / 0.058; against the Laplacian alone α=0 stays at 2.08-2.17 (the drift)
    errors = {alpha: [_generator_errors(n, alpha) for n in (200, 400, 800)] for alpha in (0.0, 0.5, 1.0)}
    for alpha, runs in errors.items():
        to_limit = [limit for _, limit in runs]
        assert to_limit[0] > to_limit[1] > to_limit[2], (alpha, to_limit)  # shrinks with N
        assert to_limit[2] < 0.07
    assert errors[1.0][2][0] < 0.04  # α = 1: the Laplacian itself
    assert errors[0.5][2][0] > 0.9 and errors[0.0][2][0] > 1.8  # the density drift, (1 - α) of it, is there


@pytest.mark.parametrize("cls", KINDS)
def test_gradcheck_of_the_density_term(cls):
    edge_index, gen = random_graph(7, 18, seed=9)
    x = torch.randn(7, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    layer = cls(3, 2, heads=2, density_exponent=0.4, learn_density_exponent=True).double()
    exponents = torch.tensor([0.3, 0.7], dtype=torch.float64, requires_grad=True)

    def run(features, alphas):
        return torch.func.functional_call(layer, {"density_exponent_param": alphas}, (features, edge_index))

    assert torch.autograd.gradcheck(run, (x, exponents))
