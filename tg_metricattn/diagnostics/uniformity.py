r"""How far attention is from the uniform mean over each neighbourhood, and what a node keeps.

For a row-stochastic propagation P whose row i has the pattern N(i) (the in-neighbours of
i, with i itself when the layer adds self-loops), the uniform reference is

.. math::
    U_{ij} = \frac{1}{|N(i)|} \quad (j \in N(i)), \qquad
    \text{departure} = \max_{ij} |P_{ij} - U_{ij}| \ \text{(and its mean over the pattern)},

and the self weight is :math:`\frac{1}{|S|}\sum_{i \in S} P_{ii}` over the nodes S with a
self-loop, beside the uniform :math:`\frac{1}{|S|}\sum_{i \in S} U_{ii}`. A squared-distance
score (L2, metric) gives every node its highest score on its own self-loop
(‖y_i − y_i‖² = 0), so that is where such attention leaves the uniform mean first: a self
weight far above the uniform one means the layer mostly keeps each node's own features.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp

from tg_metricattn.diagnostics._validation import as_square_csr

__all__ = ["UniformityStats", "uniform_propagation", "uniformity_stats"]


@dataclass(frozen=True)
class UniformityStats:
    """Departure of P from the uniform mean U (max and mean over the pattern) and the self weights."""

    max_departure: float
    mean_departure: float
    self_weight: float
    uniform_self_weight: float
    nodes_with_self_loop: int

    def to_dict(self) -> dict:
        """Plain dict of the numbers."""
        return asdict(self)


def uniform_propagation(P: sp.spmatrix) -> sp.csr_matrix:
    """U with P's pattern (stored entries, duplicates already summed) and 1/|N(i)| in row i."""
    P = sp.csr_matrix(P)
    counts = np.diff(P.indptr)
    values = np.repeat(1.0 / np.maximum(counts, 1), counts)
    return sp.csr_matrix((values, P.indices.copy(), P.indptr.copy()), shape=P.shape)


def uniformity_stats(P: sp.spmatrix) -> UniformityStats:
    """The numbers of the module docstring for one head's square P (rows = targets; scipy, torch
    or numpy, as the other diagnostics take it).

    Rows without entries (nodes that receive nothing) are left out; with no self-loop in P
    the self weights are NaN.
    """
    P = as_square_csr(P, "P")
    P.sum_duplicates()
    departure = np.abs(P.data - uniform_propagation(P).data)
    rows = np.repeat(np.arange(P.shape[0]), np.diff(P.indptr))
    on_diagonal = rows == P.indices
    counts = np.diff(P.indptr)[rows[on_diagonal]]
    kept = P.data[on_diagonal]
    return UniformityStats(
        max_departure=float(departure.max()) if departure.size else 0.0,
        mean_departure=float(departure.mean()) if departure.size else 0.0,
        self_weight=float(kept.mean()) if kept.size else float("nan"),
        uniform_self_weight=float((1.0 / counts).mean()) if counts.size else float("nan"),
        nodes_with_self_loop=int(kept.size),
    )
