"""Unit tests of the diagnostics building blocks, diagnose() and the plots."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp
import torch
from scipy.spatial import ConvexHull
from torch import nn
from torch_geometric.data import Data

from tg_metricattn.datasets import mesh_edge_index
from tg_metricattn.diagnostics import (
    conformal_factor,
    default_time_bounds,
    diagnose,
    dirichlet_energies,
    drift_share,
    fibonacci_sphere,
    fit_diffusion_time,
    fit_time_least_squares,
    fit_time_probes,
    geometric_edge_lengths,
    graph_laplacian,
    heat_apply,
    heat_blocks,
    heat_curve,
    heat_curves,
    knn_edge_index,
    laplacian_eigenpairs,
    learned_edge_lengths,
    mesh_laplace_operator,
    probe_signals,
    propagation_matrix,
    save_plots,
    stationary_distribution,
    symmetrizing_weights,
    uniform_propagation,
    uniformity_stats,
)
from tg_metricattn.diagnostics.laplacians import ReferenceLaplacian
from tg_metricattn.layers import DotAttnConv, L2AttnConv, MetricAttnConv, SparseGATConv

torch.set_num_threads(1)


def sphere_mesh(n: int = 300) -> Data:
    pos = fibonacci_sphere(n)
    face = torch.as_tensor(ConvexHull(pos).simplices.T.copy(), dtype=torch.long)
    pos_t = torch.as_tensor(pos, dtype=torch.float32)
    return Data(x=pos_t.clone(), pos=pos_t, face=face, edge_index=mesh_edge_index(face, n), num_nodes=n)


def test_graph_laplacians_match_definitions():
    edge_index = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])  # path 0-1-2-3
    A = np.zeros((4, 4))
    A[edge_index[1], edge_index[0]] = 1
    d = A.sum(1)
    dense = {
        "combinatorial": np.diag(d) - A,
        "sym": np.eye(4) - A / np.sqrt(np.outer(d, d)),
        "rw": np.eye(4) - A / d[:, None],
    }
    for kind, expected in dense.items():
        assert np.allclose(graph_laplacian(edge_index, 4, kind).matrix.toarray(), expected), kind
        vals, _ = laplacian_eigenpairs(graph_laplacian(edge_index, 4, kind), 4)
        assert np.allclose(vals, np.sort(np.linalg.eigvals(expected).real)), kind
    with pytest.raises(ValueError, match="kind"):
        graph_laplacian(edge_index, 4, "cotangent")
    with pytest.raises(ValueError, match="outside"):
        graph_laplacian(edge_index, 3, "rw")


def test_cotangent_operator_has_sphere_spectrum():
    data = sphere_mesh(600)
    lap = mesh_laplace_operator(data.pos.double(), data.face)
    vals, _ = laplacian_eigenpairs(lap, 9)
    assert abs(vals[0]) < 1e-8
    assert np.allclose(vals[1:4], 2.0, rtol=0.03)
    assert np.allclose(vals[4:9], 6.0, rtol=0.03)
    # heat flow of M^{-1} L_cot on Y_1 = z decays like exp(-2t)
    z = data.pos[:, 2].double().numpy()
    out = heat_apply(lap, z, 0.1)[:, 0]
    assert np.allclose(out, np.exp(-0.2) * z, atol=0.01)


def test_heat_apply_matches_dense_expm_and_validates():
    lap = graph_laplacian(knn_edge_index(fibonacci_sphere(60), 5), 60, "sym")
    X = np.random.default_rng(0).standard_normal((60, 3))
    expected = scipy.linalg.expm(-0.7 * lap.matrix.toarray()) @ X
    assert np.allclose(heat_apply(lap, X, 0.7), expected, atol=1e-10)
    assert np.allclose(heat_apply(lap.matrix, X, 0.0), X)
    with pytest.raises(ValueError, match=r"rows|shape"):
        heat_apply(lap, X[:10], 0.5)
    with pytest.raises(ValueError, match="square"):
        heat_apply(sp.csr_matrix(np.ones((3, 4))), np.ones(3), 0.5)
    with pytest.raises(ValueError, match="t must"):
        heat_apply(lap, X, -1.0)


def test_fit_validation_errors():
    lap = graph_laplacian(knn_edge_index(fibonacci_sphere(30), 4), 30, "rw")
    with pytest.raises(ValueError, match="square"):
        fit_time_least_squares(np.ones((30, 29)), lap)
    with pytest.raises(ValueError, match="same shape"):
        fit_time_least_squares(sp.eye(20), lap)
    with pytest.raises(ValueError, match="bounds"):
        fit_diffusion_time(sp.eye(30), lap, bounds=(1.0, 0.5))


@pytest.mark.parametrize("cls", [SparseGATConv, DotAttnConv, L2AttnConv, MetricAttnConv])
def test_propagation_matrix_is_row_stochastic_and_reproduces_output(cls):
    torch.manual_seed(0)
    n = 40
    x = torch.randn(n, 5, dtype=torch.float64)
    edge_index = knn_edge_index(np.random.default_rng(0).standard_normal((n, 3)), 4)
    edge_index = torch.cat([edge_index, edge_index[:, :7]], 1)  # duplicate edges are summed
    layer = cls(5, 3, heads=2, bias=False).double()
    if isinstance(layer, DotAttnConv):
        layer.root_weight = False
    mats = propagation_matrix(layer, x, edge_index)
    assert len(mats) == 2
    layer.eval()
    out = layer(x, edge_index).detach().numpy().reshape(n, 2, 3)
    value_map = layer.lin if isinstance(layer, SparseGATConv) else layer.lin_value
    values = value_map(x).detach().numpy().reshape(n, 2, 3)
    for h, P in enumerate(mats):
        assert np.allclose(np.asarray(P.sum(axis=1)).ravel(), 1.0)
        assert np.allclose(P @ values[:, h], out[:, h], atol=1e-10)
    with pytest.raises(ValueError, match="AttentionConv"):
        propagation_matrix(nn.Linear(3, 3), x, edge_index)


def test_reversibility():
    y = fibonacci_sphere(200)
    edge_index = knn_edge_index(y, 8)
    edge_index = torch.cat([edge_index, edge_index.flip(0)], 1).unique(dim=1)
    W = sp.csr_matrix((np.ones(edge_index.size(1)), (edge_index[1].numpy(), edge_index[0].numpy())), shape=(200, 200))
    P = sp.csr_matrix(sp.diags(1 / np.asarray(W.sum(1)).ravel()) @ W)  # reversible: π ∝ degree
    pi = stationary_distribution(P)
    deg = np.asarray(W.sum(1)).ravel()
    assert np.allclose(pi, deg / deg.sum(), atol=1e-8)
    assert drift_share(P, pi) < 1e-8
    n = 30  # a directed cycle with laziness: all flux goes one way
    C = sp.csr_matrix(0.5 * np.eye(n) + 0.5 * np.roll(np.eye(n), 1, axis=1))
    assert np.allclose(stationary_distribution(C), 1 / n)
    assert drift_share(C) == pytest.approx(1.0)


def test_dirichlet_energies():
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    x = torch.tensor([[1.0], [2.0], [4.0]])
    e = dirichlet_energies(x, edge_index)
    assert e["unnormalized"] == pytest.approx((2 - 1) ** 2 + (4 - 2) ** 2)
    const = dirichlet_energies(torch.ones(3, 2), edge_index)
    assert const["unnormalized"] == pytest.approx(0.0)
    sqrt_deg = torch.tensor([[1.0], [2.0**0.5], [1.0]])
    assert dirichlet_energies(sqrt_deg, edge_index)["rayleigh"] == pytest.approx(0.0, abs=1e-12)


def test_edge_lengths_and_conformal_factor():
    data = sphere_mesh(200)
    layer = L2AttnConv(3, 3, heads=1).double()
    with torch.no_grad():
        layer.lin_query.weight.copy_(2.5 * torch.eye(3))
    learned = learned_edge_lengths(layer, data.pos.double(), data.edge_index)
    geometric = geometric_edge_lengths(data.pos, data.edge_index)
    assert np.allclose(learned[:, 0], 2.5 * geometric)
    u, residual = conformal_factor(learned[:, 0], geometric, data.edge_index, 200)
    assert np.allclose(u, np.log(2.5), atol=1e-6)
    assert residual < 1e-6
    # a non-uniform conformal scaling e^{u} is recovered
    target_u = 0.3 * data.pos[:, 2].double().numpy()
    src, dst = data.edge_index.numpy()
    scaled = np.exp((target_u[src] + target_u[dst]) / 2) * geometric
    u, residual = conformal_factor(scaled, geometric, data.edge_index, 200)
    assert np.allclose(u, target_u, atol=1e-5)
    with pytest.raises(ValueError, match="MetricAttnConv or L2AttnConv"):
        learned_edge_lengths(SparseGATConv(3, 2), data.pos, data.edge_index)


class TwoLayers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = MetricAttnConv(3, 4, heads=2)
        self.conv2 = L2AttnConv(8, 4, heads=1)

    def forward(self, x, edge_index):
        return self.conv2(torch.relu(self.conv1(x, edge_index)), edge_index)


def test_diagnose_mesh_model_report_json_and_plots(tmp_path):
    torch.manual_seed(0)
    data = sphere_mesh(300)
    model = TwoLayers()
    model.train()
    report = diagnose(model, data, laplacians=("rw", "cotangent"), num_eigs=6, num_probes=4)
    assert model.training  # restored
    assert [layer.name for layer in report.layers] == ["conv1", "conv2"]
    assert [len(layer.heads) for layer in report.layers] == [2, 1]
    head = report.layers[0].heads[0]
    assert set(head.fits) == {"rw", "cotangent"}
    assert head.fits["rw"]["t_probe"] > 0 and 0 <= head.fits["rw"]["residual_probe"] < 1
    assert head.distortion is not None and head.distortion["mean"] > 0
    assert len(head.spectrum["p_eigenvalues"]) == 6
    assert report.layers[0].time_scale is not None
    assert report.arrays["conv1"].shape == (300, 2)
    payload = json.loads(report.to_json())
    assert payload["layers"][1]["layer_type"] == "L2AttnConv"
    assert "arrays" not in payload
    assert "conv1[0]" in report.summary()
    paths = save_plots(report, tmp_path)
    assert len(paths) == 5 and all(p.stat().st_size > 1000 for p in paths)


def test_diagnose_a_diffusion_attention_net_reports_its_heat_times():
    from tg_metricattn.datasets import mesh_eigenpairs
    from tg_metricattn.models import DiffusionAttentionNet

    data = sphere_mesh(200)
    data.mass, data.evals, data.evecs = mesh_eigenpairs(data.pos, data.face, 16)
    torch.manual_seed(0)
    model = DiffusionAttentionNet(3, 4, width=8, blocks=2, layer="metric", heads=2)
    times = torch.tensor([[0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07], [0.5] * 8])
    with torch.no_grad():
        for block, t in zip(model.blocks, times, strict=True):
            block.diffusion.diffusion_time.copy_(t)
    report = diagnose(model, data, laplacians=("cotangent",), spectra=False, num_probes=2)
    assert [layer.name for layer in report.layers] == ["blocks.0.attention", "blocks.1.attention"]
    first = report.diffusion_times["blocks.0.diffusion"]
    assert (first["min"], first["max"]) == (0.0, pytest.approx(0.07)) and first["values"][3] == pytest.approx(0.03)
    assert report.diffusion_times["blocks.1.diffusion"]["median"] == pytest.approx(0.5)
    assert "blocks.1.diffusion: heat diffusion times t = 0.5 .. 0.5" in report.summary()
    # the cotangent reference is the unit-scaled mesh's (the diffusion layers' units): scale-free
    bigger = data.clone()
    bigger.pos = 7.0 * data.pos
    again = diagnose(model, bigger, laplacians=("cotangent",), spectra=False, num_probes=2)
    t_first = report.layers[0].heads[0].fits["cotangent"]["t_probe"]
    assert again.layers[0].heads[0].fits["cotangent"]["t_probe"] == pytest.approx(t_first, rel=1e-6)
    diffusion_only = DiffusionAttentionNet(3, 4, width=8, blocks=1, layer=None)
    only = diagnose(diffusion_only, data, laplacians=("rw",))
    assert only.layers == [] and list(only.diffusion_times) == ["blocks.0.diffusion"]


def test_diagnose_validation():
    with pytest.raises(ValueError, match="no AttentionConv"):
        diagnose(nn.Linear(3, 3), Data(x=torch.randn(4, 3), edge_index=torch.tensor([[0], [1]])))
    with pytest.raises(ValueError, match="Unknown Laplacian"):
        diagnose(TwoLayers(), sphere_mesh(50), laplacians=("heat",))
    no_mesh = Data(x=torch.randn(20, 3), edge_index=knn_edge_index(np.random.default_rng(0).normal(size=(20, 3)), 3))
    with pytest.raises(ValueError, match="cotangent"):
        diagnose(TwoLayers(), no_mesh, laplacians=("cotangent",))


def test_probe_fit_bounds_follow_the_scale_of_a_mesh_laplacian():
    mesh = sphere_mesh(200)
    operator = mesh_laplace_operator(mesh.pos, mesh.face)
    L = operator.matrix
    scale = float(np.median(L.diagonal()))
    assert scale > 10  # a unit-sphere mesh of 200 vertices: M^-1 L_cot has a large diagonal
    lo, hi = default_time_bounds(L)
    assert lo == pytest.approx(1e-3 / scale) and hi == pytest.approx(1e2 / scale)
    rw = graph_laplacian(mesh_edge_index(mesh.face, 200), 200, "rw")
    assert default_time_bounds(rw.matrix) == pytest.approx((1e-3, 1e2))
    t0 = 0.05 / scale  # below the fixed (1e-3, 1e2) interval when the scale exceeds 50
    P = scipy.linalg.expm(-t0 * L.toarray())
    fit = fit_diffusion_time(P, operator)
    assert fit.t_probe == pytest.approx(t0, rel=0.02) and fit.residual_probe < 1e-3


def sliver_operator(n: int = 200, shrink: float = 1e-5) -> ReferenceLaplacian:
    """A sphere mesh's M^-1 L_cot with two vertices of almost no mass (as slivers give on RNA meshes)."""
    mesh = sphere_mesh(n)
    base = mesh_laplace_operator(mesh.pos.double(), mesh.face)
    m = base.mass.diagonal().copy()
    m[[0, 7]] *= shrink
    matrix = sp.csr_matrix(sp.diags(1 / m) @ base.stiffness)
    return ReferenceLaplacian(matrix=matrix, kind="cotangent", stiffness=base.stiffness, mass=sp.diags(m))


def test_probe_fit_on_a_stiff_mesh_operator_finds_a_typical_time():
    """A few tiny masses make max L_ii ~1e5 x the median: the fit must still reach t ~ 1/median."""
    operator = sliver_operator()
    diagonal = operator.matrix.diagonal()
    assert diagonal.max() > 1e4 * np.median(diagonal)
    t0 = 0.5 / float(np.median(diagonal))
    P = scipy.linalg.expm(-t0 * operator.matrix.toarray())
    fit = fit_diffusion_time(P, operator)
    assert fit.t_probe == pytest.approx(t0, rel=0.02) and fit.residual_probe < 1e-3


def test_heat_curve_matches_dense_expm_for_every_kind_of_laplacian():
    edge_index = knn_edge_index(fibonacci_sphere(80), 5)  # directed: rw is not symmetrisable
    undirected = torch.cat([edge_index, edge_index.flip(0)], 1).unique(dim=1)
    mesh = sphere_mesh(80)
    cases = {
        "rw": graph_laplacian(undirected, 80, "rw"),
        "rw-directed": graph_laplacian(edge_index, 80, "rw"),
        "sym": graph_laplacian(undirected, 80, "sym"),
        "combinatorial": graph_laplacian(undirected, 80, "combinatorial"),
        "cotangent": mesh_laplace_operator(mesh.pos.double(), mesh.face),
        "sliver": sliver_operator(80),
    }
    assert symmetrizing_weights(cases["rw-directed"]) is None
    x = np.random.default_rng(2).standard_normal(80)
    for name, lap in cases.items():
        dense = lap.matrix.toarray()
        times = np.geomspace(1e-3, 1e1, 9) / float(np.median(np.abs(np.diag(dense))))
        if name != "rw-directed":
            assert symmetrizing_weights(lap) is not None, name
        expected = np.stack([scipy.linalg.expm(-t * dense) @ x for t in times], axis=1)
        got = heat_curve(lap, x, times)
        assert np.abs(got - expected).max() <= 1e-6 * np.abs(x).max(), name
        first, second = heat_curves(lap, np.stack([x, -2 * x], axis=1), times)  # one symmetric form, two bases
        assert np.abs(first - expected).max() <= 1e-6 * np.abs(x).max(), name
        assert np.abs(second + 2 * expected).max() <= 2e-6 * np.abs(x).max(), name
        # the blocks cover every (column, time) once, each equal to its heat flow, whichever order the operator takes
        signals = np.stack([x, -2 * x, x[::-1]], axis=1)
        covered = np.zeros((3, times.size), dtype=int)
        for columns, steps, block in heat_blocks(lap, signals, times):
            want = np.stack([scipy.linalg.expm(-t * dense) @ signals[:, columns] for t in times[steps]], axis=2)
            assert block.shape == want.shape and np.abs(block - want).max() <= 2e-6 * np.abs(x).max(), name
            covered[columns, steps] += 1
        assert (covered == 1).all(), name
    with pytest.raises(ValueError, match="increasing"):
        heat_curve(cases["rw"], x, [1.0, 0.5])
    with pytest.raises(ValueError, match="one signal"):
        heat_curve(cases["rw"], np.ones((80, 2)), [1.0])


def test_probe_signals_use_a_seeded_subset_of_wide_features():
    features = np.zeros((50, 300))
    features[:, 5:200] = np.random.default_rng(1).standard_normal((50, 195))
    X = probe_signals(50, num_random=4, features=features, seed=3, max_features=16)
    assert X.shape == (50, 4 + 16)
    np.testing.assert_allclose(np.linalg.norm(X, axis=0), 1.0)
    np.testing.assert_array_equal(X, probe_signals(50, num_random=4, features=features, seed=3, max_features=16))
    columns = features[:, 5:200] / np.linalg.norm(features[:, 5:200], axis=0)
    assert all(np.isclose(columns.T @ x, 1.0).any() for x in X[:, 4:].T)  # actual (non-zero) feature columns
    assert probe_signals(50, 4, features[:, :20], max_features=16).shape == (50, 4 + 15)  # narrow: all non-zero


def test_laplacian_eigenpairs_are_computed_once_per_laplacian():
    lap = graph_laplacian(knn_edge_index(fibonacci_sphere(600), 6), 600, "rw")
    first = laplacian_eigenpairs(lap, 6)
    assert laplacian_eigenpairs(lap, 6) is first
    assert laplacian_eigenpairs(lap, 4)[0].shape == (4,)
    fresh = graph_laplacian(knn_edge_index(fibonacci_sphere(600), 6), 600, "rw")
    np.testing.assert_allclose(laplacian_eigenpairs(fresh, 6)[0], first[0], atol=1e-10)


def test_diagnose_reports_each_head_from_its_own_propagation():
    """Heads with different time scales: every reported value is that head's, not head 0's."""
    torch.manual_seed(0)
    data = sphere_mesh(200)
    model = TwoLayers()
    with torch.no_grad():
        model.conv1.log_time_scale.copy_(torch.tensor([-2.0, 1.5]))  # sharp head 0, nearly uniform head 1
    report = diagnose(model, data, laplacians=("rw",), num_eigs=0, num_probes=4)
    layer = report.layers[0]
    mats = propagation_matrix(model.conv1, data.x, data.edge_index)
    lap = graph_laplacian(data.edge_index, 200, "rw")
    for h, P in enumerate(mats):
        expected = fit_diffusion_time(P, lap, data.x, num_random=4)
        assert layer.heads[h].fits["rw"]["num_probes"] == expected.num_probes == 4 + 3  # random + the 3 features
        assert layer.heads[h].fits["rw"]["t_probe"] == pytest.approx(expected.t_probe, rel=1e-9)
        assert layer.heads[h].fits["rw"]["residual_least_squares"] == pytest.approx(expected.residual_least_squares)
        learned = learned_edge_lengths(model.conv1, data.x, data.edge_index)[:, h]
        u, _ = conformal_factor(learned, geometric_edge_lengths(data.pos, data.edge_index), data.edge_index, 200)
        assert np.allclose(report.arrays["conv1"][:, h], u)
    assert layer.heads[0].fits["rw"]["t_probe"] != pytest.approx(layer.heads[1].fits["rw"]["t_probe"], rel=0.05)


def test_fit_residuals_follow_their_documented_norms():
    """Two nodes, L = [[1, -1], [-1, 1]], P = I - 0.75 L + a non-heat part: residuals worked out by hand."""
    lap = graph_laplacian(torch.tensor([[0, 1], [1, 0]]), 2, "rw")
    L = lap.matrix.toarray()
    P = np.array([[0.25, 0.75], [0.75, 0.25]])  # eigenvalues 1 (constant) and -0.5 (antisymmetric)
    # least squares: I - P = 0.75 L exactly -> t = 0.75, residual 0
    t_ls, r_ls = fit_time_least_squares(P, lap)
    assert t_ls == pytest.approx(0.75) and r_ls == pytest.approx(0.0, abs=1e-12)
    # a P with one entry off the heat form: residual = ‖(I - P) - t L‖ / ‖I - P‖ at the projection t
    Q = np.array([[0.5, 0.5], [0.9, 0.1]])
    G = np.eye(2) - Q
    t_q = (G * L).sum() / (L * L).sum()
    t_ls, r_ls = fit_time_least_squares(Q, lap)
    assert t_ls == pytest.approx(t_q)
    assert r_ls == pytest.approx(np.linalg.norm(G - t_q * L) / np.linalg.norm(G))
    # probes: exp(-tL) scales the antisymmetric part by exp(-2t) > 0 and P by -0.5, so the best
    # is the largest t (upper bound 5) with residual (0.5 + exp(-10)) ‖d‖ / ‖X‖, d the antisymmetric part.
    X = np.array([[1.0, 2.0], [3.0, -1.0]])
    t_pr, r_pr = fit_time_probes(P, lap, X, bounds=(1e-3, 5.0))
    d = X - X.mean(axis=0)
    assert t_pr == pytest.approx(5.0)
    assert r_pr == pytest.approx((0.5 + np.exp(-10)) * np.linalg.norm(d) / np.linalg.norm(X), rel=1e-6)


def test_stationary_distribution_of_several_classes_and_a_transient_node():
    """Two components (each reversible, π ∝ degree inside) weighted by size; a node that only leaves gets 0."""
    blocks, degrees = [], []
    for n, k in ((40, 4), (60, 6)):
        ei = knn_edge_index(fibonacci_sphere(n), k)
        ei = torch.cat([ei, ei.flip(0)], 1).unique(dim=1)
        W = sp.csr_matrix((np.ones(ei.size(1)), (ei[1].numpy(), ei[0].numpy())), shape=(n, n))
        degrees.append(np.asarray(W.sum(1)).ravel())
        blocks.append(sp.diags(1 / degrees[-1]) @ W)
    cycle = sp.csr_matrix(0.5 * np.eye(3) + 0.5 * np.roll(np.eye(3), 1, axis=1))  # 3 states: π uniform
    P = sp.block_diag([*blocks, cycle, sp.csr_matrix((1, 1))]).tolil()
    P[103, 0], P[103, 50] = 0.5, 0.5  # node 103 moves into both components and never comes back
    pi = stationary_distribution(sp.csr_matrix(P))
    sizes = np.array([40, 60, 3]) / 103
    expected = np.concatenate(
        [sizes[0] * degrees[0] / degrees[0].sum(), sizes[1] * degrees[1] / degrees[1].sum(), [sizes[2] / 3] * 3, [0.0]]
    )
    assert np.allclose(pi, expected, atol=1e-8)


def test_stationary_distribution_of_a_chain_that_barely_moves():
    """A birth-death chain that stays put with probability ~1 - 2e-6 (as trained attention that keeps its
    weight on the node itself), drifting right: π from detailed balance spans 24 orders of magnitude.
    Eigensolvers and power iteration miss it (the former ARPACK path: L1 error 0.11); the sparse solve does not."""
    n, rng = 1000, np.random.default_rng(0)
    right, left = 1.05e-6 * rng.uniform(1.0, 1.1, n - 1), 1e-6 * rng.uniform(1.0, 1.1, n - 1)
    rows, cols = np.r_[np.arange(n - 1), np.arange(1, n)], np.r_[np.arange(1, n), np.arange(n - 1)]
    P = sp.csr_matrix((np.r_[right, left], (rows, cols)), shape=(n, n))
    P.setdiag(1 - np.asarray(P.sum(1)).ravel())
    log_pi = np.r_[0.0, np.cumsum(np.log(right) - np.log(left))]  # π_{i+1} / π_i = right_i / left_i
    expected = np.exp(log_pi - log_pi.max())
    expected /= expected.sum()
    assert expected[0] < 1e-20
    pi = stationary_distribution(P)
    assert np.abs(pi - expected).sum() < 1e-6 and pi.min() >= 0
    assert drift_share(P, pi) < 1e-6  # a birth-death chain is reversible
    assert stationary_distribution(P, lu_limit=999) is None  # ARPACK does not converge; 1000 states: no LU allowed
    assert np.abs(stationary_distribution(P, lu_limit=1000) - expected).sum() < 1e-6


def test_diagnostics_leave_the_callers_propagation_matrix_as_it_was():
    """The stationary distribution drops negligible transitions from its own copy of P, not the caller's."""
    P = sp.csr_matrix(np.array([[1 - 1e-30, 1e-30, 0.0], [0.5, 0.0, 0.5], [0.0, 1.0, 0.0]]))
    before = P.copy()
    stationary_distribution(P)
    drift_share(P)
    assert P.nnz == before.nnz and np.array_equal(P.data, before.data)


def test_spectrum_says_how_many_eigenpairs_converged(monkeypatch):
    """ARPACK gets a bounded number of restarts; what it did not converge is reported, not hidden."""
    from scipy.sparse.linalg import ArpackNoConvergence

    from tg_metricattn.diagnostics import spectra

    calls = []

    def two_of_them(P, k, maxiter, **kwargs):
        calls.append(maxiter)
        vals, vecs = np.linalg.eig(P.toarray())
        order = np.argsort(-vals.real)[:2]
        raise ArpackNoConvergence("no convergence", vals[order], vecs[:, order])

    monkeypatch.setattr(spectra, "eigs", two_of_them)
    report = diagnose(TwoLayers(), sphere_mesh(600), num_eigs=8, num_probes=2)  # 600 nodes: ARPACK, not dense
    spectrum = report.layers[0].heads[0].spectrum
    assert calls == [spectra.ARPACK_RESTARTS] * 3 and spectrum["requested"] == 8  # 2 + 1 heads
    assert len(spectrum["p_eigenvalues"]) == 2
    assert "(eigenpairs: 2 of 8 converged)" in report.summary()


def test_uniformity_of_a_hand_built_propagation():
    """Departure from the per-row uniform mean and the self weights, worked out by hand."""
    # row 0: self 0.5, neighbours 0.25 + 0.25 (uniform 1/3 each); row 1: no self-loop, 0.9 / 0.1
    # (uniform 1/2); row 2: self 1.0 alone (uniform 1); row 3 receives nothing; the 0.2 + 0.3 on
    # (0, 2)... are one entry after summing duplicates.
    rows = np.array([0, 0, 0, 0, 1, 1, 2])
    cols = np.array([0, 1, 2, 2, 0, 2, 2])
    vals = np.array([0.5, 0.25, 0.1, 0.15, 0.9, 0.1, 1.0])
    P = sp.coo_matrix((vals, (rows, cols)), shape=(4, 4))
    stats = uniformity_stats(P)
    departures = [1 / 6, 1 / 12, 1 / 12, 0.4, 0.4, 0.0]
    assert stats.max_departure == pytest.approx(0.4)
    assert stats.mean_departure == pytest.approx(np.mean(departures))
    assert stats.nodes_with_self_loop == 2
    assert stats.self_weight == pytest.approx((0.5 + 1.0) / 2)
    assert stats.uniform_self_weight == pytest.approx((1 / 3 + 1) / 2)  # over the nodes with a self-loop only
    U = uniform_propagation(P).toarray()
    assert np.allclose(U[:3].sum(axis=1), 1.0) and np.allclose(U[3], 0.0)
    # the same P as CSR arrays that still hold the duplicate entry (0, 2) twice: summed first
    unsummed = sp.csr_matrix((vals, cols, np.array([0, 4, 6, 7, 7])), shape=(4, 4))
    assert uniformity_stats(unsummed) == stats
    assert unsummed.nnz == 7  # the caller's matrix is left as it was
    assert np.isnan(uniformity_stats(sp.csr_matrix(np.array([[0.0, 1.0], [1.0, 0.0]]))).self_weight)


def test_diagnose_reports_self_weight_and_departure_from_uniform_per_head():
    """GAT with zero attention vectors is the uniform mean (departure 0); a sharp metric head keeps more
    on the node itself than a nearly flat one, and every number is that head's own."""
    torch.manual_seed(0)
    data = sphere_mesh(200)
    gat = SparseGATConv(3, 4, heads=2)
    with torch.no_grad():
        gat.att_src.zero_()
        gat.att_dst.zero_()
    layer = diagnose(gat, data, num_eigs=0, num_probes=2).layers[0]
    for head in layer.heads:
        assert head.uniformity["max_departure"] < 1e-6
        assert head.uniformity["self_weight"] == pytest.approx(head.uniformity["uniform_self_weight"], abs=1e-6)
    model = TwoLayers()
    with torch.no_grad():
        model.conv1.log_time_scale.copy_(torch.tensor([-2.0, 1.5]))  # sharp head 0, nearly uniform head 1
    report = diagnose(model, data, num_eigs=0, num_probes=2)
    mats = propagation_matrix(model.conv1, data.x, data.edge_index)
    heads = report.layers[0].heads
    for h, P in enumerate(mats):
        assert heads[h].uniformity == uniformity_stats(P).to_dict()
    assert heads[0].uniformity["self_weight"] > 1.2 * heads[0].uniformity["uniform_self_weight"]
    assert heads[1].uniformity["self_weight"] < heads[0].uniformity["self_weight"]
    assert f"self={heads[0].uniformity['self_weight']:.3f}" in report.summary()


@pytest.mark.parametrize("kind", ["rw", "sym", "combinatorial"])
def test_sparse_laplacian_eigenpairs_are_the_smallest_of_the_dense_problem(kind):
    """Above the dense size the Lanczos path (or its shift-invert fallback) gives the k smallest eigenpairs."""
    edge_index = knn_edge_index(fibonacci_sphere(700), 6)
    for graph in (torch.cat([edge_index, edge_index.flip(0)], 1).unique(dim=1), edge_index):  # undirected, directed
        lap = graph_laplacian(graph, 700, kind)
        vals, vecs = laplacian_eigenpairs(lap, 5)
        L = lap.matrix.toarray()
        if kind == "rw":  # solved in the symmetric form D^{1/2} L D^{-1/2}, symmetrised as the docstring says
            root = np.sqrt(lap.degree)
            L = np.diag(root) @ L @ np.diag(1 / root)
            vecs = root[:, None] * vecs
        symmetric = (L + L.T) / 2
        np.testing.assert_allclose(vals, np.linalg.eigvalsh(symmetric)[:5], atol=1e-7)
        vecs = vecs / np.linalg.norm(vecs, axis=0)
        assert np.abs(symmetric @ vecs - vecs * vals).max() < 1e-6


def test_the_stationary_distribution_of_a_large_directed_chain_solves_the_balance_equations():
    """2000 states (past the dense size), a directed kNN chain: pi^T P = pi^T to round-off, as a dense solve
    gives it; the fast Arnoldi path is the one that answers here (the sparse LU is the fallback)."""
    from tg_metricattn.diagnostics.reversibility import _arnoldi_stationary

    n = 2000
    ei = knn_edge_index(np.random.default_rng(3).uniform(size=(n, 3)), 8)
    weights = np.random.default_rng(4).uniform(0.1, 1.0, ei.size(1))
    W = sp.csr_matrix((weights, (ei[1].numpy(), ei[0].numpy())), shape=(n, n)) + sp.identity(n)
    P = sp.csr_matrix(sp.diags(1 / np.asarray(W.sum(1)).ravel()) @ W)
    system = (np.eye(n) - P.toarray()).T
    system[0] = 1.0  # replace one balance equation by sum(pi) = 1
    expected = np.linalg.solve(system, np.eye(n)[0])
    fast = _arnoldi_stationary(P, 1e-10)
    assert fast is not None
    np.testing.assert_allclose(fast, expected, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(stationary_distribution(P), expected, rtol=1e-6, atol=1e-12)
    assert drift_share(P) > 0.01  # not reversible: the distribution is not the degrees'


def test_the_fast_setting_fits_up_to_t_10_without_spectra():
    """fast=True: each head's fit is the default setting's on the same probes over (1e-3, 10) / median L_ii (t* the
    same where it lies below 10), no spectrum, the same drift share; a t* at the end of the interval is marked t*>=."""
    torch.manual_seed(0)
    data = sphere_mesh(200)
    model = TwoLayers()
    with torch.no_grad():
        model.conv1.log_time_scale.copy_(torch.tensor([-2.0, 1.5]))
    full = diagnose(model, data, num_eigs=4, num_probes=4)
    fast = diagnose(model, data, num_eigs=4, num_probes=4, fast=True)
    assert fast.fast and not full.fast and fast.summary().startswith("fast setting")
    mats = propagation_matrix(model.conv1, data.x, data.edge_index)
    lap = graph_laplacian(data.edge_index, 200, "rw")
    for h, P in enumerate(mats):
        expected = fit_diffusion_time(P, lap, data.x, num_random=4, bounds=(1e-3, 10.0))  # rw: median L_ii = 1
        got = fast.layers[0].heads[h]
        assert got.fits["rw"]["num_probes"] == 4 + 3 and got.fits["rw"]["t_high"] == pytest.approx(10.0)
        assert full.layers[0].heads[h].fits["rw"]["t_high"] == pytest.approx(100.0)
        assert got.fits["rw"]["t_probe"] == pytest.approx(full.layers[0].heads[h].fits["rw"]["t_probe"], rel=1e-9)
        assert got.fits["rw"]["t_probe"] == pytest.approx(expected.t_probe, rel=1e-9)
        assert got.spectrum is None and full.layers[0].heads[h].spectrum is not None
        assert got.drift_share == pytest.approx(full.layers[0].heads[h].drift_share, abs=1e-12)
    assert "rw: t*=" in fast.summary()
    pinned = diagnose(model, data, num_eigs=0, num_probes=4, bounds=(1e-4, 1e-2))  # t* of these heads is > 0.01
    assert "rw: t*>=0.01 " in pinned.summary()
    pinned.layers[0].heads[0].drift_share = None  # what the fast setting reports where ARPACK did not converge
    assert "drift=n/a" in pinned.summary() and pinned.to_dict()["layers"][0]["heads"][0]["drift_share"] is None


def test_the_stationary_distribution_of_a_chain_with_float32_row_sums_comes_from_arnoldi():
    """Attention in float32 is stochastic only to ~1e-6 a row (Tolokers: 1.6e-6); rows rescaled to sum 1,
    ARPACK's Perron vector is accepted (no LU allowed here: ``lu_limit=0``) and is the exact chain's π."""
    n = 2000
    ei = knn_edge_index(np.random.default_rng(3).uniform(size=(n, 3)), 8)
    weights = np.random.default_rng(4).uniform(0.1, 1.0, ei.size(1))
    W = sp.csr_matrix((weights, (ei[1].numpy(), ei[0].numpy())), shape=(n, n)) + sp.identity(n)
    P = sp.csr_matrix(sp.diags(1 / np.asarray(W.sum(1)).ravel()) @ W)
    expected = stationary_distribution(P)
    off = sp.diags(1 + np.random.default_rng(5).uniform(-2e-6, 2e-6, n)) @ P
    pi = stationary_distribution(off, lu_limit=0)
    assert pi is not None
    np.testing.assert_allclose(pi, expected, rtol=1e-6, atol=1e-12)
