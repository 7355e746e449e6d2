"""Fitting a diffusion time ``t*`` so that the propagation ``P`` resembles heat flow ``exp(-t L)``.

Two estimates, each with its relative residual at ``t*``:

1. Least squares on the edge set (closed form): ``I - P ≈ t L`` entrywise, over the
   entries of the pattern of ``L`` (edges and diagonal)::

       t_ls = <I - P, L>_F / <L, L>_F,     residual = ‖(I - P) - t_ls L‖_F / ‖I - P‖_F

   (entries of ``I - P`` outside the pattern of ``L`` count in the residual). This is the
   one-step (explicit Euler) reading ``P ≈ I - t L``.
2. Probe signals: ``t_probe = argmin_t r(t)``,  ``r(t) = ‖P X - exp(-t L) X‖_F / ‖X‖_F``,
   evaluated on a log-spaced grid of ``t`` over ``bounds`` (24 points per decade, a ratio
   of 1.1) and refined by a parabola in ``log t`` through ``r²`` at the grid minimum and its two
   neighbours. The default bounds are ``(1e-3, 1e2) / median_i L_ii``: the interval a
   random-walk Laplacian (diagonal 1) gets, rescaled for Laplacians of another scale (a
   mesh's ``M^{-1} L_cot`` has a diagonal of order 1/h²). ``X`` holds random Gaussian
   signals and, when given, the layer's input features, each column scaled to unit norm;
   ``exp(-t L) X`` for all grid times comes from one Krylov decomposition per probe
   column, or for a directed graph one step of ``expm_multiply`` per grid time on all
   columns (:func:`~tg_metricattn.diagnostics.heat.heat_blocks`), shared by all heads of a layer.

``P`` is row-stochastic, i.e. random-walk like, so the default reference is the
random-walk Laplacian ``L = I - D^{-1} A`` (``P 1 = exp(-t L) 1 = 1``); the symmetric,
combinatorial and mesh (``M^{-1} L_cot``) Laplacians can be chosen instead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import norm as sparse_norm

from tg_metricattn.diagnostics._validation import as_signals, as_square_csr, same_size
from tg_metricattn.diagnostics.heat import heat_blocks
from tg_metricattn.diagnostics.laplacians import ReferenceLaplacian, matrix_and_kind

__all__ = [
    "DiffusionFit",
    "default_time_bounds",
    "fit_diffusion_time",
    "fit_diffusion_times",
    "fit_time_least_squares",
    "fit_time_probes",
    "grid_minimum",
    "output_residuals",
    "probe_residuals",
    "probe_signals",
    "time_grid",
]

#: steps of the probe fit's time grid per factor 10 of ``t`` (a ratio of 1.1 between neighbours)
GRID_PER_DECADE = 24


@dataclass
class DiffusionFit:
    """Fitted diffusion times and residuals (see the module docstring)."""

    laplacian: str
    t_least_squares: float
    residual_least_squares: float
    t_probe: float
    residual_probe: float
    num_probes: int
    t_high: float = float("inf")  # upper end of the interval searched: a t_probe there is a bound, not a minimum

    def to_dict(self) -> dict:
        return asdict(self)


def fit_time_least_squares(P, laplacian: ReferenceLaplacian | sp.spmatrix) -> tuple[float, float]:
    """``(t_ls, residual)`` of ``I - P ≈ t L`` on the pattern of ``L`` (closed form, see module docstring)."""
    P = as_square_csr(P, "P")
    L, _ = matrix_and_kind(laplacian)
    same_size(P, L, "P", "L")
    generator = sp.csr_matrix(sp.eye(P.shape[0]) - P)
    denom = float(L.multiply(L).sum())
    if denom == 0:
        raise ValueError("L is zero (a graph without edges): no diffusion time can be fitted.")
    t = float(generator.multiply(L).sum()) / denom
    norm = sparse_norm(generator)
    residual = float(sparse_norm(generator - t * L) / norm) if norm > 0 else 0.0
    return t, residual


def probe_signals(
    num_nodes: int, num_random: int = 8, features=None, seed: int = 0, max_features: int = 64
) -> np.ndarray:
    """Probe matrix ``[N, K]``: ``num_random`` Gaussian columns and columns of ``features``.

    Of a feature matrix wider than ``max_features``, a seeded random subset of
    ``max_features`` non-zero columns is used (a bag-of-words input has thousands of
    columns, and each probe costs one heat-operator application per step of the fit).
    Every column is scaled to unit Euclidean norm (zero columns dropped), so no feature
    dominates the residual by its scale.
    """
    rng = np.random.default_rng(seed)
    cols = [rng.standard_normal((num_nodes, num_random))]
    if features is not None:
        F = as_signals(features, num_nodes, "features")
        nonzero = np.flatnonzero(np.linalg.norm(F, axis=0) > 0)
        if nonzero.size > max_features:
            nonzero = np.sort(rng.choice(nonzero, size=max_features, replace=False))
        cols.append(F[:, nonzero])
    X = np.concatenate(cols, axis=1)
    norms = np.linalg.norm(X, axis=0)
    X = X[:, norms > 0] / norms[norms > 0]
    if X.shape[1] == 0:
        raise ValueError("No nonzero probe signal: ask for num_random > 0 or pass nonzero features.")
    return X


def default_time_bounds(L: sp.spmatrix, high: float = 1e2) -> tuple[float, float]:
    """``(1e-3, high) / median_i L_ii``: the search interval of ``t`` scaled to the Laplacian.

    The median, not the largest, diagonal entry: a mesh with a few sliver triangles has a
    largest entry of ``M^{-1} L_cot`` 10^4-10^5 times its median, and an interval scaled to
    it would end before one typical edge's diffusion time.
    """
    diagonal = np.abs(L.diagonal())
    diagonal = diagonal[diagonal > 0]
    scale = float(np.median(diagonal)) if diagonal.size else 1.0
    return 1e-3 / scale, high / scale


def time_grid(bounds: tuple[float, float], per_decade: int = GRID_PER_DECADE) -> np.ndarray:
    """Log-spaced times from ``bounds[0]`` to ``bounds[1]``, ``per_decade`` steps per factor 10."""
    lo, hi = (float(b) for b in bounds)
    if not 0 < lo < hi or not np.isfinite(hi):
        raise ValueError(f"bounds must satisfy 0 < low < high; got {bounds!r}.")
    return np.geomspace(lo, hi, max(3, int(np.ceil(per_decade * np.log10(hi / lo))) + 1))


def probe_residuals(mats: list, laplacian: ReferenceLaplacian | sp.spmatrix, probes, times) -> np.ndarray:
    """``r_h(t_i) = ‖P_h X - exp(-t_i L) X‖_F / ‖X‖_F`` for every matrix ``P_h`` and time: ``[H, T]``.

    The heat flow of each probe column is computed once for all times and all matrices
    (:func:`~tg_metricattn.diagnostics.heat.heat_curves`).
    """
    L, _ = matrix_and_kind(laplacian)
    mats = [as_square_csr(P, "P") for P in mats]
    for P in mats:
        same_size(P, L, "P", "L")
    X = as_signals(probes, L.shape[0], "probes")
    return output_residuals([P @ X for P in mats], laplacian, X, times)


def output_residuals(outputs: list[np.ndarray], laplacian: ReferenceLaplacian | sp.spmatrix, X, times) -> np.ndarray:
    """``r_h(t_i) = ‖Y_h - exp(-t_i L) X‖_F / ‖X‖_F`` for operator outputs ``Y_h = Φ_h X`` ``[N, K]``: ``[H, T]``
    (:func:`probe_residuals` with ``Φ_h = P_h``; any linear map of the probes, such as a whole flow)."""
    times = np.asarray(times, dtype=np.float64)
    squared = np.zeros((len(outputs), times.size))
    for columns, steps, flow in heat_blocks(laplacian, X, times):  # flow: [N, K_b, T_b]
        for h, target in enumerate(outputs):
            squared[h, steps] += ((target[:, columns, None] - flow) ** 2).sum(axis=(0, 1))
    return np.sqrt(squared) / float(np.linalg.norm(X))


def grid_minimum(times: np.ndarray, residuals: np.ndarray) -> tuple[float, float]:
    """``(t*, r(t*))``: the grid minimum refined by a parabola in ``log t`` through ``r²`` at it and its neighbours.

    ``r²``, not ``r``: near an exact fit ``r`` has a corner (``r ∝ |t - t*|``), ``r²`` is smooth.
    """
    i = int(np.argmin(residuals))
    if i == 0 or i == times.size - 1:
        return float(times[i]), float(residuals[i])
    s, r2 = np.log(times[i - 1 : i + 2]), residuals[i - 1 : i + 2] ** 2
    a, b, c = np.polyfit(s - s[1], r2, 2)
    if a <= 0:
        return float(times[i]), float(residuals[i])
    offset = float(np.clip(-b / (2 * a), s[0] - s[1], s[2] - s[1]))
    return float(np.exp(s[1] + offset)), float(np.sqrt(max(a * offset**2 + b * offset + c, 0.0)))


def fit_time_probes(
    P, laplacian: ReferenceLaplacian | sp.spmatrix, probes, bounds: tuple[float, float] | None = None
) -> tuple[float, float]:
    """``(t_probe, residual)`` minimising ``‖P X - exp(-t L) X‖_F / ‖X‖_F`` over ``t`` in ``bounds``.

    Evaluated on the :func:`time_grid` of ``bounds`` (default :func:`default_time_bounds`)
    and refined by :func:`grid_minimum`.
    """
    L, _ = matrix_and_kind(laplacian)
    times = time_grid(bounds if bounds is not None else default_time_bounds(L))
    return grid_minimum(times, probe_residuals([P], laplacian, probes, times)[0])


def fit_diffusion_times(
    mats: list,
    laplacian: ReferenceLaplacian | sp.spmatrix,
    features=None,
    num_random: int = 8,
    seed: int = 0,
    bounds: tuple[float, float] | None = None,
) -> list[DiffusionFit]:
    """Both estimates of ``t*`` (module docstring) for each of ``mats`` (the heads of a layer).

    Args:
        mats: row-stochastic propagation matrices [N, N], sharing the probes and the heat flow.
        laplacian: the reference (default choice elsewhere: random walk ``I - D^{-1} A``).
        features: the layer's input features ``[N, F]`` added to the random probes.
        num_random: number of random Gaussian probe signals.
        seed: seed of the random probes.
        bounds: search interval of ``t`` for the probe fit (default: :func:`default_time_bounds`).
    """
    L, kind = matrix_and_kind(laplacian)
    times = time_grid(bounds if bounds is not None else default_time_bounds(L))
    X = probe_signals(L.shape[0], num_random, features, seed)
    residuals = probe_residuals(mats, laplacian, X, times)
    fits = []
    for P, r in zip(mats, residuals, strict=True):
        t_ls, r_ls = fit_time_least_squares(P, L)
        t_pr, r_pr = grid_minimum(times, r)
        fits.append(DiffusionFit(kind, t_ls, r_ls, t_pr, r_pr, X.shape[1], float(times[-1])))
    return fits


def fit_diffusion_time(
    P,
    laplacian: ReferenceLaplacian | sp.spmatrix,
    features=None,
    num_random: int = 8,
    seed: int = 0,
    bounds: tuple[float, float] | None = None,
) -> DiffusionFit:
    """:func:`fit_diffusion_times` for one propagation matrix ``P``."""
    return fit_diffusion_times([P], laplacian, features, num_random, seed, bounds)[0]
