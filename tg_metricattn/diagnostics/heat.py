"""The heat operator ``H_t = exp(-t L)`` applied to signals, never formed as a dense matrix.

Two ways, both with sparse matrix-vector products with ``L`` only:

- :func:`heat_apply` ``(L, X, t)``: one time, :func:`scipy.sparse.linalg.expm_multiply`
  (truncated Taylor series with scaling, Al-Mohy & Higham 2011), cost
  ``O(nnz(L) · K · (1 + t ‖L‖_1))`` for ``K`` signals.
- :func:`heat_curves` ``(L, X, times)``: a whole grid of times for each signal. When ``L``
  is similar to a symmetric matrix, ``L = W^{-1/2} S W^{1/2}`` with ``w > 0`` (the
  random-walk Laplacian of an undirected graph with ``W = D``, a mesh's ``M^{-1} L_cot``
  with ``W = M``, any symmetric ``L`` with ``W = I``), it is a Lanczos (Krylov)
  approximation: ``m`` steps on ``S`` from ``b = W^{1/2} x`` give ``S V_m ≈ V_m T_m`` and::

      exp(-t L) x ≈ ‖b‖ W^{-1/2} V_m exp(-t T_m) e_1     for every t at once,

  stopped when the a-posteriori error ``β_m |e_m^T exp(-t T_m) e_1|`` (relative to ``‖b‖``)
  is below ``tol`` on the whole grid (Saad 1992); one product with ``S`` per step. The
  step count grows like ``sqrt(t ‖L‖)`` rather than ``t ‖L‖``: a mesh with slivers has a
  diagonal of ``M^{-1} L_cot`` 10^4-10^5 times its median, where the Taylor series would
  need millions of steps. Other ``L`` (a directed graph) step through the grid with
  ``expm_multiply``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
from scipy.linalg import eigh_tridiagonal
from scipy.sparse.linalg import expm_multiply

from tg_metricattn.diagnostics._validation import as_signals
from tg_metricattn.diagnostics.laplacians import ReferenceLaplacian, matrix_and_kind

__all__ = ["HeatConvergenceError", "heat_apply", "heat_blocks", "heat_curve", "heat_curves", "symmetrizing_weights"]


class HeatConvergenceError(RuntimeError):
    """The Lanczos approximation of ``exp(-t L) x`` did not reach its tolerance."""


def heat_apply(laplacian: ReferenceLaplacian | sp.spmatrix, signals, t: float) -> np.ndarray:
    """``exp(-t L) X`` for signals ``X`` [N] or [N, K] and a time ``t >= 0``.

    Args:
        laplacian: a :class:`ReferenceLaplacian` or a sparse square matrix ``L``.
        signals: ``X`` (numpy or torch), one row per node.
        t: diffusion time.

    Returns:
        ``[N, K]`` float64 array (a vector input gives one column).
    """
    L, _ = matrix_and_kind(laplacian)
    X = as_signals(signals, L.shape[0])
    t = float(t)
    if not np.isfinite(t) or t < 0:
        raise ValueError(f"t must be a finite number >= 0; got {t!r}.")
    if t == 0:
        return X.copy()
    return np.asarray(expm_multiply(-t * L, X, traceA=-t * float(L.diagonal().sum())))


def symmetrizing_weights(laplacian: ReferenceLaplacian | sp.spmatrix, rtol: float = 1e-10) -> np.ndarray | None:
    """``w > 0`` with ``W^{1/2} L W^{-1/2}`` symmetric (to ``rtol``), or ``None`` if there is none to hand.

    Tried: the mass (``"cotangent"``), the degree (``"rw"``) and ones (the others and a plain
    matrix); zero entries (unreferenced vertices, isolated nodes, whose rows are diagonal)
    become 1.
    """
    form = _symmetric_form(laplacian, rtol)
    return None if form is None else form[1] ** 2


def _symmetric_form(laplacian: ReferenceLaplacian | sp.spmatrix, rtol: float = 1e-10):
    """``(S, sqrt(w))`` with ``S = W^{1/2} L W^{-1/2}`` made exactly symmetric, or ``None`` (see above)."""
    L, kind = matrix_and_kind(laplacian)
    w = np.ones(L.shape[0])
    if kind == "cotangent" and laplacian.mass is not None:
        w = np.asarray(laplacian.mass.diagonal(), dtype=np.float64)
    elif kind == "rw" and laplacian.degree is not None:
        w = np.asarray(laplacian.degree, dtype=np.float64)
    root = np.sqrt(np.where(w > 0, w, 1.0))
    S = sp.csr_matrix(sp.diags(root) @ L @ sp.diags(1.0 / root))
    scale = sp.linalg.norm(S)
    if scale > 0 and sp.linalg.norm(S - S.T) > rtol * scale:
        return None
    return sp.csr_matrix((S + S.T) / 2), root  # exact symmetry for the Lanczos recurrence


def _lanczos_heat(S: sp.csr_matrix, b: np.ndarray, times: np.ndarray, tol: float, max_steps: int) -> np.ndarray:
    """``exp(-t S) b`` for every ``t`` in ``times`` ([N, T]): the plain three-term Lanczos recurrence.

    No reorthogonalisation: lost orthogonality only repeats converged Ritz values, which
    leaves the approximation of ``exp(-t S) b`` accurate (Druskin, Greenbaum & Knizhnerman
    1998), and each step costs one product with ``S`` instead of ``O(N m)``. The error
    estimate is checked after 10, 12, 15, ... steps (ratio 1.25).
    """
    beta0 = float(np.linalg.norm(b))
    if beta0 == 0:
        return np.zeros((b.size, times.size))
    steps = min(max_steps, b.size)
    basis = np.empty((min(steps, 64) + 1, b.size))
    basis[0] = b / beta0
    alpha, beta = [], []
    check, largest = 10, 0.0
    for j in range(steps):
        u = S @ basis[j]
        if j:
            u -= beta[-1] * basis[j - 1]
        alpha.append(float(basis[j] @ u))
        u -= alpha[-1] * basis[j]
        beta.append(float(np.linalg.norm(u)))
        largest = max(largest, abs(alpha[-1]))
        breakdown = beta[-1] <= 1e-12 * largest or j + 1 == b.size
        if breakdown or j + 1 == check or j + 1 == steps:
            check = int(check * 1.25)
            theta, Q = eigh_tridiagonal(np.array(alpha), np.array(beta[:-1]))
            coef = Q[0] * np.exp(-np.outer(times, np.maximum(theta, 0.0)))  # [T, m]: exp(-t T_m) e_1 in eigenbasis
            if breakdown or beta[-1] * np.abs(coef @ Q[-1]).max() <= tol:
                return beta0 * (basis[: j + 1].T @ (Q @ coef.T))
        if j + 1 == steps:
            break
        if j + 1 == basis.shape[0]:
            basis = np.concatenate([basis, np.empty((basis.shape[0], b.size))])
        basis[j + 1] = u / beta[-1]
    raise HeatConvergenceError(
        f"exp(-tL)x did not converge in {steps} Lanczos steps for t up to {times.max():.3g}; "
        "narrow the time bounds or raise max_steps."
    )


def heat_curves(
    laplacian: ReferenceLaplacian | sp.spmatrix, signals, times, tol: float = 1e-6, max_steps: int = 5000
) -> Iterator[np.ndarray]:
    """``exp(-t_i L) x`` for every time in ``times`` [T], one ``[N, T]`` array per column ``x`` of ``signals``.

    The symmetric form of ``L`` (module docstring) is built once for all columns; each
    column then has its own Lanczos basis, so only one ``[N, T]`` curve is held at a time.

    Args:
        laplacian: a :class:`ReferenceLaplacian` or a sparse square matrix ``L``.
        signals: ``X`` [N] or [N, K] (numpy or torch).
        times: increasing times ``>= 0``.
        tol: tolerance of the Lanczos error estimate, relative to ``‖W^{1/2} x‖``.
        max_steps: most Lanczos steps (a :class:`HeatConvergenceError` beyond).
    """
    L, _ = matrix_and_kind(laplacian)
    X = as_signals(signals, L.shape[0], "signals")
    times = _checked_times(times)
    yield from _curves(L, _symmetric_form(laplacian), X, times, tol, max_steps)


def _curves(L, form, X: np.ndarray, times: np.ndarray, tol: float, max_steps: int) -> Iterator[np.ndarray]:
    for x in X.T:
        if form is not None:
            S, root = form
            yield _lanczos_heat(S, root * x, times, tol, max_steps) / root[:, None]
        else:
            yield np.concatenate(list(_expm_steps(L, x[:, None], times)), axis=1)


def heat_blocks(
    laplacian: ReferenceLaplacian | sp.spmatrix, signals, times, tol: float = 1e-6, max_steps: int = 5000
) -> Iterator[tuple[slice, slice, np.ndarray]]:
    """``exp(-t L) X`` over a grid of times in blocks ``(columns, times, H)`` with ``H`` ``[N, K_b, T_b]``
    equal to ``exp(-t L) X`` for those columns of ``X`` and those entries of ``times``.

    The cheapest order for the operator: one column over all times at a time when ``L`` has
    a symmetric form (a Lanczos basis per column, :func:`heat_curves`), all columns at one
    time otherwise (``expm_multiply`` stepping from time to time on the whole block: one
    norm estimate and one product with ``L`` per step for all columns). Either way at most
    ``N x max(K, T)`` numbers are held.
    """
    L, _ = matrix_and_kind(laplacian)
    X = as_signals(signals, L.shape[0], "signals")
    times = _checked_times(times)
    form = _symmetric_form(laplacian)
    if form is not None:
        for j, curve in enumerate(_curves(L, form, X, times, tol, max_steps)):
            yield slice(j, j + 1), slice(0, times.size), curve[:, None, :]
        return
    for i, snapshot in enumerate(_expm_steps(L, X, times)):
        yield slice(0, X.shape[1]), slice(i, i + 1), snapshot[:, :, None]


def _checked_times(times) -> np.ndarray:
    times = np.asarray(times, dtype=np.float64).ravel()
    if times.size == 0 or not np.all(np.isfinite(times)) or times.min() < 0 or np.any(np.diff(times) <= 0):
        raise ValueError("times must be a non-empty, strictly increasing sequence of finite numbers >= 0.")
    return times


def _expm_steps(L: sp.spmatrix, X: np.ndarray, times: np.ndarray) -> Iterator[np.ndarray]:
    """``exp(-t_i L) X`` ``[N, K]`` for each time in turn, stepping from the previous one."""
    z, previous = X, 0.0
    for t in times:
        if t > previous:
            z = expm_multiply(-(t - previous) * L, z)
        previous = t
        yield z


def heat_curve(
    laplacian: ReferenceLaplacian | sp.spmatrix, signal, times, tol: float = 1e-6, max_steps: int = 5000
) -> np.ndarray:
    """:func:`heat_curves` of one signal ``x`` [N]: ``[N, T]``, column ``i`` is ``exp(-t_i L) x``."""
    x = as_signals(signal, matrix_and_kind(laplacian)[0].shape[0], "signal")
    if x.shape[1] != 1:
        raise ValueError(f"heat_curve takes one signal [N]; got {x.shape[1]} columns.")
    return next(heat_curves(laplacian, x, times, tol, max_steps))
