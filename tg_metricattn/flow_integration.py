"""Fixed-step integration of an autonomous ODE dx/dt = f(x) over a total time T.

With K steps of size τ = T / K, from x_0:

- ``"euler"`` (explicit Euler): x_{k+1} = x_k + τ f(x_k);
- ``"rk4"`` (classical Runge-Kutta): k1 = f(x_k), k2 = f(x_k + τ/2 k1), k3 = f(x_k + τ/2 k2),
  k4 = f(x_k + τ k3), x_{k+1} = x_k + τ/6 (k1 + 2 k2 + 2 k3 + k4).

For the heat flow of a propagation matrix, f(x) = (P - I) x with P row-stochastic, the
eigenvalues of P - I lie in the disc of radius 1 around -1: an Euler step is the convex
combination (1 - τ) x + τ P x, stable for τ <= 1; RK4 is stable on the real axis down to
about -2.79, i.e. for τ <= 1.39. The same code integrates torch tensors (the models) and
numpy arrays (the diagnostics): only sums and products with scalars are used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

__all__ = ["FLOW_METHODS", "integrate"]

#: integration schemes by name
FLOW_METHODS = ("euler", "rk4")

State = TypeVar("State")


def integrate(velocity: Callable[[State], State], x: State, time, steps: int, method: str = "euler") -> State:
    """x(T) of dx/dt = ``velocity(x)`` from ``x`` in ``steps`` steps of ``method`` (module docstring).

    ``time`` may be a float or a 0-dimensional tensor (a learned T: gradients flow through it).
    """
    if method not in FLOW_METHODS:
        raise ValueError(f"method must be one of {FLOW_METHODS}; got {method!r}.")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a positive integer; got {steps!r}.")
    tau = time / steps
    for _ in range(steps):
        if method == "euler":
            x = x + tau * velocity(x)
        else:
            k1 = velocity(x)
            k2 = velocity(x + (tau / 2) * k1)
            k3 = velocity(x + (tau / 2) * k2)
            k4 = velocity(x + tau * k3)
            x = x + (tau / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
    return x
