"""A results folder is never mixed, damaged or lost: options are validated before anything is removed,
resumed folders must hold runs of the same settings, damaged records are refused by name, and every
command refuses an ``--out`` that cannot hold results (issue 25's hostile probe, items 2-5, 8, 11, 14,
18, 20, 22)."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.dataset_fixtures import write_ogbn_arxiv, write_platonov_npz
from tg_metricattn.atomic_files import atomic_write_json, read_json
from tg_metricattn.experiments.cli import main
from tg_metricattn.experiments.run_folder import check_out_folder

QUICK = ["--dataset", "csbm", "--epochs", "2", "--heads", "2", "--hidden", "4", "--no-progress"]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TGMA_CACHE", str(tmp_path / "cache"))


def _names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_overwrite_with_a_bad_option_deletes_nothing(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", *QUICK, "--runs", "2", "--out", str(out)]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    # refused by the config (csbm has no published splits) and by the data (an unknown dataset)
    assert main(["train", *QUICK, "--split", "3", "--overwrite", "--out", str(out)]) == 1
    assert main(["train", *QUICK[2:], "--dataset", "nowhere", "--overwrite", "--out", str(out)]) == 1
    capsys.readouterr()
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_overwrite_replaces_every_earlier_run(tmp_path):
    out = tmp_path / "r"
    assert main(["train", *QUICK, "--runs", "2", "--out", str(out)]) == 0
    (out / "notes.txt").write_text("mine")
    assert main(["train", *QUICK, "--seed", "5", "--overwrite", "--out", str(out)]) == 0
    assert _names(out) - {".lock"} == {"config.json", "run_5", "summary.json", "notes.txt"}  # notes kept
    assert read_json(out / "summary.json")["seeds"] == [5]


def test_compare_refuses_a_folder_of_other_settings(tmp_path, capsys):
    out = tmp_path / "c"
    base = ["compare", *QUICK, "--seeds", "1", "--layers", "gat,metric", "--out", str(out)]
    assert main(base) == 0
    capsys.readouterr()
    assert main([*base, "--epochs", "3"]) == 1
    assert "holds results of other settings (epochs 2 there, 3 here)" in capsys.readouterr().err
    assert main([*base, "--dataset", "Cora"]) == 1
    assert "holds results of other settings (dataset 'csbm' there, 'Cora' here" in capsys.readouterr().err
    assert main([*base, "--seeds", "2"]) == 0  # more seeds of the same settings: resumed


def test_compare_takes_more_or_fewer_splits_of_the_same_settings(tmp_path, capsys):
    write_platonov_npz(tmp_path / "data", num_nodes=30)
    argv = ["compare", "--dataset", "chameleon-filtered", "--root", str(tmp_path / "data"), *QUICK[2:]]
    argv += ["--seeds", "1", "--layers", "gat", "--out", str(tmp_path / "c")]
    assert main([*argv, "--splits", "0-2"]) == 0
    run = tmp_path / "c" / "gat" / "split_1" / "run_0" / "final.json"
    written = run.read_bytes()
    assert main([*argv, "--splits", "0-1"]) == 0  # fewer: read, not run again
    assert run.read_bytes() == written
    assert "| gat | " in capsys.readouterr().out
    assert main([*argv, "--splits", "0-3"]) == 0 and run.read_bytes() == written  # more: one new run
    assert read_json(tmp_path / "c" / "compare.json")["rows"][0]["runs"] == 4
    assert main([*argv, "--splits", "0-1", "--epochs", "3"]) == 1  # another setting still is refused
    assert "epochs 2 there, 3 here" in capsys.readouterr().err


def test_ogb_refuses_another_layers_folder(tmp_path, capsys):
    write_ogbn_arxiv(tmp_path / "data", num_nodes=60, num_edges=200)
    argv = ["ogb", "--dataset", "ogbn-arxiv", "--root", str(tmp_path / "data"), *QUICK[2:], "--runs", "1"]
    out = ["--out", str(tmp_path / "o")]
    assert main([*argv, "--layer", "metric", *out]) == 0
    capsys.readouterr()
    assert main([*argv, "--layer", "gat", *out]) == 1
    assert "layer 'metric' there, 'gat' here" in capsys.readouterr().err


def test_a_nan_metric_in_a_reused_record_is_refused_by_name(tmp_path, capsys):
    out = tmp_path / "c"
    base = ["compare", *QUICK, "--seeds", "2", "--layers", "gat,metric", "--out", str(out)]
    assert main(base) == 0
    final = out / "metric" / "run_1" / "final.json"
    record = json.loads(final.read_text())
    for damaged in ({**record, "test_metric": None}, {**record, "val_metric": "high"}, [1, 2]):
        final.write_text(json.dumps(damaged))
        capsys.readouterr()
        assert main(base) == 1
        err = capsys.readouterr().err
        assert str(final) in err and "not a finished run's record" in err
    final.write_text(json.dumps(record).replace(str(record["test_metric"]), "NaN"))
    assert main(base) == 1
    assert f"{final}: not a readable JSON file (NaN is not a JSON number)" in capsys.readouterr().err
    assert "NaN" not in (out / "compare.json").read_text()


def test_json_is_written_strict_and_its_errors_name_the_file(tmp_path):
    path = tmp_path / "x.json"
    atomic_write_json(path, {"a": math.nan, "b": [math.inf, 1.5], "c": (2, -math.inf)})
    assert json.loads(path.read_text()) == {"a": None, "b": [None, 1.5], "c": [2, None]}
    path.write_text('{"a": 1,')
    with pytest.raises(ValueError, match=r"x\.json: not a readable JSON file"):
        read_json(path)
    with pytest.raises(ValueError, match=r"nope\.json: not a readable JSON file"):
        read_json(tmp_path / "nope.json")


def test_damaged_metrics_and_config_are_named(tmp_path, capsys):
    out = tmp_path / "c"
    base = ["compare", *QUICK, "--seeds", "1", "--layers", "gat", "--out", str(out)]
    assert main(base) == 0
    metrics = out / "gat" / "run_0" / "metrics.json"
    metrics.write_text('[{"train_loss": "oops", "val_metric": 1}]')
    capsys.readouterr()
    assert main(base) == 1
    assert f"{metrics}: not a run's per-epoch metrics" in capsys.readouterr().err
    config = out / "gat" / "config.json"
    config.write_text("{oops")
    assert main(base) == 1
    assert f"{config}: not a readable JSON file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["train", *QUICK],
        ["compare", *QUICK, "--layers", "gat"],
        ["ogb", "--dataset", "ogbg-molbace", "--epochs", "1"],
        ["paper", "--epochs", "1"],
        ["demo", "--quick"],
        ["diagnose", "--checkpoint", "."],
    ],
)
def test_every_command_refuses_an_out_that_is_a_file(tmp_path, capsys, argv):
    a_file = tmp_path / "a_file"
    a_file.write_text("keep")
    assert main([*argv, "--out", str(a_file)]) == 1
    assert f"--out {str(a_file)!r} is a file, not a folder" in capsys.readouterr().err
    assert a_file.read_text() == "keep"
    assert main([*argv, "--out", str(a_file / "below")]) == 1
    assert "is a file" in capsys.readouterr().err


def _check_concurrently(root: Path, count: int, refusals) -> None:
    for i in range(count):
        try:
            check_out_folder(root / f"d{i}")
        except ValueError:
            with refusals.get_lock():
                refusals.value += 1


def test_out_check_beside_another_process_checking_the_same_folders(tmp_path):
    """The ranks of a torchrun job check the same --out at once; CI caught rank 1 refusing a folder that
    rank 0's check had made to probe it. Two processes checking the same 3000 new folders: no refusal,
    nothing left behind."""
    context = multiprocessing.get_context("fork")
    refusals = context.Value("i", 0)
    workers = [context.Process(target=_check_concurrently, args=(tmp_path, 3000, refusals)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0]
    assert refusals.value == 0
    assert list(tmp_path.iterdir()) == []


def test_out_check_refuses_a_name_too_long_for_the_file_system(tmp_path, capsys):
    long_name = "x" * (os.pathconf(tmp_path, "PC_NAME_MAX") + 1)
    assert main(["train", *QUICK, "--out", str(tmp_path / long_name / "run")]) == 1
    assert "cannot be created (File name too long)" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


def test_resume_refuses_options_that_contradict_the_run(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", *QUICK, "--out", str(out)]) == 0
    capsys.readouterr()
    for extra, message in (
        (["--epochs", "6"], "--epochs 6 contradicts them"),
        (["--dataset", "Cora"], "--dataset 'Cora' contradicts them"),
        (["--out", str(tmp_path / "x")], "--out has no effect with --resume"),
        (["--overwrite"], "--overwrite has no effect with --resume"),
    ):
        assert main(["train", "--resume", str(out), *extra]) == 1
        err = capsys.readouterr().err
        assert message in err
    # the run's own values, given again, and the options a resumed run takes are accepted
    assert main(["train", "--resume", str(out), "--epochs", "2", "--dataset", "csbm", "--no-progress"]) == 0


def test_a_run_that_fails_before_training_leaves_no_new_folder(tmp_path):
    out = tmp_path / "new"
    assert main(["train", *QUICK[2:], "--dataset", "nowhere", "--out", str(out)]) == 1
    assert not out.exists()


def test_ctrl_c_names_the_folder_to_resume(tmp_path):
    out = tmp_path / "r"
    argv = ["train", *QUICK[:2], "--epochs", "100000", "--patience", "100000", *QUICK[6:], "--out", str(out)]
    # a job started in the background of a non-interactive shell (as CI may be) inherits SIGINT ignored,
    # and Python then keeps ignoring it: give the child the default disposition, as a terminal would
    proc = subprocess.Popen(
        [sys.executable, "-m", "tg_metricattn.experiments.cli", *argv],
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        for _ in range(600):
            if (out / "run_0" / "metrics.json").exists() or proc.poll() is not None:
                break
            subprocess.run(["sleep", "0.1"], check=True)
        assert proc.poll() is None, "the run finished before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=60)[1]
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert f"interrupted; continue with: tgma train --resume {out}" in err


def test_diagnose_names_an_edited_config_and_says_which_run_it_takes(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", *QUICK, "--runs", "2", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["diagnose", "--checkpoint", str(out), "--num-eigs", "0", "--out", str(tmp_path / "d")]) == 0
    assert f"diagnosing {out / 'run_0'}, the first of 2 runs" in capsys.readouterr().out
    config = out / "run_1" / "config.json"
    values = json.loads(config.read_text())
    for edited, message in (
        ({**values, "heads": "eight"}, "heads = 'eight' is not of type int | None"),
        ({**values, "num_neighbors": [1, "x"]}, "num_neighbors = [1, 'x'] is not of type list[int]"),
        ({**values, "hidden": 8}, "best_model.pt does not hold the model that"),
        ({**values, "heads": 0}, "heads"),
    ):
        config.write_text(json.dumps(edited))
        assert main(["diagnose", "--checkpoint", str(out / "run_1"), "--num-eigs", "0"]) == 1
        err = capsys.readouterr().err
        assert message in err and str(out / "run_1") in err  # the file is named
        assert "Traceback" not in err


def test_one_run_reports_no_spread_and_no_test(tmp_path, capsys):
    assert main(["train", *QUICK, "--out", str(tmp_path / "r")]) == 0
    printed = capsys.readouterr().out
    assert "(one run)" in printed and "± 0.0000" not in printed
    assert read_json(tmp_path / "r" / "summary.json")["test_metric_std"] is None
    assert main(["compare", *QUICK, "--seeds", "1", "--layers", "gat,metric", "--out", str(tmp_path / "c")]) == 0
    table = (tmp_path / "c" / "compare.md").read_text()
    assert "| – | one run: untested | 1 |" in table and "tie" not in table and "± 0.0" not in table


def test_the_demo_refuses_a_folder_of_other_results(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", *QUICK, "--out", str(out)]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(["demo", "--quick", "--out", str(out)]) == 1
    assert "holds results of another tgma command (config.json, run_0, summary.json)" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
