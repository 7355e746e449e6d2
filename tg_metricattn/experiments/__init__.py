"""Training and evaluation: the ``tgma`` command line and the pieces behind it.

- :mod:`~tg_metricattn.experiments.cli`: ``tgma demo | train | compare | ogb | paper | diagnose``.
- :mod:`~tg_metricattn.experiments.config`: :class:`TrainConfig` and per-task defaults.
- :mod:`~tg_metricattn.experiments.data` / :mod:`~tg_metricattn.experiments.tasks`: where the
  data comes from; how each task (node, mesh, graph) trains and is evaluated.
- :mod:`~tg_metricattn.experiments.sampling`: neighbour-sampled mini-batches.
- :mod:`~tg_metricattn.experiments.training`: the loop, model selection, resume.
- :mod:`~tg_metricattn.experiments.checkpoint`, :mod:`~tg_metricattn.experiments.run_folder`,
  :mod:`~tg_metricattn.atomic_files`, :mod:`~tg_metricattn.experiments.training_plots`: results on disk.
- :mod:`~tg_metricattn.experiments.train_command`, :mod:`~tg_metricattn.experiments.compare`,
  :mod:`~tg_metricattn.experiments.ogb_protocol`, :mod:`~tg_metricattn.experiments.paper`,
  :mod:`~tg_metricattn.experiments.diagnose_command`, :mod:`~tg_metricattn.experiments.demo`: the subcommands.
- :mod:`~tg_metricattn.experiments.distributed`: DistributedDataParallel under torchrun.
"""

from tg_metricattn.experiments.config import TrainConfig
from tg_metricattn.experiments.training import run_training, train_single_run
from tg_metricattn.models import LAYERS, AttentionNet  # the models live in tg_metricattn.models

__all__ = ["LAYERS", "AttentionNet", "TrainConfig", "run_training", "train_single_run"]
