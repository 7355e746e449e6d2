"""Property-based tests of the mesh and label readers: any input either reads correctly or
raises the documented ``MeshFormatError`` (never another exception, never a wrong mesh)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tg_metricattn.datasets import MeshFormatError
from tg_metricattn.datasets.mesh_io import read_labels, read_mesh, read_off

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _write(data: bytes, suffix: str) -> Path:
    with tempfile.NamedTemporaryFile(suffix=suffix, delete=False) as handle:
        handle.write(data)
    return Path(handle.name)


def _read_or_format_error(read, data: bytes, suffix: str):
    """``read(file with data)``; ``None`` when it raised MeshFormatError (any other exception fails the test)."""
    path = _write(data, suffix)
    try:
        return read(path)
    except MeshFormatError as error:
        assert str(path) in str(error), "the error must name the file"
        return None
    finally:
        path.unlink()


def _assert_valid_mesh(result) -> None:
    vertices, faces = result
    assert vertices.dtype == np.float64 and vertices.ndim == 2 and vertices.shape[1] == 3
    assert np.isfinite(vertices).all()
    assert faces.dtype == np.int64 and faces.ndim == 2 and faces.shape[1] == 3
    assert faces.size == 0 or (faces.min() >= 0 and faces.max() < len(vertices))


@st.composite
def meshes(draw):
    """Vertices (finite floats) and polygon faces (3..6 corners, valid indices)."""
    num_vertices = draw(st.integers(1, 12))
    coordinate = st.floats(allow_nan=False, allow_infinity=False, width=64, min_value=-1e9, max_value=1e9)
    vertices = draw(
        st.lists(st.tuples(coordinate, coordinate, coordinate), min_size=num_vertices, max_size=num_vertices)
    )
    corner = st.integers(0, num_vertices - 1)
    faces = draw(st.lists(st.lists(corner, min_size=3, max_size=6), max_size=10))
    return np.asarray(vertices, dtype=np.float64).reshape(-1, 3), faces


@st.composite
def off_texts(draw):
    """A well-formed OFF file in one of the layouts seen in the wild, and the mesh it holds."""
    vertices, faces = draw(meshes())
    space = st.sampled_from([" ", "  ", "\t", " \t "])
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    comment = st.sampled_from(["", "", " # a comment", "#"])
    lines = []
    counts = f"{len(vertices)}{draw(space)}{len(faces)}{draw(space)}0"
    if draw(st.booleans()):
        lines.append(f"OFF{draw(space)}{counts}")
    else:
        lines += ["OFF" + draw(comment), counts]
    for vertex in vertices:
        lines.append(draw(space).join(repr(float(c)) for c in vertex) + draw(comment))
        if draw(st.integers(0, 9)) == 0:
            lines.append(draw(comment))  # blank or comment-only lines between records
    for face in faces:
        lines.append(draw(space).join(str(v) for v in [len(face), *face]) + draw(comment))
    text = newline.join(lines) + draw(st.sampled_from(["", newline]))
    return text, vertices, faces


@FUZZ
@given(st.binary(max_size=600), st.sampled_from([b"", b"OFF\n", b"OFF 3 1 0\n", b"OFF\n2 0 0\n"]))
def test_off_reader_on_random_bytes(data, prefix):
    result = _read_or_format_error(read_off, prefix + data, ".off")
    if result is not None:
        _assert_valid_mesh(result)


@FUZZ
@given(off_texts())
def test_off_reader_reads_well_formed_files_exactly(case):
    text, vertices, faces = case
    result = _read_or_format_error(read_off, text.encode(), ".off")
    assert result is not None, f"a well-formed file was rejected:\n{text}"
    read_vertices, read_faces = result
    np.testing.assert_array_equal(read_vertices, vertices)
    fan = [(f[0], f[k], f[k + 1]) for f in faces for k in range(1, len(f) - 1)]
    np.testing.assert_array_equal(read_faces, np.asarray(fan, dtype=np.int64).reshape(-1, 3))


@FUZZ
@given(off_texts(), st.data())
def test_off_reader_on_damaged_files(case, data):
    text = case[0].encode()
    position = data.draw(st.integers(0, len(text)))
    how = data.draw(st.sampled_from(["truncate", "insert", "overwrite"]))
    if how == "truncate":
        damaged = text[:position]
    else:
        junk = data.draw(
            st.sampled_from([b"x", b"-1", b"nan", b"1e999", b"99999999999999999999", b"\x00", b"\n", b"#"])
        )
        damaged = text[:position] + junk + text[position + (len(junk) if how == "overwrite" else 0) :]
    result = _read_or_format_error(read_off, damaged, ".off")
    if result is not None:
        _assert_valid_mesh(result)


@pytest.mark.parametrize("counts", ["10000000000000 0 0", "0 10000000000000 0", "999999999999999999999 1 0"])
def test_off_header_with_huge_counts_is_a_format_error_not_an_allocation(counts, tmp_path):
    path = tmp_path / "huge.off"
    path.write_text(f"OFF\n{counts}\n0 0 0\n")
    with pytest.raises(MeshFormatError, match=r"huge\.off"):
        read_off(path)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.binary(max_size=400), st.sampled_from([(".obj", b""), (".obj", b"v 0 0 0\n"), (".ply", b""), (".ply", b"ply\n")])
)
def test_trimesh_formats_on_random_bytes(data, kind):
    suffix, prefix = kind
    result = _read_or_format_error(read_mesh, prefix + data, suffix)
    if result is not None:
        vertices, faces = result
        assert vertices.ndim == 2 and vertices.shape[1] == 3 and faces.shape[1] == 3


@FUZZ
@given(st.binary(max_size=300), st.one_of(st.none(), st.integers(0, 20)))
def test_label_reader_on_random_bytes(data, expected):
    labels = _read_or_format_error(lambda p: read_labels(p, expected=expected), data, ".seg")
    if labels is not None:
        assert labels.dtype == np.int64 and labels.ndim == 1
        assert expected is None or len(labels) == expected
