"""``diagnose(model, data)``: every attention layer and head of a model against heat diffusion.

One eval forward pass ``model(data.x, data.edge_index)`` (or ``model(**model.inputs(data))``
for a model that says what it takes, such as
:class:`~tg_metricattn.models.DiffusionAttentionNet`) records, with forward pre-hooks,
the input ``x`` and graph of every :class:`~tg_metricattn.layers.AttentionConv` inside the
model. For each layer and head the report then holds

- the fitted diffusion times and residuals against each requested Laplacian
  (:mod:`~tg_metricattn.diagnostics.diffusion_fit`; default the random-walk Laplacian,
  since P is row-stochastic; ``"cotangent"`` uses ``M^{-1} L_cot`` of ``data.pos``/``data.face``
  scaled to the unit ball, the operator whose times the heat-diffusion layers learn);
- the spectral comparison with ``exp(-t_probe L)`` for the first Laplacian, the spectral
  gap and the count of near-zero eigenvalues of ``I - P`` (:mod:`~tg_metricattn.diagnostics.spectra`);
- the drift share of ``diag(π) P`` (:mod:`~tg_metricattn.diagnostics.reversibility`) and the
  density drift share, the part 1 − α of the sampling density's drift that P keeps
  (:mod:`~tg_metricattn.diagnostics.density_drift`);
- how far P is from the uniform mean over each neighbourhood and the weight each node
  keeps on itself (:mod:`~tg_metricattn.diagnostics.uniformity`);
- for metric and L2 attention on data with ``pos``: edge-length distortion and the
  conformal factor (:mod:`~tg_metricattn.diagnostics.edge_lengths`);

and per layer the Dirichlet energies of its input (:mod:`~tg_metricattn.diagnostics.dirichlet`),
plus those of the model output. The learned times of every
:class:`~tg_metricattn.layers.SpectralHeatDiffusion` layer are listed beside them, so the
attention's fitted ``t*`` (``"cotangent"``) and the exact diffusion's times can be compared.
For a flow model (:class:`~tg_metricattn.models.AttentionFlowNet`, which says so with
``flow_settings``) the layer is diagnosed on the flow's initial state, and the report's
``flow`` holds the fitted time of the whole flow per head against the learned T
(:mod:`~tg_metricattn.diagnostics.flow_fit`).
Nothing dense of size N x N is formed above ``dense_below`` nodes. Bipartite layers
(``x`` a pair) are listed without diffusion numbers.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import Tensor, nn

from tg_metricattn.diagnostics.density_drift import density_drift_share, layer_log_partition
from tg_metricattn.diagnostics.diffusion_fit import default_time_bounds, fit_diffusion_times
from tg_metricattn.diagnostics.dirichlet import dirichlet_energies
from tg_metricattn.diagnostics.edge_lengths import (
    conformal_factor,
    distortion_stats,
    geometric_edge_lengths,
    learned_edge_lengths,
)
from tg_metricattn.diagnostics.flow_fit import fit_flow_times
from tg_metricattn.diagnostics.laplacians import (
    LAPLACIAN_KINDS,
    ReferenceLaplacian,
    graph_laplacian,
    mesh_laplace_operator,
)
from tg_metricattn.diagnostics.propagation import attention_layers, capture_layer_inputs, propagation_matrix
from tg_metricattn.diagnostics.report import FAST_TIME_HIGH, DiagnosticsReport, HeadReport, LayerReport
from tg_metricattn.diagnostics.reversibility import drift_share, stationary_distribution
from tg_metricattn.diagnostics.spectra import compare_spectra
from tg_metricattn.diagnostics.uniformity import uniformity_stats
from tg_metricattn.geometry import vertex_array
from tg_metricattn.layers import AttentionConv, DistanceAttnConv, MetricAttnConv, SpectralHeatDiffusion

__all__ = ["diagnose", "diffusion_times"]

#: the fast setting's largest chain whose stationary distribution may still come from a sparse LU where
#: ARPACK does not converge (the default: any)
FAST_LU_STATES = 50_000


def diffusion_times(model: nn.Module) -> dict[str, dict]:
    """Learned times of every :class:`~tg_metricattn.layers.SpectralHeatDiffusion` in ``model``:
    ``{name: {'min', 'median', 'max', 'values'}}`` (times of the mesh scaled to the unit ball)."""
    out = {}
    for name, module in model.named_modules():
        if isinstance(module, SpectralHeatDiffusion):
            t = module.time.detach().cpu().double()
            out[name] = {
                "min": float(t.min()),
                "median": float(t.median()),
                "max": float(t.max()),
                "values": t.tolist(),
            }
    return out


def _laplacian_for(kind: str, edge_index: Tensor, num_nodes: int, data) -> ReferenceLaplacian:
    if kind == "cotangent":
        if getattr(data, "pos", None) is None or getattr(data, "face", None) is None:
            raise ValueError("The 'cotangent' Laplacian needs data.pos and data.face (a triangle mesh).")
        if data.pos.size(0) != num_nodes:
            raise ValueError(f"data.pos has {data.pos.size(0)} vertices but the layer sees {num_nodes} nodes.")
        pos = vertex_array(data.pos)
        centred = pos - pos.mean(axis=0)
        unit = centred / max(float(np.linalg.norm(centred, axis=1).max()), np.finfo(np.float64).tiny)
        return mesh_laplace_operator(unit, data.face)
    return graph_laplacian(edge_index, num_nodes, kind)


def _edge_index_of(edge_index, P) -> Tensor:
    if isinstance(edge_index, Tensor) and edge_index.layout == torch.strided:
        return edge_index.detach().cpu()
    coo = P.tocoo()  # pattern of the propagation: row target, column source
    return torch.as_tensor(np.stack([coo.col, coo.row]), dtype=torch.long)


@torch.no_grad()
def diagnose(
    model: nn.Module,
    data,
    laplacians: tuple[str, ...] = ("rw",),
    num_eigs: int = 8,
    num_probes: int = 8,
    seed: int = 0,
    bounds: tuple[float, float] | None = None,
    spectra: bool = True,
    fast: bool = False,
) -> DiagnosticsReport:
    """Diagnose every attention layer and head of ``model`` on ``data`` (module docstring).

    Args:
        model: any module containing :class:`~tg_metricattn.layers.AttentionConv` (or
            :class:`~tg_metricattn.layers.SpectralHeatDiffusion`) layers, called as
            ``model(**model.inputs(data))`` when it has an ``inputs`` method, else as
            ``model(data.x, data.edge_index)``.
        data: a PyG ``Data`` with ``x`` and ``edge_index`` (and ``pos``/``face`` for meshes).
        laplacians: reference Laplacians, from ``"rw"`` (default), ``"sym"``,
            ``"combinatorial"``, ``"cotangent"``; the first is used for the spectra.
        num_eigs: leading eigenpairs compared (0 or ``spectra=False`` skips the spectra).
        num_probes: random probe signals in the probe fit (the layer's input features are added).
        seed: seed of the random probes.
        bounds: search interval of the diffusion time (default: scaled to each Laplacian).
        spectra: compute the spectral comparison (eigensolvers; the slowest part).
        fast: the setting for graphs of millions of edges: no spectra, and the probe fit's
            interval ending at ``10 / median L_ii`` instead of 100 (on a directed graph the
            heat flow is stepped through the whole interval, so its upper end sets the cost);
            the probes are the same, so a t* below that end is the default setting's, and a
            t* at it is shown as ``t*>=`` in the summary. Where ARPACK does not converge on the stationary
            distribution of a chain of more than 50,000 nodes (one that mixes very slowly),
            the drift share is ``None`` rather than a sparse LU of hours. Uniformity and
            Dirichlet energies are as without it.
    """
    if not laplacians:
        raise ValueError("laplacians must name at least one Laplacian.")
    for kind in laplacians:
        if kind not in LAPLACIAN_KINDS:
            raise ValueError(f"Unknown Laplacian {kind!r}; choose from {LAPLACIAN_KINDS}.")
    if getattr(data, "x", None) is None or getattr(data, "edge_index", None) is None:
        raise ValueError("data must have x and edge_index.")
    times = diffusion_times(model)
    if not times and not any(True for _ in attention_layers(model)):
        raise ValueError(f"{type(model).__name__} contains no AttentionConv or SpectralHeatDiffusion layer.")
    start = time.perf_counter()
    inputs = (
        model.inputs(data) if callable(getattr(model, "inputs", None)) else {"x": data.x, "edge_index": data.edge_index}
    )
    captured, output = capture_layer_inputs(model, **inputs)
    flow = model.flow_settings() if callable(getattr(model, "flow_settings", None)) else None
    if flow is not None:  # the flow calls its layer's attention(), not its forward: no hook sees it
        captured = _in_eval_mode(model, lambda: model.diagnostic_inputs(**inputs))
    modules = dict(model.named_modules())
    layers, arrays, cache = [], {}, {}
    settings = (laplacians, num_eigs, num_probes, seed, bounds, spectra and not fast, fast)
    for name, (x, edge_index, edge_attr) in captured.items():
        layer = modules.get(name, model if name == type(model).__name__ else None)
        report, conformal = _diagnose_layer(name, layer, x, edge_index, edge_attr, data, cache, settings)
        layers.append(report)
        if conformal is not None:
            arrays[name] = conformal
    flow_report = None
    if flow is not None:
        flow_report = _diagnose_flow(flow, modules, captured, layers, data, settings)
    pos = getattr(data, "pos", None)
    out_ei = data.edge_index.detach().cpu()
    dirichlet_output = {}
    if isinstance(output, Tensor) and output.dim() == 2 and output.size(0) == data.x.size(0):
        dirichlet_output = dirichlet_energies(output, out_ei, output.size(0))
    face = getattr(data, "face", None)
    return DiagnosticsReport(
        layers=layers,
        dirichlet_output=dirichlet_output,
        laplacians=list(laplacians),
        seconds=time.perf_counter() - start,
        diffusion_times=times,
        arrays=arrays,
        flow=flow_report,
        fast=fast,
        positions=None if pos is None else pos.detach().cpu().double().numpy(),
        faces=None if face is None else face.detach().cpu().numpy(),
    )


def _in_eval_mode(model: nn.Module, call):
    was_training = model.training
    model.eval()
    try:
        return call()
    finally:
        model.train(was_training)


def _diagnose_flow(flow: dict, modules: dict, captured: dict, layers: list, data, settings: tuple) -> dict:
    """The fitted time of the whole flow per head (:mod:`~tg_metricattn.diagnostics.flow_fit`) against
    the learned T times the least-squares time of its generator (I - P ≈ t_ls L, first Laplacian):
    the flow's time when P - I is a multiple of -L. A flow with a source term (β x(0) fed in) is no heat
    flow: its heads are not fitted, and the report says so."""
    if flow.get("source") is not None:
        return {**flow, "heads": [], "note": "source term β x(0): not a heat flow, the whole flow is not fitted"}
    laplacians, _, num_probes, seed, bounds, _, _ = settings
    (name, (x, edge_index, edge_attr)), layer_report = next(iter(captured.items())), layers[0]
    mats = propagation_matrix(modules[name], x, edge_index, edge_attr)
    n = mats[0].shape[0]
    reference = _laplacian_for(laplacians[0], _edge_index_of(edge_index, mats[0]), n, data)
    fits = fit_flow_times(mats, reference, flow["time"], flow["steps"], flow["method"], x, num_probes, seed, bounds)
    heads = []
    for fit, head in zip(fits, layer_report.heads, strict=True):
        t_step = head.fits[laplacians[0]]["t_least_squares"]
        heads.append({**fit.to_dict(), "t_step": t_step, "time_times_t_step": flow["time"] * t_step})
    return {**flow, "heads": heads}


def _fit_bounds(reference: ReferenceLaplacian, bounds, fast: bool) -> tuple[float, float] | None:
    if bounds is not None or not fast:
        return bounds
    return default_time_bounds(reference.matrix, high=FAST_TIME_HIGH)


def _diagnose_layer(
    name: str, layer: AttentionConv, x, edge_index, edge_attr, data, cache: dict, settings: tuple
) -> tuple[LayerReport, np.ndarray | None]:
    """The report of one attention layer on its recorded input, and its conformal factors ``[N, heads]``
    (distance kinds on data with ``pos``). ``cache`` keeps the reference Laplacians per graph."""
    laplacians, num_eigs, num_probes, seed, bounds, spectra, fast = settings
    time_scale = layer.time_scale.detach().cpu().tolist() if isinstance(layer, MetricAttnConv) else None
    if isinstance(x, (tuple, list)):
        note = "bipartite: skipped"
        return LayerReport(name, type(layer).__name__, int(x[1].size(0)), 0, [], {}, time_scale, note), None
    mats = propagation_matrix(layer, x, edge_index, edge_attr)
    n = mats[0].shape[0]
    ei = _edge_index_of(edge_index, mats[0])
    key = (ei.data_ptr(), ei.size(1), n)
    if key not in cache:
        cache[key] = {kind: _laplacian_for(kind, ei, n, data) for kind in laplacians}
    refs = cache[key]
    pos = getattr(data, "pos", None)
    lengths = conformal = None
    if isinstance(layer, DistanceAttnConv) and pos is not None and pos.size(0) == n:
        lengths = (learned_edge_lengths(layer, x, ei), geometric_edge_lengths(pos, ei))
        conformal = np.zeros((n, layer.heads))
    layer_fits = {
        kind: fit_diffusion_times(mats, ref, x, num_probes, seed, _fit_bounds(ref, bounds, fast))
        for kind, ref in refs.items()
    }
    log_q = layer_log_partition(layer, x, edge_index, edge_attr)
    heads = []
    for h, P in enumerate(mats):
        fits = {kind: layer_fits[kind][h].to_dict() for kind in refs}
        first = laplacians[0]
        spectrum = None
        if spectra and num_eigs > 0:
            spectrum = compare_spectra(P, refs[first], fits[first]["t_probe"], num_eigs).to_dict()
        distortion = None
        if lengths is not None:
            u, residual = conformal_factor(lengths[0][:, h], lengths[1], ei, n)
            conformal[:, h] = u
            distortion = distortion_stats(lengths[0][:, h], lengths[1], residual).to_dict()
        pi = stationary_distribution(P, lu_limit=FAST_LU_STATES if fast else None)
        drift = None if pi is None else drift_share(P, pi)
        density_drift = density_drift_share(P, log_q[:, h])
        uniformity = uniformity_stats(P).to_dict()
        heads.append(HeadReport(h, fits, drift, uniformity, spectrum, distortion, density_drift))
    energies = dirichlet_energies(x, ei, n)
    return LayerReport(name, type(layer).__name__, n, int(mats[0].nnz), heads, energies, time_scale), conformal
