"""``tgma train|compare --arch flow``: the options reach the model, T is learned without weight decay,
``tgma diagnose`` reports the whole flow, and what cannot be a flow is refused with one line."""

from __future__ import annotations

import json

import pytest

from tg_metricattn.experiments.cli import main
from tg_metricattn.experiments.config import TrainConfig
from tg_metricattn.experiments.tasks import build_task
from tg_metricattn.experiments.training import build_optimizer, load_trained_model
from tg_metricattn.models import AttentionFlowNet

QUICK = ["--dataset", "csbm", "--epochs", "3", "--heads", "2", "--hidden", "8", "--no-progress", "--arch", "flow"]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TGMA_CACHE", str(tmp_path / "cache"))


def test_the_flow_options_reach_the_model_and_diagnose_reports_the_flow(tmp_path, capsys):
    out = tmp_path / "r"
    argv = ["train", *QUICK, "--layer", "metric", "--flow-time", "2", "--flow-steps", "3", "--flow-method", "rk4"]
    assert main([*argv, "--flow-dynamics", "nonlinear", "--density-exponent", "1", "--out", str(out)]) == 0
    config = TrainConfig.from_json(out / "run_0" / "config.json")
    assert (config.flow_time, config.flow_steps, config.flow_method, config.flow_dynamics) == (
        2.0,
        3,
        "rk4",
        "nonlinear",
    )
    model = load_trained_model(build_task(config), out / "run_0")
    assert isinstance(model, AttentionFlowNet) and (model.steps, model.method, model.dynamics) == (
        3,
        "rk4",
        "nonlinear",
    )
    assert model.conv.density_exponent == 1.0
    assert float(model.flow_time().detach()) != pytest.approx(2.0, abs=1e-6)  # T was trained
    capsys.readouterr()
    assert main(["diagnose", "--checkpoint", str(out / "run_0"), "--num-eigs", "0"]) == 0
    printed = capsys.readouterr().out
    assert "flow: T=" in printed and "in 3 rk4 steps, nonlinear dynamics" in printed and "flow[1]" in printed


def test_the_source_term_reaches_the_model_and_diagnose_says_it_fits_no_heat_flow(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", *QUICK, "--layer", "gat", "--flow-source", "--out", str(out)]) == 0
    config = TrainConfig.from_json(out / "run_0" / "config.json")
    assert config.flow_source is True
    model = load_trained_model(build_task(config), out / "run_0")
    assert model.source and float(model.source_weight.detach()) != 1.0  # β was trained
    capsys.readouterr()
    assert main(["diagnose", "--checkpoint", str(out / "run_0"), "--num-eigs", "0"]) == 0
    printed = capsys.readouterr().out
    assert "source term β x(0): not a heat flow" in printed and "flow[0]" not in printed
    assert TrainConfig(dataset="csbm", arch="flow").resolved().flow_source is False


def test_defaults_and_no_weight_decay_on_the_time():
    config = TrainConfig(dataset="csbm", arch="flow").resolved()
    assert (config.hidden, config.heads, config.layers, config.flow_steps, config.flow_method) == (64, 8, 1, 6, "euler")
    assert (config.flow_time, config.flow_dynamics, config.layer) == (3.0, "linear", "gat")
    model = build_task(config).build_model(config)
    groups = build_optimizer(model, config).param_groups
    assert groups[-1]["params"] == [model.log_time] and groups[-1]["weight_decay"] == 0.0
    assert all(p is not model.log_time for g in groups[:-1] for p in g["params"])
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    plain = TrainConfig(dataset="csbm").resolved()
    assert (
        plain.flow_time is None and len(build_optimizer(build_task(plain).build_model(plain), plain).param_groups) == 1
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--flow-time", "7"], "--flow-time 7.0 needs at least 7 --flow-steps (now 6)"),
        (["--flow-time", "0"], "--flow-time must be a finite number > 0"),
        (["--flow-steps", "2000"], "--flow-steps must be in 1..1000"),
        (["--layer", "none"], "--arch flow integrates an attention's propagation"),
        (["--num-layers", "2"], "set the number of steps with --flow-steps"),
        (["--batch-size", "16"], "--arch flow integrates over the whole graph: drop --batch-size"),
        (["--root-weight"], "--root-weight has no place in --arch flow"),
        (["--hidden", "9"], "--arch flow: --hidden 9 is the model width and must be a multiple of --heads 2"),
    ],
)
def test_what_cannot_be_a_flow_is_refused(argv, message, tmp_path, capsys):
    assert main(["train", *QUICK, *argv, "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["--flow-time", "2"],
        ["--flow-source"],
        ["--flow-method", "rk4", "--arch", "residual"],
        ["--flow-steps", "3", "--task", "mesh", "--dataset", "synthetic"],
    ],
)
def test_flow_options_without_the_flow_are_refused(argv, tmp_path, capsys):
    assert main(["train", "--dataset", "csbm", "--no-progress", *argv, "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "belongs to the heat-flow model (--arch flow)" in err and err.count("\n") == 1


def test_the_flow_is_refused_on_meshes(tmp_path, capsys):
    argv = ["train", "--task", "mesh", "--dataset", "synthetic", "--arch", "flow", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 1
    assert "--arch flow is a node classifier (--task node), got --task mesh" in capsys.readouterr().err


def test_the_flow_learns_a_homophilous_graph_beyond_the_mlp(tmp_path, capsys):
    """csbm, 30 epochs, 5 seeds each (measured: GAT flow 0.757 ± 0.045 test, MLP 0.386 ± 0.020): the
    flow's mean test accuracy is 0.2 above the MLP's, and its worst seed above the MLP's best."""
    scores = {}
    for name, extra in (("flow", ["--arch", "flow", "--hidden", "16"]), ("mlp", ["--layer", "none"])):
        out = tmp_path / name
        argv = ["train", "--dataset", "csbm", "--epochs", "30", "--runs", "5", "--heads", "2", "--no-progress"]
        assert main([*argv, *extra, "--out", str(out)]) == 0
        scores[name] = [json.loads((out / f"run_{s}" / "final.json").read_text())["test_metric"] for s in range(5)]
    assert sum(scores["flow"]) / 5 > sum(scores["mlp"]) / 5 + 0.2
    assert min(scores["flow"]) > max(scores["mlp"])
