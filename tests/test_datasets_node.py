import numpy as np
import pytest
import torch

from tests.dataset_fixtures import copy_shared, write_ogbn_arxiv, write_platonov_npz
from tg_metricattn.datasets import DataNotFoundError, load_node_dataset, random_per_class_split
from tg_metricattn.datasets.heterophilous_npz import read_heterophilous_npz


def test_cora_public_split(tmp_path):
    copy_shared("Planetoid/Cora", tmp_path)
    data, info = load_node_dataset("Cora", tmp_path)
    assert (data.num_nodes, data.edge_index.size(1), data.x.size(1)) == (2708, 10556, 1433)
    assert info.num_classes == 7 and int(data.y.max()) == 6
    assert [int(data[f"{s}_mask"].sum()) for s in info.split_names] == [140, 500, 1000]
    assert info.split_kind == "public"
    assert torch.equal(torch.bincount(data.y[data.train_mask]), torch.full((7,), 20))


def test_citeseer_public_split(tmp_path):
    copy_shared("Planetoid/CiteSeer", tmp_path)
    data, info = load_node_dataset("citeseer", tmp_path)
    assert (data.num_nodes, data.edge_index.size(1), info.num_features, info.num_classes) == (
        3327,
        9104,
        3703,
        6,
    )
    assert [int(data[f"{s}_mask"].sum()) for s in ("train", "val", "test")] == [120, 500, 1000]


def test_amazon_photo_random_split_is_seeded(tmp_path):
    copy_shared("Amazon/Photo", tmp_path)
    data, info = load_node_dataset("Amazon-Photo", tmp_path, split=1)
    assert (data.num_nodes, data.edge_index.size(1), info.num_features, info.num_classes) == (
        7650,
        238162,
        745,
        8,
    )
    assert info.split_kind == "random-per-class" and info.split_index == 1
    assert int(data.train_mask.sum()) == 8 * 20 and int(data.val_mask.sum()) == 8 * 30
    assert int(data.test_mask.sum()) == 7650 - 400
    assert not (data.train_mask & data.test_mask).any()
    again, _ = load_node_dataset("Amazon/Photo", tmp_path, split=1)  # generic 'Class/name' form
    other, _ = load_node_dataset("photo", tmp_path, split=2)
    assert torch.equal(again.train_mask, data.train_mask)
    assert not torch.equal(other.train_mask, data.train_mask)


def test_minesweeper_published_splits(tmp_path):
    copy_shared("Heterophilous/minesweeper", tmp_path)
    data, info = load_node_dataset("Minesweeper", tmp_path, split=3)
    assert (data.num_nodes, data.edge_index.size(1), info.num_classes, info.num_features) == (
        10000,
        78804,
        2,
        7,
    )
    assert info.num_splits == 10 and info.split_index == 3 and info.split_kind == "published"
    assert data.train_mask.dim() == 1
    assert [int(data[f"{s}_mask"].sum()) for s in ("train", "val", "test")] == [5000, 2500, 2500]
    with pytest.raises(ValueError, match="10 published splits"):
        load_node_dataset("Minesweeper", tmp_path, split=10)


def test_ogbn_arxiv_raw_format_fixture(tmp_path):
    truth = write_ogbn_arxiv(tmp_path)
    data, info = load_node_dataset("ogbn-arxiv", tmp_path)
    n = truth["num_nodes"]
    assert data.num_nodes == n and data.x.shape == (n, 8)
    assert data.y.shape == (n,) and torch.equal(data.y, torch.as_tensor(truth["labels"]))
    assert info.num_classes == 40 and info.split_kind == "official"
    # undirected: every input edge present in both directions
    pairs = set(map(tuple, data.edge_index.t().tolist()))
    for s, d in truth["edges"]:
        assert (int(s), int(d)) in pairs and (int(d), int(s)) in pairs
    assert torch.equal(data.train_mask.nonzero().view(-1), torch.as_tensor(sorted(truth["split"]["train"])))
    assert int(data.val_mask.sum()) == 6 and int(data.test_mask.sum()) == n - 24
    wrong = data.y.clone()
    wrong[::3] = (wrong[::3] + 1) % 40  # every third prediction wrong
    acc = info.evaluator.eval({"y_true": data.y[:, None], "y_pred": wrong[:, None]})["acc"]
    assert acc == pytest.approx(1 - len(range(0, n, 3)) / n)
    # second load reads the processed file (weights_only load with PyG classes allowed)
    data2, _ = load_node_dataset("ogbn-arxiv", tmp_path)
    assert torch.equal(data2.edge_index, data.edge_index)


def test_ogb_folder_without_release_file_fails_clearly(tmp_path):
    write_ogbn_arxiv(tmp_path)
    (tmp_path / "ogb" / "ogbn_arxiv" / "RELEASE_v1.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"RELEASE_v1\.txt"):
        load_node_dataset("ogbn-arxiv", tmp_path)


def test_unknown_name_and_bad_split(tmp_path):
    with pytest.raises(ValueError, match="Unknown node dataset"):
        load_node_dataset("NotADataset", tmp_path)
    with pytest.raises(ValueError, match="non-negative int"):
        load_node_dataset("Cora", tmp_path, split=-1)


def test_random_per_class_split_counts():
    y = torch.tensor([0] * 60 + [1] * 40 + [2] * 10)
    train, val, test = random_per_class_split(y, train_per_class=20, val_per_class=30, seed=0)
    assert torch.equal(torch.bincount(y[train]), torch.tensor([20, 20, 10]))
    assert torch.equal(torch.bincount(y[val], minlength=3), torch.tensor([30, 20, 0]))
    assert int(test.sum()) == 10 and not (train & val).any()
    with pytest.raises(ValueError, match="1-D"):
        random_per_class_split(y[:, None])


@pytest.mark.parametrize("name", ["Cora", "Amazon-Photo", "Minesweeper"])
def test_missing_dataset_without_network_names_the_folder(tmp_path, monkeypatch, name):
    import urllib.error

    import torch_geometric.datasets.amazon as amazon
    import torch_geometric.datasets.heterophilous_graph_dataset as heterophilous
    import torch_geometric.datasets.planetoid as planetoid

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no network (test)")

    monkeypatch.setattr(planetoid.fs, "cp", no_network)
    monkeypatch.setattr(amazon, "download_url", no_network)
    monkeypatch.setattr(heterophilous, "download_url", no_network)
    with pytest.raises(DataNotFoundError, match=rf"{name!r} is not under .*{tmp_path.name}.*Copy the dataset"):
        load_node_dataset(name, tmp_path)


# -- Platonov et al.'s .npz graphs (filtered Chameleon and Squirrel) -------------------------------


def test_filtered_chameleon_reads_the_published_splits(tmp_path):
    _, arrays = write_platonov_npz(tmp_path)
    data, info = load_node_dataset("chameleon-filtered", tmp_path, split=3)
    assert (info.name, info.num_splits, info.split_index, info.num_classes) == ("chameleon_filtered", 10, 3, 3)
    assert torch.equal(data.train_mask, torch.from_numpy(arrays["train_masks"][3]))
    assert torch.equal(data.test_mask, torch.from_numpy(arrays["test_masks"][3]))
    edges = set(map(tuple, data.edge_index.t().tolist()))
    assert edges == {(0, 1), (1, 0), (1, 2), (2, 1), (2, 3), (3, 2), (4, 5), (5, 4)}  # made undirected
    assert torch.equal(data.y, torch.arange(12) % 3) and data.x.dtype == torch.float32
    with pytest.raises(ValueError, match=r"split must be in 0\.\.9"):
        load_node_dataset("squirrel_filtered", write_platonov_npz(tmp_path, "squirrel_filtered")[0].parents[3], 10)


def test_a_missing_filtered_dataset_names_the_file(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"squirrel_filtered\.npz"):
        load_node_dataset("squirrel-filtered", tmp_path)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"edges": np.array([[0, 12]])}, "edges index nodes 0..12 of 12"),
        ({"node_labels": np.arange(11)}, "node_labels must be 12 integers"),
        ({"train_masks": np.zeros((10, 12), dtype=np.int64)}, "train_masks must be a boolean"),
        ({"node_features": np.full((12, 5), np.nan)}, "node_features must be a finite"),
    ],
)
def test_a_damaged_npz_graph_is_named(tmp_path, override, message):
    path, _ = write_platonov_npz(tmp_path, **override)
    with pytest.raises(ValueError, match=message):
        read_heterophilous_npz(path)


def test_an_npz_header_declaring_a_huge_array_is_refused_before_allocation(tmp_path):
    import io
    import zipfile

    path, arrays = write_platonov_npz(tmp_path)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**9, 10**3)})
    with zipfile.ZipFile(path, "w") as archive:
        for key, value in arrays.items():
            if key == "node_features":
                archive.writestr("node_features.npy", header.getvalue())  # magic and header, no data
            else:
                buffer = io.BytesIO()
                np.save(buffer, value)
                archive.writestr(f"{key}.npy", buffer.getvalue())
    with pytest.raises(ValueError, match="declares 4000000000000 bytes"):
        read_heterophilous_npz(path)
    path.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"not a readable \.npz archive"):
        read_heterophilous_npz(path)


def test_a_root_given_the_pyg_way_is_accepted(tmp_path, capsys):
    """``Planetoid(root="data/Planetoid", name="Cora")``'s root, not only the $TGMA_DATA layout."""
    from tg_metricattn.experiments.cli import main

    copy_shared("Planetoid/Cora", tmp_path)
    data, info = load_node_dataset("Cora", tmp_path / "Planetoid")
    assert info.name == "Cora" and data.num_nodes == 2708
    assert not (tmp_path / "Planetoid" / "Planetoid").exists()
    out = tmp_path / "out"
    argv = ["train", "--dataset", "Cora", "--root", str(tmp_path / "Planetoid"), "--epochs", "1", "--no-progress"]
    assert main([*argv, "--out", str(out)]) == 0
    assert (out / "run_0" / "final.json").is_file()


def _npz_with_header(path, arrays, key, header_fields, data=b""):
    """Rewrite ``path`` with ``key``'s member replaced by a .npy header ``header_fields`` followed by ``data``."""
    import io
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, header_fields)
    with zipfile.ZipFile(path, "w") as archive:
        for name, value in arrays.items():
            if name == key:
                archive.writestr(f"{name}.npy", header.getvalue() + data)
            else:
                buffer = io.BytesIO()
                np.save(buffer, value)
                archive.writestr(f"{name}.npy", buffer.getvalue())


def test_an_npz_header_declaring_more_than_its_member_holds_is_refused(tmp_path):
    """Below the global limit (240 bytes declared), but more than the archive holds for the array."""
    path, arrays = write_platonov_npz(tmp_path)
    _npz_with_header(path, arrays, "node_features", {"descr": "<f4", "fortran_order": False, "shape": (12, 5)})
    with pytest.raises(ValueError, match=r"'node_features' declares 240 bytes but the file holds \d+ for it"):
        read_heterophilous_npz(path)


def test_an_npz_shape_whose_int64_product_wraps_is_refused_naming_the_file(tmp_path):
    path, arrays = write_platonov_npz(tmp_path)  # 2**33 * 2**31 * 4 bytes: 2**64 in int64 wraps to 0
    _npz_with_header(path, arrays, "node_features", {"descr": "<f4", "fortran_order": False, "shape": (2**33, 2**31)})
    with pytest.raises(ValueError, match=rf"{path.name}: array 'node_features' declares {2**66} bytes"):
        read_heterophilous_npz(path)


def test_an_npz_object_array_is_refused_naming_the_file_and_the_array(tmp_path):
    path, arrays = write_platonov_npz(tmp_path)
    _npz_with_header(path, arrays, "node_labels", {"descr": "|O", "fortran_order": False, "shape": (12,)}, b"\0" * 96)
    with pytest.raises(ValueError, match=rf"{path.name}: array 'node_labels' holds Python objects"):
        read_heterophilous_npz(path)


def test_an_npz_label_beyond_the_class_limit_is_refused(tmp_path):
    from tg_metricattn.datasets.mesh_dataset import MAX_INFERRED_CLASSES

    labels = np.arange(12) % 3
    labels[4] = 10**9
    path, _ = write_platonov_npz(tmp_path, node_labels=labels)
    with pytest.raises(ValueError, match=rf"node_labels.*1000000000.*below {MAX_INFERRED_CLASSES}"):
        read_heterophilous_npz(path)
    labels[4] = MAX_INFERRED_CLASSES - 1  # the largest label allowed still loads
    path, _ = write_platonov_npz(tmp_path, node_labels=labels)
    assert int(read_heterophilous_npz(path).y.max()) == MAX_INFERRED_CLASSES - 1


def _masks(num_splits=10, num_nodes=12):
    masks = np.zeros((3, num_splits, num_nodes), dtype=bool)
    for s in range(num_splits):
        for part, idx in enumerate(np.array_split(np.roll(np.arange(num_nodes), s), 3)):
            masks[part, s, idx] = True
    return masks


def test_overlapping_npz_masks_are_refused_naming_the_split(tmp_path):
    train, val, test = _masks()
    train[4, np.flatnonzero(test[4])[:2]] = True  # split 4 trains on two test nodes
    path, _ = write_platonov_npz(tmp_path, train_masks=train, val_masks=val, test_masks=test)
    with pytest.raises(
        ValueError, match=r"chameleon_filtered\.npz: published split 4: .*train and test .*share 2 nodes"
    ):
        read_heterophilous_npz(path)
    with pytest.raises(ValueError, match="published split 4"):
        load_node_dataset("chameleon-filtered", tmp_path, split=0)  # a damaged file is refused whole


def test_an_empty_published_split_says_so_not_to_change_the_random_split(tmp_path):
    train, val, test = _masks()
    val[7] = False
    path, _ = write_platonov_npz(tmp_path, train_masks=train, val_masks=val, test_masks=test)
    with pytest.raises(ValueError, match=r"chameleon_filtered\.npz: published split 7: the val mask is empty") as info:
        read_heterophilous_npz(path)
    assert "per-class" not in str(info.value)


def test_published_masks_of_pyg_datasets_are_checked_in_the_same_place():
    """The split a PyG class publishes (``[N, S]`` masks) goes through the same check as the .npz files."""
    from torch_geometric.data import Data

    from tg_metricattn.datasets.node_datasets import _with_split

    train, val, test = (torch.from_numpy(m.T.copy()) for m in _masks(num_splits=3))
    data = Data(x=torch.zeros(12, 2), y=torch.arange(12) % 3, edge_index=torch.zeros(2, 0, dtype=torch.long))
    data.train_mask, data.val_mask, data.test_mask = train.clone(), val.clone(), test.clone()
    assert int(_with_split(data.clone(), "WebKB-like", 3, "WebKB", 1, 20, 30)[0].train_mask.sum()) == 4
    data.val_mask[:, 2] = data.train_mask[:, 2]
    with pytest.raises(ValueError, match=r"WebKB-like: published split 2: the train and val masks share 4 nodes"):
        _with_split(data.clone(), "WebKB-like", 3, "WebKB", 2, 20, 30)
    data.val_mask[:, 2] = False
    with pytest.raises(ValueError, match=r"WebKB-like: published split 2: the val mask is empty"):
        _with_split(data.clone(), "WebKB-like", 3, "WebKB", 2, 20, 30)
