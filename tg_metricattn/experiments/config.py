"""The settings of one training run, with the defaults of each task.

Node classification defaults to the GAT paper's Cora setup (Velickovic et al. 2018):
2 layers, 8 heads x 8 hidden units, dropout 0.6, Adam with lr 0.005 and weight decay
5e-4, one output head, early stopping with patience 100, and (for the Planetoid graphs
Cora, CiteSeer, PubMed) bag-of-words features row-normalised to sum 1.

Meshes default to the diffusion-attention network (``arch='diffusion'``) in DiffusionNet's
RNA setting: 4 blocks of width 128 (4 heads x 32) with spatial gradient features, dropout
0.5, Adam lr 1e-3 halved every 50 epochs, 128 eigenpairs, random rotations of the ``xyz``
input. ``arch='attention'`` is
the plain stack of attention layers (:class:`~tg_metricattn.models.AttentionNet`).
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from tg_metricattn.atomic_files import read_json
from tg_metricattn.datasets.mesh_features import FEATURE_NAMES
from tg_metricattn.flow_integration import FLOW_METHODS
from tg_metricattn.layers.metric_attn_conv import check_time_scale
from tg_metricattn.models import FLOW_DYNAMICS, LAYERS, NO_LAYER

__all__ = [
    "ARCHS",
    "ARCH_DEFAULTS",
    "FLOW_FIELDS",
    "LAYER_NAMES",
    "NO_LAYER",
    "ROW_NORMALISED_DATASETS",
    "TASKS",
    "TASK_DEFAULTS",
    "TrainConfig",
    "metric_time_scale",
    "time_scale_kwargs",
]

TASKS = ("node", "mesh", "graph")
LAYER_NAMES = tuple(LAYERS)
#: ``--layer none``: no attention (the diffusion-only mesh network)
#: ``attention``: a stack of attention layers (every task); ``diffusion``: the mesh diffusion-attention net
#: ``residual``: Platonov et al.'s pre-norm residual backbone (node task)
#: ``flow``: the heat flow of one attention layer over a learned time (node task)
ARCHS = ("attention", "diffusion", "residual", "flow")

#: Per-task values for the fields left as ``None`` on the command line.
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "node": {"hidden": 8, "heads": 8, "layers": 2, "dropout": 0.6, "lr": 0.005, "weight_decay": 5e-4, "lr_step": 0},
    "mesh": {"hidden": 16, "heads": 4, "layers": 4, "dropout": 0.1, "lr": 0.005, "weight_decay": 0.0, "lr_step": 0},
    "graph": {"hidden": 16, "heads": 4, "layers": 3, "dropout": 0.1, "lr": 0.001, "weight_decay": 0.0, "lr_step": 0},
}
for _defaults in TASK_DEFAULTS.values():
    _defaults.update(epochs=200, patience=100)
#: Values of an architecture that override its task's defaults (DiffusionNet's RNA setting for meshes).
ARCH_DEFAULTS: dict[str, dict[str, Any]] = {
    "diffusion": {"hidden": 32, "heads": 4, "layers": 4, "dropout": 0.5, "lr": 0.001, "lr_step": 50},
    # Platonov et al. (ICLR 2023): width 512 (hidden is the model width here), AdamW 3e-5 without
    # weight decay, 1000 full-batch steps, selection on validation (patience = steps: no early stop)
    "residual": {
        "hidden": 512,
        "heads": 8,
        "layers": 5,
        "dropout": 0.2,
        "lr": 3e-5,
        "weight_decay": 0.0,
        "lr_step": 0,
        "epochs": 1000,
        "patience": 1000,
        "sep": True,
    },
    # one attention's P integrated over time (hidden is the width of the flowing state): the GAT
    # paper's optimiser and dropout, T = 3 in 6 Euler steps; a starting point, not tuned (README, "Heat flow")
    "flow": {
        "hidden": 64,
        "heads": 8,
        "layers": 1,
        "dropout": 0.5,
        "lr": 0.01,
        "weight_decay": 5e-4,
        "flow_time": 3.0,
        "flow_steps": 6,
        "flow_method": "euler",
        "flow_dynamics": "linear",
        "flow_source": False,
    },
}

#: The fields of ``arch='flow'`` alone, with their options.
FLOW_FIELDS = {
    "flow_time": "--flow-time",
    "flow_steps": "--flow-steps",
    "flow_method": "--flow-method",
    "flow_dynamics": "--flow-dynamics",
    "flow_source": "--flow-source",
}

#: Node datasets whose features are row-normalised unless ``--no-normalize-features`` (GAT's protocol).
ROW_NORMALISED_DATASETS = ("cora", "citeseer", "pubmed")


def metric_time_scale(value: str | float | None) -> str | float | None:
    """``MetricAttnConv``'s ``time_scale`` from a ``--time-scale`` value: ``None`` (its default
    sqrt(metric_channels)), ``'auto'`` (the median squared distance of the first batch) or a number
    in the range float32 can train with; anything else is a ``ValueError`` naming the option."""
    number = value
    if isinstance(value, str) and value != "auto":
        with contextlib.suppress(ValueError):  # a text that is no number is named as it was given
            number = float(value)
    return check_time_scale(number, "--time-scale", given=value)


def time_scale_kwargs(layer: str, value: str | float | None) -> dict[str, Any]:
    """The layer arguments a ``--time-scale`` value gives the attention kind ``layer``: only metric
    attention has a time scale, so ``{"time_scale": ...}`` for ``'metric'`` when set, else ``{}``."""
    return {"time_scale": metric_time_scale(value)} if value is not None and layer == "metric" else {}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a run (saved as ``config.json`` in the run folder).

        ``hidden`` is per head (a hidden layer is ``heads * hidden`` wide). ``batch_size`` 0
        means full batch (node task) or one mesh per step (mesh task); for the graph task it
        is the number of graphs per step (0 = 32). ``num_neighbors`` is the fan-out per layer
        of mini-batch neighbour sampling. ``limit`` reads only the first meshes of each split
        (quick runs); ``num_meshes`` and ``mesh_resolution`` (segments around each limb; about
    3.5k vertices at 16, 1.4k at 10) describe the synthetic mesh set. ``arch`` is
    ``'attention'`` or ``'diffusion'`` (meshes only; default: diffusion for meshes);
    ``layer`` is an attention kind or ``'none'`` (default ``None``: ``'none'`` for the
    diffusion network, the best on the RNA validation meshes, ``'gat'`` otherwise). ``eigenpairs`` is the number of
    Laplace–Beltrami eigenpairs stored per mesh; ``lr_step`` halves the learning rate every
    that many epochs (0: never); ``augment`` rotates the ``xyz`` input of every training
    mesh at random (default: on when the mesh features include ``xyz``);
    ``gradient_features`` adds spatial gradient features to every diffusion block (default:
    on for ``arch='diffusion'``). ``train_per_class``/``val_per_class`` size the seeded
    random split of node datasets without a published one (Shchur et al.: 20 and 30).
    ``checkpoint_every`` is the most seconds of training a stop can lose: the full
    checkpoint is written when that much time has passed since the last one and after the
    last epoch (0: after every epoch); ``best_model.pt`` is written whenever the best changes.
    ``metric_weight_decay`` is the weight decay of metric attention's f and log t
    (:func:`~tg_metricattn.models.metric_parameter_groups`; ``None``: the same as ``weight_decay``).
    ``time_scale`` (``'auto'`` or a number > 0) is passed to metric-attention layers.
    ``root_weight`` gives every attention layer a learned skip term of x_i (``True``), none
    (``False``), or leaves each layer's default (``None``: only dot attention has one).
    ``layer='none'`` replaces every attention layer by a per-node linear map (an MLP).
    ``density_exponent`` (Coifman & Lafon's α in [0, 1]) and ``learn_density_exponent`` reach
    every attention layer (:class:`~tg_metricattn.layers.AttentionConv`); full-batch only.
    ``arch='residual'`` (node task) is Platonov et al.'s backbone
    (:class:`~tg_metricattn.models.ResidualAttentionNet`): ``hidden`` is then the model width
    (a multiple of ``heads``), ``layers`` the residual blocks, ``sep`` (default ``True``) keeps
    each node out of its own softmax, the optimiser is AdamW, and the defaults are the
    published ones (width 512, 8 heads, 5 blocks, dropout 0.2, lr 3e-5, 1000 steps, no early stop).
    ``arch='flow'`` (node task) is :class:`~tg_metricattn.models.AttentionFlowNet`: the
    propagation of one ``layer`` integrated as dx/dt = (P - I) x over a learned time starting at
    ``flow_time`` (T <= ``flow_steps``) in ``flow_steps`` steps of ``flow_method`` (euler, rk4),
    with P fixed (``flow_dynamics='linear'``) or recomputed from the state (``'nonlinear'``),
    ``flow_source`` adding GRAND's source term β x(0) (β learned);
    ``hidden`` is the width of the flowing state (a multiple of ``heads``).
    ``edge_features`` (graph task, default on) gives every attention layer the graphs' edge
    features (OGB's ``BondEncoder`` for molecules); a ``config.json`` without the key was
    written before edge features existed and trained without them.
    ``split`` chooses one of a node dataset's published splits (the seed of the random split
    of a dataset without one); ``splits`` lists several: the runs are repeated for each, in
    ``out/split_<k>/run_<seed>``, and summarised over splits × seeds.
    """

    task: str = "node"
    dataset: str = "Cora"
    root: str | None = None
    layer: str | None = None
    hidden: int | None = None
    heads: int | None = None
    layers: int | None = None
    dropout: float | None = None
    lr: float | None = None
    weight_decay: float | None = None
    epochs: int | None = None
    patience: int | None = None
    seed: int = 0
    runs: int = 1
    device: str = "cpu"
    features: tuple[str, ...] = ("xyz",)
    batch_size: int = 0
    num_neighbors: list[int] = field(default_factory=lambda: [10, 10])
    limit: int | None = None
    num_meshes: int = 24
    mesh_resolution: int = 16
    distributed: bool = False
    normalize_features: bool | None = None
    arch: str | None = None
    eigenpairs: int = 128
    lr_step: int | None = None
    augment: bool | None = None
    gradient_features: bool | None = None
    train_per_class: int = 20
    val_per_class: int = 30
    checkpoint_every: float = 60.0
    metric_weight_decay: float | None = None
    time_scale: str | None = None
    root_weight: bool | None = None
    split: int = 0
    splits: list[int] | None = None
    sep: bool | None = None
    density_exponent: float = 0.0
    learn_density_exponent: bool = False
    flow_time: float | None = None
    flow_steps: int | None = None
    flow_method: str | None = None
    flow_dynamics: str | None = None
    flow_source: bool | None = None
    edge_features: bool | None = None

    def __post_init__(self) -> None:
        if isinstance(self.features, str):  # "xyz,hks" from the command line or an older config.json
            object.__setattr__(self, "features", tuple(self.features.split(",")))
        elif isinstance(self.features, list):  # config.json
            object.__setattr__(self, "features", tuple(self.features))
        self.validate()

    def resolved(self) -> TrainConfig:
        """A copy with the ``None`` hyper-parameters replaced by the task defaults."""
        values = asdict(self)
        if values["arch"] is None:
            values["arch"] = "diffusion" if self.task == "mesh" else "attention"
        if values["layer"] is None:  # the diffusion network is best without attention on RNA validation (README)
            values["layer"] = NO_LAYER if values["arch"] == "diffusion" else "gat"
        for key, value in {**TASK_DEFAULTS[self.task], **ARCH_DEFAULTS.get(values["arch"], {})}.items():
            if values[key] is None:
                values[key] = value
        if values["gradient_features"] is None:
            values["gradient_features"] = values["arch"] == "diffusion"
        if values["augment"] is None:
            values["augment"] = self.task == "mesh" and "xyz" in self.features
        if values["edge_features"] is None:
            values["edge_features"] = self.task == "graph"
        if values["normalize_features"] is None:
            values["normalize_features"] = self.task == "node" and self.dataset.lower() in ROW_NORMALISED_DATASETS
        return TrainConfig(**values)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid setting."""
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}.")
        if self.task == "graph" and not self.dataset.lower().startswith("ogbg-"):
            raise ValueError(f"--task graph needs an OGB graph dataset such as ogbg-molbace, got {self.dataset!r}.")
        if self.task == "node" and self.dataset.lower().startswith("ogbg-"):
            raise ValueError(f"{self.dataset!r} is a graph property dataset: use --task graph.")
        if self.arch is not None and self.arch not in ARCHS:
            raise ValueError(f"--arch must be one of {ARCHS}, got {self.arch!r}.")
        if self.arch == "diffusion" and self.task != "mesh":
            raise ValueError(f"--arch diffusion is a mesh network (--task mesh), got --task {self.task}.")
        if self.arch == "residual":
            if self.task != "node":
                raise ValueError(f"--arch residual is a node classifier (--task node), got --task {self.task}.")
            if self.batch_size:
                raise ValueError("--arch residual trains full-batch, as Platonov et al.: drop --batch-size.")
            if self.root_weight is not None:
                raise ValueError("--root-weight has no place in --arch residual: each block is a residual already.")
        elif self.sep is not None:
            raise ValueError("--sep/--no-sep belongs to the residual backbone (--arch residual).")
        self._validate_flow()
        if self.edge_features and self.task != "graph":
            raise ValueError("--edge-features belongs to the graph task (--task graph, ogbg-* datasets).")
        width_arch = self.arch in ("residual", "flow")
        if width_arch and self.hidden is not None and self.heads is not None and self.hidden % self.heads:
            raise ValueError(
                f"--arch {self.arch}: --hidden {self.hidden} is the model width and must be a multiple of --heads "
                f"{self.heads} (each head gets hidden / heads channels)."
            )
        density = self.density_exponent or self.learn_density_exponent
        if not 0.0 <= self.density_exponent <= 1.0:
            raise ValueError(
                f"--density-exponent must be in [0, 1] (Coifman & Lafon's alpha), got {self.density_exponent}."
            )
        if density and self.layer == NO_LAYER:
            raise ValueError("--density-exponent normalises attention: --layer none has none.")
        if density and self.task == "node" and self.batch_size:
            raise ValueError(
                "--density-exponent needs full-batch training: sampled mini-batches are bipartite "
                "(q_j is node j's own partition); drop --batch-size."
            )
        diffusion = self.arch == "diffusion" or (self.arch is None and self.task == "mesh")
        if self.gradient_features and not diffusion:
            raise ValueError(
                "--gradient-features belongs to the mesh diffusion network (--task mesh --arch diffusion)."
            )
        if self.layer is not None and self.layer not in (*LAYER_NAMES, NO_LAYER):
            raise ValueError(f"layer must be one of {(*LAYER_NAMES, NO_LAYER)}, got {self.layer!r}.")
        positive = {"runs": self.runs, "eigenpairs": self.eigenpairs}
        positive |= {"train_per_class": self.train_per_class, "val_per_class": self.val_per_class}
        for key in ("hidden", "heads", "layers", "epochs", "patience"):
            if getattr(self, key) is not None:
                positive[key] = getattr(self, key)
        for key, value in positive.items():
            if value < 1:
                raise ValueError(f"--{key.replace('_', '-')} must be >= 1, got {value}.")
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"--dropout must be in [0, 1), got {self.dropout}.")
        if self.lr is not None and not 0 < self.lr < math.inf:
            raise ValueError(f"--lr must be a finite number > 0, got {self.lr}.")
        if self.weight_decay is not None and not 0 <= self.weight_decay < math.inf:
            raise ValueError(f"--weight-decay must be a finite number >= 0, got {self.weight_decay}.")
        if self.lr_step is not None and self.lr_step < 0:
            raise ValueError(f"--lr-step must be >= 0, got {self.lr_step}.")
        if self.metric_weight_decay is not None and not 0 <= self.metric_weight_decay < math.inf:
            raise ValueError(f"--metric-weight-decay must be a finite number >= 0, got {self.metric_weight_decay}.")
        metric_time_scale(self.time_scale)
        if self.split < 0 or (self.splits is not None and (not self.splits or min(self.splits) < 0)):
            raise ValueError(f"--split/--splits must be integers >= 0, got {self.splits or self.split}.")
        if self.splits is not None and len(set(self.splits)) != len(self.splits):
            raise ValueError(f"--splits lists a split twice: {self.splits}.")
        if (self.split or self.splits) and self.task != "node":
            raise ValueError("--split/--splits choose a node dataset's split (--task node).")
        if not 0 <= self.checkpoint_every < math.inf:
            raise ValueError(f"--checkpoint-every must be a finite number >= 0, got {self.checkpoint_every}.")
        if self.batch_size < 0:
            raise ValueError(f"--batch-size must be >= 0, got {self.batch_size}.")
        if any(k < 1 for k in self.num_neighbors):
            raise ValueError(f"--num-neighbors must be positive integers, got {self.num_neighbors}.")
        sampled = self.task == "node" and self.batch_size > 0 and self.layers is not None
        if sampled and len(self.num_neighbors) != self.layers:
            fanouts = ",".join(map(str, self.num_neighbors))
            raise ValueError(
                f"--num-neighbors gives one fan-out per layer: {fanouts!r} has {len(self.num_neighbors)} for "
                f"--num-layers {self.layers} (e.g. --num-neighbors {','.join(['10'] * self.layers)})."
            )
        if self.device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise ValueError(f"--device {self.device}: CUDA is not available here; use --device cpu.")
        elif self.device == "mps":
            import torch

            if not torch.backends.mps.is_available():
                raise ValueError("--device mps: Apple's MPS backend is not available here; use --device cpu.")
        elif self.device != "cpu":
            raise ValueError(f"--device must be cpu, cuda, cuda:N or mps, got {self.device!r}.")
        features = self.features
        if not features or any(f not in FEATURE_NAMES for f in features) or len(set(features)) != len(features):
            shown = ",".join(map(str, features)) if isinstance(features, tuple) else features
            raise ValueError(f"--features must be comma-separated names from {FEATURE_NAMES}, got {shown!r}.")

    def _validate_flow(self) -> None:
        """The settings of ``arch='flow'``: node task, full batch, one attention kind, T in (0, K]."""
        if self.arch != "flow":
            for key, option in FLOW_FIELDS.items():
                if getattr(self, key) is not None:
                    raise ValueError(f"{option} belongs to the heat-flow model (--arch flow).")
            return
        if self.task != "node":
            raise ValueError(f"--arch flow is a node classifier (--task node), got --task {self.task}.")
        if self.batch_size:
            raise ValueError("--arch flow integrates over the whole graph: drop --batch-size.")
        if self.layer == NO_LAYER:
            raise ValueError("--arch flow integrates an attention's propagation: choose an attention --layer.")
        if self.root_weight is not None:
            raise ValueError("--root-weight has no place in --arch flow: the flow keeps (1 - step) of x_i itself.")
        if self.layers not in (None, 1):
            raise ValueError(
                f"--arch flow integrates one layer's attention over time (--num-layers {self.layers}): set the "
                "number of steps with --flow-steps."
            )
        if self.flow_steps is not None and not 1 <= self.flow_steps <= 1000:
            raise ValueError(f"--flow-steps must be in 1..1000, got {self.flow_steps}.")
        if self.flow_time is not None and not 0 < self.flow_time < math.inf:
            raise ValueError(f"--flow-time must be a finite number > 0, got {self.flow_time}.")
        if self.flow_time is not None and self.flow_steps is not None and self.flow_time > self.flow_steps:
            raise ValueError(
                f"--flow-time {self.flow_time} needs at least {math.ceil(self.flow_time)} --flow-steps (now "
                f"{self.flow_steps}): each step T / K must be at most 1."
            )
        if self.flow_method is not None and self.flow_method not in FLOW_METHODS:
            raise ValueError(f"--flow-method must be one of {FLOW_METHODS}, got {self.flow_method!r}.")
        if self.flow_dynamics is not None and self.flow_dynamics not in FLOW_DYNAMICS:
            raise ValueError(f"--flow-dynamics must be one of {FLOW_DYNAMICS}, got {self.flow_dynamics!r}.")

    def layer_kwargs(self) -> dict[str, Any]:
        """Extra arguments of the attention layers: ``time_scale`` for metric attention and the
        skip term (``residual``, ``root_weight`` for dot) when set."""
        kwargs = time_scale_kwargs(self.layer, self.time_scale)
        if self.root_weight is not None and self.layer in LAYERS:
            kwargs[LAYERS[self.layer].skip_argument] = self.root_weight
        if self.density_exponent or self.learn_density_exponent:  # absent otherwise: older configs build alike
            kwargs["density_exponent"] = self.density_exponent
            kwargs["learn_density_exponent"] = self.learn_density_exponent
        return kwargs

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dictionary."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str | os.PathLike | None = None) -> TrainConfig:
        """Build from a dictionary, ignoring unknown keys (e.g. written by a newer version).

        Every value must have its field's type (a ``config.json`` may have been edited); a
        ``ValueError`` names the field, what it holds and ``source`` (the file) otherwise.
        """
        where = f"{source}: " if source is not None else ""
        if not isinstance(values, dict):
            raise ValueError(f"{where}not a run's settings (a JSON object expected).")
        known = {f.name: f.type for f in fields(cls)}
        for key, value in values.items():
            if key in known and not _holds(known[key], value):
                raise ValueError(
                    f"{where}{key} = {value!r} is not of type {known[key]}; the file was edited or damaged."
                )
        if "edge_features" not in values:  # written before edge features existed: trained without them
            values = {**values, "edge_features": False}
        try:
            return cls(**{k: v for k, v in values.items() if k in known})
        except ValueError as error:
            raise ValueError(f"{where}{error}") from None

    @classmethod
    def from_json(cls, path: str | Path) -> TrainConfig:
        """Read ``config.json`` of a run folder (errors name the file)."""
        return cls.from_dict(read_json(path), source=path)


def _holds(annotation: str, value: Any) -> bool:
    """Whether the JSON ``value`` has the type ``annotation`` of a :class:`TrainConfig` field
    (``'int | None'``, ``'list[int]'``, ``'tuple[str, ...]'``, ...)."""

    def scalar(kind: str, item: Any) -> bool:
        if kind == "bool":
            return isinstance(item, bool)
        if kind == "int":
            return isinstance(item, int) and not isinstance(item, bool)
        if kind == "float":
            return isinstance(item, (int, float)) and not isinstance(item, bool)
        return kind == "str" and isinstance(item, str)

    for kind in annotation.split(" | "):
        if kind == "None" and value is None:
            return True
        if kind.startswith(("list[", "tuple[")):
            item_kind = kind[kind.index("[") + 1 :].split(",")[0].rstrip("]")
            if isinstance(value, (list, tuple)) and all(scalar(item_kind, item) for item in value):
                return True
            if kind.startswith("tuple[str") and isinstance(value, str):  # "xyz,hks" (an older config.json)
                return True
        elif scalar(kind, value):
            return True
    return False
