import pickle

import pytest
import torch
from ogb.graphproppred import PygGraphPropPredDataset
from torch_geometric.data import Data

from tests.dataset_fixtures import copy_shared
from tg_metricattn.datasets import load_graph_dataset, pyg_safe_load
from tg_metricattn.datasets.safe_load import PYG_SAFE_GLOBALS


def test_ogbg_molbace_split_evaluator_and_cache(tmp_path, monkeypatch):
    copy_shared("ogb/ogbg_molbace", tmp_path)
    dataset, info = load_graph_dataset("ogbg-molbace", tmp_path)
    assert len(dataset) == info.num_graphs == 1513
    assert {k: len(v) for k, v in info.split.items()} == {"train": 1210, "valid": 151, "test": 152}
    assert (info.num_node_features, info.num_edge_features, info.num_tasks) == (9, 3, 1)
    assert info.eval_metric == "rocauc"
    y = torch.cat([dataset[int(i)].y for i in info.split["test"]])
    assert set(y.view(-1).tolist()) == {0, 1}
    scores = torch.rand(y.shape, generator=torch.Generator().manual_seed(0)) + 0.3 * y  # informative, not perfect
    positive, negative = scores[y == 1], scores[y == 0]
    mann_whitney = (positive[:, None] > negative[None, :]).double().mean()  # AUC by its definition
    score = info.evaluator.eval({"y_true": y, "y_pred": scores})["rocauc"]
    assert 0.6 < score < 0.95 and score == pytest.approx(float(mann_whitney))

    def no_processing(self):
        raise AssertionError("process() called although the processed file exists")

    monkeypatch.setattr(PygGraphPropPredDataset, "process", no_processing)
    again, _ = load_graph_dataset("ogbg-molbace", tmp_path)
    assert torch.equal(again[0].x, dataset[0].x)
    ogb_way, _ = load_graph_dataset("ogbg-molbace", tmp_path / "ogb")  # OGB's own root, the same files
    assert torch.equal(ogb_way[0].x, dataset[0].x) and not (tmp_path / "ogb" / "ogb").exists()


def test_safe_globals_only_inside_the_context(tmp_path):
    path = tmp_path / "data.pt"
    torch.save(Data(x=torch.ones(2, 1), edge_index=torch.tensor([[0], [1]])), path)
    with pyg_safe_load():
        assert torch.load(path).num_nodes == 2
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)  # weights_only stays on outside the context


def test_safe_load_leaves_the_allow_list_as_it_found_it():
    before = set(torch.serialization.get_safe_globals())
    assert Data in before  # PyG allows Data itself on import; the block must not take that away
    with pyg_safe_load():
        assert set(PYG_SAFE_GLOBALS) <= set(torch.serialization.get_safe_globals())
    assert set(torch.serialization.get_safe_globals()) == before


def test_graph_loader_rejects_node_dataset(tmp_path):
    with pytest.raises(ValueError, match="load_node_dataset"):
        load_graph_dataset("ogbn-arxiv", tmp_path)


@pytest.mark.parametrize("name", ["ogbg-molfoo", "ogbn-arxive"])
def test_an_unknown_ogb_name_is_named_with_the_known_ones_not_blamed_on_the_network(tmp_path, name):
    from tg_metricattn.datasets import load_graph_dataset, load_node_dataset
    from tg_metricattn.experiments.data import check_present

    known = "ogbg-molbace" if name.startswith("ogbg-") else "ogbn-arxiv"
    for attempt in (
        lambda: check_present(name, tmp_path),
        lambda: (load_graph_dataset if name.startswith("ogbg-") else load_node_dataset)(name, tmp_path),
    ):
        with pytest.raises(ValueError, match=rf"{name!r} is not an OGB dataset.*{known}") as info:
            attempt()
        assert "network" not in str(info.value)
