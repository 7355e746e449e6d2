"""Geometry of triangle meshes: one face layout, the Laplace–Beltrami operator, its eigenpairs, tangent gradients.

Every function states its array types; meshes come in as PyG stores them (``pos`` ``[V, 3]``,
``face`` ``[3, F]``). The operators are computed once per mesh by the mesh datasets and
stored on each sample (``data.mass``, ``data.evals``, ``data.evecs``), where features,
models and diagnostics reuse them.
"""

from tg_metricattn.geometry.eigenpairs import EigenSolveError, generalized_eigenpairs, mesh_eigenpairs
from tg_metricattn.geometry.faces import face_rows, vertex_array
from tg_metricattn.geometry.gradients import gradient_stencil, tangent_frames, vertex_normals
from tg_metricattn.geometry.laplacian import laplacian_and_mass, referenced_vertices

__all__ = [
    "EigenSolveError",
    "face_rows",
    "generalized_eigenpairs",
    "gradient_stencil",
    "laplacian_and_mass",
    "mesh_eigenpairs",
    "referenced_vertices",
    "tangent_frames",
    "vertex_array",
    "vertex_normals",
]
