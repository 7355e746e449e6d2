"""The benchmark runs in --quick mode and its fast path equals the reference path (not a timing test)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmark_runs_and_paths_agree(tmp_path) -> None:
    out = tmp_path / "bench.json"
    command = [sys.executable, "-m", "benchmarks.run", "--quick", "--repeats", "1", "--out", str(out)]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "vs GATConv" in completed.stdout
    results = json.loads(out.read_text())
    assert results["bandwidth"]["copy_GBps"] > 0
    for graph in results["graphs"].values():
        assert set(graph["layers"]) == {
            "PyG GATConv",
            "PyG GATv2Conv",
            "PyG TransformerConv",
            "SparseGATConv",
            "SparseGATv2Conv",
            "DotAttnConv",
            "L2AttnConv",
            "MetricAttnConv",
            "SparseGATConv (no cache)",
            "MetricAttnConv (no cache)",
        }
        for entry in graph["layers"].values():
            for key in ("forward", "forward_backward"):
                assert entry[key]["min_s"] <= entry[key]["median_s"] <= entry[key]["max_s"]
        assert max(graph["max_abs_csr_minus_scatter"].values()) < 1e-4
    # the printed ratio against GATConv is the one of the recorded medians
    for graph_name, graph in results["graphs"].items():
        (line,) = [row for row in completed.stdout.splitlines() if row.startswith(f"{graph_name:<24} MetricAttnConv  ")]
        fb = {name: graph["layers"][name]["forward_backward"]["median_s"] for name in ("PyG GATConv", "MetricAttnConv")}
        printed = float(line.split("speed")[1].split("x")[0])
        assert printed == pytest.approx(fb["PyG GATConv"] / fb["MetricAttnConv"], abs=0.006)


def test_timing_measures_the_call():
    from benchmarks.timing import time_calls

    timing = time_calls(lambda: time.sleep(0.02), repeats=3)
    assert 0.02 <= timing["min_s"] <= timing["median_s"] <= timing["max_s"] < 1.0


def test_peak_memory_sees_a_tensor_allocated_and_freed_inside_the_block():
    from benchmarks.memory import PeakMemory, fix_mmap_threshold

    fix_mmap_threshold()
    with PeakMemory() as peak:
        block = torch.ones(50_000_000)  # 200 MB, written, then freed before the block ends
        del block
    assert 190e6 <= peak.peak_bytes <= 600e6
    with PeakMemory() as idle:
        time.sleep(0.01)
    assert idle.peak_bytes < 50e6


def test_torch_scatter_mode_needs_the_package_or_measures_both(tmp_path) -> None:
    """Without torch-scatter (as in CI: it has no wheel for torch 2.13) only the refusal branch runs;
    the measuring branch runs where ``pip install torch-scatter`` was done (7 min build here)."""
    import torch_geometric.typing

    out = tmp_path / "bench.json"
    command = [sys.executable, "-m", "benchmarks.run", "--quick", "--repeats", "1", "--graphs", "cora"]
    command += ["--layers", "SparseGATConv (scatter path)", "--torch-scatter", "--out", str(out)]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    if torch_geometric.typing.torch_scatter is object:  # not installed: a clear refusal
        assert completed.returncode == 2 and "pip install torch-scatter" in completed.stderr
        return
    assert completed.returncode == 0, completed.stderr[-2000:]
    (graph,) = json.loads(out.read_text())["graphs"].values()
    assert set(graph["layers"]) == {
        "PyG GATConv",
        "SparseGATConv (scatter path)",
        "PyG GATConv (torch-scatter)",
        "SparseGATConv (scatter path) (torch-scatter)",
        "MetricAttnConv (scatter path) (torch-scatter)",
    }


def test_torch_scatter_switch_restores_the_flag() -> None:
    import torch_geometric.typing

    from benchmarks.run import torch_scatter_switch

    before = torch_geometric.typing.WITH_TORCH_SCATTER
    with torch_scatter_switch(not before):
        assert torch_geometric.typing.WITH_TORCH_SCATTER is (not before)
    assert torch_geometric.typing.WITH_TORCH_SCATTER is before


def test_the_edge_feature_benchmark_runs_and_prints_memory_per_edge() -> None:
    command = [sys.executable, "-m", "benchmarks.edge_features", "--quick", "--repeats", "1"]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-2000:]
    rows = [line for line in completed.stdout.splitlines() if "B/edge" in line]
    assert [row.split()[0] for row in rows] == ["GAT", "GATv2", "Transformer"]
    assert all(row.count("B/edge") == 2 and "speed" in row for row in rows)


def test_the_squared_distance_benchmark_runs_both_formulas_and_restores_the_kernel() -> None:
    from benchmarks.squared_distance import direct_formula_everywhere
    from tg_metricattn.layers import score_terms

    sampled = score_terms.edge_squared_distance_sampled
    with direct_formula_everywhere():
        assert score_terms.edge_squared_distance_sampled is not sampled
    assert score_terms.edge_squared_distance_sampled is sampled
    command = [sys.executable, "-m", "benchmarks.squared_distance", "--quick", "--repeats", "1"]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-2000:]
    rows = [line.split("  min")[0].strip() for line in completed.stdout.splitlines() if "B/edge" in line]
    assert rows == [
        "PyG GATConv",
        "SparseGATConv",
        "L2AttnConv (sampled)",
        "L2AttnConv (direct, float64)",
        "MetricAttnConv (sampled)",
        "MetricAttnConv (direct, float64)",
    ]


def test_the_scaling_table_prints_the_recorded_per_edge_ratios(tmp_path) -> None:
    out = tmp_path / "scaling.json"
    command = [sys.executable, "-m", "benchmarks.run", "--scaling", "--quick", "--repeats", "1", "--out", str(out)]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-2000:]
    layers = json.loads(out.read_text())["scaling"]["layers"]
    assert set(layers) == {"SparseGATConv", "DotAttnConv", "L2AttnConv", "MetricAttnConv"}
    for name, by_size in layers.items():
        small, large = by_size["10000"], by_size["40000"]
        assert small["bytes_per_edge"] > 0 and large["bytes_per_edge"] > 0
        (line,) = [row for row in completed.stdout.splitlines() if row.strip().startswith(f"{name} ")]
        printed = float(line.split("memory")[1].split("x")[0])
        assert printed == pytest.approx(large["bytes_per_edge"] / small["bytes_per_edge"], abs=0.006)
