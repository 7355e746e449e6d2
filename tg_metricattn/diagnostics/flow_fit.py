"""The diffusion time of a whole attention flow (:class:`~tg_metricattn.models.AttentionFlowNet`).

The flow integrates dx/dt = (P_h - I) x for a time T in K steps; on probe signals X its map is
Φ_h X = integrate((P_h - I) ·, X, T, K, method), computed with the same integrator as the model
(:func:`~tg_metricattn.flow_integration.integrate`) from the layer's sparse P_h. As for one
layer, ``t_flow = argmin_t ‖Φ_h X - exp(-t L) X‖_F / ‖X‖_F`` on the time grid, refined.

A check of the diagnostics themselves: when P is the one-step diffusion P = I - c L (for
uniform attention on a graph of equal degrees d with self-loops, c = d / (d + 1) for the
random-walk L), the flow is exp(-T c L) up to the integration error, so the fit must return
t_flow = c T with a residual near zero. A trained flow whose P departs from diffusion shows it
as a larger residual. For ``dynamics='nonlinear'`` P changes along the flow; the fit uses P of
x(0), i.e. the flow linearised at its start.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp

from tg_metricattn.diagnostics._validation import as_square_csr, same_size
from tg_metricattn.diagnostics.diffusion_fit import (
    default_time_bounds,
    grid_minimum,
    output_residuals,
    probe_signals,
    time_grid,
)
from tg_metricattn.diagnostics.laplacians import ReferenceLaplacian, matrix_and_kind
from tg_metricattn.flow_integration import integrate

__all__ = ["FlowFit", "fit_flow_times", "flow_outputs"]


@dataclass
class FlowFit:
    """The fitted time of one head's whole flow, beside the flow's own T."""

    laplacian: str
    t_flow: float
    residual_flow: float
    flow_time: float
    num_probes: int

    def to_dict(self) -> dict:
        return asdict(self)


def flow_outputs(P: sp.csr_matrix, X: np.ndarray, time: float, steps: int, method: str) -> np.ndarray:
    """Φ X: the signals ``X`` ``[N, K]`` after the flow dx/dt = (P - I) x for ``time`` in ``steps`` steps."""
    return integrate(lambda Y: P @ Y - Y, X, time, steps, method)


def fit_flow_times(
    mats: list,
    laplacian: ReferenceLaplacian | sp.spmatrix,
    time: float,
    steps: int,
    method: str,
    features=None,
    num_random: int = 8,
    seed: int = 0,
    bounds: tuple[float, float] | None = None,
) -> list[FlowFit]:
    """``t_flow`` and its residual (module docstring) for the flow of each head's ``P_h`` in ``mats``.

    Probes as :func:`~tg_metricattn.diagnostics.diffusion_fit.fit_diffusion_times` (random
    signals and the flow's initial state ``features``); ``bounds`` default to the Laplacian's,
    widened by ``time`` so that long flows stay inside the grid.
    """
    L, kind = matrix_and_kind(laplacian)
    mats = [as_square_csr(P, "P") for P in mats]
    for P in mats:
        same_size(P, L, "P", "L")
    low, high = bounds if bounds is not None else default_time_bounds(L)
    times = time_grid((low, high * max(1.0, time)) if bounds is None else (low, high))
    X = probe_signals(L.shape[0], num_random, features, seed)
    residuals = output_residuals([flow_outputs(P, X, time, steps, method) for P in mats], laplacian, X, times)
    return [FlowFit(kind, *grid_minimum(times, r), time, X.shape[1]) for r in residuals]
