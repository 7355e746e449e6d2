"""The density drift share against truth: on the circle sampled with a known non-uniform density, a fixed
Gaussian kernel density-normalised with exponent α keeps the share 1 - α of the density drift (exactly 1 at
α = 0), with an error that shrinks with N; the layer's log q is the kernel's mass computed densely."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from tests.layer_cases import circle_gaussian_layer, circle_quantiles, random_graph
from tg_metricattn import DotAttnConv, L2AttnConv, MetricAttnConv, SparseGATConv
from tg_metricattn.diagnostics import (
    density_drift_share,
    diagnose,
    drift_share,
    layer_log_partition,
    propagation_matrix,
    stationary_distribution,
)

KINDS = [SparseGATConv, DotAttnConv, L2AttnConv, MetricAttnConv]


def _circle_shares(n: int, alpha: float) -> tuple[float, float]:
    """(density drift share, reversibility drift share) of the α-normalised Gaussian kernel on n circle points."""
    theta = circle_quantiles(n)
    layer = circle_gaussian_layer(2.0 * n ** (-2 / 3), alpha)
    x = torch.stack([theta.cos(), theta.sin()], 1)
    pairs = torch.cartesian_prod(torch.arange(n), torch.arange(n)).T
    (P,) = propagation_matrix(layer, x, pairs)
    pi = stationary_distribution(P)
    return density_drift_share(P, layer_log_partition(layer, x, pairs)[:, 0]), drift_share(P, pi)


def test_on_the_circle_the_share_is_one_minus_alpha_and_falls_with_alpha():
    # measured (share − (1 − α), n = 200 / 400 / 800): α=0 0 (exact), α=0.5 0.0045 / 0.0028 / 0.0018,
    # α=1 0.0083 / 0.0052 / 0.0033
    alphas, sizes = (0.0, 0.5, 1.0), (200, 400, 800)
    shares = {(alpha, n): _circle_shares(n, alpha) for alpha in alphas for n in sizes}
    for n in sizes:
        density = [shares[alpha, n][0] for alpha in alphas]
        assert all(a > b for a, b in itertools.pairwise(density)), density  # falls with α
        assert max(share for _, share in (shares[alpha, n] for alpha in alphas)) < 1e-6  # reversible: blind to it
    assert shares[0.0, 800][0] == pytest.approx(1.0, abs=1e-9)  # α = 0, symmetric kernel: P_ij / P_ji = q_j / q_i
    for alpha in alphas[1:]:
        errors = [abs(shares[alpha, n][0] - (1 - alpha)) for n in sizes]
        assert errors[0] > errors[1] > errors[2] and errors[2] < 0.005, (alpha, errors)


@pytest.mark.parametrize("cls", KINDS)
@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_the_layers_log_q_is_the_kernels_mass_over_incoming_edges(cls, alpha):
    edge_index, gen = random_graph(10, 35, seed=4)
    x = torch.randn(10, 5, generator=gen, dtype=torch.float64)
    layer = cls(5, 3, heads=2, density_exponent=alpha, propagation="scatter").double()
    seen: list[torch.Tensor] = []
    activation = layer.score_activation
    layer.score_activation = lambda scores: seen.append(activation(scores)) or seen[-1]
    _, (used, _) = layer(x, edge_index, return_attention_weights=True)  # scatter: scores in the order of `used`
    kernel = torch.zeros(2, 10, 10, dtype=torch.float64)
    kernel[:, used[1], used[0]] = seen[0].T.exp()
    expected = kernel.sum(-1).T.log().detach()  # [N, H]: every node has its self-loop, so q > 0
    assert np.allclose(layer_log_partition(layer, x, edge_index), expected.numpy(), atol=1e-12)
    csr = cls(5, 3, heads=2, density_exponent=alpha, propagation="csr").double()
    csr.load_state_dict(layer.state_dict())
    assert np.allclose(layer_log_partition(csr, x, edge_index), expected.numpy(), atol=1e-12)


def test_exact_on_any_symmetric_kernel_and_blind_to_how_pi_splits_over_components():
    # a symmetric kernel on two components of different sizes (stationary_distribution weights them by size, so
    # log(π q) differs by a constant between them): exactly 1 at α = 0, less once the density is divided out
    rng = np.random.default_rng(0)
    blocks = []
    for n in (30, 70):
        k = np.exp(rng.normal(size=(n, n))) * (rng.random((n, n)) < 0.15)
        blocks.append(k + k.T)
    kernel = sp.block_diag(blocks, format="csr") + sp.identity(100)
    q = np.asarray(kernel.sum(axis=1)).ravel()
    P = sp.diags(1 / q) @ kernel
    assert density_drift_share(P, np.log(q)) == pytest.approx(1.0, abs=1e-9)
    one_way = sp.lil_matrix(P)
    one_way[0, 99] = 0.01  # a transition with none back: no pair, so no log(0)
    one_way = sp.diags(1 / np.asarray(one_way.sum(axis=1)).ravel()) @ one_way.tocsr()
    assert density_drift_share(one_way, np.log(q)) == pytest.approx(1.0, abs=0.02)
    sym = kernel.multiply(1 / np.sqrt(np.outer(q, q)))  # α = 1/2: K / (q_i q_j)^½, rows normalised
    P_half = sp.diags(1 / np.asarray(sym.sum(axis=1)).ravel()) @ sym
    assert 0.2 < density_drift_share(P_half, np.log(q)) < 0.8


def test_bad_input_is_named():
    layer = SparseGATConv(4, 2)
    x_src, x_dst = torch.randn(5, 4), torch.randn(3, 4)
    edge_index = torch.tensor([[0, 4], [1, 2]])
    with pytest.raises(ValueError, match="bipartite"):
        layer.kernel_log_partition((x_src, x_dst), edge_index)
    with pytest.raises(ValueError, match="AttentionConv"):
        layer_log_partition(torch.nn.Linear(2, 2), x_src, edge_index)
    P = sp.csr_matrix(np.full((3, 3), 1 / 3))
    with pytest.raises(ValueError, match=r"log_q must have shape \[3, K\]"):
        density_drift_share(P, np.zeros(4))
    with pytest.raises(ValueError, match="finite and nonnegative"):
        density_drift_share(sp.csr_matrix(np.array([[0.5, 0.5, 0], [-0.1, 1.1, 0], [0, 0, 1.0]])), np.zeros(3))
    with pytest.raises(ValueError, match="log_q must be finite"):
        density_drift_share(P, np.array([0.0, np.nan, 1.0]))
    assert density_drift_share(P, np.full(3, 2.5)) is None  # a uniform density: nothing to drift to


def test_diagnose_reports_it_per_head_and_it_falls_with_the_layers_alpha():
    from torch_geometric.data import Data

    theta = circle_quantiles(300)
    pairs = torch.cartesian_prod(torch.arange(300), torch.arange(300)).T
    data = Data(x=torch.stack([theta.cos(), theta.sin()], 1), edge_index=pairs[:, pairs[0] != pairs[1]])
    shares = []
    for alpha in (0.0, 0.5, 1.0):
        report = diagnose(circle_gaussian_layer(2.0 * 300 ** (-2 / 3), alpha), data, num_eigs=0, num_probes=2)
        (head,) = report.layers[0].heads
        shares.append(head.density_drift)
        assert f"density-drift={head.density_drift:.3f}" in report.summary()
        assert report.to_dict()["layers"][0]["heads"][0]["density_drift"] == head.density_drift
    assert shares[0] == pytest.approx(1.0, abs=1e-9) and abs(shares[1] - 0.5) < 0.01 and abs(shares[2]) < 0.01
