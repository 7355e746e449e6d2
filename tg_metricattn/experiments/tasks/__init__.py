"""The three tasks: what a training epoch is, how a model is built and how it is evaluated.

One module per task (:mod:`.node`, :mod:`.mesh`, :mod:`.graph`) on the interface of :mod:`.base`.

- :class:`NodeTask`: node classification on one graph (full batch, or neighbour-sampled
  mini-batches run bipartitely); accuracy, through the OGB ``Evaluator`` for ``ogbn-*``.
- :class:`MeshTask`: per-vertex segmentation of meshes (one or ``batch_size`` meshes per
  step) with the diffusion-attention net (``arch='diffusion'``) or an attention stack,
  ``xyz`` input rotated at random per training step when ``augment``; accuracy per vertex
  on the original meshes, and per face where labels are per face (a face's prediction is
  the argmax of the mean logits of its three vertices).
- :class:`GraphTask`: ``ogbg-*`` graph property prediction with global mean pooling; the
  metric is the dataset's own (ROC-AUC for ``ogbg-molbace``) from the OGB ``Evaluator``.

Every epoch's metrics come as a dictionary with ``train_loss``, ``val_loss``,
``train_metric``, ``val_metric``, ``test_metric`` (and ``*_face_metric`` for meshes).
Training items are shuffled with :attr:`Task.generator`, whose state the checkpoint saves.
"""

from __future__ import annotations

from tg_metricattn.experiments.config import TrainConfig
from tg_metricattn.experiments.distributed import DistContext
from tg_metricattn.experiments.tasks.base import Task, accuracy, optimizer_step
from tg_metricattn.experiments.tasks.graph import GraphTask
from tg_metricattn.experiments.tasks.mesh import MeshTask
from tg_metricattn.experiments.tasks.node import CSBM_SETTINGS, NodeTask

__all__ = ["CSBM_SETTINGS", "GraphTask", "MeshTask", "NodeTask", "Task", "accuracy", "build_task", "optimizer_step"]


def build_task(config: TrainConfig, ctx: DistContext | None = None) -> Task:
    """The task object for ``config.task`` (data loaded, model not yet built)."""
    cls = {"node": NodeTask, "mesh": MeshTask, "graph": GraphTask}[config.task]
    return cls(config, ctx)
