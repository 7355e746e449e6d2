"""Heat flow in a learned metric: one attention layer integrated over a learned time.

``../shared/DESIGN.md`` §2: one attention layer is one explicit Euler step of a
drift-diffusion. This model takes the step size to zero: the propagation P of one layer
defines the generator P - I, and the features flow under it for a total time T.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from tg_metricattn.flow_integration import FLOW_METHODS, integrate
from tg_metricattn.models.layer_registry import LAYERS, NO_LAYER, layer_class

__all__ = ["FLOW_DYNAMICS", "AttentionFlowNet"]

#: ``linear``: P from the encoded features, fixed over the flow; ``nonlinear``: P of the current state
FLOW_DYNAMICS = ("linear", "nonlinear")


class AttentionFlowNet(nn.Module):
    r"""Encoder -> heat flow of one attention's propagation for a learned time -> decoder.

    .. math::
        x(0) &= \mathrm{dropout}(x) W_{enc} + b_{enc}, \qquad x(t) \in \mathbb{R}^{N \times H \times C} \\
        \frac{d x_{\cdot h}}{dt} &= (P_h - I)\, x_{\cdot h} \;[+\, \beta\, x_{\cdot h}(0)], \qquad t \in [0, T] \\
        y &= \mathrm{dropout}(\mathrm{GELU}(x(T))) W_{dec} + b_{dec}

    The state has ``hidden`` channels in ``heads`` groups of ``C = hidden // heads``; head h of
    the attention layer (the chosen kind, no skip term, no attention dropout, so that every
    row of P_h sums to 1) moves group h. By default P_h has no self-loops: the flow keeps
    each node's own state through -I (an Euler step keeps 1 - τ of it), and a softmax
    over the neighbours alone keeps the distance kinds (L2, metric), whose self-loop has
    distance 0 and the largest score of its row, from putting most weight on i itself
    (P ≈ I, a flow that barely moves); a node without neighbours does not move.
    ``self_loops=True`` puts i in its own softmax as an attention layer does. With ``dynamics='linear'``
    P_h = P_h(x(0)) is computed once per forward (a linear ODE: x(T) = exp(T (P - I)) x(0)
    in the limit of many steps); with ``'nonlinear'`` P_h = P_h(x(t)) is recomputed at every
    evaluation of the right-hand side (GRAND's non-linear flow). The state itself flows:
    the layer's value map is not used. ``source=True`` adds GRAND's source term β x(0) (β a
    learned scalar, started at 1): the flow is then no longer a heat flow but keeps feeding the
    initial state, so a long T does not smooth it away (the heat flow alone tends to each
    component's stationary mean).

    Discretisation (:func:`~tg_metricattn.flow_integration.integrate`): ``steps`` = K steps
    of size τ = T / K, explicit Euler (x <- (1 - τ) x + τ P x: one attention layer with a
    skip of weight 1 - τ per step) or classical RK4. T = exp(log T) is learned and kept at
    most K (τ <= 1: Euler steps stay convex combinations; RK4 stays in its stability
    region). Cost per forward: O(E·H) for P and O(E·C·H) per application of P on the CSR
    kernels, with K (Euler) or 4K (RK4) applications; the backward keeps the K states
    (O(N·hidden·K)) and P once, never an E x C tensor per step.

    Args:
        layer: ``'gat' | 'gatv2' | 'dot' | 'l2' | 'metric'``.
        in_channels: input features.
        hidden: width of the flowing state (a multiple of ``heads``).
        out_channels: classes.
        heads: attention heads (channel groups of the state).
        time: the initial total time T (> 0, at most ``steps``).
        steps: integration steps K.
        method: ``'euler'`` or ``'rk4'``.
        dynamics: ``'linear'`` or ``'nonlinear'`` (above).
        dropout: on the input features and on the decoder's input.
        learn_time: learn T (default) or keep it fixed.
        self_loops: include i in its own softmax (default: the neighbours only).
        source: add the source term β x(0) with a learned β (above).
        layer_kwargs: further arguments of the attention layer (e.g. ``density_exponent``).

    Shapes:
        ``x`` ``[N, in_channels]``, ``edge_index`` ``[2, E]`` -> logits ``[N, out_channels]``.
    """

    def __init__(
        self,
        layer: str,
        in_channels: int,
        hidden: int,
        out_channels: int,
        heads: int = 8,
        time: float = 3.0,
        steps: int = 4,
        method: str = "euler",
        dynamics: str = "linear",
        dropout: float = 0.5,
        learn_time: bool = True,
        self_loops: bool = False,
        source: bool = False,
        layer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if layer == NO_LAYER or layer not in LAYERS:
            raise ValueError(f"layer must be one of {tuple(LAYERS)} (a flow needs attention); got {layer!r}.")
        for name, value in (("hidden", hidden), ("heads", heads), ("steps", steps)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if hidden % heads:
            raise ValueError(f"hidden {hidden} must be a multiple of heads {heads} (each head moves hidden // heads).")
        if method not in FLOW_METHODS:
            raise ValueError(f"method must be one of {FLOW_METHODS}, got {method!r}.")
        if dynamics not in FLOW_DYNAMICS:
            raise ValueError(f"dynamics must be one of {FLOW_DYNAMICS}, got {dynamics!r}.")
        if isinstance(time, bool) or not isinstance(time, (int, float)) or not 0 < time <= steps:
            raise ValueError(
                f"time must be a number in (0, steps] = (0, {steps}] (step size T / K at most 1), got {time!r}."
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout!r}.")
        self.layer_name, self.hidden, self.heads = layer, hidden, heads
        self.steps, self.method, self.dynamics, self.dropout = steps, method, dynamics, dropout
        self.initial_time, self.learn_time, self.self_loops, self.source = float(time), learn_time, self_loops, source
        kwargs = {**(layer_kwargs or {}), LAYERS[layer].skip_argument: False}
        self.encoder = nn.Linear(in_channels, hidden)
        self.conv = layer_class(layer)(hidden, hidden // heads, heads=heads, add_self_loops=self_loops, **kwargs)
        log_time = torch.tensor(math.log(time))
        if learn_time:
            self.log_time = nn.Parameter(log_time)
        else:
            self.register_buffer("log_time", log_time)
        if source:  # only a flow with a source carries it: the others' state_dicts stay as they were
            self.source_weight = nn.Parameter(torch.tensor(1.0))
        self.decoder = nn.Linear(hidden, out_channels)

    def reset_parameters(self) -> None:
        """Re-initialise the encoder, the layer and the decoder; T back to its initial value."""
        self.encoder.reset_parameters()
        self.conv.reset_parameters()
        self.decoder.reset_parameters()
        with torch.no_grad():
            self.log_time.fill_(math.log(self.initial_time))
            if self.source:
                self.source_weight.fill_(1.0)

    def flow_time(self) -> Tensor:
        """T = exp(log T), at most ``steps`` (a 0-dimensional tensor)."""
        return self.log_time.exp().clamp(max=float(self.steps))

    def encode(self, x: Tensor) -> Tensor:
        """x(0) ``[N, hidden]``: the encoder on the (dropped-out) input."""
        return self.encoder(F.dropout(x, self.dropout, self.training))

    def flow(self, state: Tensor, edge_index: Tensor) -> Tensor:
        """x(T) ``[N, hidden]`` from x(0) = ``state`` ``[N, hidden]`` (class docstring)."""
        n = state.size(0)
        groups = state.reshape(n, self.heads, self.hidden // self.heads)
        edge_index = self._flow_edges(edge_index)
        if self.self_loops:
            moving: Tensor | float = 1.0
        else:  # a node without neighbours has a zero row in P: it keeps its state
            moving = torch.zeros(n, 1, 1, dtype=state.dtype, device=state.device)
            moving.index_fill_(0, edge_index[1], 1.0)
        if self.dynamics == "linear":
            attention = self.conv.attention(state, edge_index)

            def diffusion(x: Tensor) -> Tensor:
                return self.conv.apply_attention(attention, x) - moving * x

        else:

            def diffusion(x: Tensor) -> Tensor:
                return self.conv.apply_attention(self.conv.attention(x.reshape(n, -1), edge_index), x) - moving * x

        velocity = diffusion
        if self.source:

            def velocity(x: Tensor) -> Tensor:
                return diffusion(x) + self.source_weight * groups

        return integrate(velocity, groups, self.flow_time(), self.steps, self.method).reshape(n, -1)

    def _flow_edges(self, edge_index: Tensor) -> Tensor:
        """``edge_index`` without self-loops unless the softmax takes them (the layer adds one per node then)."""
        if self.self_loops or not bool((edge_index[0] == edge_index[1]).any()):
            return edge_index
        return edge_index[:, edge_index[0] != edge_index[1]]

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """Logits per node (class docstring)."""
        final = self.flow(self.encode(x), edge_index)
        return self.decoder(F.dropout(F.gelu(final), self.dropout, self.training))

    def diagnostic_inputs(self, x: Tensor, edge_index: Tensor) -> dict[str, tuple[Tensor, Tensor, None]]:
        """``{"conv": (x(0), edge_index, None)}``: what the layer's attention is computed from (for the
        diagnostics: layer input, edges, no edge features)."""
        return {"conv": (self.encode(x), self._flow_edges(edge_index), None)}

    def flow_settings(self) -> dict[str, Any]:
        """What the diagnostics need to rebuild the flow map from P: T, K, the method, the dynamics and the
        source term's β (``None`` without one)."""
        return {
            "time": float(self.flow_time().detach()),
            "steps": self.steps,
            "method": self.method,
            "dynamics": self.dynamics,
            "source": float(self.source_weight.detach()) if self.source else None,
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.layer_name}, hidden={self.hidden}, heads={self.heads}, "
            f"T={float(self.flow_time().detach()):.4g}, steps={self.steps}, method={self.method!r}, "
            f"dynamics={self.dynamics!r}{', source=True' if self.source else ''})"
        )
