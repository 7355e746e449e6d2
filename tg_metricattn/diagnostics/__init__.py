"""Diagnostics: how close is a layer's attention to heat diffusion on the graph or mesh?

See the design notes (section 2) and the README's Diagnostics section. Per layer and
head: the propagation matrix P from the layer's own attention weights, reference
Laplacians (random-walk by default, since P is row-stochastic), heat flow exp(-t L) by
Krylov (Lanczos) or ``expm_multiply``, the fitted diffusion time t* and residual, spectra and principal
angles, reversibility (drift share), the density drift share, the departure from the uniform mean and the self
weight, Dirichlet energies, and for metric/L2 attention the learned edge lengths against a
mesh. :func:`uniform_attention` ablates a trained model's attention to the uniform mean.
"""

from tg_metricattn.datasets.point_graphs import knn_edge_index
from tg_metricattn.diagnostics.attention_ablation import uniform_attention
from tg_metricattn.diagnostics.density_drift import density_drift_share, layer_log_partition
from tg_metricattn.diagnostics.diagnose_model import diagnose, diffusion_times
from tg_metricattn.diagnostics.diagnostic_plots import (
    plot_conformal_factor,
    plot_diffusion_fits,
    plot_dirichlet,
    plot_spectrum,
    save_plots,
)
from tg_metricattn.diagnostics.diffusion_fit import (
    DiffusionFit,
    default_time_bounds,
    fit_diffusion_time,
    fit_diffusion_times,
    fit_time_least_squares,
    fit_time_probes,
    grid_minimum,
    probe_residuals,
    probe_signals,
    time_grid,
)
from tg_metricattn.diagnostics.dirichlet import dirichlet_energies, dirichlet_energy
from tg_metricattn.diagnostics.edge_lengths import (
    DistortionStats,
    conformal_factor,
    distortion_stats,
    geometric_edge_lengths,
    layer_embedding,
    learned_edge_lengths,
)
from tg_metricattn.diagnostics.flow_fit import FlowFit, fit_flow_times, flow_outputs
from tg_metricattn.diagnostics.heat import (
    HeatConvergenceError,
    heat_apply,
    heat_blocks,
    heat_curve,
    heat_curves,
    symmetrizing_weights,
)
from tg_metricattn.diagnostics.laplacians import (
    LAPLACIAN_KINDS,
    ReferenceLaplacian,
    graph_laplacian,
    laplacian_eigenpairs,
    mesh_laplace_operator,
)
from tg_metricattn.diagnostics.propagation import (
    attention_layers,
    capture_layer_inputs,
    propagation_matrix,
    weights_to_matrices,
)
from tg_metricattn.diagnostics.report import DiagnosticsReport, HeadReport, LayerReport
from tg_metricattn.diagnostics.reversibility import drift_share, stationary_distribution
from tg_metricattn.diagnostics.spectra import (
    SpectrumComparison,
    compare_spectra,
    leading_eigenpairs,
    near_zero_count,
    spectral_gap,
)
from tg_metricattn.diagnostics.sphere import fibonacci_sphere, gaussian_propagation
from tg_metricattn.diagnostics.uniformity import UniformityStats, uniform_propagation, uniformity_stats

__all__ = [
    "LAPLACIAN_KINDS",
    "DiagnosticsReport",
    "DiffusionFit",
    "DistortionStats",
    "FlowFit",
    "HeadReport",
    "HeatConvergenceError",
    "LayerReport",
    "ReferenceLaplacian",
    "SpectrumComparison",
    "UniformityStats",
    "attention_layers",
    "capture_layer_inputs",
    "compare_spectra",
    "conformal_factor",
    "default_time_bounds",
    "density_drift_share",
    "diagnose",
    "diffusion_times",
    "dirichlet_energies",
    "dirichlet_energy",
    "distortion_stats",
    "drift_share",
    "fibonacci_sphere",
    "fit_diffusion_time",
    "fit_diffusion_times",
    "fit_flow_times",
    "fit_time_least_squares",
    "fit_time_probes",
    "flow_outputs",
    "gaussian_propagation",
    "geometric_edge_lengths",
    "graph_laplacian",
    "grid_minimum",
    "heat_apply",
    "heat_blocks",
    "heat_curve",
    "heat_curves",
    "knn_edge_index",
    "laplacian_eigenpairs",
    "layer_embedding",
    "layer_log_partition",
    "leading_eigenpairs",
    "learned_edge_lengths",
    "mesh_laplace_operator",
    "near_zero_count",
    "plot_conformal_factor",
    "plot_diffusion_fits",
    "plot_dirichlet",
    "plot_spectrum",
    "probe_residuals",
    "probe_signals",
    "propagation_matrix",
    "save_plots",
    "spectral_gap",
    "stationary_distribution",
    "symmetrizing_weights",
    "time_grid",
    "uniform_attention",
    "uniform_propagation",
    "uniformity_stats",
    "weights_to_matrices",
]
