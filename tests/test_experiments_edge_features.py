"""The OGB graph task gives every attention layer the molecules' bond features (BondEncoder, as OGB's
examples), ``--no-edge-features`` drops them, older runs load as they were trained, and the diagnostics
see the same attention the model computes."""

from __future__ import annotations

import pytest
import torch

from tests.dataset_fixtures import copy_shared
from tg_metricattn.diagnostics.propagation import capture_layer_inputs
from tg_metricattn.experiments.cli import main
from tg_metricattn.experiments.config import TrainConfig
from tg_metricattn.experiments.tasks import build_task
from tg_metricattn.experiments.training import load_trained_model
from tg_metricattn.layers import AttentionConv


@pytest.fixture
def molbace(tmp_path, monkeypatch):
    monkeypatch.setenv("TGMA_CACHE", str(tmp_path / "cache"))
    copy_shared("ogb/ogbg_molbace", tmp_path / "data")
    return tmp_path / "data"


def _config(root, **settings) -> TrainConfig:
    return TrainConfig(task="graph", dataset="ogbg-molbace", root=str(root), epochs=1, **settings).resolved()


@pytest.mark.parametrize("layer", ["gat", "gatv2", "dot", "l2", "metric"])
def test_every_kind_reads_the_bond_features(molbace, layer):
    config = _config(molbace, layer=layer)
    assert config.edge_features is True
    task = build_task(config)
    model = task.build_model(config).eval()
    convs = [m for m in model.modules() if isinstance(m, AttentionConv)]
    assert type(model.edge_encoder).__name__ == "BondEncoder" and all(c.edge_dim == 64 for c in convs)
    graph = task.diagnostic_data()
    out = model(**model.inputs(graph))
    other_bonds = graph.edge_attr.roll(1, dims=0)  # the same bonds, each on another edge
    assert not torch.allclose(out, model(graph.x, graph.edge_index, edge_attr=other_bonds))
    captured, _ = capture_layer_inputs(model, **model.inputs(graph))
    assert all(edge_attr is not None and edge_attr.size(1) == 64 for _, _, edge_attr in captured.values())


def test_no_edge_features_and_the_mlp_row_read_no_bonds(molbace):
    for settings in ({"layer": "gat", "edge_features": False}, {"layer": "none"}):
        config = _config(molbace, **settings)
        model = build_task(config).build_model(config)
        assert model.edge_encoder is None
        assert all(c.edge_dim is None for c in model.modules() if isinstance(c, AttentionConv))


def test_the_command_line_and_older_runs(molbace, tmp_path, capsys):
    base = ["ogb", "--dataset", "ogbg-molbace", "--root", str(molbace), "--epochs", "1", "--no-progress"]
    assert main([*base, "--layer", "gat", "--no-edge-features", "--out", str(tmp_path / "plain")]) == 0
    plain = TrainConfig.from_json(tmp_path / "plain" / "run_0" / "config.json")
    assert plain.edge_features is False
    model = load_trained_model(build_task(plain), tmp_path / "plain" / "run_0")
    assert model.edge_encoder is None
    stored = plain.to_dict()
    del stored["edge_features"]  # a config.json written before edge features existed
    assert TrainConfig.from_dict(stored).resolved().edge_features is False
    assert main(["train", "--dataset", "csbm", "--edge-features", "--out", str(tmp_path / "n")]) == 1
    assert "--edge-features belongs to the graph task" in capsys.readouterr().err
