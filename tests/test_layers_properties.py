"""Properties every layer must have, whatever its score."""

from __future__ import annotations

import pytest
import torch

from tests.layer_cases import random_graph
from tg_metricattn import DotAttnConv, L2AttnConv, MetricAttnConv, SparseGATConv
from tg_metricattn.layers import edge_softmax

MAKERS = {
    "gat": lambda **kw: SparseGATConv(5, 4, **kw),
    "dot": lambda **kw: DotAttnConv(5, 4, **kw),
    "l2": lambda **kw: L2AttnConv(5, 4, **kw),
    "metric": lambda **kw: MetricAttnConv(5, 4, **kw),
}


@pytest.fixture(params=sorted(MAKERS))
def make(request):
    return MAKERS[request.param]


def test_attention_sums_to_one_per_target(make) -> None:
    edge_index, gen = random_graph(20, 60, seed=0)
    x = torch.randn(20, 5, generator=gen)
    layer = make(heads=3, add_self_loops=False)
    _, (used, alpha) = layer(x, edge_index, return_attention_weights=True)
    sums = torch.zeros(20, 3).index_add_(0, used[1], alpha)
    has_in = torch.zeros(20, dtype=torch.bool)
    has_in[used[1]] = True
    assert torch.allclose(sums[has_in], torch.ones_like(sums[has_in]), atol=1e-6)
    assert (sums[~has_in] == 0).all()
    assert (alpha >= 0).all()


def test_permutation_equivariance(make) -> None:
    edge_index, gen = random_graph(15, 50, seed=1)
    x = torch.randn(15, 5, generator=gen, dtype=torch.float64)
    layer = make(heads=2).double()
    perm = torch.randperm(15, generator=gen)
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(15)
    out = layer(x, edge_index)
    out_perm = layer(x[perm], inverse[edge_index])  # node perm[k] is now called k
    assert torch.allclose(out_perm, out[perm], atol=1e-12)


def test_node_without_incoming_edges_gets_zero_aggregation(make) -> None:
    x = torch.randn(4, 5)
    edge_index = torch.tensor([[0, 1, 2], [1, 2, 1]])  # nodes 0 and 3 receive nothing
    layer = make(heads=2, add_self_loops=False, bias=False)
    out = layer(x, edge_index)
    assert torch.isfinite(out).all()
    root = layer.root_term(x)
    expected = torch.zeros(2, out.size(1)) if root is None else root[[0, 3]]
    assert torch.allclose(out[[0, 3]], expected)
    assert not torch.allclose(out[1], torch.zeros_like(out[1]))


@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_large_inputs_stay_finite(make, scale: float) -> None:
    edge_index, gen = random_graph(30, 120, seed=2)
    x = torch.randn(30, 5, generator=gen) * scale
    layer = make(heads=2)
    out, (_, alpha) = layer(x, edge_index, return_attention_weights=True)
    assert torch.isfinite(out).all() and torch.isfinite(alpha).all()
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters() if p.grad is not None)


def test_empty_graph_and_empty_edge_set(make) -> None:
    layer = make(heads=2, concat=False)
    out = layer(torch.empty(0, 5), torch.empty(2, 0, dtype=torch.long))
    assert out.shape == (0, 4)
    isolated = make(heads=2, add_self_loops=False, bias=False)
    out = isolated(torch.randn(3, 5), torch.empty(2, 0, dtype=torch.long))
    assert out.shape == (3, 8) and torch.isfinite(out).all()


def test_dropout_only_in_training(make) -> None:
    edge_index, gen = random_graph(20, 80, seed=3)
    x = torch.randn(20, 5, generator=gen)
    layer = make(heads=2, dropout=0.5)
    layer.eval()
    assert torch.equal(layer(x, edge_index), layer(x, edge_index))
    layer.train()
    torch.manual_seed(0)
    assert not torch.allclose(layer(x, edge_index), layer.eval()(x, edge_index))


def test_reset_parameters_reinitialises(make) -> None:
    """Every parameter is set again: perturbed weights all change back, biases return to zero."""
    layer = make(heads=2)
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(3.0)
    perturbed = {k: v.clone() for k, v in layer.named_parameters()}
    torch.manual_seed(1)
    layer.reset_parameters()
    for name, value in layer.named_parameters():
        assert not torch.equal(value, perturbed[name]), f"reset_parameters left {name} as it was"
        if name == "bias":  # the output bias; inner Linear biases are drawn like torch.nn.Linear
            assert torch.equal(value, torch.zeros_like(value)), name


def test_lazy_in_channels() -> None:
    layer = SparseGATConv(-1, 3, heads=2)
    out = layer(torch.randn(4, 7), torch.tensor([[0, 1], [1, 2]]))
    assert out.shape == (4, 6) and layer.lin.in_channels == 7


def test_edge_softmax_is_finite_for_extreme_scores() -> None:
    scores = torch.tensor([[1e30], [-1e30], [0.0], [3.0]])
    target = torch.tensor([0, 0, 1, 1])
    alpha = edge_softmax(scores, target, num_targets=3)
    assert torch.isfinite(alpha).all()
    expected = torch.tensor([1.0, 0.0, 1 / (1 + torch.e**3), 1 / (1 + torch.e**-3)])
    assert torch.allclose(alpha.view(-1), expected, atol=1e-6)


def test_edge_softmax_gradcheck_with_isolated_target() -> None:
    target = torch.tensor([0, 2, 0, 2, 2, 0])  # target 1 has no edge
    scores = torch.randn(6, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: edge_softmax(s, target, 3), (scores,))


def two_components(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two random graphs of 15 nodes each, side by side (nodes 0-14 and 15-29), and features."""
    edge_index, gen = random_graph(15, 50, seed=seed)
    x = torch.randn(30, 5, generator=gen)
    return torch.cat([edge_index, edge_index + 15], 1), x


@pytest.mark.parametrize("change", ["scale 1e6", "nan"])
def test_output_on_one_component_ignores_the_other(make, change: str) -> None:
    """A node's output depends only on its in-neighbourhood: one graph of a batch cannot change another's."""
    edge_index, x = two_components(seed=4)
    layer = make(heads=2)
    before = layer(x, edge_index)
    other = x.clone()
    other[15:] = other[15:] * 1e6 if change == "scale 1e6" else float("nan")
    after = layer(other, edge_index)
    assert torch.isfinite(after[:15]).all()
    assert torch.allclose(after[:15], before[:15], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", [L2AttnConv, MetricAttnConv])
def test_squared_distance_weights_match_the_direct_formula_far_from_the_origin(cls) -> None:
    """Components at +1e4 and -1e4 (no common centre): weights as accurate as softmax(-|y_i - y_j|^2 / t)."""
    edge_index, x = two_components(seed=5)
    x = x + torch.cat([torch.full((15, 1), 1e4), torch.full((15, 1), -1e4)])
    torch.manual_seed(0)
    layer = cls(5, 4, heads=2, add_self_loops=False)
    _, (used, alpha) = layer(x, edge_index, return_attention_weights=True)
    y = layer.embed(x)
    t = torch.full((2,), 2.0) if cls is L2AttnConv else layer.time_scale.detach()
    scores = -(y[used[1]] - y[used[0]]).double().pow(2).sum(-1) / t.double()  # direct, per edge: [E, H]
    direct = edge_softmax(scores, used[1], 30)
    assert direct.std() > 0.05  # not uniform: the comparison has something to see
    assert (alpha.double() - direct).abs().max() < 1e-5


@pytest.mark.parametrize(("cls", "scale"), [(MetricAttnConv, 1e30), (L2AttnConv, 1e19)])
def test_huge_finite_inputs_give_finite_output_or_a_clear_error(cls, scale: float) -> None:
    edge_index, gen = random_graph(20, 60, seed=3)
    x = torch.randn(20, 5, generator=gen) * scale
    out = cls(5, 4, heads=2)(x, edge_index)
    assert torch.isfinite(out).all()
    overflowing = torch.randn(20, 5, generator=gen).sign() * 3e38  # finite, but its embedding is not
    torch.manual_seed(0)
    with pytest.raises(ValueError, match="overflowed"):
        cls(5, 4, heads=2, check_finite=True)(overflowing, edge_index)


def test_squared_distance_kernel_gives_the_same_in_chunks(monkeypatch) -> None:
    """The kernel walks the edges in chunks; chunk edges must not change values or gradients."""
    from tg_metricattn.layers import sparse_kernels

    edge_index, gen = random_graph(25, 90, seed=6)
    x = torch.randn(25, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    layer = MetricAttnConv(5, 4, heads=2, propagation="scatter").double()  # the direct kernel on every edge

    def run():
        x.grad = None
        layer.zero_grad()
        out = layer(x, edge_index)
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
        return out.detach(), x.grad.clone(), layer.embed_linear.weight.grad.clone()

    whole = run()
    monkeypatch.setattr(sparse_kernels, "_EDGE_CHUNK_FLOATS", 7)  # a few edges per chunk
    chunked = run()
    for a, b in zip(whole, chunked, strict=True):
        assert torch.allclose(a, b, atol=1e-12)


def _entropy_share(alpha: torch.Tensor, target: torch.Tensor, num_nodes: int) -> float:
    """Mean over nodes of the attention entropy divided by log(in-degree): 1 = uniform, 0 = one-hot."""
    entropy = torch.zeros(num_nodes, alpha.size(1), dtype=torch.float64).index_add_(
        0, target, -(alpha.detach().double() * alpha.detach().double().clamp_min(1e-300).log())
    )
    degree = torch.bincount(target, minlength=num_nodes).double()
    keep = degree > 1
    return float((entropy[keep] / degree[keep].log()[:, None]).mean())


def test_auto_time_scale_starts_attention_between_uniform_and_one_hot() -> None:
    """Tiny features (as row-normalised bag-of-words): t = sqrt(C) gives uniform attention, 'auto' does not."""
    edge_index, gen = random_graph(60, 300, seed=8)
    x = torch.rand(60, 5, generator=gen) * 1e-3
    torch.manual_seed(0)
    fixed = MetricAttnConv(5, 4, heads=2)
    auto = MetricAttnConv(5, 4, heads=2, time_scale="auto")
    auto.load_state_dict({**fixed.state_dict(), "time_scale_unset": torch.tensor(True)})
    _, (used, alpha_fixed) = fixed(x, edge_index, return_attention_weights=True)
    _, (_, alpha_auto) = auto(x, edge_index, return_attention_weights=True)
    assert _entropy_share(alpha_fixed, used[1], 60) > 0.9999
    assert 0.3 < _entropy_share(alpha_auto, used[1], 60) < 0.95
    with torch.no_grad():  # t is the median squared embedding distance over the edges j != i
        f = auto.embed(x)
        distance = (f[edge_index[1]] - f[edge_index[0]]).double().pow(2).sum(-1)
    assert torch.allclose(auto.time_scale.double(), distance.median(dim=0).values, rtol=1e-5)
    assert not bool(auto.time_scale_unset)
    again = MetricAttnConv(5, 4, heads=2, time_scale="auto")
    again.load_state_dict(auto.state_dict())  # a loaded layer keeps its t
    again(x * 100, edge_index)
    assert torch.equal(again.time_scale, auto.time_scale)
    auto.reset_parameters()
    assert bool(auto.time_scale_unset)


def test_auto_time_scale_without_distances_keeps_the_default_with_a_warning() -> None:
    layer = MetricAttnConv(5, 4, heads=2, time_scale="auto")
    with pytest.warns(UserWarning, match="no positive finite embedding distance"):
        out = layer(torch.randn(6, 5), torch.empty(2, 0, dtype=torch.long))  # self-loops only
    assert torch.isfinite(out).all()
    assert torch.allclose(layer.time_scale, torch.full((2,), 2.0))
    with pytest.raises(ValueError, match="'auto'"):
        MetricAttnConv(5, 4, time_scale="median")


def test_a_metric_layer_without_auto_time_scale_loads_older_state_dicts() -> None:
    """Only time_scale='auto' layers carry the 'not yet set' flag: checkpoints saved before it still load."""
    layer = MetricAttnConv(5, 4, heads=2)
    assert not any("time_scale_unset" in k for k in layer.state_dict())
    older = {k: v for k, v in layer.state_dict().items()}
    MetricAttnConv(5, 4, heads=2).load_state_dict(older)  # strict
    assert "time_scale_unset" in MetricAttnConv(5, 4, heads=2, time_scale="auto").state_dict()
