"""Fitting a diffusion time ``t*`` so that the propagation ``P`` resembles heat flow ``exp(-t L)``.

Two estimates, each with its relative residual at ``t*``:

1. Least squares on the edge set (closed form): ``I - P ≈ t L`` entrywise, over the
   entries of the pattern of ``L`` (edges and diagonal)::

       t_ls = <I - P, L>_F / <L, L>_F,     residual = ‖(I - P) - t_ls L‖_F / ‖I - P‖_F

   (entries of ``I - P`` outside the pattern of ``L`` count in the residual). This is the
   one-step (explicit Euler) reading ``P ≈ I - t L``.
2. Probe signals: ``t_probe = argmin_t r(t)``,  ``r(t) = ‖P X - exp(-t L) X‖_F / ‖X‖_F``,
   minimised over ``log t`` in ``bounds`` with :func:`scipy.optimize.minimize_scalar`
   (bounded Brent). The default bounds are ``(1e-3, 1e2) / max_i L_ii``: the interval a
   random-walk Laplacian (diagonal 1) gets, rescaled for Laplacians of another scale (a
   mesh's ``M^{-1} L_cot`` has a diagonal of order 1/h²), so that ``‖t L‖`` and with it
   the cost of the heat operator stay bounded. ``X`` holds random Gaussian signals and, when given, the layer's
   input features, each column scaled to unit norm; ``exp(-t L) X`` comes from
   :func:`~tg_metricattn.diagnostics.heat.heat_apply`.

``P`` is row-stochastic, i.e. random-walk like, so the default reference is the
random-walk Laplacian ``L = I - D^{-1} A`` (``P 1 = exp(-t L) 1 = 1``); the symmetric,
combinatorial and mesh (``M^{-1} L_cot``) Laplacians can be chosen instead.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize_scalar
from scipy.sparse.linalg import norm as sparse_norm

from tg_metricattn.diagnostics._validation import as_signals, as_square_csr, same_size
from tg_metricattn.diagnostics.heat import heat_apply
from tg_metricattn.diagnostics.laplacians import ReferenceLaplacian

__all__ = [
    "DiffusionFit",
    "default_time_bounds",
    "fit_diffusion_time",
    "fit_time_least_squares",
    "fit_time_probes",
    "probe_signals",
]


@dataclass
class DiffusionFit:
    """Fitted diffusion times and residuals (see the module docstring)."""

    laplacian: str
    t_least_squares: float
    residual_least_squares: float
    t_probe: float
    residual_probe: float
    num_probes: int

    def to_dict(self) -> dict:
        return asdict(self)


def _laplacian_matrix(laplacian: ReferenceLaplacian | sp.spmatrix) -> tuple[sp.csr_matrix, str]:
    if isinstance(laplacian, ReferenceLaplacian):
        return laplacian.matrix, laplacian.kind
    return as_square_csr(laplacian, "L"), "custom"


def fit_time_least_squares(P, laplacian: ReferenceLaplacian | sp.spmatrix) -> tuple[float, float]:
    """``(t_ls, residual)`` of ``I - P ≈ t L`` on the pattern of ``L`` (closed form, see module docstring)."""
    P = as_square_csr(P, "P")
    L, _ = _laplacian_matrix(laplacian)
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


def default_time_bounds(L: sp.spmatrix) -> tuple[float, float]:
    """``(1e-3, 1e2) / max_i L_ii``: the search interval of ``t`` scaled to the Laplacian."""
    scale = float(np.abs(L.diagonal()).max(initial=0.0))
    scale = scale if scale > 0 else 1.0
    return 1e-3 / scale, 1e2 / scale


def fit_time_probes(
    P, laplacian: ReferenceLaplacian | sp.spmatrix, probes, bounds: tuple[float, float] | None = None
) -> tuple[float, float]:
    """``(t_probe, residual)`` minimising ``‖P X - exp(-t L) X‖_F / ‖X‖_F`` over ``t`` in ``bounds``.

    The search is on ``log t`` (bounded Brent, ``xatol = 1e-4``); ``bounds=None`` uses
    :func:`default_time_bounds`.
    """
    P = as_square_csr(P, "P")
    L, _ = _laplacian_matrix(laplacian)
    same_size(P, L, "P", "L")
    X = as_signals(probes, P.shape[0], "probes")
    lo, hi = (float(b) for b in (bounds if bounds is not None else default_time_bounds(L)))
    if not 0 < lo < hi:
        raise ValueError(f"bounds must satisfy 0 < low < high; got {bounds!r}.")
    PX = P @ X
    norm = float(np.linalg.norm(X))

    def residual(log_t: float) -> float:
        return float(np.linalg.norm(PX - heat_apply(L, X, math.exp(log_t)))) / norm

    result = minimize_scalar(residual, bounds=(math.log(lo), math.log(hi)), method="bounded", options={"xatol": 1e-4})
    return math.exp(result.x), float(result.fun)


def fit_diffusion_time(
    P,
    laplacian: ReferenceLaplacian | sp.spmatrix,
    features=None,
    num_random: int = 8,
    seed: int = 0,
    bounds: tuple[float, float] | None = None,
) -> DiffusionFit:
    """Both estimates of ``t*`` (module docstring) as a :class:`DiffusionFit`.

    Args:
        P: row-stochastic propagation matrix [N, N].
        laplacian: the reference (default choice elsewhere: random walk ``I - D^{-1} A``).
        features: the layer's input features ``[N, F]`` added to the random probes.
        num_random: number of random Gaussian probe signals.
        seed: seed of the random probes.
        bounds: search interval of ``t`` for the probe fit (default: :func:`default_time_bounds`).
    """
    L, kind = _laplacian_matrix(laplacian)
    t_ls, r_ls = fit_time_least_squares(P, L)
    X = probe_signals(L.shape[0], num_random, features, seed)
    t_pr, r_pr = fit_time_probes(P, L, X, bounds)
    return DiffusionFit(kind, t_ls, r_ls, t_pr, r_pr, X.shape[1])
