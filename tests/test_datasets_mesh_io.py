import numpy as np
import pytest

from tests.dataset_fixtures import icosphere, write_off
from tg_metricattn.datasets import MeshFormatError, read_labels, read_mesh, read_off


def test_read_off_roundtrip_and_polygons(tmp_path):
    path = tmp_path / "quad.off"
    path.write_text("OFF\n# a comment\n5 2 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n9 9 9\n4 0 1 2 3\n3 0 1 3 255 0 0\n")
    vertices, faces = read_off(path)
    assert vertices.shape == (5, 3)  # the unreferenced vertex 4 is kept
    assert faces.tolist() == [[0, 1, 2], [0, 2, 3], [0, 1, 3]]
    sphere_v, sphere_f = icosphere(1)
    write_off(tmp_path / "s.off", sphere_v, sphere_f)
    v, f = read_mesh(tmp_path / "s.off")
    assert np.allclose(v, sphere_v, atol=1e-5) and np.array_equal(f, sphere_f)


def test_read_off_header_on_one_line(tmp_path):
    path = tmp_path / "one.off"
    path.write_text("OFF 3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n")
    assert read_off(path)[1].tolist() == [[0, 1, 2]]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("OFF\n3 1 0\n0 0 0\n1 0 0\n", r"ends after 2 of the 3 vertices"),
        ("OFF\n3 2 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n", r"ends after 1 of the 2 faces"),
        ("OFF\n3 1 0\n0 0 0\n1 zero 0\n0 1 0\n3 0 1 2\n", r"line 4: expected three numbers"),
        ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n", r"line 6: face 0 refers to vertex 7"),
        ("PLY\n3 1 0\n", r"line 1: expected an 'OFF' header"),
        ("OFF\nthree 1 0\n", r"line 2: expected 'num_vertices num_faces"),
        ("", r"empty"),
    ],
)
def test_read_off_errors_name_file_and_line(tmp_path, text, match):
    path = tmp_path / "bad.off"
    path.write_text(text)
    with pytest.raises(MeshFormatError, match=match) as error:
        read_off(path)
    assert "bad.off" in str(error.value)


def test_read_labels(tmp_path):
    path = tmp_path / "l.txt"
    path.write_text("1\n2\n\n3.0\n")
    assert read_labels(path, expected=3).tolist() == [1, 2, 3]
    with pytest.raises(MeshFormatError, match=r"holds 3 vertex labels, but its mesh needs 4"):
        read_labels(path, expected=4, what="vertex labels")
    path.write_text("1\nhead\n")
    with pytest.raises(MeshFormatError, match=r"l.txt: line 2: expected an integer label, found 'head'"):
        read_labels(path)


def test_obj_keeps_vertex_order(tmp_path):
    path = tmp_path / "m.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 5 5 5\nv 0 0 1\nf 1 2 3\nf 1 3 5\n")
    vertices, faces = read_mesh(path)
    assert vertices.shape == (5, 3) and vertices[3].tolist() == [5, 5, 5]
    assert faces.tolist() == [[0, 1, 2], [0, 2, 4]]
    with pytest.raises(MeshFormatError, match="unsupported mesh format"):
        (tmp_path / "m.stl").write_text("x")
        read_mesh(tmp_path / "m.stl")
