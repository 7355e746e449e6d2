"""The attention ablation: every kind propagates the uniform mean (or its density-normalised form) inside
``uniform_attention``, gets its learned score back after, also after an error; ``tgma diagnose --ablation``
reports a trained run's metric with and without its learned attention."""

from __future__ import annotations

import json

import pytest
import torch

from tests.layer_cases import random_graph
from tg_metricattn import DotAttnConv, L2AttnConv, MetricAttnConv, SparseGATConv, SparseGATv2Conv
from tg_metricattn.diagnostics import uniform_attention
from tg_metricattn.experiments.cli import main
from tg_metricattn.models import ResidualAttentionNet

KINDS = [SparseGATConv, SparseGATv2Conv, DotAttnConv, L2AttnConv, MetricAttnConv]


def _weights(layer, x, edge_index):
    _, (used, alpha) = layer(x, edge_index, return_attention_weights=True)
    return used, alpha


@pytest.mark.parametrize("cls", KINDS)
@pytest.mark.parametrize("propagation", ["csr", "scatter"])
@pytest.mark.parametrize("self_loops", [True, False])
def test_every_kind_propagates_the_uniform_mean_inside_and_its_own_score_after(cls, propagation, self_loops):
    edge_index, gen = random_graph(12, 45, seed=3)
    x = 3 * torch.randn(12, 5, generator=gen, dtype=torch.float64)
    layer = cls(5, 4, heads=2, add_self_loops=self_loops, propagation=propagation).double().eval()
    _, learned = _weights(layer, x, edge_index)
    with uniform_attention(layer) as ablated:
        assert ablated == [layer]
        used, alpha = _weights(layer, x, edge_index)
        out = layer(x, edge_index)
    in_degree = torch.bincount(used[1], minlength=12).to(alpha.dtype)
    assert torch.allclose(alpha, (1 / in_degree[used[1]]).unsqueeze(-1).expand_as(alpha), atol=1e-12)
    assert not torch.allclose(learned, alpha, atol=1e-3)  # the learned score was not uniform to begin with
    # the output is the values' neighbourhood mean through the same layer: the weights changed, nothing else
    value_layer = cls(5, 4, heads=2, add_self_loops=self_loops, propagation=propagation).double().eval()
    value_layer.load_state_dict(layer.state_dict())
    value_layer.uniform_scores = True
    assert torch.equal(out, value_layer(x, edge_index))
    _, after = _weights(layer, x, edge_index)
    assert torch.equal(after, learned)


@pytest.mark.parametrize("cls", [SparseGATConv, MetricAttnConv])
def test_under_density_normalisation_the_ablation_is_the_normalised_uniform_kernel(cls):
    # K_ij = 1 on the edges; divided by q_j^alpha with q_j = |N(j)|, then normalised over i's edges
    edge_index, gen = random_graph(10, 36, seed=5)
    x = torch.randn(10, 4, generator=gen, dtype=torch.float64)
    layer = cls(4, 3, heads=2, density_exponent=1.0).double().eval()
    with uniform_attention(layer):
        used, alpha = _weights(layer, x, edge_index)
    in_degree = torch.bincount(used[1], minlength=10).to(alpha.dtype)
    kernel = 1 / in_degree[used[0]]
    row_sum = torch.zeros(10, dtype=alpha.dtype).index_add_(0, used[1], kernel)
    expected = kernel / row_sum[used[1]]
    assert torch.allclose(alpha, expected.unsqueeze(-1).expand_as(alpha), atol=1e-12)
    assert not torch.allclose(expected, 1 / in_degree[used[1]])  # the density term does change the weights


def test_the_learned_scores_come_back_after_an_error_and_a_model_without_attention_is_refused():
    model = ResidualAttentionNet("metric", 4, 8, 2, heads=2, num_layers=2)
    with pytest.raises(RuntimeError, match="inside"), uniform_attention(model) as layers:
        assert len(layers) == 2 and all(layer.uniform_scores for layer in layers)
        raise RuntimeError("inside")
    assert not any(layer.uniform_scores for layer in layers)
    with pytest.raises(ValueError, match="no attention layer"), uniform_attention(torch.nn.Linear(3, 2)):
        pass


def test_diagnose_ablation_reports_the_run_with_and_without_its_attention(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TGMA_CACHE", str(tmp_path / "cache"))
    small = ["--dataset", "csbm", "--arch", "residual", "--hidden", "16", "--heads", "2", "--num-layers", "2"]
    out = tmp_path / "c"
    argv = ["compare", *small, "--lr", "3e-3", "--epochs", "30", "--seeds", "1", "--layers", "gat,none"]
    assert main([*argv, "--no-progress", "--out", str(out)]) == 0
    run = out / "gat" / "run_0"
    capsys.readouterr()
    assert main(["diagnose", "--checkpoint", str(run), "--num-eigs", "0", "--ablation"]) == 0
    printed = capsys.readouterr().out
    ablation = json.loads((run / "diagnostics" / "ablation.json").read_text())
    final = json.loads((run / "final.json").read_text())
    # the learned side is the trained run as selected: its final.json, evaluated again
    assert ablation["learned"]["val_metric"] == pytest.approx(final["val_metric"], abs=1e-6)
    assert ablation["learned"]["test_metric"] == pytest.approx(final["test_metric"], abs=1e-6)
    change = ablation["uniform_minus_learned"]
    for key in ("val_metric", "test_metric"):
        assert change[key] == pytest.approx(ablation["uniform"][key] - ablation["learned"][key])
        assert f"ablation {key}: learned {ablation['learned'][key]:.4f}" in printed
    assert ablation["uniform"]["val_loss"] != ablation["learned"]["val_loss"]  # the ablation changed the model
    assert main(["diagnose", "--checkpoint", str(out / "none" / "run_0"), "--num-eigs", "0", "--ablation"]) == 1
    assert "no attention layer" in capsys.readouterr().err
