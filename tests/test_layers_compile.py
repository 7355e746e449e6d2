"""torch.compile of every layer runs and matches eager mode.

With ``add_self_loops=False`` the layers compile into one graph (``fullgraph=True``);
with self-loops the data-dependent loop removal causes graph breaks, so that case is
compiled without ``fullgraph`` and only checked for equal results.
"""

from __future__ import annotations

import pytest
import torch

from tests.layer_cases import random_graph
from tg_metricattn import DotAttnConv, L2AttnConv, MetricAttnConv, SparseGATConv


@pytest.mark.parametrize("cls", [SparseGATConv, DotAttnConv, L2AttnConv, MetricAttnConv])
@pytest.mark.parametrize("self_loops", [False, True])
def test_compile_matches_eager(cls, self_loops: bool) -> None:
    torch._dynamo.reset()
    edge_index, gen = random_graph(40, 160, seed=0)
    x = torch.randn(40, 6, generator=gen)
    layer = cls(6, 4, heads=2, add_self_loops=self_loops).eval()
    compiled = torch.compile(layer, fullgraph=not self_loops, dynamic=False)
    expected = layer(x, edge_index)
    assert torch.allclose(compiled(x, edge_index), expected, atol=1e-5)
