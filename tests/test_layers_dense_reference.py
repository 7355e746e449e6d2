"""L2 and metric attention against a dense N x N reference; gradcheck for every layer."""

from __future__ import annotations

import math

import pytest
import torch

from tests.layer_cases import dense_attention, dense_mask, random_graph
from tg_metricattn import DotAttnConv, L2AttnConv, MetricAttnConv, SparseGATConv, SparseGATv2Conv


def _dense_check(layer, x_src, x_dst, edge_index, dense_scores, self_loops: bool) -> None:
    """Compare outputs and per-edge weights with a dense masked softmax [H, N_dst, N_src]."""
    n_src, n_dst = x_src.size(0), x_dst.size(0)
    weights = dense_attention(dense_scores, dense_mask(edge_index, n_src, n_dst, self_loops))
    values = layer.lin_value(x_src).view(n_src, layer.heads, layer.out_channels)
    expected = torch.einsum("hij,jhc->ihc", weights, values)
    expected = expected.reshape(n_dst, -1) if layer.concat else expected.mean(1)
    expected = expected + layer.bias
    out, (used, alpha) = layer((x_src, x_dst), edge_index, return_attention_weights=True)
    assert (out - expected).abs().max() < 1e-10
    assert (alpha - weights[:, used[1], used[0]].T).abs().max() < 1e-12


@pytest.mark.parametrize("heads", [1, 3])
@pytest.mark.parametrize("concat", [True, False])
@pytest.mark.parametrize("self_loops", [True, False])
def test_l2_attention_matches_dense(heads: int, concat: bool, self_loops: bool) -> None:
    edge_index, gen = random_graph(13, 50, seed=heads)
    x = torch.randn(13, 6, generator=gen, dtype=torch.float64) + 3.0  # off-centre features
    layer = L2AttnConv(6, 4, heads=heads, concat=concat, add_self_loops=self_loops).double()
    torch.nn.init.normal_(layer.bias)
    q = layer.embed(x)  # [N, H, C]
    assert q.shape == (13, heads, 4)
    dist = (q.transpose(0, 1).unsqueeze(2) - q.transpose(0, 1).unsqueeze(1)).pow(2).sum(-1)
    _dense_check(layer, x, x, edge_index, -dist / math.sqrt(4), self_loops)


@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("learn_time_scale", [True, False])
@pytest.mark.parametrize("self_loops", [True, False])
def test_metric_attention_matches_dense(heads: int, learn_time_scale: bool, self_loops: bool) -> None:
    edge_index, gen = random_graph(12, 45, seed=10 + heads)
    x = torch.randn(12, 5, generator=gen, dtype=torch.float64)
    layer = MetricAttnConv(
        5, 3, heads=heads, metric_channels=4, hidden_channels=7, learn_time_scale=learn_time_scale
    ).double()
    layer.add_self_loops = self_loops
    with torch.no_grad():
        layer.log_time_scale.copy_(torch.linspace(-0.5, 0.7, heads))
    torch.nn.init.normal_(layer.bias)
    f = layer.embed(x)
    assert f.shape == (12, heads, 4)
    assert layer.time_scale.shape == (heads,)
    assert torch.allclose(layer.time_scale, torch.linspace(-0.5, 0.7, heads, dtype=torch.float64).exp())
    # the formula of the docstring, written out: f(x) = x W1 + tanh(x W2 + b2) W3
    f_ref = x @ layer.embed_linear.weight.T + torch.tanh(layer.embed_hidden(x)) @ layer.embed_output.weight.T
    assert torch.allclose(f, f_ref.view(12, heads, 4))
    ft = f.transpose(0, 1)
    dist = (ft.unsqueeze(2) - ft.unsqueeze(1)).pow(2).sum(-1)
    _dense_check(layer, x, x, edge_index, -dist / layer.time_scale.view(-1, 1, 1), self_loops)


def test_metric_attention_bipartite_matches_dense() -> None:
    edge_index, gen = random_graph(9, 25, seed=4, num_targets=5)
    x_src = torch.randn(9, 4, generator=gen, dtype=torch.float64)
    x_dst = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    layer = MetricAttnConv(4, 3, heads=2, add_self_loops=False).double()
    f_src, f_dst = layer.embed(x_src).transpose(0, 1), layer.embed(x_dst).transpose(0, 1)
    dist = (f_dst.unsqueeze(2) - f_src.unsqueeze(1)).pow(2).sum(-1)
    _dense_check(layer, x_src, x_dst, edge_index, -dist / layer.time_scale.view(-1, 1, 1), False)


def test_time_scale_is_learned_or_fixed() -> None:
    learned = MetricAttnConv(4, 2, heads=3, time_scale=2.0)
    fixed = MetricAttnConv(4, 2, heads=3, time_scale=2.0, learn_time_scale=False)
    assert torch.allclose(learned.time_scale, torch.full((3,), 2.0))
    assert "log_time_scale" in dict(learned.named_parameters())
    assert "log_time_scale" not in dict(fixed.named_parameters())
    assert "log_time_scale" in fixed.state_dict()
    with pytest.raises(ValueError, match="time_scale must be 'auto' or a number in"):
        MetricAttnConv(4, 2, time_scale=-1.0)


LAYERS = [
    lambda: SparseGATConv(3, 2, heads=2, residual=True),
    lambda: DotAttnConv(3, 2, heads=2),
    lambda: L2AttnConv(3, 2, heads=2, residual=True),
    lambda: MetricAttnConv(3, 2, heads=2, hidden_channels=4),
    lambda: SparseGATv2Conv(3, 2, heads=2, residual=True),
]


@pytest.mark.parametrize("make_layer", LAYERS, ids=["gat", "dot", "l2", "metric", "gatv2"])
def test_gradcheck(make_layer) -> None:
    torch.manual_seed(0)
    layer = make_layer().double()
    edge_index, gen = random_graph(6, 14, seed=1)
    x = torch.randn(6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    params = [p for p in layer.parameters()]
    names = [n for n, _ in layer.named_parameters()]

    def run(x, *values):
        state = dict(zip(names, values, strict=True))
        return torch.func.functional_call(layer, state, (x, edge_index))

    assert torch.autograd.gradcheck(run, (x, *[p.detach().requires_grad_() for p in params]))


def test_l2_attention_bipartite_with_unrelated_targets_matches_dense() -> None:
    """x_dst is not a prefix of x_src: the targets' own features must score the edges."""
    edge_index, gen = random_graph(9, 25, seed=6, num_targets=5)
    x_src = torch.randn(9, 4, generator=gen, dtype=torch.float64)
    x_dst = torch.randn(5, 4, generator=gen, dtype=torch.float64) + 2.0
    layer = L2AttnConv(4, 3, heads=2, add_self_loops=False).double()
    q_src, q_dst = layer.embed(x_src).transpose(0, 1), layer.embed(x_dst).transpose(0, 1)
    dist = (q_dst.unsqueeze(2) - q_src.unsqueeze(1)).pow(2).sum(-1)
    _dense_check(layer, x_src, x_dst, edge_index, -dist / math.sqrt(3), False)


@pytest.mark.parametrize("cls", [L2AttnConv, MetricAttnConv])
def test_float32_far_from_the_origin_keeps_float64_accuracy(cls) -> None:
    """Features offset by 300: ||y_i||^2 and <y_i, y_j> are ~1e5 and cancel; the weights must not."""
    edge_index, gen = random_graph(30, 120, seed=7)
    x64 = torch.randn(30, 6, generator=gen, dtype=torch.float64) + 300.0
    torch.manual_seed(0)
    layer64 = cls(6, 4, heads=2).double()
    layer32 = cls(6, 4, heads=2)
    layer32.load_state_dict({k: v.float() for k, v in layer64.state_dict().items()})
    _, (_, alpha64) = layer64(x64, edge_index, return_attention_weights=True)
    _, (_, alpha32) = layer32(x64.float(), edge_index, return_attention_weights=True)
    assert alpha64.std() > 0.05  # not uniform: the check has something to compare
    assert (alpha32.double() - alpha64).abs().max() < 1e-4
