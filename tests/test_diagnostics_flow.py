"""The diagnostics of a flow model check themselves: a flow whose P is a diffusion (uniform attention
on a ring: over the neighbours P - I = -L_rw, with self-loops P - I = -(2/3) L_rw) is fitted by
exp(-t L) at t = T (or (2/3) T) with a residual near zero."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data

from tg_metricattn.diagnostics import diagnose
from tg_metricattn.models import AttentionFlowNet


def _ring(n: int) -> torch.Tensor:
    i = torch.arange(n)
    return torch.cat([torch.stack([i, (i + 1) % n]), torch.stack([(i + 1) % n, i])], 1)


@pytest.mark.parametrize(
    ("method", "steps", "time", "tolerance"),
    [("rk4", 24, 3.0, 0.002), ("euler", 64, 2.0, 0.03)],  # Euler's error moves t* by ~1-2% at τ = 1/32
)
@pytest.mark.parametrize(("self_loops", "factor"), [(False, 1.0), (True, 2 / 3)])
def test_a_flow_of_uniform_attention_is_fitted_at_its_own_time(method, steps, time, tolerance, self_loops, factor):
    torch.manual_seed(0)
    net = AttentionFlowNet("gat", 5, 12, 3, heads=3, time=time, steps=steps, method=method, self_loops=self_loops)
    net = net.double()
    with torch.no_grad():  # constant scores: P = A / 2 (or (A + I) / 3) on the ring
        net.conv.att_src.zero_()
        net.conv.att_dst.zero_()
    data = Data(x=torch.randn(40, 5, dtype=torch.float64), edge_index=_ring(40))
    report = diagnose(net, data, num_eigs=0)
    assert report.flow["time"] == pytest.approx(time) and report.flow["steps"] == steps
    assert len(report.flow["heads"]) == 3
    for head in report.flow["heads"]:
        assert head["t_flow"] == pytest.approx(factor * time, rel=tolerance)
        assert head["residual_flow"] < 0.01
        assert head["time_times_t_step"] == pytest.approx(factor * time, rel=1e-6)
    assert "flow[0]  rw: t*=" in report.summary()


def test_a_flow_of_sharp_attention_is_no_diffusion_and_says_so():
    """The same ring with attention far from uniform: the whole flow is fitted worse."""
    torch.manual_seed(0)
    net = AttentionFlowNet("gat", 5, 12, 3, heads=3, time=3.0, steps=24, method="rk4").double()
    with torch.no_grad():
        net.conv.att_src.mul_(40.0)
    data = Data(x=torch.randn(40, 5, dtype=torch.float64), edge_index=_ring(40))
    report = diagnose(net, data, num_eigs=0)
    assert max(h["residual_flow"] for h in report.flow["heads"]) > 0.05
    assert report.layers[0].name == "conv" and report.layers[0].num_nodes == 40


def test_a_nonlinear_flow_is_diagnosed_at_its_start():
    torch.manual_seed(0)
    net = AttentionFlowNet("metric", 5, 12, 3, heads=3, steps=4, dynamics="nonlinear").double()
    data = Data(x=torch.randn(30, 5, dtype=torch.float64), edge_index=_ring(30))
    report = diagnose(net, data, num_eigs=0)
    assert report.flow["dynamics"] == "nonlinear" and len(report.flow["heads"]) == 3
    assert report.to_json()  # the flow section is plain JSON
