"""Memory bandwidth of this machine and the forward-time lower bound it implies per edge."""

from __future__ import annotations

import torch

from benchmarks.timing import time_calls


def measure_bandwidth(megabytes: int = 256, row_floats: int = 64) -> dict[str, float]:
    """Copy bandwidth (GB/s, read + write counted once each) and random row-gather rate (rows/s)."""
    n = megabytes * 2**20 // 4
    src, dst = torch.empty(n).normal_(), torch.empty(n)
    copy_s = time_calls(lambda: dst.copy_(src), 5)["min_s"]
    rows = src.view(-1, row_floats)
    index = torch.randint(0, rows.size(0), (rows.size(0),))
    out = torch.empty_like(rows)
    gather_s = time_calls(lambda: torch.index_select(rows, 0, index, out=out), 5)["min_s"]
    return {
        "copy_GBps": 2 * n * 4 / copy_s / 1e9,
        "gather_rows_per_s": rows.size(0) / gather_s,
        "gather_row_floats": row_floats,
    }


def forward_bytes_per_edge(gathered_rows: int, heads: int, channels: int) -> int:
    """Minimum traffic of a fused forward per edge.

    ``gathered_rows`` source rows of ``heads * channels`` floats (1 for GAT: the value;
    2 for dot/L2/metric: key and value), two int64 indices, and one score per head
    written and read back.
    """
    return gathered_rows * heads * channels * 4 + 2 * 8 + 2 * heads * 4


def forward_lower_bound_s(num_edges: int, gathered_rows: int, heads: int, channels: int, bw: dict) -> float:
    """max(bytes / copy bandwidth, gathered rows / gather rate) for one forward pass."""
    by_bytes = num_edges * forward_bytes_per_edge(gathered_rows, heads, channels) / (bw["copy_GBps"] * 1e9)
    row_scale = heads * channels / bw["gather_row_floats"]
    by_gather = num_edges * gathered_rows * row_scale / bw["gather_rows_per_s"]
    return max(by_bytes, by_gather)
