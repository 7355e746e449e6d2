r"""Ground truth for the diagnostics: Gaussian-kernel propagation on points of the unit sphere.

With the kernel ``k(x, y) = exp(-‖x - y‖²/t)`` and the row-normalised propagation
``P f(x) = Σ_j k(x, y_j) f(y_j) / Σ_j k(x, y_j)`` on points ``y_j`` with density ``p`` on a
``d``-dimensional manifold, for smooth ``f``, small ``t`` and many points

    P f - f  ≈  (t/4) (Δ f + 2 ∇log p · ∇f).

Derivation (Coifman & Lafon 2006, normalisation α = 0): in local coordinates ``u = y - x``
the kernel is a Gaussian whose per-coordinate variance is ``t/2``, so for smooth ``g``
``∫ k g ≈ (π t)^{d/2} [g + (t/4)(Δ g + c g)]`` (``(1/2) Σ_i ∂_ii g · t/2``; ``c`` is a
curvature/extrinsic term that multiplies ``g``). With ``g = f p`` over ``g = p`` the
``c`` terms and the constant cancel:

    P f - f ≈ (t/4) (Δ(f p) - f Δp) / p = (t/4) (Δ f + 2 ∇p·∇f / p).

Numerical check of the constant on the sphere (Funk–Hecke, chord distance): a degree-1
harmonic is an exact eigenfunction of the continuous operator with eigenvalue
``coth(2/t) - t/2 = 1 - (t/4)·2 + O(e^{-4/t})``, i.e. exactly ``(t/4)Δ`` with ``Δ Y_1 = -2 Y_1``;
degree 2 gives ``1 - (t/4)·6 (1 + O(t))``. Hence ``(P f - f)/(t/4) → Δ f`` with bias ``O(t)``
and, for i.i.d. points, Monte-Carlo variance ``O(N^{-1/2} t^{-1 - d/4})``.

:func:`fibonacci_sphere` gives the deterministic uniform (low-discrepancy) points used
by the tests; with ``density_slope = a`` the points follow ``p ∝ 1 + a z``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

__all__ = ["fibonacci_sphere", "gaussian_propagation"]


def fibonacci_sphere(n: int, density_slope: float = 0.0) -> np.ndarray:
    """``n`` points on the unit sphere on a Fibonacci lattice, uniform or with density ``∝ 1 + a z``.

    Heights follow the inverse CDF of the density in ``z`` (uniform area measure on the
    sphere is uniform in ``z``), longitudes advance by the golden angle.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1; got {n}.")
    a = float(density_slope)
    if not -1.0 < a < 1.0:
        raise ValueError(f"density_slope must lie in (-1, 1) so that 1 + a z > 0; got {a}.")
    u = (np.arange(n) + 0.5) / n
    # CDF in z: F(z) = ((z + 1) + a (z² - 1)/2) / 2 = u  ->  a z²/2 + z + (1 - a/2 - 2u) = 0
    z = 2 * u - 1 if a == 0 else (-1 + np.sqrt(1 - 2 * a * (1 - a / 2 - 2 * u))) / a
    phi = np.pi * (1 + 5**0.5) * np.arange(n)
    r = np.sqrt(np.clip(1 - z * z, 0, None))
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def gaussian_propagation(points: np.ndarray, edge_index: Tensor, t: float, self_loops: bool = True) -> sp.csr_matrix:
    """``P[i, j] ∝ exp(-‖y_i - y_j‖²/t)`` over the edges ``j -> i`` (plus ``i -> i``), rows summing to 1."""
    points = np.asarray(points, dtype=np.float64)
    n = points.shape[0]
    src, dst = torch.as_tensor(edge_index).cpu().numpy()
    keep = src != dst
    src, dst = src[keep], dst[keep]
    if self_loops:
        src, dst = np.concatenate([src, np.arange(n)]), np.concatenate([dst, np.arange(n)])
    d2 = np.sum((points[dst] - points[src]) ** 2, axis=1)
    K = sp.csr_matrix((np.exp(-d2 / t), (dst, src)), shape=(n, n))
    rows = np.asarray(K.sum(axis=1)).ravel()
    return sp.csr_matrix(sp.diags(np.divide(1.0, rows, out=np.zeros_like(rows), where=rows > 0)) @ K)
