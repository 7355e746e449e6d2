"""No file under a data root is ever unpickled (issue 13, items 1 and 2).

Every test plants a pickle whose unpickling would create a marker file, in the places a
loader reads: ``processed/pre_transform.pt``, ``pre_filter.pt`` and the processed data
file (PyG would read them with full unpickling), a raw pickle and OGB's ``split_dict.pt``.
A processed file is moved aside and rebuilt from ``raw/``; any other file is refused with
an error naming it. In no case may the marker appear.
"""

from __future__ import annotations

import json
import pathlib
import pickle
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.dataset_fixtures import copy_shared, icosphere, write_labels, write_off, write_ogbn_arxiv
from tg_metricattn.datasets import MeshFolder, load_graph_dataset, load_node_dataset, pyg_safe_load
from tg_metricattn.datasets.safe_load import UnsafeFileError, UnsafeFileWarning


class Payload:
    """Unpickling this object creates ``marker``: harmless, but it is code run by the loader."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def plant(path: Path, marker: Path) -> None:
    """Overwrite ``path`` with the payload, saved the way PyG saves its files (``torch.save``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(Payload(marker), path)


def processed_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a processed PyG/OGB file, read safely (to compare a rebuilt file with the original)."""
    with pyg_safe_load():
        out = torch.load(path)
    data = out[0]
    data = data.to_dict() if hasattr(data, "to_dict") else data
    return {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}


def assert_same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_payload_runs_when_unpickled(tmp_path):
    """The fixture is a real payload: full unpickling creates the marker (so its absence below means something)."""
    marker = tmp_path / "marker"
    plant(tmp_path / "evil.pt", marker)
    torch.load(tmp_path / "evil.pt", weights_only=False)
    assert marker.exists()
    marker.unlink()
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()


def test_strict_block_refuses_every_unpickling_route(tmp_path):
    marker = tmp_path / "marker"
    plant(tmp_path / "evil.pt", marker)
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(Payload(marker)))
    np.save(tmp_path / "evil.npy", np.array([Payload(marker)], dtype=object), allow_pickle=True)
    import pandas as pd
    import torch_geometric.io.fs as pyg_fs

    with pyg_safe_load():
        for load in (
            lambda: torch.load(tmp_path / "evil.pt", weights_only=False),  # what PyG asks for pre_transform.pt
            lambda: pyg_fs.torch_load(str(tmp_path / "evil.pt")),  # PyG's loader, which would retry unsafely
            lambda: pickle.loads((tmp_path / "evil.pkl").read_bytes()),
            lambda: np.load(tmp_path / "evil.npy", allow_pickle=True),
            lambda: pd.read_pickle(tmp_path / "evil.pkl"),  # pandas retries failures with its own unpickler
        ):
            with pytest.raises(UnsafeFileError):
                load()
        with open(tmp_path / "evil.pkl", "rb") as f, pytest.raises(UnsafeFileError, match=r"evil\.pkl"):
            pickle.load(f)
    assert not marker.exists()
    assert torch.load is torch.serialization.load and pickle.load.__module__ == "_pickle"  # restored on exit


class ExecPayload:
    """Unpickling this runs ``builtins.exec``, a name of a module whose other names (``list``, ``dict``) are allowed."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def test_a_disallowed_name_of_an_allowed_module_is_refused_and_never_runs(tmp_path):
    """The allow-list is of (module, name) pairs: ``builtins.exec`` is refused though ``builtins.list`` is allowed."""
    marker = tmp_path / "marker"
    payload = pickle.dumps(ExecPayload(marker))
    pickle.loads(payload)  # the payload is real: full unpickling runs it
    assert marker.exists()
    marker.unlink()
    (tmp_path / "exec.pkl").write_bytes(payload)
    with pyg_safe_load():
        with pytest.raises(UnsafeFileError, match=r"builtins\.exec"):
            pickle.loads(payload)
        with open(tmp_path / "exec.pkl", "rb") as f, pytest.raises(UnsafeFileError, match=r"exec\.pkl"):
            pickle.load(f)
        assert pickle.loads(pickle.dumps([1, {"a": (2, 3)}])) == [1, {"a": (2, 3)}]  # allowed names still load
    assert not marker.exists()


def test_planetoid_processed_payloads_are_rebuilt(tmp_path):
    copy_shared("Planetoid/Cora", tmp_path)
    original, _ = load_node_dataset("Cora", tmp_path)
    processed = tmp_path / "Planetoid" / "Cora" / "processed"
    before = processed_tensors(processed / "data.pt")
    marker = tmp_path / "marker"
    for name in ("pre_transform.pt", "pre_filter.pt", "data.pt"):
        plant(processed / name, marker)
    with pytest.warns(UnsafeFileWarning, match="rebuilding") as record:
        data, _ = load_node_dataset("Cora", tmp_path)
    assert not marker.exists()
    assert len([w for w in record if issubclass(w.category, UnsafeFileWarning)]) == 3
    moved = {"pre_transform.pt.unsafe", "pre_filter.pt.unsafe", "data.pt.unsafe"}
    assert {p.name for p in processed.glob("*.unsafe")} == moved
    assert_same_tensors(processed_tensors(processed / "data.pt"), before)
    assert torch.equal(data.x, original.x) and torch.equal(data.train_mask, original.train_mask)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsafeFileWarning)
        load_node_dataset("Cora", tmp_path)  # the rebuilt files are read as they are


def test_planetoid_raw_pickle_payload_is_refused(tmp_path):
    """Planetoid's raw files are pickles: read with the data-only unpickler, a payload is refused by name."""
    copy_shared("Planetoid/Cora", tmp_path)
    marker = tmp_path / "marker"
    (tmp_path / "Planetoid" / "Cora" / "raw" / "ind.cora.graph").write_bytes(pickle.dumps(Payload(marker), protocol=2))
    with pytest.raises(UnsafeFileError, match=r"ind\.cora\.graph.*not a plain data class"):
        load_node_dataset("Cora", tmp_path)
    assert not marker.exists()


def test_pyg_class_by_name_processed_payloads_are_rebuilt(tmp_path):
    copy_shared("Amazon/Photo", tmp_path)
    original, _ = load_node_dataset("Amazon/Photo", tmp_path, split=1)
    processed = tmp_path / "Amazon" / "Photo" / "processed"
    marker = tmp_path / "marker"
    (data_file,) = [p for p in processed.glob("*.pt") if not p.name.startswith("pre_")]
    for path in (processed / "pre_transform.pt", data_file):
        plant(path, marker)
    with pytest.warns(UnsafeFileWarning, match=re.escape(data_file.name)):
        data, info = load_node_dataset("Amazon/Photo", tmp_path, split=1)
    assert not marker.exists()
    assert info.num_nodes == 7650 and torch.equal(data.edge_index, original.edge_index)
    assert torch.equal(data.train_mask, original.train_mask)


def test_ogbn_processed_payloads_are_rebuilt_and_split_dict_refused(tmp_path):
    fixture = write_ogbn_arxiv(tmp_path)
    original, _ = load_node_dataset("ogbn-arxiv", tmp_path)
    folder = tmp_path / "ogb" / "ogbn_arxiv"
    marker = tmp_path / "marker"
    for name in ("pre_transform.pt", "geometric_data_processed.pt"):
        plant(folder / "processed" / name, marker)
    with pytest.warns(UnsafeFileWarning, match=r"geometric_data_processed\.pt"):
        data, _ = load_node_dataset("ogbn-arxiv", tmp_path)
    assert not marker.exists()
    assert torch.equal(data.x, original.x) and int(data.train_mask.sum()) == len(fixture["split"]["train"])

    plant(folder / "split" / "time" / "split_dict.pt", marker)  # ogb reads it instead of the CSV files
    with pytest.raises(UnsafeFileError, match=r"split_dict\.pt"):
        load_node_dataset("ogbn-arxiv", tmp_path)
    assert not marker.exists()


def test_ogbg_processed_payloads_are_rebuilt(tmp_path):
    copy_shared("ogb/ogbg_molbace", tmp_path)
    dataset, _ = load_graph_dataset("ogbg-molbace", tmp_path)
    processed = tmp_path / "ogb" / "ogbg_molbace" / "processed"
    before = processed_tensors(processed / "geometric_data_processed.pt")
    marker = tmp_path / "marker"
    for name in ("pre_filter.pt", "geometric_data_processed.pt"):
        plant(processed / name, marker)
    with pytest.warns(UnsafeFileWarning):
        again, info = load_graph_dataset("ogbg-molbace", tmp_path)
    assert not marker.exists()
    assert len(again) == info.num_graphs == 1513 and torch.equal(again[0].x, dataset[0].x)
    assert_same_tensors(processed_tensors(processed / "geometric_data_processed.pt"), before)


def test_mesh_processed_payloads_are_rebuilt(tmp_path):
    """Needs MeshSegmentationDataset to construct itself through ``open_dataset_safely``."""
    v, f = icosphere(1)
    write_off(tmp_path / "meshes" / "a.off", v, f)
    write_labels(tmp_path / "labels" / "a.txt", (v[:, 2] > 0).astype(int))
    original = MeshFolder(tmp_path, features=("xyz",))[0]
    (data_file,) = [Path(p) for p in MeshFolder(tmp_path, features=("xyz",)).processed_paths]
    marker = tmp_path / "marker"
    for path in (data_file.parent / "pre_transform.pt", data_file):
        plant(path, marker)
    with pytest.warns(UnsafeFileWarning, match=re.escape(data_file.name)):
        again = MeshFolder(tmp_path, features=("xyz",))[0]
    assert not marker.exists()
    assert torch.equal(again.pos, original.pos) and torch.equal(again.y, original.y)


def test_diagnose_ignores_a_payload_the_run_config_points_to(tmp_path, monkeypatch):
    """A received run folder's config.json names the data root: diagnose must not unpickle anything there."""
    from tg_metricattn.experiments.cli import main

    monkeypatch.setenv("TGMA_CACHE", str(tmp_path / "cache"))
    copy_shared("Planetoid/Cora", tmp_path / "mine")
    out = tmp_path / "run"
    argv = ["train", "--dataset", "cora", "--root", str(tmp_path / "mine"), "--epochs", "1", "--heads", "1"]
    assert main([*argv, "--hidden", "4", "--no-progress", "--out", str(out)]) == 0

    theirs = tmp_path / "theirs"  # the folder the received config points to, with its processed files poisoned
    shutil.copytree(tmp_path / "mine" / "Planetoid", theirs / "Planetoid")
    marker = tmp_path / "marker"
    for path in (theirs / "Planetoid" / "Cora" / "processed").glob("*.pt"):
        plant(path, marker)
    config_path = out / "run_0" / "config.json"
    config = json.loads(config_path.read_text())
    config["root"] = str(theirs)
    config_path.write_text(json.dumps(config))

    with pytest.warns(UnsafeFileWarning):
        code = main(["diagnose", "--checkpoint", str(out), "--out", str(tmp_path / "diag"), "--num-eigs", "2"])
    assert not marker.exists()
    assert code == 0 and (tmp_path / "diag" / "diagnostics.json").is_file()
    assert (theirs / "Planetoid" / "Cora" / "processed" / "data.pt.unsafe").is_file()  # it read `theirs`, safely
