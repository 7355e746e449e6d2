"""PNG figures of the experiments: training curves, seed spread (violin), mean curves with bands, meshes.

Every figure is rendered off-screen (Agg) and written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from tg_metricattn.atomic_files import save_figure
from tg_metricattn.geometry import face_rows, vertex_array

__all__ = ["plot_mean_curves", "plot_mesh_segmentation", "plot_training_curves", "plot_violin"]


def plot_training_curves(history: Sequence[dict], path: str | os.PathLike, metric: str = "accuracy") -> Path:
    """Training/validation loss and train/val/test metric per epoch of one run."""
    epochs = [r["epoch"] for r in history]
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 3.6))
    for key in ("train_loss", "val_loss"):
        if any(key in r for r in history):
            ax_loss.plot(epochs, [r.get(key, np.nan) for r in history], label=key.replace("_", " "))
    for key in ("train_metric", "val_metric", "test_metric", "val_face_metric", "test_face_metric"):
        if any(key in r for r in history):
            ax_metric.plot(epochs, [r.get(key, np.nan) for r in history], label=key.replace("_metric", ""))
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_metric.set(xlabel="epoch", ylabel=metric, title=metric)
    for ax in (ax_loss, ax_metric):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_violin(values: dict[str, Sequence[float]], path: str | os.PathLike, ylabel: str = "test accuracy") -> Path:
    """One violin (with the individual seeds as dots) per layer: the spread over seeds."""
    names = list(values)
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(names), 3.6))
    data = [np.asarray(values[n], dtype=float) for n in names]
    if all(len(d) > 1 for d in data):
        ax.violinplot(data, showmeans=True)
    for i, d in enumerate(data, start=1):
        ax.scatter(np.full(len(d), i) + np.linspace(-0.05, 0.05, len(d)), d, s=10, color="k", zorder=3)
    ax.set_xticks(range(1, len(names) + 1), names)
    ax.set(ylabel=ylabel, title="spread over seeds")
    ax.grid(alpha=0.3, axis="y")
    return save_figure(fig, path)


def plot_mean_curves(
    curves: dict[str, dict[str, list[list[float]]]],
    path: str | os.PathLike,
    metric: str = "accuracy",
    keys: tuple[str, str] = ("train_loss", "val_metric"),
) -> Path:
    """Mean ± std over seeds of two curves per layer (default: training loss and validation metric).

    ``curves[layer][key]`` is one list per seed (runs that stopped early are padded with their last value).
    """
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    names = {"train_loss": "training loss", "val_metric": f"validation {metric}", "test_accuracy": "test accuracy"}
    labels = [names.get(key, key.replace("_", " ")) for key in keys]
    for ax, key, label in zip(axes, keys, labels, strict=True):
        for layer, per_key in curves.items():
            runs = per_key.get(key) or []
            if not runs:
                continue
            length = max(len(r) for r in runs)
            padded = np.array([r + [r[-1]] * (length - len(r)) for r in runs], dtype=float)
            mean, std = padded.mean(0), padded.std(0)
            x = np.arange(1, length + 1)
            ax.plot(x, mean, label=layer)
            ax.fill_between(x, mean - std, mean + std, alpha=0.2)
        ax.set(xlabel="epoch", ylabel=label, title=label)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_mesh_segmentation(
    pos: np.ndarray, face: np.ndarray, panels: dict[str, np.ndarray], path: str | os.PathLike, title: str = ""
) -> Path:
    """The mesh drawn once per panel, each face coloured by the label of its first vertex.

    Args:
        pos: ``[V, 3]`` vertex positions; face: PyG's ``[3, F]`` triangles.
        panels: panel title -> per-vertex labels ``[V]`` (e.g. predicted and true part).
    """
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    pos = vertex_array(pos)
    face = face_rows(face, pos.shape[0])
    cmap = plt.get_cmap("tab10")
    fig = plt.figure(figsize=(4.2 * len(panels), 4.4))
    lo, hi = pos.min(0), pos.max(0)
    for k, (name, labels) in enumerate(panels.items(), start=1):
        ax = fig.add_subplot(1, len(panels), k, projection="3d")
        colors = cmap(np.asarray(labels)[face[:, 0]] % 10)
        ax.add_collection3d(Poly3DCollection(pos[face], facecolors=colors, edgecolor="none"))
        ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]), zlim=(lo[2], hi[2]), title=name)
        ax.set_box_aspect(hi - lo + 1e-9)
        ax.view_init(elev=15, azim=-70)
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
