"""Vertex and face arrays as the geometry code reads them, in one layout.

Meshes enter the package as PyG stores them: ``pos`` ``[V, 3]`` and ``face`` ``[3, F]``
(one column per triangle). The functions here are the only place that turns those
(torch tensors or numpy arrays) into numpy arrays, and they check the layout instead of
guessing it from the shape: a ``[F, 3]`` array is refused with a message saying to
transpose it, since ``[3, 3]`` is ambiguous.
"""

from __future__ import annotations

import numpy as np

__all__ = ["face_rows", "vertex_array"]


def _numpy(array) -> np.ndarray:
    return np.asarray(array.detach().cpu().numpy() if hasattr(array, "detach") else array)


def vertex_array(pos) -> np.ndarray:
    """``pos`` ``[V, 3]`` (torch or numpy) as a float64 numpy array; raises on a wrong shape or non-finite values."""
    pos = _numpy(pos).astype(np.float64, copy=False)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ValueError(f"pos must have shape [V, 3], got {list(pos.shape)}.")
    if not np.isfinite(pos).all():
        raise ValueError("pos holds NaN or infinite coordinates.")
    return pos


def face_rows(face, num_vertices: int) -> np.ndarray:
    """PyG's ``face`` ``[3, F]`` (torch or numpy) as an int64 numpy array ``[F, 3]`` (one row per triangle).

    Raises ``ValueError`` for another shape (``[F, 3]`` included: pass ``face.T``) and for
    vertex indices outside ``0..num_vertices-1``.
    """
    face = _numpy(face)
    if face.ndim != 2 or face.shape[0] != 3:
        hint = " (it looks like [F, 3]: pass face.T)" if face.ndim == 2 and face.shape[1] == 3 else ""
        raise ValueError(f"face must have PyG's shape [3, F], got {list(face.shape)}{hint}.")
    if face.size and not np.issubdtype(face.dtype, np.integer):
        raise ValueError(f"face must hold integer vertex indices, got dtype {face.dtype}.")
    rows = np.ascontiguousarray(face.T, dtype=np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= num_vertices):
        raise ValueError(f"face indices must lie in 0..{num_vertices - 1}, found {rows.min()}..{rows.max()}.")
    return rows
