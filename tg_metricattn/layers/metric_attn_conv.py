"""Metric attention: a Gaussian kernel in a learned embedding, i.e. one step of heat flow."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.nn import Parameter
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.nn.resolver import activation_resolver

from tg_metricattn.layers.distance_attn_conv import DistanceAttnConv, shared_width

#: The time scales t whose t² and 1/t² are normal float32 numbers (the parameters' dtype), so that a
#: score -d²/t and its gradient d²/t (with respect to log t) stay finite for any sane distance; at
#: t = 1e-38 (float32's smallest normal number) the gradient overflows and training returns NaN.
TIME_SCALE_RANGE = (math.sqrt(torch.finfo(torch.float32).tiny), 1.0 / math.sqrt(torch.finfo(torch.float32).tiny))


def check_time_scale(value: Any, name: str = "time_scale", given: Any = None) -> float | str | None:
    """``value`` when it is a valid time scale (``None``, ``'auto'`` or a number in
    :data:`TIME_SCALE_RANGE`), else a ``ValueError`` that names ``name``, the range and
    ``given`` (what the user wrote; ``value`` when not set)."""
    if value is None or (isinstance(value, str) and value == "auto"):
        return value
    low, high = TIME_SCALE_RANGE
    if isinstance(value, (str, bool)) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValueError(
            f"{name} must be 'auto' or a number in [{low:.3g}, {high:.3g}] (t² and 1/t² finite in float32; "
            f"the default is sqrt(metric_channels)); got {value if given is None else given!r}."
        )
    return float(value)


class MetricAttnConv(DistanceAttnConv):
    r"""Attention with the pseudo-metric of a learned embedding f and a time scale t.

    .. math::
        f(x) = x W_1 + \mathrm{act}(x W_2 + b_2) W_3, \qquad
        s_{ij} = -\frac{\lVert f(x_i) - f(x_j)\rVert^2}{t_h}, \qquad
        x'_i = \sum_j \alpha_{ij} W_v x_j

    f is a one-hidden-layer MLP with a residual linear path, giving ``heads`` embeddings
    of width ``metric_channels``; :math:`t_h > 0` is a time scale per head, learnable by
    default (stored as its logarithm). With f the identity and t fixed, the propagation is
    the Gaussian-kernel operator whose generator is (t/4)(Δ + 2∇log p·∇) (Coifman-Lafon).
    As for L2 attention, the squared distances are taken per edge in chunks (no
    ``E x H x D`` tensor is ever whole). Parameters: ``embed_linear`` (W_1), ``embed_hidden`` (W_2, b_2),
    ``embed_output`` (W_3), ``log_time_scale``, ``lin_value``, ``res``, ``bias``.

    Args:
        metric_channels: width D of each head's embedding (default ``out_channels``).
        hidden_channels: width of the hidden layer of f, shared by the heads
            (default ``heads * metric_channels``).
        time_scale: initial t for every head (default ``sqrt(metric_channels)``), or
            ``"auto"``: on the first forward call, t_h = the median of ‖f(x_i) - f(x_j)‖² over
            that call's edges j ≠ i (median heuristic), so that a typical score is -1 and the
            initial attention is neither uniform nor one-hot, whatever the scale of the input;
            kept in the ``state_dict`` (a loaded layer is not set again). Without a positive
            finite distance (no edges besides self-loops, all embeddings equal) t stays
            ``sqrt(metric_channels)`` with a warning.
        learn_time_scale: learn t (``True``) or keep it fixed.
        act: activation of the hidden layer, a name known to PyG or a callable.
        residual: add a learnable skip connection ``res(x_i)``.
        bias: add a learnable bias to the output.
        **kwargs: see :class:`AttentionConv`.
    """

    def __init__(
        self,
        in_channels: int | tuple[int, int],
        out_channels: int,
        heads: int = 1,
        concat: bool = True,
        dropout: float = 0.0,
        add_self_loops: bool = True,
        bias: bool = True,
        metric_channels: int | None = None,
        hidden_channels: int | None = None,
        time_scale: float | str | None = None,
        learn_time_scale: bool = True,
        act: str | Callable[[Tensor], Tensor] = "tanh",
        residual: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(in_channels, out_channels, heads, concat, dropout, add_self_loops, **kwargs)
        width = shared_width(in_channels, type(self).__name__)
        for name, value in (("metric_channels", metric_channels), ("hidden_channels", hidden_channels)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer or None (the default); got {value!r}.")
        self.auto_time_scale = check_time_scale(time_scale) == "auto"
        if self.auto_time_scale:
            time_scale = None
        self.metric_channels = metric_channels if metric_channels is not None else out_channels
        self.hidden_channels = hidden_channels if hidden_channels is not None else heads * self.metric_channels
        self.initial_time_scale = time_scale if time_scale is not None else math.sqrt(self.metric_channels)
        self.learn_time_scale = learn_time_scale
        self.residual = residual
        self.act = activation_resolver(act) if isinstance(act, str) else act
        embed_width = heads * self.metric_channels
        self.embed_linear = Linear(width, embed_width, bias=False, weight_initializer="glorot")
        self.embed_hidden = Linear(width, self.hidden_channels, bias=True, weight_initializer="glorot")
        self.embed_output = Linear(self.hidden_channels, embed_width, bias=False, weight_initializer="glorot")
        log_t = torch.empty(heads)
        if learn_time_scale:
            self.log_time_scale = Parameter(log_t)
        else:
            self.register_buffer("log_time_scale", log_t)
        if self.auto_time_scale:  # only these layers carry it: state_dicts of the others stay as they were
            self.register_buffer("time_scale_unset", torch.tensor(True))
        self.lin_value = Linear(width, heads * out_channels, bias=False, weight_initializer="glorot")
        self.build_residual_and_bias(residual, bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot weights, inner biases drawn as by PyG's ``Linear``, zero output bias, t back to its initial value."""
        super().reset_parameters()
        for lin in (self.embed_linear, self.embed_hidden, self.embed_output, self.lin_value):
            lin.reset_parameters()
        with torch.no_grad():
            self.log_time_scale.fill_(math.log(self.initial_time_scale))
            if self.auto_time_scale:
                self.time_scale_unset.fill_(True)

    @property
    def time_scale(self) -> Tensor:
        """t_h > 0 per head, shape ``[heads]``."""
        return self.log_time_scale.exp()

    def metric_parameters(self) -> list[Parameter]:
        """The parameters of the metric: f's weights (W_1, W_2, b_2, W_3) and log t when learned.

        Weight decay on them shrinks ‖f(x_i) - f(x_j)‖² / t towards 0, i.e. the attention
        towards a uniform mean; :func:`tg_metricattn.models.metric_parameter_groups` puts
        them in a group of their own.
        """
        params = [*self.embed_linear.parameters(), *self.embed_hidden.parameters(), *self.embed_output.parameters()]
        return [*params, self.log_time_scale] if self.learn_time_scale else params

    def embed(self, x: Tensor) -> Tensor:
        """f(x) = x W_1 + act(x W_2 + b_2) W_3, shape ``[N, heads, metric_channels]``."""
        f = self.embed_linear(x) + self.embed_output(self.act(self.embed_hidden(x)))
        return f.view(-1, self.heads, self.metric_channels)

    def score_activation(self, scores: Tensor) -> Tensor:
        """The scores; on the first call of a ``time_scale="auto"`` layer, t is set from them first."""
        if self.auto_time_scale and bool(self.time_scale_unset):
            scores = self._start_time_scale(scores)
        return scores

    def _start_time_scale(self, scores: Tensor) -> Tensor:
        """Set t_h = median of the positive squared distances d = -s t (constructor docstring); rescale s."""
        with torch.no_grad():
            old = self.time_scale.to(scores.dtype)
            distances = -scores.detach() * old
            new = old.clone()
            for h in range(self.heads):
                d = distances[:, h]
                d = d[torch.isfinite(d) & (d > 0)]
                if d.numel():
                    new[h] = d.median()
            if not bool((new != old).any()):
                warnings.warn(
                    "MetricAttnConv(time_scale='auto') found no positive finite embedding distance on its first "
                    f"batch; t stays {float(old[0]):.4g} = sqrt(metric_channels).",
                    stacklevel=3,
                )
            self.log_time_scale.copy_(new.log().to(self.log_time_scale.dtype))
            self.time_scale_unset.fill_(False)
        return scores * (old / new)

    def repr_settings(self) -> dict[str, Any]:
        """The embedding widths and the time scale when not the defaults, and the common settings."""
        settings = super().repr_settings()
        if self.metric_channels != self.out_channels:
            settings["metric_channels"] = self.metric_channels
        if self.hidden_channels != self.heads * self.metric_channels:
            settings["hidden_channels"] = self.hidden_channels
        if self.auto_time_scale:
            settings["time_scale"] = "auto"
        elif self.initial_time_scale != math.sqrt(self.metric_channels):
            settings["time_scale"] = self.initial_time_scale
        if not self.learn_time_scale:
            settings["learn_time_scale"] = False
        return settings

    def distance_scale(self) -> Tensor:
        """t_h, one per head."""
        return self.time_scale
