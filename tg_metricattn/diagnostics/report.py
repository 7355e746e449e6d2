"""The report of :func:`~tg_metricattn.diagnostics.diagnose`: plain data classes, JSON and a summary.

:class:`DiagnosticsReport` holds one :class:`LayerReport` per attention layer, each with one
:class:`HeadReport` per head (fitted diffusion times and residuals, spectrum, drift share,
edge-length distortion), the Dirichlet energies, and the learned heat-diffusion times.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

#: the fast setting's upper end of the probe fit's interval, in units of 1 / median L_ii (the default is 100);
#: the summary states it, the diagnostics use it
FAST_TIME_HIGH = 10.0

__all__ = ["DiagnosticsReport", "HeadReport", "LayerReport"]


@dataclass
class HeadReport:
    """Numbers of one head: ``fits[kind]`` (a :class:`DiffusionFit` dict), drift, departure from the
    uniform mean (a :class:`UniformityStats` dict), spectrum, distortion, density drift share."""

    head: int
    fits: dict[str, dict]
    drift_share: float | None  # None: not determined in the fast setting (the chain mixes too slowly)
    uniformity: dict | None = None
    spectrum: dict | None = None
    distortion: dict | None = None
    density_drift: float | None = None  # the share 1 - α of the density drift kept; None: uniform density


@dataclass
class LayerReport:
    """One attention layer: its heads, input Dirichlet energies and (metric attention) time scales."""

    name: str
    layer_type: str
    num_nodes: int
    num_edges: int
    heads: list[HeadReport]
    dirichlet_input: dict[str, float]
    time_scale: list[float] | None = None
    note: str = ""


@dataclass
class DiagnosticsReport:
    """The report of :func:`diagnose`; ``arrays`` (per-vertex conformal factors, ``[N, heads]`` per
    layer) and ``positions``/``faces`` for plotting are kept out of the JSON."""

    layers: list[LayerReport]
    dirichlet_output: dict[str, float]
    laplacians: list[str]
    seconds: float
    diffusion_times: dict[str, dict] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    flow: dict | None = None
    fast: bool = False
    positions: np.ndarray | None = field(default=None, repr=False)
    faces: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """Plain dict of every number (arrays excluded)."""
        out = asdict(self)
        for key in ("arrays", "positions", "faces"):
            out.pop(key)
        return out

    def to_json(self, **kwargs) -> str:
        """JSON text of :meth:`to_dict` (NaN written as ``NaN``)."""
        return json.dumps(self.to_dict(), **kwargs)

    def summary(self) -> str:
        """One line per layer and head: t* (``t*>=``: at the end of the interval searched), residual,
        drift share, density drift share, self weight (uniform beside it), max |P - U|, spectral gap, near-zero
        count of I - P."""
        lines = []
        if self.fast:
            lines.append(f"fast setting: no spectra, t searched up to {FAST_TIME_HIGH:g} / median L_ii")
        for layer in self.layers:
            for head in layer.heads:
                parts = [f"{layer.name}[{head.head}]"]
                for kind, fit in head.fits.items():
                    at_end = ">=" if fit["t_probe"] >= fit.get("t_high", np.inf) else "="
                    parts.append(f"{kind}: t*{at_end}{fit['t_probe']:.4g} res={fit['residual_probe']:.3f}")
                parts.append("drift=n/a" if head.drift_share is None else f"drift={head.drift_share:.3f}")
                if head.density_drift is not None:
                    parts.append(f"density-drift={head.density_drift:.3f}")
                if head.uniformity:
                    u = head.uniformity
                    kept = (
                        f"self={u['self_weight']:.3f} (uniform {u['uniform_self_weight']:.3f})"
                        if u["nodes_with_self_loop"]
                        else "self=none (no self-loops)"
                    )
                    parts.append(f"{kept} |P-U|max={u['max_departure']:.3g}")
                if head.spectrum:
                    gap = head.spectrum["spectral_gap"]  # |gap| < 1e-6: eigenvalue 1 repeated (to eigensolver accuracy)
                    parts.append(f"gap={0.0 if abs(gap) < 1e-6 else gap:.4g} zero_modes={head.spectrum['near_zero']}")
                    found = len(head.spectrum["p_eigenvalues"])
                    asked = head.spectrum.get("requested", found)
                    if found < asked:
                        parts.append(f"(eigenpairs: {found} of {asked} converged)")
                lines.append("  ".join(parts))
        if self.flow is not None:
            f = self.flow
            lines.append(f"flow: T={f['time']:.4g} in {f['steps']} {f['method']} steps, {f['dynamics']} dynamics")
            if f.get("source") is not None:
                lines.append(f"flow: β={f['source']:.4g}; {f['note']}")
            for h, head in enumerate(f["heads"]):
                lines.append(
                    f"flow[{h}]  {head['laplacian']}: t*={head['t_flow']:.4g} res={head['residual_flow']:.3f}  "
                    f"(T x t_ls of I - P = {head['time_times_t_step']:.4g})"
                )
        for name, times in self.diffusion_times.items():
            lines.append(
                f"{name}: heat diffusion times t = {times['min']:.4g} .. {times['max']:.4g} "
                f"(median {times['median']:.4g}, {len(times['values'])} channels)"
            )
        return "\n".join(lines)
