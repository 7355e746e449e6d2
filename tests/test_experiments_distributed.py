"""Data-parallel training with 2 CPU processes under torchrun (gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

# Runs the CLI under torchrun and has every rank save its own final parameters, so that the
# test compares the ranks itself instead of trusting the run's own parameter_spread.
RANK_SAVER = """
import sys
import torch
from tg_metricattn.experiments import training
from tg_metricattn.experiments.cli import main
from tg_metricattn.experiments.distributed import unwrap

spread = training.parameter_spread

def saving_spread(model, ctx):
    state = {k: v.detach().clone() for k, v in unwrap(model).state_dict().items()}
    torch.save(state, sys.argv[1] + f"/rank{ctx.rank}.pt")
    return spread(model, ctx)

training.parameter_spread = saving_spread
sys.exit(main(sys.argv[2:]))
"""


def test_two_process_torchrun_keeps_parameters_identical_and_loss_falls(tmp_path):
    out = tmp_path / "ddp"
    script = tmp_path / "rank_saver.py"
    script.write_text(RANK_SAVER)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += [str(script), str(tmp_path), "train", "--dataset", "csbm", "--epochs", "12", "--patience", "12"]
    cmd += ["--dropout", "0.1", "--lr", "0.01", "--heads", "2", "--hidden", "8", "--no-progress", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    final = json.loads((out / "run_0" / "final.json").read_text())
    assert final["world_size"] == 2
    assert final["max_parameter_difference_across_ranks"] == 0.0
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0.keys() == rank1.keys() and all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    losses = [r["train_loss"] for r in json.loads((out / "run_0" / "metrics.json").read_text())]
    assert len(losses) == 12
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:2]) / 2
    assert result.stdout.count("test accuracy:") == 1  # only rank 0 reports
