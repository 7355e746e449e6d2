"""Figures of a :class:`~tg_metricattn.diagnostics.DiagnosticsReport` (matplotlib, Agg backend, PNG).

- :func:`plot_spectrum`: eigenvalues of P against exp(-t* λ_k(L)) per layer and head;
- :func:`plot_diffusion_fits`: t* and its relative residual per layer and head;
- :func:`plot_dirichlet`: Dirichlet energies of each layer's input and of the output;
- :func:`plot_conformal_factor`: a mesh coloured by the per-vertex conformal factor.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from mpl_toolkits.mplot3d.art3d import Poly3DCollection

from tg_metricattn.atomic_files import save_figure
from tg_metricattn.diagnostics.report import DiagnosticsReport
from tg_metricattn.geometry import face_rows, vertex_array

__all__ = ["plot_conformal_factor", "plot_diffusion_fits", "plot_dirichlet", "plot_spectrum", "save_plots"]


def plot_spectrum(report: DiagnosticsReport, path) -> Path:
    """Overlay Re μ_k(P) (solid) and exp(-t* λ_k(L)) (dashed) for every layer and head."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for layer in report.layers:
        for head in layer.heads:
            if not head.spectrum:
                continue
            k = np.arange(1, len(head.spectrum["p_eigenvalues"]) + 1)
            (line,) = ax.plot(k, head.spectrum["p_eigenvalues"], "o-", label=f"{layer.name}[{head.head}] P")
            kh = np.arange(1, len(head.spectrum["heat_eigenvalues"]) + 1)
            ax.plot(kh, head.spectrum["heat_eigenvalues"], "x--", color=line.get_color())
    ax.set_xlabel("k")
    ax.set_ylabel("eigenvalue")
    ax.set_title("P (solid) vs exp(-t* λ_k(L)) (dashed)")
    ax.legend(fontsize=6)
    return save_figure(fig, path)


def plot_diffusion_fits(report: DiagnosticsReport, path) -> Path:
    """Bar charts of t* (probe fit) and its residual per layer/head for each Laplacian."""
    labels = [f"{layer.name}[{head.head}]" for layer in report.layers for head in layer.heads]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    width = 0.8 / max(len(report.laplacians), 1)
    pos = np.arange(len(labels))
    for i, kind in enumerate(report.laplacians):
        heads = [head for layer in report.layers for head in layer.heads]
        axes[0].bar(pos + i * width, [h.fits[kind]["t_probe"] for h in heads], width, label=kind)
        axes[1].bar(pos + i * width, [h.fits[kind]["residual_probe"] for h in heads], width, label=kind)
    for ax, title in zip(axes, ("fitted diffusion time t*", "relative residual at t*"), strict=True):
        ax.set_xticks(pos, labels, rotation=45, ha="right", fontsize=7)
        ax.set_title(title)
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def plot_dirichlet(report: DiagnosticsReport, path) -> Path:
    """Rayleigh quotient E_sym(X)/‖X‖² of each layer's input and the output (log scale)."""
    names = [layer.name for layer in report.layers if layer.dirichlet_input]
    values = [layer.dirichlet_input["rayleigh"] for layer in report.layers if layer.dirichlet_input]
    if report.dirichlet_output:
        names.append("output")
        values.append(report.dirichlet_output["rayleigh"])
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(range(len(values)), values, "o-")
    ax.set_xticks(range(len(values)), names, rotation=45, ha="right", fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("normalised Dirichlet energy")
    return save_figure(fig, path)


def plot_conformal_factor(pos, face, u, path, title: str = "conformal factor u") -> Path:
    """A triangle mesh (``pos`` [V, 3], PyG's ``face`` [3, F]) coloured by the vertex values ``u`` [V]."""
    pos, u = vertex_array(pos), np.asarray(u, dtype=float)
    face = face_rows(face, pos.shape[0])
    if u.shape != (pos.shape[0],):
        raise ValueError(f"u must have one value per vertex ({pos.shape[0]}); got shape {u.shape}.")
    fig = plt.figure(figsize=(5, 5))
    ax = fig.add_subplot(projection="3d")
    face_value = u[face].mean(axis=1)
    norm = matplotlib.colors.Normalize(vmin=np.quantile(u, 0.02), vmax=np.quantile(u, 0.98))
    collection = Poly3DCollection(pos[face], facecolors=plt.cm.viridis(norm(face_value)), edgecolor="none")
    ax.add_collection3d(collection)
    lo, hi = pos.min(axis=0), pos.max(axis=0)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_zlim(lo[2], hi[2])
    ax.set_box_aspect(hi - lo + 1e-9)
    ax.set_axis_off()
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap="viridis"), ax=ax, shrink=0.6, label="u")
    ax.set_title(title)
    return save_figure(fig, path)


def save_plots(report: DiagnosticsReport, out_dir) -> list[Path]:
    """Write every figure that the report supports into ``out_dir`` (no spectrum plot when the
    report has no spectra); returns the paths."""
    out_dir = Path(out_dir)
    paths = [
        plot_diffusion_fits(report, out_dir / "diffusion_fits.png"),
        plot_dirichlet(report, out_dir / "dirichlet.png"),
    ]
    if any(head.spectrum for layer in report.layers for head in layer.heads):
        paths.insert(0, plot_spectrum(report, out_dir / "spectrum.png"))
    if report.positions is not None and report.faces is not None:
        for name, u in report.arrays.items():
            safe = name.replace(".", "_")
            paths.append(
                plot_conformal_factor(report.positions, report.faces, u[:, 0], out_dir / f"conformal_{safe}.png")
            )
    return paths
