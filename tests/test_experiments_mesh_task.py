"""The mesh task's training pieces: rotation augmentation of xyz input and the learning-rate schedule."""

import pytest
import torch

from tg_metricattn.experiments.config import TrainConfig
from tg_metricattn.experiments.tasks import MeshTask
from tg_metricattn.experiments.training import learning_rate


@pytest.fixture(scope="module")
def task():
    config = TrainConfig(
        task="mesh", dataset="synthetic", num_meshes=3, mesh_resolution=8, features="hks,xyz", eigenpairs=24
    ).resolved()
    return MeshTask(config)


def test_rotation_turns_only_the_xyz_columns_and_keeps_the_mesh(task):
    mesh = task.splits["train"][0]
    assert task.config.augment and task.config.arch == "diffusion"
    task.reseed(0)
    turned = task._rotated(mesh)
    hks, xyz = slice(0, 16), slice(16, 19)  # 'hks,xyz': 16 hks columns first
    assert torch.equal(turned.x[:, hks], mesh.x[:, hks])
    assert not torch.allclose(turned.x[:, xyz], mesh.x[:, xyz], atol=1e-3)
    assert torch.allclose(turned.x[:, xyz].norm(dim=1), mesh.x[:, xyz].norm(dim=1), atol=1e-5)
    gram = turned.x[:, xyz].T @ turned.x[:, xyz]  # a rotation keeps the second moments' spectrum
    assert torch.allclose(torch.linalg.eigvalsh(gram), torch.linalg.eigvalsh(mesh.x[:, xyz].T @ mesh.x[:, xyz]))
    # the mesh itself is untouched, and the rotated sample shares its graph and operator (per-mesh caches)
    assert turned.edge_index is mesh.edge_index and turned.evecs is mesh.evecs and turned.x is not mesh.x
    task.reseed(0)
    assert torch.equal(task._rotated(mesh).x, turned.x)  # drawn from the task's generator: reproducible


def test_learning_rate_halves_every_lr_step_epochs():
    config = TrainConfig(task="mesh", lr=0.001, lr_step=50).resolved()
    assert [learning_rate(config, e) for e in (1, 50, 51, 100, 101)] == [0.001, 0.001, 0.0005, 0.0005, 0.00025]
    constant = TrainConfig(task="node").resolved()
    assert constant.lr_step == 0 and learning_rate(constant, 500) == constant.lr


def test_mesh_defaults_follow_the_architecture():
    diffusion = TrainConfig(task="mesh").resolved()
    assert (diffusion.arch, diffusion.heads * diffusion.hidden, diffusion.layers) == ("diffusion", 128, 4)
    assert (diffusion.lr, diffusion.lr_step, diffusion.dropout, diffusion.augment) == (0.001, 50, 0.5, True)
    assert diffusion.gradient_features is True
    attention = TrainConfig(task="mesh", arch="attention", features="hks").resolved()
    assert (attention.lr, attention.lr_step, attention.augment, attention.gradient_features) == (0.005, 0, False, False)
    # the layer default follows the architecture too (no attention was best on the RNA validation meshes)
    assert (diffusion.layer, attention.layer, TrainConfig(task="node").resolved().layer) == ("none", "gat", "gat")
    assert TrainConfig(task="mesh", layer="metric").resolved().layer == "metric"
