"""The one propagation shared by every attention layer of the package.

For a target node i with incoming edges j -> i (after optional self-loops), per head h:

    s_ij  = score(x_i, x_j)                                  (defined by the subclass)
    a_ij  = exp(s_ij - m_i) / sum_k exp(s_ik - m_i),  m_i = max_k s_ik
    out_i = sum_j a_ij v_j                                   (v_j = W_v x_j)

then heads are concatenated (``concat=True``) or averaged, an optional root/residual
term of x_i is added, and finally a bias. A node without incoming edges aggregates to 0.

Density normalisation (Coifman & Lafon's α, ``density_exponent``): the kernel
K_ij = exp(s_ij) is divided by q_i^α q_j^α, q_j = sum_k K_jk, before the row
normalisation. q_i cancels in the row, so

    a_ij = softmax_j(s_ij - α_h log q_j),

one per-node term (node j's log-partition over its own incoming edges) and no extra
memory per edge beyond the scores. α = 0 is plain attention (generator Δ + 2∇log p·∇,
a drift towards high sampling density), α = 1 removes the density (Δ of the metric alone).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, overload

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.nn.inits import glorot, zeros

from tg_metricattn.layers.compiled_graph import compiled_csr_graph
from tg_metricattn.layers.csr_graph import CSRGraph, build_csr_graph
from tg_metricattn.layers.edge_softmax import edge_softmax, log_partition
from tg_metricattn.layers.graph_cache import GRAPH_CACHE
from tg_metricattn.layers.graph_input import (
    Adjacency,
    Graph,
    NodeFeatures,
    attention_in_layout,
    check_edge_attr,
    check_fill_value,
    check_finite,
    check_finite_scores,
    check_size,
    split_node_features,
    to_graph,
    with_masked_self_loops,
    with_self_loops,
)
from tg_metricattn.layers.score_terms import ScoreTerms, edge_scores
from tg_metricattn.layers.sparse_kernels import SUPPORTED_DTYPES, aggregate

PROPAGATIONS = ("auto", "csr", "scatter")


@dataclass
class Attention:
    """The attention weights of one call and the graph they live on.

    Attributes:
        weights: ``[E', H]`` normalised weights a_ij (rows of P_h sum to 1 over each target's
            incoming edges), target-major on the CSR path, in ``graph.edge_index`` order otherwise.
        graph: the validated graph, with the self-loops the layer adds.
        csr_graph: its target-major CSR form on the sparse-kernel path, else ``None``.
    """

    weights: Tensor
    graph: Graph
    csr_graph: CSRGraph | None
    edge_attr: Tensor | None = None  # [E', edge_dim], the edges' features in the order of ``weights``

    @property
    def target(self) -> Tensor:
        """``[E']`` target node of each weight, in the order of ``weights``."""
        return self.csr_graph.target if self.csr_graph is not None else self.graph.edge_index[1]

    def edge_order_weights(self) -> Tensor:
        """``weights`` in the order of ``graph.edge_index`` (as ``return_attention_weights`` gives them)."""
        if self.csr_graph is None:
            return self.weights
        return self.weights.new_empty(self.weights.shape).index_copy_(0, self.csr_graph.order, self.weights)

    def returned_weights(self) -> tuple[Graph, Tensor]:
        """The graph and ``weights`` in its edge order without the masked edges (the input's self-loops that a
        compiled layer keeps at weight 0): what ``return_attention_weights`` gives, as in eager mode."""
        weights = self.edge_order_weights()
        if self.csr_graph is None or self.csr_graph.masked is None:
            return self.graph, weights
        masked = torch.empty_like(self.csr_graph.masked).index_copy_(0, self.csr_graph.order, self.csr_graph.masked)
        return self.graph._replace(edge_index=self.graph.edge_index[:, ~masked]), weights[~masked]


class _ScoredEdges(NamedTuple):
    """The scored edges of one call, before normalisation (:meth:`AttentionConv._score_edges`)."""

    scores: Tensor  # [E', H]
    graph: Graph
    csr_graph: CSRGraph | None
    edge_attr: Tensor | None
    source: Tensor
    target: Tensor
    value: Tensor
    x_src: Tensor
    x_dst: Tensor

    @property
    def bipartite(self) -> bool:
        """Whether the sources are not the targets (two feature tensors, or a ``size`` that differs)."""
        return self.x_src is not self.x_dst or self.graph.num_sources != self.graph.num_targets


def _is_plain_tensor(edge_index: object) -> bool:
    return isinstance(edge_index, Tensor) and edge_index.layout == torch.strided


class AttentionConv(MessagePassing):
    """Base class: edge-masked softmax attention with a pluggable score.

    Subclasses implement :meth:`node_terms`, which turns ``(x_src, x_dst)`` into the values
    ``v`` ``[N_src, heads, out_channels]`` and the :class:`ScoreTerms` of the score, and may
    override :meth:`score_activation` (applied per edge) and :meth:`root_term` (added to the
    output of every target node).

    Args:
        in_channels: input width, ``-1`` for lazy initialisation, or a pair
            ``(src, dst)`` for bipartite graphs.
        out_channels: width of each head's output.
        heads: number of attention heads.
        concat: concatenate the heads (output ``heads * out_channels``) or average them.
        dropout: dropout probability on the normalised attention weights (training only).
        add_self_loops: remove existing self-loops, then add one per node.
        check_finite: raise a ``ValueError`` when the features hold NaN or infinity.
        validate: check shapes, dtypes and index ranges of every input (cheap; skipped
            under ``torch.compile``, where the sparse-kernel path still checks each edge
            index once, when it prepares its graph).
        propagation: ``"csr"`` sorts the edges by target and uses sparse kernels (CSR
            matrix products, sampled dot products) whose backward keeps no E x H x C
            tensor; ``"scatter"`` uses PyG's gather/scatter ``MessagePassing.propagate``;
            ``"auto"`` (default) takes ``"csr"`` for float32/float64 features and
            ``"scatter"`` for other dtypes, and under ``torch.compile`` for a sparse
            adjacency or edge features. Compiled, the CSR kernels and the graph's
            preparation are torch custom ops (the graph cached as in eager mode), with
            the input's own self-loops kept in the pattern at weight 0, so that
            ``fullgraph=True`` holds with and without ``add_self_loops``.
        density_exponent: Coifman & Lafon's α in [0, 1] (module docstring): 0 (default)
            is attention as it is, 1 removes the sampling density from the limit operator.
            Only for graphs whose sources are the targets (a pair ``(x_src, x_dst)`` is
            refused).
        learn_density_exponent: learn α per head (parameter ``density_exponent_param``,
            started at ``density_exponent`` and clamped to [0, 1] where it is used).
        edge_dim: width of the edge features ``edge_attr`` (``None``: the layer takes none).
            They add a learned term to the score, GATConv's: s_ij += a_e . W_e e_ij per head
            (``lin_edge``, ``att_edge``), evaluated as e_ij . (W_e^T a_e), so no
            ``E x H x C`` tensor is formed. Kinds with another form override
            :meth:`with_edge_features`.
        fill_value: the edge features of the added self-loops, as PyG's ``add_self_loops``:
            ``'mean'`` (default), ``'add'``, ``'max'``, ``'min'``, ``'mul'`` of the
            target's incoming edges' features, a number, or a tensor ``[edge_dim]``.
        cache_graph: on the ``"csr"`` path, keep the sorted graph of a ``[2, E]``
            edge-index tensor (with its self-loops and transposed pattern) in the shared
            :data:`~tg_metricattn.layers.graph_cache.GRAPH_CACHE` and reuse it while the
            same tensor object, unmodified, is passed again with the same sizes: every
            epoch of full-batch training, every layer of a model, every step on the same
            mesh. Costs O(E) memory per tensor, freed with the tensor; a different tensor,
            or one changed in place, is prepared anew.

    Shapes (every subclass):
        - **input:** node features ``[N, F_in]`` or ``([N_src, F_src], [N_dst, F_dst])``;
          ``edge_index`` ``[2, E]`` or a torch sparse ``adj_t`` ``[N_dst, N_src]``.
        - **output:** ``[N_dst, heads * out_channels]`` (``[N_dst, out_channels]`` when
          ``concat=False``); with ``return_attention_weights=True`` also
          ``(edge_index_used [2, E'], alpha [E', heads])`` (``E'`` counts the added
          self-loops), or ``(adj_t, alpha)`` for a sparse input.
    """

    #: the constructor argument that adds a learned skip term of x_i (PyG's name per layer)
    skip_argument = "residual"
    #: score every edge 0 instead of s_ij (set by
    #: :func:`~tg_metricattn.diagnostics.uniform_attention`): P becomes the mean over each target's
    #: incoming edges (divided by q_j^alpha under density normalisation); values, skip terms and bias
    #: are unchanged. An ablation of what the trained score contributes, not a training setting.
    uniform_scores = False
    #: GATConv's edge parameters: ``lin_edge`` (glorot) and an attention vector ``att_edge``
    edge_attention_vector = True
    edge_weight_initializer: str | None = "glorot"

    def __init__(
        self,
        in_channels: int | tuple[int, int],
        out_channels: int,
        heads: int = 1,
        concat: bool = True,
        dropout: float = 0.0,
        add_self_loops: bool = True,
        check_finite: bool = False,
        validate: bool = True,
        propagation: str = "auto",
        cache_graph: bool = True,
        density_exponent: float = 0.0,
        learn_density_exponent: bool = False,
        edge_dim: int | None = None,
        fill_value: float | Tensor | str = "mean",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(node_dim=0, **kwargs)
        if not isinstance(out_channels, int) or out_channels <= 0:
            raise ValueError(f"out_channels must be a positive int; got {out_channels!r}.")
        if not isinstance(heads, int) or heads <= 0:
            raise ValueError(f"heads must be a positive int; got {heads!r}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1); got {dropout!r}.")
        if propagation not in PROPAGATIONS:
            raise ValueError(f"propagation must be one of {PROPAGATIONS}; got {propagation!r}.")
        if isinstance(density_exponent, bool) or not isinstance(density_exponent, (int, float)):
            raise ValueError(f"density_exponent must be a number in [0, 1]; got {density_exponent!r}.")
        if not 0.0 <= density_exponent <= 1.0:
            raise ValueError(
                f"density_exponent must lie in [0, 1] (Coifman & Lafon's alpha); got {density_exponent!r}."
            )
        if edge_dim is not None and (isinstance(edge_dim, bool) or not isinstance(edge_dim, int) or edge_dim < 1):
            raise ValueError(f"edge_dim must be a positive int or None; got {edge_dim!r}.")
        check_fill_value(fill_value, edge_dim)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.edge_dim = edge_dim
        self.fill_value = fill_value
        self.heads = heads
        self.concat = concat
        self.dropout = dropout
        self.add_self_loops = add_self_loops
        self.check_finite = check_finite
        self.validate = validate
        self.propagation = propagation
        self.cache_graph = cache_graph
        self.density_exponent = float(density_exponent)
        self.learn_density_exponent = learn_density_exponent
        if learn_density_exponent:  # only these layers carry it: the others' state_dicts stay PyG's
            self.density_exponent_param = Parameter(torch.full((heads,), self.density_exponent))
        if edge_dim is not None:  # GATConv's names and shapes
            self.lin_edge = Linear(
                edge_dim, heads * out_channels, bias=False, weight_initializer=self.edge_weight_initializer
            )
            if self.edge_attention_vector:
                self.att_edge = Parameter(torch.empty(1, heads, out_channels))
            else:
                self.register_parameter("att_edge", None)
        else:
            self.lin_edge = None
            self.register_parameter("att_edge", None)

    def build_residual_and_bias(self, residual: bool, bias: bool) -> None:
        """Create ``res`` (skip map of x_i, no bias) and ``bias`` with GATConv's names."""
        if residual:
            dst_channels = self.in_channels if isinstance(self.in_channels, int) else self.in_channels[1]
            self.res = Linear(dst_channels, self.total_out_channels, bias=False, weight_initializer="glorot")
        else:
            self.register_parameter("res", None)
        if bias:
            self.bias = Parameter(torch.empty(self.total_out_channels))
        else:
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        """Reset the residual map and zero the bias when the layer has them."""
        super().reset_parameters()
        if getattr(self, "res", None) is not None:
            self.res.reset_parameters()
        if getattr(self, "bias", None) is not None:
            zeros(self.bias)
        if self.learn_density_exponent:
            with torch.no_grad():
                self.density_exponent_param.fill_(self.density_exponent)
        if self.lin_edge is not None:
            self.lin_edge.reset_parameters()
        if self.att_edge is not None:
            glorot(self.att_edge)

    def density_exponents(self) -> Tensor | float:
        """α per head (``[heads]``, clamped to [0, 1]) when learned, else the fixed α."""
        if self.learn_density_exponent:
            return self.density_exponent_param.clamp(0.0, 1.0)
        return self.density_exponent

    @property
    def total_out_channels(self) -> int:
        """Width of the layer output: ``heads * out_channels`` if ``concat`` else ``out_channels``."""
        return self.out_channels * (self.heads if self.concat else 1)

    # ----------------------------------------------------------------- score interface
    def node_terms(self, x_src: Tensor, x_dst: Tensor) -> tuple[Tensor, ScoreTerms]:
        """Values ``[N_src, H, C]`` and the per-node terms of the score."""
        raise NotImplementedError

    def with_edge_features(self, terms: ScoreTerms, edge_attr: Tensor, target: Tensor) -> ScoreTerms:
        """The score's terms with the edge features' part: here GATConv's a_e . W_e e_ij per head,
        an ``edge_bias`` computed as e_ij . w_h with w_h = W_e,h^T a_e,h (no ``E x H x C`` tensor).
        ``edge_attr`` ``[E, edge_dim]`` and ``target`` ``[E]`` are in the order of the edges scored."""
        H, C = self.heads, self.out_channels
        per_head = (self.lin_edge.weight.view(H, C, -1) * self.att_edge.view(H, C, 1)).sum(1)  # [H, edge_dim]
        return terms._replace(edge_bias=edge_attr @ per_head.t())

    def edge_value_term(self, attention: Attention, weights: Tensor) -> Tensor | None:
        """A term of the edge features added to the aggregated values, ``[N_dst, H, C]`` (none here)."""
        return None

    def score_activation(self, scores: Tensor) -> Tensor:
        """Map raw scores ``<q_i, k_j> + b_i + c_j`` to s_ij (identity by default)."""
        return scores

    def root_term(self, x_dst: Tensor) -> Tensor | None:
        """Term of the target's own features added to the output: ``res(x_i)`` if present."""
        res = getattr(self, "res", None)
        return None if res is None else res(x_dst)

    # ------------------------------------------------------------------- propagation
    @overload
    def forward(
        self,
        x: NodeFeatures,
        edge_index: Adjacency,
        edge_attr: Tensor | None = None,
        size: tuple[int, int] | None = None,
        return_attention_weights: Literal[False] | None = None,
    ) -> Tensor: ...

    @overload
    def forward(
        self,
        x: NodeFeatures,
        edge_index: Adjacency,
        edge_attr: Tensor | None = None,
        size: tuple[int, int] | None = None,
        *,
        return_attention_weights: Literal[True],
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]: ...

    def forward(
        self,
        x: NodeFeatures,
        edge_index: Adjacency,
        edge_attr: Tensor | None = None,
        size: tuple[int, int] | None = None,
        return_attention_weights: bool | None = None,
    ) -> Tensor | tuple[Tensor, tuple[Tensor, Tensor]]:
        """Attend over incoming edges.

        Args:
            x: node features ``[N, F]`` or a pair ``(x_src [N_src, F_src], x_dst [N_dst, F_dst])``.
            edge_index: ``[2, E]`` indices (row 0 source j, row 1 target i), or the
                transposed adjacency ``adj_t [N_dst, N_src]`` as a torch sparse COO/CSR
                tensor (for a torch_sparse ``SparseTensor``: ``adj_t.to_torch_sparse_csr_tensor()``).
            edge_attr: edge features ``[E, edge_dim]`` (or ``[E]`` when ``edge_dim=1``) of the
                edges of an ``edge_index``, for a layer built with ``edge_dim``.
            size: ``(N_src, N_dst)``; must match the features when given.
            return_attention_weights: if ``True`` also return the weights as PyG's
                ``GATConv`` does: ``(edge_index_used, alpha [E_used, heads])`` for an edge
                index, ``(adj_t, alpha)`` for a torch sparse input. ``alpha`` is taken
                before attention dropout.

        Returns:
            ``[N_dst, heads * out_channels]`` (or ``[N_dst, out_channels]`` if not ``concat``).
        """
        attention, value, x_dst = self._attend(x, edge_index, edge_attr, size)
        dropped = F.dropout(attention.weights, p=self.dropout, training=self.training)
        out = self.apply_attention(attention, value, dropped)
        edge_values = self.edge_value_term(attention, dropped)
        if edge_values is not None:
            out = out + edge_values
        out = out.reshape(-1, self.heads * self.out_channels) if self.concat else out.mean(dim=1)
        root = self.root_term(x_dst)
        if root is not None:
            out = out + root
        if getattr(self, "bias", None) is not None:
            out = out + self.bias
        if return_attention_weights:
            return out, attention_in_layout(*attention.returned_weights())
        return out

    def attention(
        self,
        x: NodeFeatures,
        edge_index: Adjacency,
        edge_attr: Tensor | None = None,
        size: tuple[int, int] | None = None,
    ) -> Attention:
        """The propagation P_h of ``x`` on ``edge_index`` (self-loops added as the layer adds them), before
        dropout: what :meth:`forward` applies to the values once, and what a flow applies many times
        (:meth:`apply_attention`). Inputs as :meth:`forward`."""
        return self._attend(x, edge_index, edge_attr, size)[0]

    def apply_attention(self, attention: Attention, value: Tensor, weights: Tensor | None = None) -> Tensor:
        """``out[i, h] = sum_{j -> i} a_ij value[j, h]``: ``[N_src, H, C] -> [N_dst, H, C]``.

        ``weights`` (default ``attention.weights``) replaces the weights on the same edges, e.g. after
        dropout. On the CSR path the backward keeps no ``E x H x C`` tensor.
        """
        weights = attention.weights if weights is None else weights
        if attention.csr_graph is not None:
            return aggregate(weights, value, attention.csr_graph)
        size = (attention.graph.num_sources, attention.graph.num_targets)
        return self.propagate(attention.graph.edge_index, value=value, alpha=weights, size=size)

    def kernel_log_partition(
        self,
        x: NodeFeatures,
        edge_index: Adjacency,
        edge_attr: Tensor | None = None,
        size: tuple[int, int] | None = None,
    ) -> Tensor:
        """``log q_i = log sum_{j -> i} exp(s_ij)`` per head, ``[N, H]``: the kernel's mass over each node's
        incoming edges (self-loops as the layer adds them) before any normalisation, density
        normalisation included; the q of the module docstring, a kernel estimate of the sampling
        density in the layer's metric. Graphs whose sources are their targets only. Inputs as
        :meth:`forward`."""
        scored = self._score_edges(x, edge_index, edge_attr, size)
        if scored.bipartite:
            raise ValueError(
                "kernel_log_partition needs a graph whose sources are its targets; got bipartite input: pass one "
                "feature tensor x."
            )
        return log_partition(scored.scores, scored.target, scored.graph.num_targets)

    def _score_edges(
        self, x: NodeFeatures, edge_index: Adjacency, edge_attr: Tensor | None, size: tuple[int, int] | None
    ) -> _ScoredEdges:
        """Validate the inputs and score the edges (``-inf`` on masked edges), before any normalisation."""
        validate = self.validate and not torch.compiler.is_compiling()
        x_src, x_dst = split_node_features(x, self.in_channels if validate else -1)
        if validate and not torch.is_autocast_enabled(x_src.device.type):
            self._check_dtype(x_src, x_dst)
        if self.check_finite:
            check_finite(x_src, x_dst)
        value, terms = self.node_terms(x_src, x_dst)
        use_csr = self.uses_csr(value, edge_index, edge_attr)
        graph, csr_graph, edge_attr = self._prepare_graph(
            edge_index, edge_attr, size, x_src.size(0), x_dst.size(0), validate, use_csr
        )
        if edge_attr is not None and csr_graph is not None:
            edge_attr = edge_attr.index_select(0, csr_graph.order)
        source, target = (csr_graph.source, csr_graph.target) if csr_graph is not None else graph.edge_index
        if edge_attr is not None:
            terms = self.with_edge_features(terms, edge_attr, target)
        scores = self.score_activation(edge_scores(terms, source, target, csr_graph))
        if self.uniform_scores:
            scores = torch.zeros_like(scores)
        if csr_graph is not None and csr_graph.masked is not None:
            scores = scores.masked_fill(csr_graph.masked.unsqueeze(-1), float("-inf"))
        if self.check_finite:
            check_finite_scores(scores)
        return _ScoredEdges(scores, graph, csr_graph, edge_attr, source, target, value, x_src, x_dst)

    def _attend(
        self, x: NodeFeatures, edge_index: Adjacency, edge_attr: Tensor | None, size: tuple[int, int] | None
    ) -> tuple[Attention, Tensor, Tensor]:
        """Score the edges and normalise them per target: ``(attention, values, x_dst)``."""
        s = self._score_edges(x, edge_index, edge_attr, size)
        scores = s.scores
        if self.learn_density_exponent or self.density_exponent:
            if s.bipartite:
                raise ValueError(
                    "density_exponent needs a graph whose sources are its targets (q_j is node j's own partition "
                    "over its incoming edges); got bipartite input: pass one feature tensor x, or density_exponent=0."
                )
            alpha_h = self.density_exponents()
            alpha_h = alpha_h.to(scores.dtype) if isinstance(alpha_h, Tensor) else alpha_h
            scores = scores - alpha_h * log_partition(scores, s.target, s.graph.num_targets).index_select(0, s.source)
        ptr = s.csr_graph.target_ptr if s.csr_graph is not None else None
        alpha = edge_softmax(scores, s.target, s.graph.num_targets, dtype=s.value.dtype, ptr=ptr)
        return Attention(alpha, s.graph, s.csr_graph, s.edge_attr), s.value, s.x_dst

    def _check_dtype(self, x_src: Tensor, x_dst: Tensor) -> None:
        weight = next(
            (p for p in self.parameters() if not isinstance(p, torch.nn.parameter.UninitializedParameter)), None
        )
        if weight is None:
            return
        for name, tensor in (("x_src", x_src), ("x_dst", x_dst)):
            if tensor.dtype != weight.dtype:
                raise TypeError(
                    f"{name} is {tensor.dtype} but the layer's parameters are {weight.dtype}; convert the features "
                    f"(x.to({weight.dtype})) or the layer (layer.to({tensor.dtype})), or run under torch.autocast."
                )

    def _prepare_graph(
        self,
        edge_index: Adjacency,
        edge_attr: Tensor | None,
        size: tuple[int, int] | None,
        num_sources: int,
        num_targets: int,
        validate: bool,
        use_csr: bool,
    ) -> tuple[Graph, CSRGraph | None, Tensor | None]:
        """Validated graph with self-loops, its CSR form on the sparse-kernel path, and the features of
        its edges (``None`` without ``edge_attr``). Cached without edge features only: the self-loops'
        features depend on the values."""
        if edge_attr is not None:
            self._check_edge_features_fit(edge_index, edge_attr)
        if use_csr and torch.compiler.is_compiling() and edge_attr is None and _is_plain_tensor(edge_index):
            return self._prepare_traced_graph(edge_index, size, num_sources, num_targets)
        cacheable = use_csr and self.cache_graph and _is_plain_tensor(edge_index) and edge_attr is None
        key = (num_sources, num_targets, self.add_self_loops)
        cached = GRAPH_CACHE.get(edge_index, key) if cacheable else None
        if cached is not None:
            check_size(size, num_sources, num_targets, validate)  # the edges were checked when cached
            return (*cached, None)
        graph = to_graph(edge_index, size, num_sources, num_targets, validate=validate)
        if edge_attr is not None:
            edge_attr = check_edge_attr(edge_attr, graph.edge_index.size(1), self.edge_dim, self.check_finite)
        if self.add_self_loops:
            graph, edge_attr = with_self_loops(graph, edge_attr, self.fill_value)
        csr_graph = build_csr_graph(graph.edge_index, num_sources, num_targets) if use_csr else None
        if cacheable:
            GRAPH_CACHE.put(edge_index, key, (graph, csr_graph))
        return graph, csr_graph, edge_attr

    def _prepare_traced_graph(
        self, edge_index: Tensor, size: tuple[int, int] | None, num_sources: int, num_targets: int
    ) -> tuple[Graph, CSRGraph, None]:
        """The CSR graph under ``torch.compile`` (:mod:`~tg_metricattn.layers.compiled_graph`): no shape may
        depend on the values, so the input's self-loops stay in the pattern, masked to weight 0, beside the
        added ones; sorted and checked once per edge-index tensor (with ``cache_graph``)."""
        graph = to_graph(edge_index, size, num_sources, num_targets, validate=False)
        if self.add_self_loops:
            graph = with_masked_self_loops(graph)[0]
        csr_graph = compiled_csr_graph(edge_index, num_sources, num_targets, self.add_self_loops, self.cache_graph)
        return graph, csr_graph, None

    def _check_edge_features_fit(self, edge_index: Adjacency, edge_attr: Tensor) -> None:
        """Edge features need a layer built with ``edge_dim`` and an ``edge_index`` to go with."""
        if self.edge_dim is None:
            raise ValueError(
                f"edge_attr was given but {type(self).__name__} was built without edge_dim; build it with "
                f"edge_dim={edge_attr.size(-1) if isinstance(edge_attr, Tensor) and edge_attr.dim() else 1}."
            )
        if isinstance(edge_index, Tensor) and edge_index.layout != torch.strided:
            raise ValueError(
                "edge_attr goes with an edge_index [2, E]: a sparse adjacency carries no edge features here; "
                "pass adj_t.indices() (COO) or its edge_index instead."
            )

    def uses_csr(self, value: Tensor, edge_index: Adjacency | None = None, edge_attr: Tensor | None = None) -> bool:
        """Whether this call takes the sparse-kernel path (see ``propagation``)."""
        if self.propagation == "auto":
            if torch.compiler.is_compiling() and not (edge_attr is None and _is_plain_tensor(edge_index)):
                return False
            return value.dtype in SUPPORTED_DTYPES
        return self.propagation == "csr"

    def message(self, value_j: Tensor, alpha: Tensor) -> Tensor:
        """Weighted message a_ij v_j, shape ``[E, H, C]``."""
        return alpha.unsqueeze(-1) * value_j

    def repr_settings(self) -> dict[str, Any]:
        """The settings that differ from the defaults, shown by ``repr`` after ``heads``."""
        settings: dict[str, Any] = {}
        if not self.concat:
            settings["concat"] = False
        if self.propagation != "auto":
            settings["propagation"] = self.propagation
        if getattr(self, "residual", False):
            settings["residual"] = True
        if self.density_exponent:
            settings["density_exponent"] = self.density_exponent
        if self.learn_density_exponent:
            settings["learn_density_exponent"] = True
        if self.edge_dim is not None:
            settings["edge_dim"] = self.edge_dim
        return settings

    def __repr__(self) -> str:
        extra = "".join(f", {key}={value!r}" for key, value in self.repr_settings().items())
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, heads={self.heads}{extra})"
