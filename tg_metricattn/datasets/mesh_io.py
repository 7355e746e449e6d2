"""Reading triangle meshes and label files, with errors that name the file, the line and what was expected.

- ``.off`` files are read by :func:`read_off`, a small parser of our own (OFF, and the
  COFF/NOFF/CNOFF variants whose extra vertex columns are ignored); polygons with more
  than three corners are split into a fan of triangles.
- ``.obj`` and ``.ply`` go through ``trimesh`` with ``process=False``, so the vertex order
  of the file is kept (labels are given in that order).

Nothing is cleaned: unreferenced vertices, several components and degenerate faces are
kept as they are (the operators in :mod:`~tg_metricattn.geometry` cope
with them); only what cannot be read is rejected.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

__all__ = ["MeshFormatError", "read_labels", "read_mesh", "read_off"]

MESH_SUFFIXES = (".off", ".obj", ".ply")
#: the largest coordinate magnitude kept: positions are stored as float32
MAX_COORDINATE = float(np.finfo(np.float32).max)


class MeshFormatError(ValueError):
    """A mesh or label file that cannot be read; the message says where and what was expected."""


def _data_lines(path: Path):
    """Yield ``(line_number, tokens)`` for every non-empty line, without ``#`` comments."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            content = line.split("#", 1)[0].split()
            if content:
                yield number, content


def read_off(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read an OFF file into ``(vertices [V, 3] float64, faces [F, 3] int64)``.

    Raises:
        MeshFormatError: missing header, non-numeric values, a wrong number of values on a
            line, a face index outside ``0..V-1``, or a file that ends before the counts
            in its header are reached.
    """
    path = Path(path)
    lines = _data_lines(path)

    def fail(number: int | str, message: str) -> MeshFormatError:
        return MeshFormatError(f"{path}: line {number}: {message}")

    try:
        number, tokens = next(lines)
    except StopIteration:
        raise MeshFormatError(f"{path}: the file is empty; expected an 'OFF' header.") from None
    header = tokens[0]
    if not header.upper().endswith("OFF"):
        raise fail(number, f"expected an 'OFF' header, found {' '.join(tokens)!r}.")
    extra_columns = 3 if "N" in header.upper()[:-3] else 0  # NOFF: a normal after each vertex
    counts = tokens[1:]
    if not counts:
        try:
            number, counts = next(lines)
        except StopIteration:
            raise fail(number, "the file ends after the header; expected 'num_vertices num_faces num_edges'.") from None
    try:
        num_vertices, num_faces = int(counts[0]), int(counts[1])
    except (ValueError, IndexError):
        raise fail(
            number, f"expected 'num_vertices num_faces [num_edges]' (integers), found {' '.join(counts)!r}."
        ) from None
    if num_vertices < 0 or num_faces < 0:
        raise fail(number, f"negative counts {num_vertices} vertices, {num_faces} faces.")

    rows: list[list[float]] = []  # grown line by line: a header's counts are not trusted for allocation
    for i in range(num_vertices):
        try:
            number, tokens = next(lines)
        except StopIteration:
            raise MeshFormatError(
                f"{path}: the file ends after {i} of the {num_vertices} vertices announced in its header "
                "(truncated file?)."
            ) from None
        if len(tokens) < 3 + extra_columns:
            raise fail(number, f"expected a vertex 'x y z', found {' '.join(tokens)!r}.")
        try:
            row = [float(t) for t in tokens[:3]]
        except ValueError:
            raise fail(number, f"expected three numbers for vertex {i}, found {' '.join(tokens)!r}.") from None
        if not (np.isfinite(row).all() and np.abs(row).max() <= MAX_COORDINATE):
            raise fail(number, f"vertex {i} has a non-finite or beyond-float32 coordinate: {' '.join(tokens)!r}.")
        rows.append(row)

    faces: list[tuple[int, int, int]] = []
    for j in range(num_faces):
        try:
            number, tokens = next(lines)
        except StopIteration:
            raise MeshFormatError(
                f"{path}: the file ends after {j} of the {num_faces} faces announced in its header (truncated file?)."
            ) from None
        try:
            n = int(tokens[0])
            corners = [int(t) for t in tokens[1 : 1 + n]]
        except ValueError:
            raise fail(number, f"expected a face 'n i_1 ... i_n' of integers, found {' '.join(tokens)!r}.") from None
        if n < 3 or len(corners) != n:
            raise fail(number, f"expected a face with n >= 3 and n vertex indices, found {' '.join(tokens)!r}.")
        bad = [c for c in corners if not 0 <= c < num_vertices]
        if bad:
            raise fail(
                number,
                f"face {j} refers to vertex {bad[0]}, but the file has {num_vertices} vertices (0-based).",
            )
        faces.extend((corners[0], corners[k], corners[k + 1]) for k in range(1, n - 1))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 3), np.asarray(faces, dtype=np.int64).reshape(-1, 3)


def read_mesh(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a triangle mesh: ``.off`` by :func:`read_off`, ``.obj``/``.ply`` by trimesh (order kept)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise FileNotFoundError(f"Mesh file {str(path)!r} does not exist.")
    if suffix == ".off":
        return read_off(path)
    if suffix not in MESH_SUFFIXES:
        raise MeshFormatError(
            f"{path}: unsupported mesh format {suffix!r}; expected one of {', '.join(MESH_SUFFIXES)}."
        )
    import trimesh

    try:
        mesh = trimesh.load(path, process=False, force="mesh", maintain_order=True)
    except Exception as error:  # trimesh raises many types; report them all the same way
        raise MeshFormatError(f"{path}: trimesh could not read this {suffix} file: {error}") from error
    vertices = np.asarray(mesh.vertices, dtype=np.float64).reshape(-1, 3)
    faces = np.asarray(mesh.faces, dtype=np.int64).reshape(-1, 3)
    if vertices.shape[0] == 0:
        raise MeshFormatError(f"{path}: no vertices could be read; expected a triangle mesh.")
    usable = (np.isfinite(vertices) & (np.abs(vertices) <= MAX_COORDINATE)).all(axis=1)
    if not usable.all():
        bad = int(np.flatnonzero(~usable)[0])
        raise MeshFormatError(f"{path}: vertex {bad} has a non-finite or beyond-float32 coordinate {vertices[bad]}.")
    outside = faces[(faces < 0) | (faces >= vertices.shape[0])]
    if outside.size:
        raise MeshFormatError(
            f"{path}: a face refers to vertex {int(outside[0])}, "
            f"but the file has {vertices.shape[0]} vertices (0-based)."
        )
    if suffix == ".ply":
        _check_ascii_ply_counts(path, vertices.shape[0])
    return vertices, faces


def _check_ascii_ply_counts(path: Path, num_vertices: int) -> None:
    """An ASCII PLY must hold exactly the data lines its header announces (else rows shift between elements)."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if b"format ascii" not in head.split(b"end_header", 1)[0]:
        return
    announced, header_lines, in_header = 0, 0, True
    with open(path, encoding="utf-8", errors="replace") as handle:
        data_lines = 0
        for line in handle:
            if in_header:
                header_lines += 1
                tokens = line.split()
                if len(tokens) == 3 and tokens[0] == "element":
                    try:
                        announced += int(tokens[2])
                    except ValueError:
                        raise MeshFormatError(
                            f"{path}: line {header_lines}: bad element count {line.strip()!r}."
                        ) from None
                in_header = not line.startswith("end_header")
            elif line.strip():
                data_lines += 1
    if data_lines != announced:
        raise MeshFormatError(
            f"{path}: its header announces {announced} data lines (vertices and faces), but the file holds "
            f"{data_lines}; the counts in the header are wrong, so rows would be read as the wrong element."
        )


def read_labels(path: str | os.PathLike, expected: int | None = None, what: str = "labels") -> np.ndarray:
    """Read one integer label per line (blank lines and ``#`` comments skipped) as int64.

    Args:
        expected: the number of labels the file must hold (vertices or faces of its mesh).
        what: what the labels belong to, for the error message (e.g. ``'vertex labels'``).

    Raises:
        MeshFormatError: a line that is not one integer, a label outside ``-2^31 .. 2^31-1``,
            or the wrong number of labels.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Label file {str(path)!r} does not exist.")
    labels: list[int] = []
    for number, tokens in _data_lines(path):
        if len(tokens) != 1:
            raise MeshFormatError(f"{path}: line {number}: expected one integer label, found {' '.join(tokens)!r}.")
        try:
            labels.append(int(tokens[0]))
        except ValueError:
            value = None
            with contextlib.suppress(ValueError):
                value = float(tokens[0])
            if value is None or not value.is_integer():
                raise MeshFormatError(
                    f"{path}: line {number}: expected an integer label, found {tokens[0]!r}."
                ) from None
            labels.append(int(value))
        if not -(2**31) <= labels[-1] < 2**31:
            raise MeshFormatError(f"{path}: line {number}: label {tokens[0]} is out of range (|label| < 2^31).")
    if expected is not None and len(labels) != expected:
        raise MeshFormatError(f"{path}: holds {len(labels)} {what}, but its mesh needs {expected} (one per line).")
    return np.asarray(labels, dtype=np.int64)
