"""Reference Laplacians of the graph a layer attends over, and of a triangle mesh.

Conventions: matrices are indexed like the propagation matrix, row = target i, column =
source j, with ``A[i, j] = w`` for an edge ``j -> i`` (self-loops dropped), ``D = diag(A 1)``:

- ``"combinatorial"``: ``L = D - A``
- ``"sym"``:           ``L = I - D^{-1/2} A D^{-1/2}``
- ``"rw"``:            ``L = I - D^{-1} A``  (random walk; the natural reference for a
  row-stochastic P, since both ``P 1 = 1`` and ``exp(-t L) 1 = 1``)
- ``"cotangent"``:     ``L = M^{-1} L_cot`` on a mesh, the (robust, intrinsic-Delaunay)
  cotangent stiffness ``L_cot`` with lumped mass ``M`` (:mod:`tg_metricattn.geometry`); its heat flow
  ``exp(-t M^{-1} L_cot)`` solves the generalised problem ``M u' = -L_cot u``, and its
  spectrum is that of ``L_cot φ = λ M φ`` (on the unit sphere λ → l(l+1)).

The graph Laplacians are built with PyG's :func:`torch_geometric.utils.get_laplacian`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import ArpackNoConvergence, eigsh
from torch import Tensor
from torch_geometric.utils import get_laplacian

from tg_metricattn.diagnostics._validation import as_square_csr
from tg_metricattn.geometry import generalized_eigenpairs, laplacian_and_mass

__all__ = [
    "LAPLACIAN_KINDS",
    "ReferenceLaplacian",
    "graph_laplacian",
    "laplacian_eigenpairs",
    "matrix_and_kind",
    "mesh_laplace_operator",
]

LAPLACIAN_KINDS = ("rw", "sym", "combinatorial", "cotangent")


@dataclass
class ReferenceLaplacian:
    """A Laplacian ``L`` whose heat flow ``exp(-t L)`` is compared with a propagation matrix.

    Attributes:
        matrix: ``L`` as CSR [N, N] (for ``"cotangent"`` the operator ``M^{-1} L_cot``).
        kind: one of :data:`LAPLACIAN_KINDS`.
        degree: ``D`` of the graph (row sums of ``A``; ``None`` for a mesh).
        stiffness, mass: ``L_cot`` and ``M`` for a mesh (``None`` otherwise).
    """

    matrix: sp.csr_matrix
    kind: str
    degree: np.ndarray | None = None
    stiffness: sp.csr_matrix | None = None
    mass: sp.dia_matrix | None = None
    #: eigenpairs already computed, by ``(k, dense_below)`` (every head of a layer shares them)
    eigenpairs_cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def num_nodes(self) -> int:
        return self.matrix.shape[0]


def matrix_and_kind(laplacian: ReferenceLaplacian | sp.spmatrix) -> tuple[sp.csr_matrix, str]:
    """``(L, kind)`` of a :class:`ReferenceLaplacian`, or of a plain square matrix (kind ``"custom"``)."""
    if isinstance(laplacian, ReferenceLaplacian):
        return laplacian.matrix, laplacian.kind
    return as_square_csr(laplacian, "L"), "custom"


def graph_laplacian(
    edge_index: Tensor, num_nodes: int, kind: str = "rw", edge_weight: Tensor | None = None
) -> ReferenceLaplacian:
    """The ``kind`` Laplacian (see the module docstring) of the graph ``edge_index`` [2, E].

    Self-loops are removed first (``get_laplacian`` does so); duplicate edges add up.
    Isolated nodes get an empty row in ``A`` (and a zero row in the normalised Laplacians
    apart from the identity).
    """
    if kind not in ("rw", "sym", "combinatorial"):
        raise ValueError(f"kind must be 'rw', 'sym' or 'combinatorial' for a graph; got {kind!r}.")
    edge_index = torch.as_tensor(edge_index)
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index must have shape [2, E]; got {tuple(edge_index.shape)}.")
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise ValueError(f"edge_index holds node ids outside 0..{num_nodes - 1}.")
    if edge_weight is not None:
        edge_weight = torch.as_tensor(edge_weight, dtype=torch.float64)
    # flip: get_laplacian indexes [edge_index[0], edge_index[1]]; we want row = target.
    index, weight = get_laplacian(
        edge_index.flip(0).cpu(),
        edge_weight,
        normalization=None if kind == "combinatorial" else kind,
        dtype=torch.float64,
        num_nodes=num_nodes,
    )
    row, col = index.numpy()
    matrix = sp.csr_matrix((weight.numpy(), (row, col)), shape=(num_nodes, num_nodes))
    matrix.sum_duplicates()
    src, dst = edge_index.cpu().numpy()
    keep = src != dst
    w = np.ones(keep.sum()) if edge_weight is None else edge_weight.cpu().numpy()[keep]
    degree = np.bincount(dst[keep], weights=w, minlength=num_nodes).astype(np.float64)
    return ReferenceLaplacian(matrix=matrix, kind=kind, degree=degree)


def mesh_laplace_operator(pos, face) -> ReferenceLaplacian:
    """``M^{-1} L_cot`` of a triangle mesh (``pos`` [V, 3], PyG's ``face`` [3, F]).

    The operator of :func:`~tg_metricattn.geometry.laplacian_and_mass` (robust-laplacian),
    the same the datasets store and the diffusion layers use. Vertices with zero mass
    (unreferenced) get a zero row, i.e. they do not diffuse.
    """
    stiffness, m = laplacian_and_mass(pos, face)
    mass = sp.diags(m)
    inv = np.divide(1.0, m, out=np.zeros_like(m), where=m > 0)
    return ReferenceLaplacian(
        matrix=sp.csr_matrix(sp.diags(inv) @ stiffness), kind="cotangent", stiffness=stiffness, mass=mass
    )


def laplacian_eigenpairs(
    laplacian: ReferenceLaplacian, k: int, dense_below: int = 500
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` smallest eigenvalues (ascending) and right eigenvectors ``[N, k]`` of ``L``.

    - ``"rw"``: ``L = I - D^{-1} A`` is similar to ``L_sym``; its eigenvectors are
      ``D^{-1/2} ψ`` for the eigenvectors ψ of ``L_sym`` (symmetric graphs).
    - ``"sym"``/``"combinatorial"``: symmetric eigenproblem (``eigsh``; Lanczos, shift-invert near 0 if it stalls).
    - ``"cotangent"``: ``L_cot φ = λ M φ`` via :func:`~tg_metricattn.geometry.generalized_eigenpairs`.

    Directed graphs are symmetrised (``(L + L^T)/2``) for the solve. The result is cached
    on ``laplacian`` (treat the returned arrays as read-only).
    """
    n = laplacian.num_nodes
    if k < 1:
        raise ValueError(f"k must be >= 1; got {k}.")
    k = min(k, n)
    key = (k, dense_below)
    if key not in laplacian.eigenpairs_cache:
        laplacian.eigenpairs_cache[key] = _eigenpairs(laplacian, k, dense_below)
    return laplacian.eigenpairs_cache[key]


def _eigenpairs(laplacian: ReferenceLaplacian, k: int, dense_below: int) -> tuple[np.ndarray, np.ndarray]:
    n = laplacian.num_nodes
    if laplacian.kind == "cotangent":
        return generalized_eigenpairs(laplacian.stiffness, laplacian.mass.diagonal(), k)
    L = laplacian.matrix
    if laplacian.kind == "rw":
        sqrt_d = np.sqrt(laplacian.degree)
        inv_sqrt = np.divide(1.0, sqrt_d, out=np.zeros_like(sqrt_d), where=sqrt_d > 0)
        S = sp.diags(sqrt_d) @ (sp.eye(n) - L) @ sp.diags(inv_sqrt)  # D^{1/2} (D^{-1} A) D^{-1/2}
        sym = sp.eye(n) - 0.5 * (S + S.T)
        vals, vecs = _smallest_symmetric(sp.csr_matrix(sym), k, dense_below)
        vecs = inv_sqrt[:, None] * vecs
        norms = np.linalg.norm(vecs, axis=0)
        return vals, vecs / np.where(norms > 0, norms, 1.0)
    return _smallest_symmetric(sp.csr_matrix(0.5 * (L + L.T)), k, dense_below)


#: restarts of the plain Lanczos solve for the smallest eigenpairs before shift-invert takes over
LANCZOS_RESTARTS = 300


def _smallest_symmetric(L: sp.csr_matrix, k: int, dense_below: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` smallest eigenpairs of a symmetric ``L``: dense below ``dense_below`` nodes; else
    implicitly restarted Lanczos on ``L`` itself (``which="SA"``: products with ``L`` only, about a
    second for 100k nodes), and shift-invert near 0 (a sparse LU of ``L``: minutes and gigabytes
    of fill-in for a 3-D graph of that size) only when Lanczos has not converged in
    :data:`LANCZOS_RESTARTS` restarts."""
    n = L.shape[0]
    if n < dense_below or k >= n - 1:
        vals, vecs = np.linalg.eigh(L.toarray())
        return vals[:k], vecs[:, :k]
    v0 = np.random.default_rng(0).uniform(0.5, 1.5, size=n)
    try:
        vals, vecs = eigsh(L, k=k, which="SA", v0=v0, tol=1e-8, maxiter=LANCZOS_RESTARTS)
    except ArpackNoConvergence:
        scale = float(abs(L.diagonal()).mean()) or 1.0
        vals, vecs = eigsh(L.tocsc(), k=k, sigma=-1e-3 * scale, which="LM", v0=v0)
    order = np.argsort(vals)
    return vals[order], vecs[:, order]
