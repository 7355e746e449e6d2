"""ResidualAttentionNet (Platonov et al.'s backbone): the formula against a dense reference, the ego kept
out of the sep softmax for every kind, locality, the residual path, and bad settings."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.layer_cases import dense_attention, dense_mask
from tg_metricattn.models import LAYERS, ResidualAttentionNet

KINDS = [*LAYERS, "none"]


def _graph() -> tuple[torch.Tensor, torch.Tensor]:
    """7 nodes: a few edges, one self-loop (3 -> 3), node 6 receives nothing."""
    gen = torch.Generator().manual_seed(0)
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 5, 1, 0, 3, 2], [1, 2, 3, 4, 5, 0, 0, 2, 3, 5]])
    return torch.randn(7, 5, generator=gen, dtype=torch.float64), edge_index


def _dense_gat(conv, h: torch.Tensor, edge_index: torch.Tensor, self_loops: bool) -> torch.Tensor:
    """GAT by hand: m_i = sum_j softmax_j(LeakyReLU(a_s.W h_j + a_d.W h_i)) W h_j, heads concatenated, + bias."""
    heads, channels = conv.heads, conv.out_channels
    wh = (h @ conv.lin.weight.T).view(-1, heads, channels)
    src, dst = (wh * conv.att_src).sum(-1), (wh * conv.att_dst).sum(-1)  # [N, H]
    scores = F.leaky_relu(dst.T[:, :, None] + src.T[:, None, :], conv.negative_slope)  # [H, dst, src]
    no_loops = edge_index[:, edge_index[0] != edge_index[1]]  # sep drops them; with self_loops, one per node
    weights = dense_attention(scores, dense_mask(no_loops, h.size(0), h.size(0), self_loops))
    return torch.einsum("hij,jhc->ihc", weights, wh).reshape(h.size(0), -1) + conv.bias


@pytest.mark.parametrize("sep", [True, False])
def test_the_network_is_the_formula_of_its_docstring(sep):
    torch.manual_seed(1)
    model = ResidualAttentionNet("gat", 5, 8, 3, heads=2, num_layers=2, dropout=0.3, sep=sep).double().eval()
    for conv in model.convs:  # a non-zero bias, so that a wrong place for it shows
        torch.nn.init.normal_(conv.bias)
    x, edge_index = _graph()
    with torch.no_grad():
        h = F.gelu(model.input(x))
        for norm, conv, ffn in zip(model.norms, model.convs, model.ffns, strict=True):
            z = norm(h)
            m = _dense_gat(conv, z, edge_index, self_loops=not sep)
            z = torch.cat([z, m], -1) if sep else m
            h = h + ffn.linear_2(F.gelu(ffn.linear_1(z)))
        expected = model.head(model.final_norm(h))
        assert torch.allclose(model(x, edge_index), expected, atol=1e-12)
        assert model.ffns[0].linear_1.in_features == (16 if sep else 8)


@pytest.mark.parametrize("kind", list(LAYERS))
def test_the_ego_never_enters_the_sep_softmax(kind):
    torch.manual_seed(2)
    x, edge_index = _graph()
    model = ResidualAttentionNet(kind, 5, 8, 3, heads=2, num_layers=2, sep=True).double().eval()
    assert all(not conv.add_self_loops for conv in model.convs)
    loops = torch.arange(7).repeat(2, 1)
    with torch.no_grad():
        plain = model(x, edge_index[:, edge_index[0] != edge_index[1]])
        assert torch.allclose(model(x, torch.cat([edge_index, loops], 1)), plain, atol=1e-12)
        assert torch.isfinite(plain[6]).all()  # no neighbour: the message is the bias alone
    shared = ResidualAttentionNet(kind, 5, 8, 3, heads=2, num_layers=2, sep=False).double().eval()
    assert all(conv.add_self_loops for conv in shared.convs)


@pytest.mark.parametrize("kind", KINDS)
def test_a_node_sees_its_in_neighbourhood_only_and_layers_keep_no_skip_of_their_own(kind):
    torch.manual_seed(3)
    x, edge_index = _graph()
    x.requires_grad_(True)
    model = ResidualAttentionNet(kind, 5, 8, 3, heads=2, num_layers=2).double().eval()
    model(x, edge_index)[4].sum().backward()
    reached = {i for i in range(7) if x.grad[i].abs().sum() > 0}
    # two blocks: node 4 hears 3 (and 3 hears 2 and itself); the MLP row hears node 4 alone
    assert reached == ({4} if kind == "none" else {2, 3, 4})
    for conv in model.convs:  # the block is the residual (dot owns lin_skip, as TransformerConv, unused)
        assert getattr(conv, conv.skip_argument) is False


@pytest.mark.parametrize("kind", ["gat", "metric", "none"])
def test_zeroed_blocks_leave_the_input_path(kind):
    torch.manual_seed(4)
    x, edge_index = _graph()
    model = ResidualAttentionNet(kind, 5, 8, 3, heads=2, num_layers=3).double().eval()
    with torch.no_grad():
        for ffn in model.ffns:
            ffn.linear_2.weight.zero_()
            ffn.linear_2.bias.zero_()
        expected = model.head(model.final_norm(F.gelu(model.input(x))))
        assert torch.allclose(model(x, edge_index), expected, atol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hidden": 10, "heads": 4}, "hidden 10 must be a multiple of heads 4"),
        ({"num_layers": 0}, "num_layers must be a positive integer"),
        ({"ffn_multiplier": 0}, "ffn_multiplier must be a positive integer"),
        ({"dropout": 1.0}, r"dropout must lie in \[0, 1\)"),
        ({"layer": "gcn"}, "Unknown layer 'gcn'"),
    ],
)
def test_bad_settings_are_named(kwargs, message):
    settings = {"layer": "gat", "in_channels": 5, "hidden": 8, "out_channels": 3, "heads": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        ResidualAttentionNet(**settings)
