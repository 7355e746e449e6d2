"""The ``tgma`` command line end to end on tiny settings, and its error messages."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.dataset_fixtures import copy_shared, write_maron, write_ogbn_arxiv, write_platonov_npz
from tests.plot_checks import drawn_series
from tg_metricattn.experiments.cli import main

TINY = ["--epochs", "3", "--heads", "2", "--hidden", "4", "--no-progress"]
PNG = b"\x89PNG"


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Copies of $TGMA_DATA go to a per-test cache, never to the home folder."""
    monkeypatch.setenv("TGMA_CACHE", str(tmp_path / "cache"))


def _final(out: Path, seed: int = 0) -> dict:
    return json.loads((out / f"run_{seed}" / "final.json").read_text())


def _recomputed_test_accuracy(out: Path) -> float:
    """The test accuracy of ``best_model.pt``, counted here vertex by vertex (node by node)."""
    from tg_metricattn.experiments.checkpoint import load_checkpoint
    from tg_metricattn.experiments.config import TrainConfig
    from tg_metricattn.experiments.tasks import build_task

    config = TrainConfig.from_json(out / "run_0" / "config.json")
    task = build_task(config)
    model = task.build_model(config)
    model.load_state_dict(load_checkpoint(out / "run_0" / "best_model.pt", required=("model",))["model"])
    model.eval()
    with torch.no_grad():
        if config.task == "node":
            mask = task.data.test_mask
            return float(
                (model(task.data.x, task.data.edge_index).argmax(-1)[mask] == task.data.y[mask]).double().mean()
            )
        hits = [(task.predict(model, mesh).argmax(-1) == mesh.y)[mesh.y >= 0] for mesh in task.splits["test"]]
    return float(torch.cat(hits).double().mean())


# -- bad arguments ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "required: COMMAND"),
        (["train", "--layer", "foo"], "invalid choice: 'foo'"),
        (["train", "--task", "edges"], "invalid choice: 'edges'"),
        (["train", "--epochs", "0"], "expected a positive integer"),
        (["train", "--num-neighbors", "ten"], "comma-separated integers"),
        (["compare", "--layers", "gat,foo"], "unknown layer(s) ['foo']"),
        (["train", "--layers", "2"], "for the depth use --num-layers 2"),
        (["ogb", "--dataset", "Cora"], "must be an OGB dataset"),
        (["train", "--resume", "/nonexistent/run"], "not an existing run folder"),
        (["train", "--task", "mesh", "--arch", "pointnet"], "invalid choice: 'pointnet'"),
        (["diagnose"], "--checkpoint"),
        (["train", "--splits", "3-1"], "expected increasing split numbers"),
        (["train", "--splits", "a-b"], "expected split numbers such as 0-9"),
        (["compare", "--layers", "gat,metric,gat"], "gat given twice: each layer is compared once"),
        (["diagnose", "--checkpoint", "x", "--num-eigs", "-3"], "expected an integer >= 0, got '-3'"),
        (["train", "--split", "1", "--splits", "0-9"], "not allowed with argument"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--dataset", "NoSuchGraph"], "Unknown node dataset 'NoSuchGraph'"),
        (["train", "--dropout", "1.5"], "--dropout must be in [0, 1)"),
        (["train", "--time-scale", "0"], "--time-scale must be 'auto' or a number in"),
        (["train", "--time-scale", "1e-39"], "--time-scale must be 'auto' or a number in [1.08e-19, 9.22e+18]"),
        (["train", "--time-scale", "1e300"], "--time-scale must be 'auto' or a number in [1.08e-19, 9.22e+18]"),
        (["train", "--time-scale", "soon"], "--time-scale must be 'auto' or a number in"),
        (["train", "--metric-weight-decay", "-1"], "--metric-weight-decay must be"),
        (["train", "--task", "graph", "--dataset", "Cora"], "needs an OGB graph dataset"),
        (["train", "--task", "mesh", "--dataset", "teapots"], "Unknown mesh dataset 'teapots'"),
        (["train", "--root", "/nonexistent/data"], "--root '/nonexistent/data' does not exist"),
        (["train", "--task", "mesh", "--dataset", "folder"], "needs --root"),
        (["train", "--device", "tpu"], "--device must be cpu, cuda, cuda:N or mps"),
        (["train", "--device", "mps"], "--device mps: Apple's MPS backend is not available here"),
        (["train", "--arch", "diffusion"], "--arch diffusion is a mesh network"),
        (["train", "--gradient-features"], "--gradient-features belongs to the mesh diffusion network"),
        (["train", "--task", "mesh", "--lr-step", "-1"], "--lr-step must be >= 0"),
        (["train", "--task", "mesh", "--features", "xyz,curv"], "--features must be comma-separated names from"),
        (["train", "--task", "mesh", "--features", "xyz,xyz"], "--features must be comma-separated names from"),
        (["train", "--lr", "inf"], "--lr must be a finite number > 0"),
        (["train", "--weight-decay", "nan"], "--weight-decay must be a finite number >= 0"),
        (["train", "--batch-size", "8", "--num-neighbors", "5"], "--num-neighbors gives one fan-out per layer: '5'"),
        (["train", "--batch-size", "8", "--num-layers", "3"], "'10,10' has 2 for --num-layers 3"),
        (["paper", "--lr", "inf"], "--lr must be a finite number > 0, got inf"),
        (["paper", "--weight-decay", "-1"], "--weight-decay must be a finite number >= 0"),
        (["paper", "--noise", "1e308"], "--noise must list numbers in [0, 1e+06]"),
    ],
)
def test_invalid_values_exit_1_with_a_message(argv, message, capsys, tmp_path):
    assert main([*argv, "--out", str(tmp_path / "out"), "--no-progress"]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out" / "run_0").exists()


def test_unusable_folders_are_named(capsys, tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    assert main(["train", "--root", str(tmp_path / "file"), "--no-progress", "--out", str(tmp_path / "o")]) == 1
    assert f"--root {str(tmp_path / 'file')!r} is a file" in capsys.readouterr().err
    root = tmp_path / "data"
    (root / "HeterophilousGraphDataset").mkdir(parents=True)  # PyG asserts on a name it does not know
    argv = ["train", "--dataset", "HeterophilousGraphDataset/chameleon_x", "--root", str(root), "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 1
    assert "HeterophilousGraphDataset does not know the dataset name 'chameleon_x'" in capsys.readouterr().err
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    # tests run as root here, who may write anywhere: take the permission answer from os.access itself
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode))
    assert main(["train", "--dataset", "csbm", "--no-progress", "--out", str(locked / "out")]) == 1
    assert f"--out {str(locked / 'out')!r} cannot be written" in capsys.readouterr().err
    assert not (locked / "out").exists()


def test_resume_after_the_config_was_edited_is_a_message(capsys, tmp_path):
    out = tmp_path / "out"
    args = ["train", "--dataset", "csbm", "--epochs", "2", "--patience", "5", "--no-progress", "--out", str(out)]
    assert main(args) == 0
    (out / "run_0" / "final.json").unlink()  # as if killed before the end
    for config_path in (out / "config.json", out / "run_0" / "config.json"):
        config = json.loads(config_path.read_text())
        config["hidden"], config["epochs"] = 16, 3
        config_path.write_text(json.dumps(config))
    assert main(["train", "--resume", str(out), "--no-progress"]) == 1
    assert "does not fit the model of" in capsys.readouterr().err


def test_a_diverging_run_stops_with_a_message_and_keeps_its_earlier_epochs(capsys, tmp_path):
    out = tmp_path / "out"
    assert (
        main(["train", "--dataset", "csbm", "--lr", "1e30", "--epochs", "5", "--no-progress", "--out", str(out)]) == 1
    )
    assert "epoch 2: the training loss is nan" in capsys.readouterr().err
    history = json.loads((out / "run_0" / "metrics.json").read_text())
    assert [r["epoch"] for r in history] == [1] and not (out / "run_0" / "final.json").exists()


def test_distributed_without_torchrun_explains_how_to_launch(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    assert main(["train", "--dataset", "csbm", "--distributed", "--out", str(tmp_path / "out")]) == 1
    assert "torchrun --nproc_per_node" in capsys.readouterr().err


def test_missing_data_root_gives_a_hint(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("TGMA_DATA", raising=False)
    assert main(["train", "--dataset", "Cora", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "data not found" in err and "TGMA_DATA" in err


def test_missing_dataset_under_the_root_gives_a_hint(capsys, tmp_path):
    (tmp_path / "data").mkdir()
    assert main(["train", "--task", "graph", "--dataset", "ogbg-molhiv", "--root", str(tmp_path / "data")]) == 1
    err = capsys.readouterr().err
    assert "ogb/ogbg_molhiv" in err and "network" in err


def test_diagnose_of_a_folder_without_a_run(capsys, tmp_path):
    assert main(["diagnose", "--checkpoint", str(tmp_path)]) == 1
    assert "holds no trained run" in capsys.readouterr().err


def test_console_script_is_installed():
    beside_python = Path(sys.executable).with_name("tgma")
    exe = str(beside_python) if beside_python.exists() else shutil.which("tgma")
    assert exe is not None, "the tgma console script is not installed (pip install -e .)"
    result = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert all(cmd in result.stdout for cmd in ("demo", "train", "compare", "ogb", "diagnose"))


# -- training end to end ------------------------------------------------------------------------


def test_train_cora_writes_a_complete_run_folder(tmp_path, capsys):
    copy_shared("Planetoid/Cora", tmp_path / "data")
    out = tmp_path / "cora"
    argv = ["train", "--dataset", "Cora", "--root", str(tmp_path / "data"), "--epochs", "20", "--no-progress"]
    assert main([*argv, "--out", str(out)]) == 0
    assert "test accuracy" in capsys.readouterr().out
    run = out / "run_0"
    config = json.loads((run / "config.json").read_text())
    assert (config["hidden"], config["heads"], config["layers"], config["dropout"]) == (8, 8, 2, 0.6)
    assert (config["lr"], config["weight_decay"]) == (0.005, 5e-4)
    assert config["normalize_features"] is True  # GAT's protocol for the Planetoid graphs
    history = json.loads((run / "metrics.json").read_text())
    assert [r["epoch"] for r in history] == list(range(1, 21))
    assert len((run / "metrics.csv").read_text().splitlines()) == 21
    final = _final(out)
    best = max(history, key=lambda r: (r["val_metric"], -r["val_loss"]))
    assert final["best_epoch"] == best["epoch"] and final["test_metric"] == best["test_metric"]
    # 7 classes, the largest 32% of the test nodes; seeds 0-4 (--seed) measured 0.675-0.777 at 20 epochs
    # (at 5 epochs, as this test once ran: 0.41-0.73, too spread to bound)
    assert 0.5 < final["test_metric"] <= 1.0
    assert final["num_parameters"] == 1433 * 64 + 2 * 64 + 64 + 64 * 7 + 2 * 7 + 7
    assert (run / "curves.png").read_bytes()[:4] == PNG
    state = torch.load(run / "best_model.pt", weights_only=True)
    assert state["epoch"] == final["best_epoch"]


def test_diagnose_loads_a_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--dataset", "csbm", "--layer", "metric", "--heads", "1", "--hidden", "4", "--epochs", "2"]
    assert main([*argv, "--no-progress", "--out", str(out)]) == 0
    diag = tmp_path / "diag"
    assert main(["diagnose", "--checkpoint", str(out), "--out", str(diag), "--num-eigs", "2"]) == 0
    report = json.loads((diag / "diagnostics.json").read_text())
    assert [layer["layer_type"] for layer in report["layers"]] == ["MetricAttnConv", "MetricAttnConv"]
    assert report["layers"][0]["num_nodes"] == 1000
    assert "rw: t*=" in capsys.readouterr().out
    assert (diag / "spectrum.png").read_bytes()[:4] == PNG
    assert main(["diagnose", "--checkpoint", str(out), "--out", str(tmp_path / "fast"), "--fast"]) == 0
    fast = json.loads((tmp_path / "fast" / "diagnostics.json").read_text())
    assert fast["fast"] is True and report["fast"] is False
    head = fast["layers"][0]["heads"][0]
    assert head["spectrum"] is None and head["fits"]["rw"]["t_high"] == 10  # rw: median L_ii = 1
    assert capsys.readouterr().out.startswith("fast setting: no spectra, t searched up to 10")


def test_train_synthetic_meshes_reports_per_vertex_accuracy(tmp_path):
    out = tmp_path / "mesh"
    argv = ["train", "--task", "mesh", "--dataset", "synthetic", "--num-meshes", "6", "--mesh-resolution", "8"]
    assert main([*argv, "--arch", "attention", "--layer", "metric", "--num-layers", "2", *TINY, "--out", str(out)]) == 0
    final = _final(out)
    assert final["data"]["num_train_meshes"] == 4 and final["data"]["num_test_meshes"] == 1
    # 3 epochs are too few to bound the test accuracy (seeds 0-4: 0.22-0.32 on one test mesh,
    # and 0.17-0.38 on two with 12 meshes, where chance is 1/6); what 3 epochs must show is a
    # falling training loss (seeds 0-4, both sizes: it fell by 0.05-0.19 from epoch 1 to 3)
    history = json.loads((out / "run_0" / "metrics.json").read_text())
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert final["test_metric"] == pytest.approx(_recomputed_test_accuracy(out), abs=1e-6)
    assert final["data"]["features"] == ["xyz"] and final["data"]["in_channels"] == 3


@pytest.mark.parametrize(("layer", "extra"), [("none", ["--no-gradient-features"]), ("metric", []), (None, [])])
def test_the_diffusion_net_is_the_default_for_meshes_and_learns(tmp_path, layer, extra):
    out = tmp_path / "mesh"
    argv = ["train", "--task", "mesh", "--dataset", "synthetic", "--num-meshes", "12", "--mesh-resolution", "8", *extra]
    argv += [] if layer is None else ["--layer", layer]  # None: the default, no attention
    argv += ["--num-layers", "2", "--hidden", "8", "--eigenpairs", "32", "--epochs", "40"]
    argv += ["--no-augment"]
    assert main([*argv, "--lr", "0.005", "--dropout", "0.0", "--no-progress", "--out", str(out)]) == 0
    final = _final(out)
    config = json.loads((out / "run_0" / "config.json").read_text())
    assert config["arch"] == "diffusion" and config["augment"] is False and config["lr_step"] == 50
    assert config["gradient_features"] == (not extra) and config["layer"] == (layer or "none")
    assert final["data"]["arch"] == "diffusion" and final["data"]["num_test_meshes"] == 2
    # Measured over seeds 0-4 (--seed), each variant: the first epoch's training loss falls by
    # 6x at least (last/first 0.00-0.17), test accuracy on the 2 test meshes 0.87-1.00 (chance
    # 1/6). With 8 meshes (one test mesh) one machine measured 0.67 for seed 0 where this one
    # gave 0.92: one mesh is too few to bound, so two, and bounds far below the measured ones.
    history = json.loads((out / "run_0" / "metrics.json").read_text())
    assert history[-1]["train_loss"] < history[0]["train_loss"] / 3
    assert final["test_metric"] > 0.6


def test_train_meshes_with_face_labels_reports_per_face_accuracy(tmp_path):
    counts = write_maron(tmp_path / "human")
    out = tmp_path / "out"
    argv = ["train", "--task", "mesh", "--dataset", "human", "--root", str(tmp_path / "human"), "--features", "xyz"]
    # labels by octant of identical unrotated spheres: learnable from xyz (chance is 1/8)
    assert main([*argv, *TINY, "--epochs", "20", "--no-augment", "--lr", "0.02", "--out", str(out)]) == 0
    final = _final(out)
    assert final["data"]["num_test_meshes"] == counts["test"]
    assert final["data"]["num_train_meshes"] + final["data"]["num_val_meshes"] == counts["train"]
    # seeds 0-4: per vertex 1.00 every time, per face 0.850-0.875 (faces across an octant
    # boundary take the label of their vertices' majority); all 8 test meshes count
    assert final["test_metric"] >= 0.9 and final["test_face_metric"] >= 0.75
    assert final["test_metric"] == pytest.approx(_recomputed_test_accuracy(out), abs=1e-6)
    history = json.loads((out / "run_0" / "metrics.json").read_text())
    assert all("val_face_metric" in r for r in history)


def test_train_rna_subset(tmp_path):
    copy_shared("rna_surface_segmentation", tmp_path / "data")
    out = tmp_path / "rna"
    argv = ["train", "--task", "mesh", "--dataset", "rna", "--root", str(tmp_path / "data"), "--limit", "2"]
    assert main([*argv, "--num-layers", "1", "--heads", "1", "--hidden", "4", "--epochs", "1", "--out", str(out)]) == 0
    final = _final(out)
    assert final["data"]["num_classes"] == 260
    assert final["data"]["num_train_meshes"] == 1 and final["data"]["num_val_meshes"] == 1
    assert final["test_metric"] == pytest.approx(_recomputed_test_accuracy(out), abs=1e-6)


def test_ogbn_fixture_full_batch_and_neighbor_sampling(tmp_path):
    write_ogbn_arxiv(tmp_path / "data", num_nodes=60, num_edges=200)
    for extra in ([], ["--batch-size", "8", "--num-neighbors", "3,2"]):
        out = tmp_path / f"arxiv{len(extra)}"
        argv = ["train", "--dataset", "ogbn-arxiv", "--root", str(tmp_path / "data"), *TINY, *extra]
        assert main([*argv, "--out", str(out)]) == 0
        final = _final(out)
        assert final["data"]["split"] == "official" and final["data"]["num_classes"] == 40
        assert final["test_metric"] == pytest.approx(_recomputed_test_accuracy(out), abs=1e-6)
        history = json.loads((out / "run_0" / "metrics.json").read_text())
        assert all(np.isfinite(r["train_loss"]) for r in history)


def test_ogb_protocol_on_molbace(tmp_path, capsys):
    copy_shared("ogb/ogbg_molbace", tmp_path / "data")
    out = tmp_path / "bace"
    argv = ["ogb", "--dataset", "ogbg-molbace", "--root", str(tmp_path / "data"), "--runs", "2", "--num-layers", "2"]
    assert main([*argv, *TINY[:2], "--heads", "2", "--hidden", "8", "--no-progress", "--out", str(out)]) == 0
    result = json.loads((out / "ogb.json").read_text())
    assert result["metric"] == "rocauc" and result["seeds"] == [0, 1]
    values = np.array(result["test_values"])
    assert np.all((values > 0) & (values < 1))
    assert result["test_std"] == pytest.approx(values.std(ddof=1))
    assert result["test_mean"] == pytest.approx(values.mean())
    assert result["versions"]["ogb"] == "1.3.6" and result["num_parameters"] > 0
    assert [_final(out, s)["test_metric"] for s in (0, 1)] == result["test_values"]
    row = capsys.readouterr().out
    assert "| SparseGATConv (2 layers, 2x8) |" in row and f"{result['test_mean']:.4f} ±" in row
    # tgma diagnose on an OGB run: the first test molecule, both attention layers
    diag = tmp_path / "diag"
    assert main(["diagnose", "--checkpoint", str(out / "run_0"), "--out", str(diag), "--num-eigs", "0"]) == 0
    report = json.loads((diag / "diagnostics.json").read_text())
    assert len(report["layers"]) == 2 and all(layer["num_nodes"] > 1 for layer in report["layers"])


def test_ogb_protocol_without_attention_names_the_mlp(tmp_path, capsys):
    copy_shared("ogb/ogbg_molbace", tmp_path / "data")
    out = tmp_path / "bace"
    argv = ["ogb", "--dataset", "ogbg-molbace", "--root", str(tmp_path / "data"), "--runs", "1", "--layer", "none"]
    assert main([*argv, "--num-layers", "2", *TINY[:2], "--hidden", "8", "--no-progress", "--out", str(out)]) == 0
    result = json.loads((out / "ogb.json").read_text())
    assert result["layer"] == "none" and result["method"].startswith("NoAttention (2 layers")
    assert "| NoAttention (2 layers" in capsys.readouterr().out


def test_compare_writes_table_and_plots(tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = ["compare", "--dataset", "csbm", "--layers", "gat,metric,none", "--seeds", "2", "--num-layers", "2"]
    assert main([*argv, *TINY, "--out", str(out)]) == 0
    result = json.loads((out / "compare.json").read_text())
    assert [r["layer"] for r in result["rows"]] == ["gat", "metric", "none"]
    for row in result["rows"]:
        assert len(row["test_values"]) == 2
        assert row["test_mean"] == pytest.approx(np.mean(row["test_values"]))
        assert row["test_std"] == pytest.approx(np.std(row["test_values"], ddof=1))
    table = (out / "compare.md").read_text()
    assert table.count("\n| gat |") + table.count("\n| metric |") == 2
    paired = result["rows"][1]["paired"]  # metric against gat on the same two seeds
    gat, metric = (np.array(r["test_values"]) for r in result["rows"][:2])
    assert paired["mean_difference"] == pytest.approx(float(np.mean(metric - gat)))
    assert "| metric − gat |" in table
    assert table in capsys.readouterr().out
    assert (out / "violin.png").read_bytes()[:4] == PNG
    assert drawn_series(out / "curves.png", 3) == [True, True, True]  # one curve (and band) per layer


def test_demo_quick(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "synthetic meshes" in out and "CSBM graph" in out and "t*=" in out
    assert (tmp_path / "demo" / "mesh_segmentation.png").read_bytes()[:4] == PNG
    assert (tmp_path / "demo" / "diagnostics" / "diagnostics.json").is_file()
    for kind in ("mesh", "graph"):
        for layer in ("gat", "metric", "none"):
            assert (tmp_path / "demo" / kind / layer / "run_0" / "curves.png").is_file()
    graph_metric = json.loads((tmp_path / "demo" / "graph" / "metric" / "run_0" / "config.json").read_text())
    assert graph_metric["time_scale"] == "auto"


def test_feature_normalisation_defaults_to_the_gat_protocol(tmp_path):
    from tg_metricattn.experiments.config import TrainConfig
    from tg_metricattn.experiments.tasks import build_task

    assert TrainConfig(dataset="CiteSeer").resolved().normalize_features is True
    assert TrainConfig(dataset="Amazon-Photo").resolved().normalize_features is False
    assert TrainConfig(dataset="Cora", normalize_features=False).resolved().normalize_features is False
    copy_shared("Planetoid/Cora", tmp_path / "data")
    root = str(tmp_path / "data")
    for normalize in (True, False):
        task = build_task(TrainConfig(dataset="Cora", root=root, normalize_features=normalize).resolved())
        sums = task.data.x.sum(dim=1)
        nonzero = sums > 0
        assert torch.allclose(sums[nonzero], torch.ones(int(nonzero.sum()))) == normalize


def test_two_data_roots_never_share_a_cached_copy(tmp_path, monkeypatch):
    from tg_metricattn.experiments.data import resolve_root

    good, bad = tmp_path / "good", tmp_path / "bad"
    copy_shared("Planetoid/Cora", good)
    copy_shared("Planetoid/Cora", bad)
    for raw in (bad / "Planetoid" / "Cora" / "raw").iterdir():
        raw.write_bytes(b"garbage")
    monkeypatch.setenv("TGMA_DATA", str(good))  # a $TGMA_DATA root is always used through a private copy
    first = resolve_root("Cora", None)
    monkeypatch.setenv("TGMA_DATA", str(bad))
    second = resolve_root("Cora", None)
    assert first != second
    assert (second / "Planetoid" / "Cora" / "raw" / "ind.cora.x").read_bytes() == b"garbage"
    assert main(["train", "--epochs", "1", "--no-progress", "--out", str(tmp_path / "o")]) == 1  # not good's data
    # the same source changed since it was copied: the copy follows it and drops what was processed from it
    monkeypatch.setenv("TGMA_DATA", str(good))
    (first / "Planetoid" / "Cora" / "processed").mkdir(exist_ok=True)
    (good / "Planetoid" / "Cora" / "raw" / "ind.cora.y").write_bytes(b"changed")
    assert resolve_root("Cora", None) == first
    assert (first / "Planetoid" / "Cora" / "raw" / "ind.cora.y").read_bytes() == b"changed"
    assert not (first / "Planetoid" / "Cora" / "processed").exists()


def test_a_split_with_an_empty_set_is_refused_and_its_sizes_can_be_set(tmp_path, capsys):
    copy_shared("Amazon/Photo", tmp_path / "data")
    argv = ["train", "--dataset", "Amazon-Photo", "--root", str(tmp_path / "data"), "--epochs", "1", "--no-progress"]
    assert main([*argv, "--train-per-class", "1000", "--val-per-class", "1000", "--out", str(tmp_path / "a")]) == 1
    err = capsys.readouterr().err
    assert "leaves an empty set" in err and " 0 test nodes" in err and "--train-per-class" in err
    assert not (tmp_path / "a" / "run_0" / "final.json").exists()
    assert main([*argv, "--train-per-class", "5", "--val-per-class", "10", "--out", str(tmp_path / "b")]) == 0
    final = _final(tmp_path / "b")
    assert final["data"]["num_nodes"] == 7650 and np.isfinite(final["test_metric"])


def test_a_shared_data_root_is_used_through_a_copy_and_never_written(tmp_path, monkeypatch):
    """$TGMA_DATA (e.g. ../shared/data, read-only for most users) is copied before PyG processes it."""
    shared = tmp_path / "shared"
    copy_shared("Planetoid/Cora", shared)
    for path in shared.rglob("*"):
        path.chmod(path.stat().st_mode & ~0o222)
    before = {str(p.relative_to(shared)): p.stat().st_mtime_ns for p in shared.rglob("*")}
    monkeypatch.setenv("TGMA_DATA", str(shared))
    assert main(["train", "--epochs", "1", "--no-progress", "--out", str(tmp_path / "out")]) == 0
    after = {str(p.relative_to(shared)): p.stat().st_mtime_ns for p in shared.rglob("*")}
    assert after == before  # nothing processed, added or touched in the shared folder
    cache = tmp_path / "cache"
    assert any(p.name == "processed" for p in cache.rglob("processed"))  # processed in the private copy


def test_paired_comparison_against_values_worked_out_by_hand():
    from tg_metricattn.experiments.compare import paired_comparison

    a = [0.80, 0.82, 0.81, 0.79, 0.83]
    b = [0.70, 0.71, 0.73, 0.72, 0.70]
    c = paired_comparison(a, b)
    d = np.array(a) - np.array(b)  # 0.10, 0.11, 0.08, 0.07, 0.13
    half = 2.7764451051977987 * d.std(ddof=1) / np.sqrt(5)  # t_{0.975, 4}
    assert c["mean_difference"] == pytest.approx(0.098)
    assert c["ci95"] == pytest.approx([0.098 - half, 0.098 + half])
    assert c["wilcoxon_p"] == pytest.approx(2 / 2**5)  # exact: all 5 signs positive, two-sided
    assert c["verdict"] == "higher"
    tie = paired_comparison([0.8, 0.7, 0.9], [0.7, 0.8, 0.9])
    assert tie["verdict"] == "tie" and tie["mean_difference"] == pytest.approx(0.0)
    assert paired_comparison([0.5], [0.5]) == {
        "runs": 1,
        "mean_difference": 0.0,
        "ci95": None,
        "wilcoxon_p": None,
        "verdict": "one run: untested",
    }
    assert paired_comparison([0.6], [0.5])["verdict"] == "one run: untested"  # +10 points is no evidence
    with pytest.raises(ValueError, match="same seeds"):
        paired_comparison([0.1, 0.2], [0.1])


def test_time_scale_auto_reaches_the_metric_layers(tmp_path):
    from tg_metricattn.experiments.checkpoint import load_checkpoint
    from tg_metricattn.experiments.config import TrainConfig
    from tg_metricattn.experiments.tasks import build_task

    config = TrainConfig(dataset="csbm", layer="metric", time_scale="auto").resolved()
    model = build_task(config).build_model(config)
    assert [conv.auto_time_scale for conv in model.convs] == [True, True]
    gat = TrainConfig(dataset="csbm", layer="gat", time_scale="auto").resolved()
    assert gat.layer_kwargs() == {}  # only metric attention has a time scale
    out = tmp_path / "auto"
    argv = ["train", "--dataset", "csbm", "--layer", "metric", "--time-scale", "auto", *TINY, "--out", str(out)]
    assert main(argv) == 0
    state = load_checkpoint(out / "run_0" / "best_model.pt")["model"]
    assert not bool(state["convs.0.time_scale_unset"]) and not bool(state["convs.1.time_scale_unset"])


def test_time_scale_auto_beats_the_default_on_the_csbm_graph(tmp_path):
    """The recipe behind the demo's CSBM setting: on validation accuracy, metric attention with t
    from the median distance is well above the default t = sqrt(8) (seed 0, 200 epochs: 0.925
    against 0.867 on this machine; seeds 0-9: above it on every seed, by 0.025 at least and 0.074
    on average). The bound is the sign of the gap, not a size that the smallest gap nearly meets."""
    val = {}
    for scale in ("auto", None):
        out = tmp_path / str(scale)
        extra = ["--time-scale", scale] if scale else []
        argv = ["train", "--dataset", "csbm", "--layer", "metric", *extra, "--no-progress", "--out", str(out)]
        assert main(argv) == 0
        val[scale] = json.loads((out / "run_0" / "final.json").read_text())["val_metric"]
    assert val["auto"] > val[None], val


@pytest.mark.parametrize("layer", ["gat", "l2", "metric", "dot"])
def test_root_weight_gives_every_kind_a_skip_term(layer, tmp_path):
    from tg_metricattn.experiments.checkpoint import load_checkpoint
    from tg_metricattn.experiments.config import TrainConfig
    from tg_metricattn.experiments.tasks import build_task

    def skip_terms(extra: list[str]) -> list[bool]:
        out = tmp_path / f"{layer}-{'-'.join(extra)}"
        assert main(["train", "--dataset", "csbm", "--layer", layer, *extra, *TINY, "--out", str(out)]) == 0
        config = TrainConfig.from_json(out / "run_0" / "config.json")
        model = build_task(config).build_model(config)
        model.load_state_dict(load_checkpoint(out / "run_0" / "best_model.pt")["model"])  # strict: same modules
        # dot attention always owns lin_skip (as TransformerConv) and adds it when root_weight is set
        return [conv.root_weight if layer == "dot" else conv.res is not None for conv in model.convs]

    assert skip_terms(["--root-weight"]) == [True, True]
    assert skip_terms(["--no-root-weight"]) == [False, False]
    assert skip_terms([]) == [layer == "dot"] * 2  # the default: each layer's own


def test_layer_none_is_the_same_network_as_an_mlp():
    from tg_metricattn.models import AttentionNet

    torch.manual_seed(0)
    model = AttentionNet("none", 5, 4, 3, heads=2, num_layers=2).eval()
    x = torch.randn(6, 5)
    edges = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
    first, second = model.convs
    expected = second.lin(torch.nn.functional.elu(first.lin(x)))
    torch.testing.assert_close(model(x, edges), expected)
    torch.testing.assert_close(model(x, torch.empty(2, 0, dtype=torch.long)), expected)  # the graph is not used
    assert sum(p.numel() for p in model.parameters()) == (5 * 8 + 8) + (8 * 3 + 3)


def test_splits_run_every_split_and_report_roc_auc_for_minesweeper(tmp_path):
    """Platonov et al.'s protocol: one run per published split, ROC-AUC, mean ± std over the splits."""
    from sklearn.metrics import roc_auc_score

    from tg_metricattn.datasets import load_node_dataset
    from tg_metricattn.experiments.checkpoint import load_checkpoint
    from tg_metricattn.experiments.config import TrainConfig
    from tg_metricattn.experiments.tasks import build_task

    copy_shared("Heterophilous/minesweeper", tmp_path / "data")
    out = tmp_path / "ms"
    argv = ["train", "--dataset", "Minesweeper", "--root", str(tmp_path / "data"), "--splits", "1-2", *TINY]
    assert main([*argv, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metric"] == "roc_auc" and summary["splits"] == [1, 2]
    assert summary["test_metric_mean"] == pytest.approx(np.mean(summary["test_metric_values"]))
    for k, final in zip((1, 2), summary["finals"], strict=True):
        assert final["split"] == k and final["data"]["split_index"] == k
        run = out / f"split_{k}" / "run_0"
        config = TrainConfig.from_json(run / "config.json")
        model = build_task(config).build_model(config)
        model.load_state_dict(load_checkpoint(run / "best_model.pt")["model"])
        data, _ = load_node_dataset("Minesweeper", tmp_path / "data", split=k)
        with torch.no_grad():
            prob = model.eval()(data.x, data.edge_index).softmax(-1)[:, 1]
        expected = roc_auc_score(data.y[data.test_mask].numpy(), prob[data.test_mask].numpy())
        assert final["test_metric"] == pytest.approx(expected, abs=1e-6)


def test_compare_over_splits_pairs_runs_by_split(tmp_path):
    copy_shared("Heterophilous/minesweeper", tmp_path / "data")
    out = tmp_path / "cmp"
    argv = ["compare", "--dataset", "Minesweeper", "--root", str(tmp_path / "data"), "--splits", "0,4"]
    assert main([*argv, "--layers", "gat,none", "--seeds", "1", "--num-layers", "2", *TINY, "--out", str(out)]) == 0
    result = json.loads((out / "compare.json").read_text())
    assert [r["runs"] for r in result["rows"]] == [2, 2] and result["rows"][1]["paired"]["runs"] == 2
    assert (out / "none" / "split_4" / "run_0" / "final.json").is_file()
    assert "roc_auc" in (out / "compare.md").read_text()


def test_filtered_chameleon_by_name_over_splits(tmp_path):
    write_platonov_npz(tmp_path / "data", num_nodes=30)
    out = tmp_path / "cham"
    argv = ["train", "--dataset", "chameleon-filtered", "--root", str(tmp_path / "data"), "--splits", "0,9", *TINY]
    assert main([*argv, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["splits"] == [0, 9] and summary["metric"] == "accuracy"
    assert [f["data"]["split_index"] for f in summary["finals"]] == [0, 9]


def test_paired_table_keeps_four_digits_for_metrics_other_than_accuracy():
    from tg_metricattn.experiments.compare import paired_comparison, paired_table

    gat, metric = [0.870, 0.860, 0.880], [0.865, 0.857, 0.874]
    rows = [{"layer": "gat", "metric": "roc_auc"}, {"layer": "metric", "metric": "roc_auc"}]
    rows[1]["paired"] = paired_comparison(metric, gat)
    assert "| metric − gat | -0.0047 |" in paired_table(rows)
    rows = [{**row, "metric": "accuracy"} for row in rows]
    assert "| metric − gat | -0.47 |" in paired_table(rows)  # accuracy in points
