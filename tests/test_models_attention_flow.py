"""The attention flow model against the truth: the integrated flow is exp(T (P - I)) x(0) of the
layer's own P (dense reference), Euler is exactly (I + τ(P - I))^K, gradients through T and the
state are right, and the backward keeps no E x C tensor per step."""

from __future__ import annotations

import math

import pytest
import torch

from tests.layer_cases import random_graph
from tg_metricattn.datasets import contextual_sbm
from tg_metricattn.flow_integration import integrate
from tg_metricattn.models import AttentionFlowNet

KINDS = ["gat", "gatv2", "dot", "l2", "metric"]


def _dense_propagation(net: AttentionFlowNet, state: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
    """P_h [H, N, N] of the flow's layer on ``state`` (the edges the flow uses), from the layer's own weights."""
    _, (used, alpha) = net.conv(state, net._flow_edges(edge_index), return_attention_weights=True)
    n = state.size(0)
    dense = torch.zeros(net.heads, n, n, dtype=state.dtype)
    for h in range(net.heads):
        dense[h].index_put_((used[1], used[0]), alpha[:, h], accumulate=True)
    return dense


def _generator(P: torch.Tensor) -> torch.Tensor:
    """P_h - D_h, D_h = diag(row sums): -I on the nodes with neighbours, 0 on the others (they stay)."""
    return P - torch.diag_embed(P.sum(-1))


def _net(kind: str, method: str, dynamics: str = "linear", steps: int = 4, time: float = 2.5, **kwargs):
    torch.manual_seed(3)
    return AttentionFlowNet(kind, 5, 12, 3, heads=3, time=time, steps=steps, method=method, dynamics=dynamics, **kwargs)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("self_loops", [False, True])
def test_rk4_flow_converges_to_the_matrix_exponential_of_the_layers_generator(kind, self_loops):
    """x(T) = exp(T (P_h - I)) x_h(0) per head, with the error of a fourth-order method: halving τ
    divides it by about 16 (a wrong RK4 coefficient leaves first or second order)."""
    edge_index, gen = random_graph(14, 50, seed=1)
    state = torch.randn(14, 12, generator=gen, dtype=torch.float64)
    errors = []
    for steps in (8, 16):
        net = _net(kind, "rk4", steps=steps, self_loops=self_loops).double().eval()
        P = _dense_propagation(net, state, edge_index)
        rows = P.sum(-1)
        assert torch.allclose(rows, (rows > 0.5).double())  # rows sum to 1, or 0 for a node without neighbours
        assert bool((torch.diagonal(P, dim1=1, dim2=2) > 0).all()) == self_loops
        T = float(net.flow_time().detach())
        groups = state.reshape(14, 3, 4)
        expected = torch.stack([torch.matrix_exp(T * _generator(P)[h]) @ groups[:, h] for h in range(3)], 1)
        with torch.no_grad():
            errors.append(float((net.flow(state, edge_index).reshape(14, 3, 4) - expected).abs().max()))
    assert errors[1] < 1e-5
    assert errors[0] / errors[1] > 10


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("propagation", ["csr", "scatter"])
def test_euler_flow_is_the_power_of_the_step_matrix(kind, propagation):
    edge_index, gen = random_graph(10, 40, seed=2)
    net = _net(kind, "euler", steps=5, layer_kwargs={"propagation": propagation}).double().eval()
    state = torch.randn(10, 12, generator=gen, dtype=torch.float64)
    P = _dense_propagation(net, state, edge_index)
    tau = float(net.flow_time().detach()) / 5
    groups = state.reshape(10, 3, 4)
    step = torch.eye(10, dtype=torch.float64) + tau * _generator(P)
    expected = torch.stack([torch.linalg.matrix_power(step[h], 5) @ groups[:, h] for h in range(3)], 1)
    assert torch.allclose(net.flow(state, edge_index).reshape(10, 3, 4), expected, atol=1e-12)


def test_nonlinear_flow_recomputes_the_attention_of_the_current_state():
    edge_index, gen = random_graph(9, 30, seed=4)
    net = _net("metric", "euler", dynamics="nonlinear", steps=2, time=1.6).double().eval()
    state = torch.randn(9, 12, generator=gen, dtype=torch.float64)
    x = state.reshape(9, 3, 4)
    for _ in range(2):
        P = _dense_propagation(net, x.reshape(9, 12), edge_index)
        x = x + 0.8 * torch.einsum("hij,jhc->ihc", _generator(P), x)
    assert torch.allclose(net.flow(state, edge_index).reshape(9, 3, 4), x, atol=1e-12)
    linear = _net("metric", "euler", dynamics="linear", steps=2, time=1.6).double().eval()
    assert not torch.allclose(linear.flow(state, edge_index), net.flow(state, edge_index), atol=1e-6)


@pytest.mark.parametrize("dynamics", ["linear", "nonlinear"])
@pytest.mark.parametrize("method", ["euler", "rk4"])
def test_gradients_through_the_state_the_time_and_the_layer(dynamics, method):
    edge_index, gen = random_graph(7, 20, seed=5)
    net = _net("metric", method, dynamics=dynamics, steps=2, time=1.2).double().eval()
    state = torch.randn(7, 12, generator=gen, dtype=torch.float64, requires_grad=True)

    def flow_of(s, log_time):
        with torch.no_grad():
            net.log_time.copy_(log_time.detach())
        return net.flow(s, edge_index)

    assert torch.autograd.gradcheck(lambda s: net.flow(s, edge_index), (state,))
    # d/d log T through the integrator, against a central difference
    (net.flow(state, edge_index) ** 2).sum().backward()
    grad = float(net.log_time.grad)
    base = float(net.log_time.detach())
    values = []
    for delta in (1e-6, -1e-6):
        with torch.no_grad():
            net.log_time.fill_(base + delta)
            values.append(float((net.flow(state, edge_index) ** 2).sum()))
    assert grad == pytest.approx((values[0] - values[1]) / 2e-6, rel=1e-5)


def test_the_backward_keeps_no_edge_by_channel_tensor():
    """Saved for backward over a K-step flow: the K states (N x hidden) and P (E x H) once; the
    gather path of PyG's propagate would keep E x H x C per step (checked below: the test can fail)."""
    n, hidden, heads = 60, 64, 4
    edge_index, gen = random_graph(n, 40 * n, seed=6)
    x = torch.randn(n, 5, generator=gen)

    def largest_saved(propagation: str) -> tuple[int, int]:
        torch.manual_seed(0)
        net = AttentionFlowNet("gat", 5, hidden, 3, heads=heads, steps=6, layer_kwargs={"propagation": propagation})
        sizes: list[int] = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: sizes.append(t.numel()) or t, lambda t: t):
            net(x, edge_index).sum().backward()
        return max(sizes), net.conv.attention(net.encode(x), net._flow_edges(edge_index)).weights.size(0)

    largest, edges = largest_saved("csr")
    assert largest < edges * hidden / 2  # P: E x H, states: N x hidden
    largest, edges = largest_saved("scatter")
    assert largest >= edges * hidden  # messages: E x H x C


def test_a_node_without_neighbours_keeps_its_state():
    edge_index = torch.tensor([[0, 1, 2, 2], [1, 0, 2, 0]])  # node 2 has only a self-loop, node 3 nothing
    net = _net("l2", "rk4", steps=3).double().eval()
    state = torch.randn(4, 12, dtype=torch.float64)
    out = net.flow(state, edge_index)
    assert torch.equal(out[2:], state[2:])
    assert not torch.allclose(out[:2], state[:2])


@pytest.mark.parametrize("method", ["euler", "rk4"])
def test_the_source_term_feeds_the_initial_state_at_every_step(method):
    edge_index, gen = random_graph(10, 40, seed=5)
    net = _net("metric", method, steps=3, time=2.0, source=True).double().eval()
    with torch.no_grad():
        net.source_weight.fill_(0.7)
    state = torch.randn(10, 12, generator=gen, dtype=torch.float64)
    P = _dense_propagation(net, state, edge_index)
    x0 = state.reshape(10, 3, 4)
    tau = float(net.flow_time().detach()) / 3

    def velocity(x):  # per head: (P_h - D_h) x_h + β x_h(0)
        return torch.einsum("hij,jhc->ihc", _generator(P), x) + 0.7 * x0

    x = x0
    for _ in range(3):  # Euler, or the classical RK4 written out
        if method == "euler":
            x = x + tau * velocity(x)
        else:
            k1 = velocity(x)
            k2 = velocity(x + tau / 2 * k1)
            k3 = velocity(x + tau / 2 * k2)
            k4 = velocity(x + tau * k3)
            x = x + tau / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    assert torch.allclose(net.flow(state, edge_index).reshape(10, 3, 4), x, atol=1e-12)
    net.train()
    net(torch.randn(10, 5, generator=gen, dtype=torch.float64), edge_index).sum().backward()
    assert net.source_weight.grad is not None and net.source_weight.grad != 0
    assert net.flow_settings()["source"] == pytest.approx(0.7) and "source=True" in repr(net)
    net.reset_parameters()
    assert float(net.source_weight.detach()) == 1.0
    plain = _net("metric", method)
    assert "source_weight" not in plain.state_dict() and plain.flow_settings()["source"] is None


def test_time_is_learned_positive_and_at_most_the_steps():
    net = _net("gat", "euler", steps=4, time=3.0)
    assert float(net.flow_time().detach()) == pytest.approx(3.0)
    with torch.no_grad():
        net.log_time.fill_(math.log(50.0))
    assert float(net.flow_time().detach()) == 4.0  # step size T / K at most 1
    net.reset_parameters()
    assert float(net.flow_time().detach()) == pytest.approx(3.0)
    fixed = _net("gat", "euler", learn_time=False)
    assert "log_time" not in dict(fixed.named_parameters()) and "log_time" in fixed.state_dict()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layer": "none"}, "a flow needs attention"),
        ({"hidden": 10}, "multiple of heads"),
        ({"time": 5.0}, r"time must be a number in \(0, steps\]"),
        ({"time": 0.0}, r"time must be a number in \(0, steps\]"),
        ({"method": "dopri5"}, "method must be one of"),
        ({"dynamics": "mixed"}, "dynamics must be one of"),
        ({"steps": 0}, "steps must be a positive integer"),
    ],
)
def test_bad_settings_are_named(kwargs, message):
    settings = {"layer": "gat", "in_channels": 5, "hidden": 12, "out_channels": 3, "heads": 3, "steps": 4, **kwargs}
    with pytest.raises(ValueError, match=message):
        AttentionFlowNet(**settings)


def test_the_integrator_on_a_scalar_ode():
    """dx/dt = -x from 1 over T = 1: Euler (1 - 1/K)^K, RK4 within 1e-6 of e^-1 at K = 8."""
    assert integrate(lambda x: -x, 1.0, 1.0, 4, "euler") == pytest.approx(0.75**4)
    assert integrate(lambda x: -x, 1.0, 1.0, 8, "rk4") == pytest.approx(math.exp(-1), abs=1e-6)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        integrate(lambda x: -x, 1.0, 1.0, 0)


@pytest.mark.parametrize("kind", ["gat", "dot", "l2", "metric"])
def test_the_flow_trains_above_90_percent_on_a_small_homophilous_graph(kind):
    """A 4-class contextual SBM (1,000 nodes, edge homophily 0.8, feature SNR 1; 80 training, 120 validation and 800
    test nodes), the model's defaults at width 32 in 4 heads, Adam 0.01, 150 epochs, the test accuracy at the best
    validation epoch. Measured on seeds 0-4: GAT 0.959-0.978, dot 0.952-0.979, L2 0.960-0.984, metric 0.945-0.989
    (an MLP on the same features: about 0.4; the flow is what gets it there)."""
    tests = []
    for seed in range(3):
        data = contextual_sbm(num_nodes=1000, num_classes=4, homophily=0.8, num_features=32, seed=seed)
        torch.manual_seed(seed)
        net = AttentionFlowNet(kind, 32, 32, 4, heads=4)
        optimizer = torch.optim.Adam(net.parameters(), lr=0.01, weight_decay=5e-4)
        best_val, best_test = -1.0, 0.0
        for _ in range(150):
            net.train()
            optimizer.zero_grad()
            out = net(data.x, data.edge_index)
            torch.nn.functional.cross_entropy(out[data.train_mask], data.y[data.train_mask]).backward()
            optimizer.step()
            net.eval()
            with torch.no_grad():
                correct = net(data.x, data.edge_index).argmax(-1) == data.y
            val, test = float(correct[data.val_mask].float().mean()), float(correct[data.test_mask].float().mean())
            if val > best_val:
                best_val, best_test = val, test
        tests.append(best_test)
    assert min(tests) >= 0.92, tests
    assert sum(tests) / len(tests) >= 0.94, tests
