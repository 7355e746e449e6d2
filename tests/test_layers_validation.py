"""Bad input to a layer gives a clear error that names the problem."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.typing import SparseTensor

from tg_metricattn import DotAttnConv, L2AttnConv, MetricAttnConv, SparseGATConv

EDGES = torch.tensor([[0, 1, 2], [1, 2, 0]])


@pytest.mark.parametrize("cls", [SparseGATConv, DotAttnConv, L2AttnConv, MetricAttnConv])
def test_errors_name_the_problem(cls) -> None:
    layer = cls(4, 2, heads=2)
    x = torch.randn(3, 4)
    with pytest.raises(ValueError, match=r"x_src has 5 features .* in_channels=4"):
        layer(torch.randn(3, 5), EDGES)
    with pytest.raises(ValueError, match=r"must be 2-D"):
        layer(torch.randn(3), EDGES)
    with pytest.raises(TypeError, match=r"floating-point"):
        layer(torch.ones(3, 4, dtype=torch.long), EDGES)
    with pytest.raises(TypeError, match=r"integer indices"):
        layer(x, EDGES.float())
    with pytest.raises(ValueError, match=r"shape \[2, E\]"):
        layer(x, EDGES.T.contiguous())
    with pytest.raises(ValueError, match=r"target indices in \[2, 7\] but there are only 3"):
        layer(x, torch.tensor([[0, 1], [7, 2]]))
    with pytest.raises(ValueError, match=r"source indices in \[-1, 1\]"):
        layer(x, torch.tensor([[-1, 1], [0, 2]]))
    with pytest.raises(ValueError, match=r"size=\(3, 2\) does not match"):
        layer(x, EDGES, size=(3, 2))
    with pytest.raises(TypeError, match=r"edge_index must be"):
        layer(x, [[0, 1], [1, 0]])
    with pytest.raises(ValueError, match=r"transposed adjacency"):
        layer(x, torch.sparse_coo_tensor(EDGES, torch.ones(3), (3, 4)))
    sparse_tensor = object.__new__(SparseTensor)  # torch_sparse is not installed: PyG's stand-in class
    with pytest.raises(TypeError, match=r"SparseTensor is not supported.*adj_t.to_torch_sparse_csr_tensor\(\)"):
        layer(x, sparse_tensor)


def test_nan_check_is_opt_in() -> None:
    x = torch.randn(3, 4)
    x[1, 2] = float("nan")
    assert torch.isnan(SparseGATConv(4, 2)(x, EDGES)).any()
    message = r"x_src contains NaN or infinite values in 1 rows \(first: node 1\)"
    with pytest.raises(ValueError, match=message):
        SparseGATConv(4, 2, check_finite=True)(x, EDGES)


def test_constructor_validation() -> None:
    with pytest.raises(ValueError, match="heads must be a positive int"):
        L2AttnConv(4, 2, heads=0)
    with pytest.raises(ValueError, match="dropout must lie in"):
        MetricAttnConv(4, 2, dropout=1.5)
    with pytest.raises(ValueError, match=r"same width; got in_channels=\(4, 3\)"):
        MetricAttnConv((4, 3), 2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"time_scale": 0.0}, "time_scale must be 'auto' or a number in"),
        ({"time_scale": float("nan")}, "time_scale must be 'auto' or a number in"),
        ({"time_scale": float("inf")}, "time_scale must be 'auto' or a number in"),
        ({"time_scale": -1.0}, "time_scale must be 'auto' or a number in"),
        # float32 cannot hold 1/t (or t): NaN followed in training, blamed on the features or the lr
        ({"time_scale": 1e-39}, r"in \[1.08e-19, 9.22e\+18\] \(t² and 1/t² finite in float32"),
        ({"time_scale": 1e-20}, r"in \[1.08e-19, 9.22e\+18\]"),  # the log t gradient overflowed at 1.2e-38
        ({"time_scale": 1e300}, r"in \[1.08e-19, 9.22e\+18\]"),
        ({"time_scale": "fast"}, "time_scale must be 'auto' or a number in"),
        ({"metric_channels": 0}, "metric_channels must be a positive integer"),
        ({"hidden_channels": 0}, "hidden_channels must be a positive integer"),
    ],
)
def test_metric_settings_are_never_silently_replaced(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        MetricAttnConv(4, 2, **kwargs)


@pytest.mark.parametrize("time_scale", [1.1e-19, 9.2e18])
def test_the_extreme_time_scales_allowed_give_finite_outputs_and_gradients(time_scale) -> None:
    torch.manual_seed(0)
    conv = MetricAttnConv(4, 2, heads=2, time_scale=time_scale)
    x = torch.randn(6, 4, requires_grad=True)
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 5, 1, 3], [1, 2, 3, 4, 5, 0, 0, 2]])
    out = conv(x, edge_index)
    out.square().sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    assert torch.isfinite(conv.log_time_scale.grad).all()


def test_int32_edge_index_is_exact_beyond_the_int32_key_range() -> None:
    """target * N + source exceeds 2^31 for N > 46,341: the sort key must not wrap around."""
    torch.manual_seed(0)
    n = 70_000
    edge_index = torch.randint(0, n, (2, 4000))
    edge_index[:, :2] = torch.tensor([[n - 1, 3], [n - 2, n - 1]])  # targets near N: keys near N^2 = 4.9e9
    x = torch.randn(n, 3)
    conv = SparseGATConv(3, 2, add_self_loops=False).eval()
    expected = conv(x, edge_index)
    assert torch.equal(conv(x, edge_index.int()), expected)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_a_dtype_other_than_the_layers_is_named(dtype) -> None:
    x = torch.randn(3, 4).to(dtype)
    for cls in (SparseGATConv, MetricAttnConv):
        with pytest.raises(TypeError, match=rf"x_src is {dtype} but the layer's parameters are torch.float32"):
            cls(4, 2)(x, EDGES)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # mixed dtypes are autocast's business
        assert SparseGATConv(4, 2)(x.float(), EDGES).shape == (3, 2)
