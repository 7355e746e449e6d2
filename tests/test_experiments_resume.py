"""Checkpoints and --resume: a run killed mid-way and resumed ends exactly like an uninterrupted run;
damaged or pickled checkpoints are refused with a clear error; the same seed gives the same bits."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from tg_metricattn.experiments import training
from tg_metricattn.experiments.checkpoint import (
    CheckpointError,
    DamagedCheckpointError,
    capture_rng_state,
    load_checkpoint,
    previous_checkpoint_path,
    restore_rng_state,
    save_checkpoint,
)
from tg_metricattn.experiments.cli import main
from tg_metricattn.experiments.training import EarlyStopping

# --checkpoint-every 0: a checkpoint after every epoch, so a kill at any epoch can be resumed from it
TRAIN_ARGS = ["train", "--dataset", "csbm", "--layer", "metric", "--epochs", "60", "--patience", "60"]
TRAIN_ARGS += ["--heads", "2", "--hidden", "4", "--no-progress", "--checkpoint-every", "0"]


def _without_time(final: dict) -> dict:
    return {k: v for k, v in final.items() if k != "train_seconds"}


def _metrics(folder: Path) -> list[dict]:
    return json.loads((folder / "metrics.json").read_text())


def test_checkpoint_round_trip_restores_every_random_state(tmp_path):
    gen = torch.Generator().manual_seed(3)
    torch.manual_seed(1)
    random.seed(1)
    np.random.seed(1)
    state = capture_rng_state(gen)
    save_checkpoint(tmp_path / "ck.pt", {"rng": state, "epoch": 4, "weights": torch.arange(3.0)})
    expected = (torch.rand(3), random.random(), np.random.rand(), torch.rand(2, generator=gen))
    loaded = load_checkpoint(tmp_path / "ck.pt")
    restore_rng_state(loaded["rng"], gen)
    again = (torch.rand(3), random.random(), np.random.rand(), torch.rand(2, generator=gen))
    assert torch.equal(expected[0], again[0]) and torch.equal(expected[3], again[3])
    assert expected[1] == again[1] and expected[2] == again[2]
    assert loaded["epoch"] == 4 and torch.equal(loaded["weights"], torch.arange(3.0))
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]  # no temporary file left behind


def test_missing_checkpoint_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="No checkpoint"):
        load_checkpoint(tmp_path / "absent.pt")


@pytest.fixture
def one_thread():
    """Bit-identical results need the same thread count in every process (sums split over threads round
    differently): one thread here and in the subprocess, whatever else runs on the machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    torch.set_num_threads(before)


def test_killed_run_resumes_to_the_same_result(tmp_path, one_thread):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    assert main([*TRAIN_ARGS, "--out", str(reference)]) == 0
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **one_thread}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tg_metricattn.experiments.cli", *TRAIN_ARGS, "--out", str(killed)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    metrics_file = killed / "run_0" / "metrics.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics_file.is_file() and len(json.loads(metrics_file.read_text())) >= 4:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stopped_at = len(_metrics(killed / "run_0"))
    assert 4 <= stopped_at < 60
    assert not (killed / "run_0" / "final.json").exists()

    assert main(["train", "--resume", str(killed), "--no-progress"]) == 0
    final_resumed = json.loads((killed / "run_0" / "final.json").read_text())
    final_reference = json.loads((reference / "run_0" / "final.json").read_text())
    assert _without_time(final_resumed) == _without_time(final_reference)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in _metrics(killed / "run_0")]
    assert strip == _metrics(reference / "run_0")
    assert len(strip) == 60
    best_a = load_checkpoint(killed / "run_0" / "best_model.pt")["model"]
    best_b = load_checkpoint(reference / "run_0" / "best_model.pt")["model"]
    assert all(torch.equal(best_a[k], best_b[k]) for k in best_b)


def test_resume_of_a_finished_run_does_not_train_again(tmp_path):
    out = tmp_path / "run"
    assert main([*TRAIN_ARGS[:5], "--epochs", "3", "--no-progress", "--out", str(out)]) == 0
    before = (out / "run_0" / "final.json").read_text()
    mtime = (out / "run_0" / "checkpoint.pt").stat().st_mtime_ns
    assert main(["train", "--resume", str(out), "--no-progress"]) == 0
    assert (out / "run_0" / "final.json").read_text() == before
    assert (out / "run_0" / "checkpoint.pt").stat().st_mtime_ns == mtime


SHORT_ARGS = [*TRAIN_ARGS[:5], "--epochs", "6", "--patience", "6", "--heads", "2", "--hidden", "4", "--no-progress"]
SHORT_ARGS += ["--checkpoint-every", "0"]


@pytest.mark.parametrize(("every", "expected"), [("0", [1, 2, 3, 4, 5, 6]), ("3600", [6])])
def test_checkpoint_is_written_at_most_every_n_seconds_and_at_the_end(tmp_path, monkeypatch, every, expected):
    written = []
    real = training.save_checkpoint

    def counting(path, state, keep_previous=False):
        written.append((Path(path).name, state["epoch"]))
        return real(path, state, keep_previous)

    monkeypatch.setattr(training, "save_checkpoint", counting)
    args = [*SHORT_ARGS[:-2], "--checkpoint-every", every, "--out", str(tmp_path / "run")]
    assert main(args) == 0
    assert [epoch for name, epoch in written if name == "checkpoint.pt"] == expected
    assert any(name == "best_model.pt" for name, _ in written)
    assert len(_metrics(tmp_path / "run" / "run_0")) == 6


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    damaged = {"truncated": data[: len(data) // 2], "empty": b"", "garbage": b"not a checkpoint " * 20}[how]
    path.write_bytes(damaged)


@pytest.mark.parametrize("how", ["truncated", "empty", "garbage"])
def test_damaged_checkpoint_gives_an_error_naming_the_file(tmp_path, how):
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(100)}})
    _damage(path, how)
    with pytest.raises(DamagedCheckpointError, match=r"ck\.pt.*damaged"):
        load_checkpoint(path)


def test_checkpoint_needing_unpickling_is_refused_unless_allowed(tmp_path):
    path = tmp_path / "ck.pt"
    torch.save({"model": {}, "extra": Fraction(1, 3)}, path)
    with pytest.raises(CheckpointError, match=r"unpickling.*--allow-pickle"):
        load_checkpoint(path)
    assert load_checkpoint(path, allow_pickle=True)["extra"] == Fraction(1, 3)


def test_file_that_is_not_a_checkpoint_is_named(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(torch.ones(3), path)
    with pytest.raises(CheckpointError, match=r"weights\.pt.*not a tgma checkpoint"):
        load_checkpoint(path, required=("model",))


def test_saving_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"epoch": 1}, keep_previous=True)
    assert not previous_checkpoint_path(path).exists()
    save_checkpoint(path, {"epoch": 2}, keep_previous=True)
    assert load_checkpoint(path)["epoch"] == 2
    assert load_checkpoint(previous_checkpoint_path(path))["epoch"] == 1
    assert {p.name for p in tmp_path.iterdir()} == {"checkpoint.pt", "checkpoint.prev.pt"}


def test_resume_from_a_damaged_checkpoint_uses_the_previous_one(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*SHORT_ARGS, "--out", str(out)]) == 0
    run = out / "run_0"
    reference = json.loads((run / "final.json").read_text())
    assert load_checkpoint(previous_checkpoint_path(run / "checkpoint.pt"))["epoch"] == 5
    for name in ("checkpoint.pt", "best_model.pt"):  # kept with their config and package versions
        state = load_checkpoint(run / name)
        assert state["config"]["layer"] == "metric" and state["config"]["epochs"] == 6
        assert state["versions"]["torch"] == torch.__version__ and "torch-geometric" in state["versions"]
    (run / "final.json").unlink()  # as if the run had died after writing epoch 6's checkpoint
    _damage(run / "checkpoint.pt", "truncated")
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--no-progress"]) == 0
    warning = capsys.readouterr().err
    assert "checkpoint.pt" in warning and "damaged" in warning and "previous checkpoint" in warning
    resumed = json.loads((run / "final.json").read_text())
    assert _without_time(resumed) == _without_time(reference)
    assert load_checkpoint(run / "checkpoint.pt")["epoch"] == 6


def test_resume_with_no_usable_checkpoint_exits_with_a_message(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*SHORT_ARGS, "--out", str(out)]) == 0
    run = out / "run_0"
    (run / "final.json").unlink()
    _damage(run / "checkpoint.pt", "garbage")
    _damage(previous_checkpoint_path(run / "checkpoint.pt"), "empty")
    assert main(["train", "--resume", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "checkpoint.pt" in err and "checkpoint.prev.pt" in err and "cannot be used either" in err


def test_diagnose_refuses_a_pickled_model_file(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*SHORT_ARGS, "--out", str(out)]) == 0
    state = load_checkpoint(out / "run_0" / "best_model.pt")
    torch.save({**state, "note": Fraction(1, 2)}, out / "run_0" / "best_model.pt")
    capsys.readouterr()
    assert main(["diagnose", "--checkpoint", str(out), "--num-eigs", "0", "--out", str(tmp_path / "d")]) == 1
    assert "--allow-pickle" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_same_seed_gives_bit_identical_metrics(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    assert main([*SHORT_ARGS, "--out", str(first)]) == 0
    assert main([*SHORT_ARGS, "--out", str(second)]) == 0
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in _metrics(first / "run_0")]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in _metrics(second / "run_0")]
    final_a, final_b = (json.loads((f / "run_0" / "final.json").read_text()) for f in (first, second))
    assert _without_time(final_a) == _without_time(final_b)
    model_a, model_b = (load_checkpoint(f / "run_0" / "best_model.pt")["model"] for f in (first, second))
    assert all(torch.equal(model_a[k], model_b[k]) for k in model_a)


def test_early_stopping_counts_epochs_that_improve_neither_metric_nor_loss():
    stopping = EarlyStopping(patience=2, higher_is_better=True)
    records = [(0.5, 1.0), (0.5, 0.9), (0.6, 0.95), (0.6, 0.95), (0.55, 0.92)]
    counts = []
    for metric, loss in records:
        stopping.update({"val_metric": metric, "val_loss": loss})
        counts.append(stopping.bad_epochs)
    assert counts == [0, 0, 0, 1, 2] and stopping.stop
    lower = EarlyStopping(patience=1, higher_is_better=False)
    lower.update({"val_metric": 3.0})
    lower.update({"val_metric": 2.0})
    assert lower.bad_epochs == 0
    lower.update({"val_metric": 2.5})
    assert lower.stop


def test_a_finished_results_folder_is_never_overwritten_silently(tmp_path, capsys):
    out = tmp_path / "run"
    base = [*TRAIN_ARGS[:5], "--no-progress"]
    assert main([*base, "--epochs", "2", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in (out / "run_0").iterdir()}
    assert main([*base, "--epochs", "3", "--out", str(out)]) == 1
    assert "already holds results; pass --overwrite" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (out / "run_0").iterdir()} == before  # untouched
    assert main([*base, "--epochs", "3", "--overwrite", "--out", str(out)]) == 0
    assert json.loads((out / "run_0" / "final.json").read_text())["epochs_run"] == 3
    (tmp_path / "a_file").write_text("x")
    assert main([*base, "--out", str(tmp_path / "a_file")]) == 1
    assert "is a file, not a folder" in capsys.readouterr().err


def test_resume_accepts_a_run_folder_or_its_parent(tmp_path):
    out = tmp_path / "run"
    assert main([*TRAIN_ARGS[:5], "--epochs", "2", "--no-progress", "--out", str(out)]) == 0
    assert main(["train", "--resume", str(out / "run_0"), "--no-progress"]) == 0
    assert not (out / "run_0" / "run_0").exists()
    assert json.loads((out / "summary.json").read_text())["runs"] == 1


def test_a_results_folder_in_use_is_refused(tmp_path, capsys):
    from tg_metricattn.experiments.run_folder import RunFolderBusyError, lock_run_folder

    out = tmp_path / "run"
    code = "import sys, time; from tg_metricattn.experiments.run_folder import lock_run_folder\n"
    code += "with lock_run_folder(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)\n"
    holder = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main([*TRAIN_ARGS[:5], "--epochs", "2", "--no-progress", "--out", str(out)]) == 1
        assert "is in use by another tgma run" in capsys.readouterr().err
        assert not (out / "run_0").exists()
    finally:
        holder.kill()
        holder.wait()
    # released by the kernel when its holder died; flock is per open file, so a second open is refused too
    with lock_run_folder(out), pytest.raises(RunFolderBusyError), lock_run_folder(out):
        pass


def test_results_are_created_with_the_users_umask(tmp_path):
    from tg_metricattn.atomic_files import atomic_write_text

    previous = os.umask(0o027)
    try:
        path = atomic_write_text(tmp_path / "a.json", "{}")
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o640 and path.read_text() == "{}"


def test_a_write_that_fails_midway_keeps_the_old_file_and_leaves_no_temp_file(tmp_path):
    from tg_metricattn.atomic_files import atomic_write, atomic_write_text

    path = atomic_write_text(tmp_path / "metrics.json", "old")

    def half_then_fail(handle):
        handle.write(b"new, half written")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, half_then_fail)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]  # no temp file left


def test_a_flipped_byte_in_a_checkpoint_is_caught(tmp_path):
    path = tmp_path / "checkpoint.pt"
    marker = torch.full((256,), 1234.5)  # bytes easy to find in the file
    save_checkpoint(path, {"epoch": 3, "model": {"w": marker}, "history": [{"val_loss": 0.5}]})
    assert torch.equal(load_checkpoint(path, required=("model",))["model"]["w"], marker)
    data = bytearray(path.read_bytes())
    at = data.find(marker[:4].numpy().tobytes()) + 513  # inside the tensor's data record
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(DamagedCheckpointError, match="does not match the checksum"):
        load_checkpoint(path)
