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


PLY_HEADER = "ply\nformat ascii 1.0\nelement vertex {v}\nproperty float x\nproperty float y\nproperty float z\n"
PLY_HEADER += "element face {f}\nproperty list uchar int vertex_indices\nend_header\n"
SQUARE = "0 0 0\n1 0 0\n1 1 0\n0 1 0\n"


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("nan.obj", "v nan 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n", "vertex 0 has a non-finite or beyond-float32"),
        ("huge.off", "OFF\n3 1 0\n1e39 0 0\n1 0 0\n0 1 0\n3 0 1 2\n", "line 3: vertex 0 has a non-finite or beyond"),
        (
            "index.ply",
            PLY_HEADER.format(v=4, f=2) + SQUARE + "3 0 1 2\n3 0 2 9\n",
            "refers to vertex 9, but the file has 4",
        ),
        (
            "count.ply",
            PLY_HEADER.format(v=5, f=2) + SQUARE + "3 0 1 2\n3 0 2 3\n",
            "announces 7 data lines .* holds 6",
        ),
    ],
)
def test_unusable_coordinates_and_indices_name_the_file(tmp_path, name, text, match):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(MeshFormatError, match=rf"{name}: .*{match}"):
        read_mesh(path)


def test_labels_beyond_int32_and_the_class_limit_are_named(tmp_path):
    from tests.dataset_fixtures import write_labels
    from tg_metricattn.datasets import MeshFolder

    (tmp_path / "big.txt").write_text("1\n" + "1" + "0" * 30 + "\n")
    with pytest.raises(MeshFormatError, match=r"big.txt: line 2: label 10{30} is out of range"):
        read_labels(tmp_path / "big.txt")
    v, f = icosphere(0)
    write_off(tmp_path / "meshes" / "a.off", v, f)
    labels = np.zeros(len(v), dtype=np.int64)
    labels[3] = 10**9
    write_labels(tmp_path / "labels" / "a.txt", labels)
    with pytest.raises(MeshFormatError, match=r"a.txt: labels .* range over 0..1000000000, expected 0..65535"):
        MeshFolder(tmp_path, features=("xyz",), eigenpairs=4)


def test_two_meshes_with_one_name_are_refused(tmp_path):
    from tests.dataset_fixtures import write_labels
    from tg_metricattn.datasets import MeshFolder

    v, f = icosphere(0)
    write_off(tmp_path / "meshes" / "a.off", v, f)
    (tmp_path / "meshes" / "a.obj").write_text("".join(f"v {x} {y} {z}\n" for x, y, z in v) + "f 1 2 3\n")
    write_labels(tmp_path / "labels" / "a.txt", np.zeros(len(v), dtype=np.int64))
    with pytest.raises(MeshFormatError, match=r"a.obj and .*a.off have the same name 'a'|a.off and .*a.obj have"):
        MeshFolder(tmp_path, features=("xyz",), eigenpairs=4)
