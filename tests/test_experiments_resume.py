"""Checkpoints and --resume: a run killed mid-way and resumed ends exactly like an uninterrupted run."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tg_metricattn.experiments.checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from tg_metricattn.experiments.cli import main

TRAIN_ARGS = ["train", "--dataset", "csbm", "--layer", "metric", "--epochs", "60", "--patience", "60"]
TRAIN_ARGS += ["--heads", "2", "--hidden", "4", "--no-progress"]


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


def test_killed_run_resumes_to_the_same_result(tmp_path):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    assert main([*TRAIN_ARGS, "--out", str(reference)]) == 0
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tg_metricattn.experiments.train", *TRAIN_ARGS[1:], "--out", str(killed)],
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
