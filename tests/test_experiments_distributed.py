"""Data-parallel training with 2 CPU processes under torchrun (gloo)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest


def test_two_process_torchrun_keeps_parameters_identical_and_loss_falls(tmp_path):
    if shutil.which("torchrun") is None and not os.path.exists(
        os.path.join(os.path.dirname(sys.executable), "torchrun")
    ):
        pytest.skip("torchrun is not available")
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += ["-m", "tg_metricattn.experiments.train", "--dataset", "csbm", "--epochs", "12", "--patience", "12"]
    cmd += ["--dropout", "0.1", "--lr", "0.01", "--heads", "2", "--hidden", "8", "--no-progress", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    final = json.loads((out / "run_0" / "final.json").read_text())
    assert final["world_size"] == 2
    assert final["max_parameter_difference_across_ranks"] == 0.0
    losses = [r["train_loss"] for r in json.loads((out / "run_0" / "metrics.json").read_text())]
    assert len(losses) == 12
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:2]) / 2
    assert result.stdout.count("test accuracy:") == 1  # only rank 0 reports
