"""``--density-exponent`` / ``--learn-density-exponent``: they reach every attention layer of every
architecture, and what cannot take them is refused with one line."""

from __future__ import annotations

import pytest
import torch

from tg_metricattn.experiments.cli import main
from tg_metricattn.experiments.config import TrainConfig
from tg_metricattn.experiments.tasks import build_task
from tg_metricattn.experiments.training import load_trained_model
from tg_metricattn.layers import AttentionConv

QUICK = ["--dataset", "csbm", "--epochs", "3", "--heads", "2", "--hidden", "4", "--no-progress"]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TGMA_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("arch", [[], ["--arch", "residual", "--hidden", "8"]])
def test_the_exponent_reaches_every_layer_and_a_learned_one_is_saved(tmp_path, arch):
    out = tmp_path / "r"
    argv = ["train", *QUICK, "--layer", "metric", *arch, "--density-exponent", "0.5", "--learn-density-exponent"]
    assert main([*argv, "--out", str(out)]) == 0
    config = TrainConfig.from_json(out / "run_0" / "config.json")
    assert (config.density_exponent, config.learn_density_exponent) == (0.5, True)
    model = load_trained_model(build_task(config), out / "run_0")
    convs = [m for m in model.modules() if isinstance(m, AttentionConv)]
    assert convs and all(c.density_exponent == 0.5 and c.learn_density_exponent for c in convs)
    assert all(not torch.equal(c.density_exponent_param, torch.full_like(c.density_exponent_param, 0.5)) for c in convs)
    plain = TrainConfig(dataset="csbm").resolved()
    assert "density_exponent" not in plain.layer_kwargs()  # older runs build the same layers


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--density-exponent", "1.5"], "--density-exponent must be in [0, 1]"),
        (["--density-exponent", "nan"], "--density-exponent must be in [0, 1]"),
        (["--density-exponent", "1", "--layer", "none"], "--layer none has none"),
        (["--learn-density-exponent", "--batch-size", "8"], "--density-exponent needs full-batch training"),
    ],
)
def test_what_cannot_take_it_is_refused(argv, message, tmp_path, capsys):
    assert main(["train", *QUICK, *argv, "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
