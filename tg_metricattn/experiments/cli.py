"""The ``tgma`` command line: ``demo``, ``train``, ``compare``, ``ogb``, ``paper`` and ``diagnose``.

Run ``tgma <command> --help`` for the options of each. Errors in the arguments or the
data end the program with a one-line message and a non-zero exit status (2 for bad
arguments, 1 for missing data and other failures).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from tg_metricattn.experiments.config import (
    ARCH_DEFAULTS,
    ARCHS,
    LAYER_NAMES,
    NO_LAYER,
    TASK_DEFAULTS,
    TASKS,
    TrainConfig,
)
from tg_metricattn.flow_integration import FLOW_METHODS
from tg_metricattn.models import FLOW_DYNAMICS

__all__ = ["build_parser", "config_from_args", "main"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 10,10, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return values


def _layer_list(text: str) -> list[str]:
    layers = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [v for v in layers if v not in (*LAYER_NAMES, NO_LAYER)]
    if not layers or unknown:
        choices = ",".join((*LAYER_NAMES, NO_LAYER))
        raise argparse.ArgumentTypeError(f"unknown layer(s) {unknown or text!r}; choose from {choices}")
    repeated = sorted({v for v in layers if layers.count(v) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(
            f"{','.join(repeated)} given twice: each layer is compared once, with the first"
        )
    return layers


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _depth_is_num_layers(text: str) -> None:
    raise argparse.ArgumentTypeError(
        f"--layers lists attention kinds (compare, paper); for the depth use --num-layers {text}, for the kind --layer"
    )


def _split_list(text: str) -> list[int]:
    """``'0-9'`` (a range, both ends included), ``'0,3,5'`` or a mix such as ``'0-2,7'``."""
    values: list[int] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        first, dash, last = part.partition("-")
        try:
            low, high = int(first), int(last if dash else first)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected split numbers such as 0-9 or 0,3,5, got {text!r}") from None
        if low < 0 or high < low or high - low >= 1000:
            raise argparse.ArgumentTypeError(f"expected increasing split numbers >= 0 such as 0-9, got {part!r}")
        values += range(low, high + 1)
    if not values:
        raise argparse.ArgumentTypeError(f"expected split numbers such as 0-9 or 0,3,5, got {text!r}")
    return values


def _name_list(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


def _float_list(text: str) -> list[float]:
    try:
        return [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 0.1,0.2, got {text!r}") from None


def add_model_arguments(parser: argparse.ArgumentParser, with_layer: bool = True) -> None:
    """Options shared by ``train``, ``compare`` and ``ogb`` (data, model, optimisation).

    The depth is ``--num-layers`` everywhere; ``--layers`` means one thing, the attention
    kinds that ``compare`` and ``paper`` run (``train`` and ``ogb`` take one, ``--layer``).
    """
    arch_task = {"diffusion": "mesh", "residual": "node", "flow": "node"}
    groups = {**TASK_DEFAULTS, **{f"{arch_task[a]} --arch {a}": d for a, d in ARCH_DEFAULTS.items()}}
    defaults = ", ".join(f"{t}: " + " ".join(f"{k}={v}" for k, v in d.items()) for t, d in groups.items())
    data = parser.add_argument_group("data")
    data.add_argument("--task", choices=TASKS, default="node", help="node | mesh | graph (default: node)")
    data.add_argument(
        "--dataset",
        default="Cora",
        help="node: Cora, CiteSeer, Amazon-Photo, ogbn-arxiv, 'Class/name', csbm (synthetic); "
        "mesh: rna, human, folder, synthetic; graph: ogbg-molbace, ...",
    )
    data.add_argument("--root", help="data root laid out like $TGMA_DATA (default: a private copy of $TGMA_DATA)")
    data.add_argument(
        "--normalize-features",
        action=argparse.BooleanOptionalAction,
        help="node task: row-normalise features to sum 1 (default: on for Cora, CiteSeer, PubMed as in GAT)",
    )
    data.add_argument(
        "--train-per-class", type=_positive_int, default=20, help="random node splits: training nodes per class (20)"
    )
    data.add_argument(
        "--val-per-class", type=_positive_int, default=30, help="random node splits: validation nodes per class (30)"
    )
    splits = data.add_mutually_exclusive_group()
    splits.add_argument(
        "--split",
        type=_non_negative_int,
        default=0,
        help="node task: which published split (WebKB, Actor, Chameleon/Squirrel, Heterophilous: 0-9), or the seed "
        "of the random split of a dataset without one (default 0)",
    )
    splits.add_argument(
        "--splits",
        type=_split_list,
        help="node task: run every seed on each of these splits (e.g. 0-9); results over splits x seeds",
    )
    data.add_argument("--features", default="xyz", help="mesh input features: xyz, hks or xyz,hks (default xyz)")
    data.add_argument("--limit", type=_positive_int, help="mesh task: read only the first LIMIT meshes per split")
    data.add_argument("--num-meshes", type=_positive_int, default=24, help="synthetic mesh set size (default 24)")
    data.add_argument("--mesh-resolution", type=int, default=16, help="synthetic meshes: segments per limb (>= 6)")
    data.add_argument(
        "--eigenpairs", type=_positive_int, default=128, help="mesh task: Laplace-Beltrami eigenpairs per mesh (128)"
    )
    data.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        help="mesh task: rotate the xyz input of each training mesh at random (default: on with xyz features)",
    )
    model = parser.add_argument_group("model and optimisation", f"defaults per task: {defaults}")
    model.add_argument(
        "--arch",
        choices=ARCHS,
        help="attention: a stack of attention layers (the default for node and graph tasks); mesh task: diffusion "
        "(heat diffusion + attention + MLP blocks, the default for meshes); node task: residual (Platonov et al.'s "
        "pre-norm residual backbone; --hidden is then the model width, published defaults below); node task: flow "
        "(one attention's propagation P integrated as dx/dt = (P - I) x over a learned time; --hidden is the "
        "width of the flowing state)",
    )
    model.add_argument(
        "--flow-time",
        type=float,
        help="--arch flow: the initial total time T of the flow (learned; at most --flow-steps; default 3)",
    )
    model.add_argument(
        "--flow-steps", type=_positive_int, help="--arch flow: integration steps K of size T / K (default 6)"
    )
    model.add_argument(
        "--flow-method", choices=FLOW_METHODS, help="--arch flow: euler (default) or rk4 (4 evaluations per step)"
    )
    model.add_argument(
        "--flow-dynamics",
        choices=FLOW_DYNAMICS,
        help="--arch flow: linear (default: P of the encoded features, fixed over the flow) or nonlinear (P of "
        "the current state at every evaluation)",
    )
    model.add_argument(
        "--flow-source",
        action="store_true",
        default=None,
        help="--arch flow: add GRAND's source term beta x(0) to the flow (beta learned, started at 1)",
    )
    model.add_argument(
        "--sep",
        action=argparse.BooleanOptionalAction,
        help="--arch residual: keep each node out of its own softmax and give it a path of its own beside the "
        "neighbours' message (ego/neighbour separation, default: on); --no-sep: one softmax with self-loops",
    )
    model.add_argument(
        "--edge-features",
        action=argparse.BooleanOptionalAction,
        help="graph task: give every attention layer the graphs' edge features (OGB's BondEncoder for molecules, "
        "a linear map otherwise; default: on); --no-edge-features drops them",
    )
    model.add_argument(
        "--gradient-features",
        action=argparse.BooleanOptionalAction,
        help="mesh task, --arch diffusion: DiffusionNet's spatial gradient features in every block (default: on)",
    )
    if with_layer:
        model.add_argument(
            "--layer",
            choices=(*LAYER_NAMES, NO_LAYER),
            help="attention layer; none: no attention (diffusion blocks only, or an MLP in place of an attention "
            "stack). Default: none for the mesh diffusion network (best on the RNA validation meshes), gat otherwise",
        )
    model.add_argument(
        "--hidden", type=_positive_int, help="channels per head of the hidden layers (--arch residual: the model width)"
    )
    model.add_argument("--heads", type=_positive_int, help="heads of the hidden layers")
    model.add_argument("--num-layers", type=_positive_int, help="number of attention layers (mesh diffusion: blocks)")
    if with_layer:  # a clear message for the old spelling of the depth
        model.add_argument("--layers", type=_depth_is_num_layers, help=argparse.SUPPRESS)
    model.add_argument("--dropout", type=float, help="dropout on features and attention weights")
    model.add_argument("--lr", type=float, help="Adam (--arch residual: AdamW) learning rate")
    model.add_argument("--weight-decay", type=float, help="Adam (--arch residual: AdamW, decoupled) weight decay")
    model.add_argument("--lr-step", type=int, help="halve the learning rate every N epochs (0: never)")
    model.add_argument(
        "--time-scale",
        help="metric attention's initial t: 'auto' (median squared embedding distance of the first batch) "
        "or a number (default sqrt(channels))",
    )
    model.add_argument(
        "--root-weight",
        action=argparse.BooleanOptionalAction,
        help="a learned skip term of x_i in every attention layer (gat/l2/metric: residual, dot: root_weight); "
        "default: each layer's own (only dot has one)",
    )
    model.add_argument(
        "--density-exponent",
        type=float,
        default=0.0,
        help="Coifman & Lafon's alpha in [0, 1] for every attention layer: softmax_j(s_ij - alpha log q_j); "
        "0 (default) attention as it is, 1 removes the sampling density from its limit operator",
    )
    model.add_argument(
        "--learn-density-exponent",
        action="store_true",
        help="learn alpha per head (started at --density-exponent, kept in [0, 1])",
    )
    model.add_argument(
        "--metric-weight-decay",
        type=float,
        help="weight decay of metric attention's f and log t (default: --weight-decay)",
    )
    model.add_argument(
        "--epochs", type=_positive_int, help="maximum epochs (full-batch: steps) (default 200; --arch residual 1000)"
    )
    model.add_argument(
        "--patience",
        type=_positive_int,
        help="stop after this many epochs with neither a better val metric nor a lower val loss "
        "(default 100; --arch residual 1000: no early stop)",
    )
    model.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ... (default cpu)")
    model.add_argument(
        "--batch-size", type=int, default=0, help="node: seed nodes per mini-batch (0 = full batch); mesh: meshes per "
        "step (0 = 1); graph: graphs per step (0 = 32)",
    )  # fmt: skip
    model.add_argument("--num-neighbors", type=_int_list, default=[10, 10], help="sampled neighbours per layer")
    model.add_argument(
        "--checkpoint-every",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="write the resumable checkpoint when this many seconds passed since the last one, and at the end "
        "(0: every epoch; default 60)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def config_from_args(args: argparse.Namespace, **overrides: object) -> TrainConfig:
    """A validated :class:`TrainConfig` from parsed options (``overrides`` win)."""
    values = {
        "task": args.task,
        "dataset": args.dataset,
        "root": args.root,
        "layer": getattr(args, "layer", None),
        "hidden": args.hidden,
        "heads": args.heads,
        "layers": args.num_layers,
        "dropout": args.dropout,
        "lr": args.lr,
        "weight_decay": args.weight_decay,
        "epochs": args.epochs,
        "patience": args.patience,
        "seed": getattr(args, "seed", 0),
        "runs": getattr(args, "runs", 1),
        "device": args.device,
        "features": args.features,
        "batch_size": args.batch_size,
        "num_neighbors": args.num_neighbors,
        "limit": args.limit,
        "num_meshes": args.num_meshes,
        "mesh_resolution": args.mesh_resolution,
        "distributed": getattr(args, "distributed", False),
        "normalize_features": args.normalize_features,
        "arch": args.arch,
        "eigenpairs": args.eigenpairs,
        "lr_step": args.lr_step,
        "augment": args.augment,
        "gradient_features": args.gradient_features,
        "train_per_class": args.train_per_class,
        "val_per_class": args.val_per_class,
        "checkpoint_every": args.checkpoint_every,
        "metric_weight_decay": args.metric_weight_decay,
        "time_scale": args.time_scale,
        "root_weight": args.root_weight,
        "split": args.split,
        "splits": args.splits,
        "sep": args.sep,
        "density_exponent": args.density_exponent,
        "learn_density_exponent": args.learn_density_exponent,
        "flow_time": args.flow_time,
        "flow_steps": args.flow_steps,
        "flow_method": args.flow_method,
        "flow_dynamics": args.flow_dynamics,
        "flow_source": args.flow_source,
        "edge_features": args.edge_features,
    }
    values.update(overrides)
    return TrainConfig(**values).resolved()  # type: ignore[arg-type]


_ALLOW_PICKLE_HELP = (
    "read a checkpoint even if it needs unpickling (runs code from the file: only for files you trust); "
    "by default checkpoints load with torch.load(weights_only=True)"
)


def build_parser() -> argparse.ArgumentParser:
    """The ``tgma`` argument parser with its subcommands."""
    parser = argparse.ArgumentParser(prog="tgma", description="Attention as diffusion: train, compare, evaluate.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="metric attention vs GAT on synthetic meshes and a synthetic graph")
    demo.set_defaults(func=_demo)
    demo.add_argument("--out", default="runs/demo", help="results folder (default runs/demo)")
    demo.add_argument("--quick", action="store_true", help="a few epochs on tiny data (for tests)")

    train = sub.add_parser("train", help="train a model; writes a results folder per seed")
    train.set_defaults(func=_train, command_parser=train)
    add_model_arguments(train)
    train.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    train.add_argument("--runs", type=_positive_int, default=1, help="runs with seeds seed..seed+runs-1")
    train.add_argument("--out", help="results folder (default runs/<task>-<dataset>-<layer>)")
    train.add_argument(
        "--resume", metavar="DIR", help="continue the stopped run(s) in DIR (a results folder or one run_<seed> in it)"
    )
    train.add_argument(
        "--overwrite", action="store_true", help="replace the results in a non-empty --out (refused otherwise)"
    )
    train.add_argument("--allow-pickle", action="store_true", help=_ALLOW_PICKLE_HELP)
    train.add_argument("--distributed", action="store_true", help="DistributedDataParallel under torchrun")

    compare = sub.add_parser("compare", help="several layers over several seeds: accuracy, spread, curves")
    compare.set_defaults(func=_compare)
    add_model_arguments(compare, with_layer=False)
    compare.add_argument("--layers", dest="layer_list", type=_layer_list, default=list(LAYER_NAMES))
    compare.add_argument("--seeds", type=_positive_int, default=10, help="seeds 0..N-1 per layer (default 10)")
    compare.add_argument("--out", help="results folder (default runs/compare-<dataset>)")

    ogb = sub.add_parser("ogb", help="the OGB leaderboard protocol (seeds 0..runs-1, official Evaluator)")
    ogb.set_defaults(func=_ogb)
    add_model_arguments(ogb)
    ogb.add_argument("--runs", type=_positive_int, default=10, help="runs (default 10)")
    ogb.add_argument("--out", help="results folder (default runs/ogb-<dataset>-<layer>)")

    paper = sub.add_parser("paper", help="the metric-attention paper's experiments: two moons and digits, IPN")
    paper.set_defaults(func=_paper)
    paper.add_argument("--datasets", type=_name_list, default=["moons", "digits"], help="moons, digits (both)")
    paper.add_argument("--noise", type=_float_list, default=[0.1, 0.2], help="moons noise levels (0.1,0.2)")
    paper.add_argument("--layers", type=_name_list, default=["dot", "l2", "metric", "gat"], help="dot,l2,metric,gat")
    paper.add_argument("--graphs", type=_name_list, default=["knn", "complete"], help="knn, complete (both)")
    paper.add_argument("--seeds", type=_positive_int, default=10, help="seeds 0..N-1 (default 10)")
    paper.add_argument("--epochs", type=_positive_int, default=100, help="epochs per run (default 100)")
    paper.add_argument("--width", type=_positive_int, default=32, help="hidden width of IPN (default 32)")
    paper.add_argument("--heads", type=_positive_int, default=1, help="attention heads per block (default 1)")
    paper.add_argument("--blocks", type=_positive_int, default=2, help="attention blocks (default 2)")
    paper.add_argument("--k", type=_positive_int, default=10, help="neighbours of the knn graph (default 10)")
    paper.add_argument("--batch-size", type=int, default=64, help="points per complete-graph batch (default 64)")
    paper.add_argument("--lr", type=float, default=5e-3, help="Adam learning rate (default 5e-3)")
    paper.add_argument("--weight-decay", type=float, default=0.0, help="Adam weight decay (default 0)")
    paper.add_argument("--points", type=_positive_int, default=1000, help="moons: points drawn (default 1000)")
    paper.add_argument(
        "--time-scale", help="metric attention's initial t: 'auto' (median squared distance) or a number > 0"
    )
    paper.add_argument(
        "--arch", default="ipn", help="ipn (the paper's network, default) or flow (one attention integrated over time)"
    )
    paper.add_argument("--flow-time", type=float, default=3.0, help="flow: initial total time T (default 3.0)")
    paper.add_argument("--flow-steps", type=_positive_int, default=6, help="flow: Euler steps (default 6)")
    paper.add_argument("--out", default="runs/paper", help="results folder (default runs/paper); resumable")
    paper.add_argument("--no-progress", action="store_true", help="no line per run")

    diag = sub.add_parser("diagnose", help="attention vs heat diffusion for a trained run")
    diag.set_defaults(func=_diagnose)
    diag.add_argument("--checkpoint", required=True, metavar="DIR", help="a run folder (or its parent)")
    diag.add_argument("--out", help="where to write diagnostics.json and plots (default DIR/diagnostics)")
    diag.add_argument("--laplacians", default="rw", help="comma-separated: rw, sym, combinatorial, cotangent")
    diag.add_argument("--num-eigs", type=_nonnegative_int, default=8, help="eigenpairs compared (0 skips spectra)")
    diag.add_argument(
        "--fast",
        action="store_true",
        help="for graphs of millions of edges: no spectra, t searched up to 10 (not 100)",
    )
    diag.add_argument(
        "--ablation",
        action="store_true",
        help="also evaluate the run with every attention replaced by the uniform mean over the neighbours "
        "(ablation.json: validation and test metric, learned vs uniform)",
    )
    diag.add_argument("--device", default="cpu")
    diag.add_argument("--allow-pickle", action="store_true", help=_ALLOW_PICKLE_HELP)
    return parser


RUN_NAME = re.compile(r"run_-?\d+")


def _check_new_out(out: Path, overwrite: bool) -> None:
    """Refuse an ``out`` that cannot hold results, or a non-empty one unless ``overwrite`` (whose old results
    are removed only once the new run's data has loaded: :func:`~tg_metricattn.experiments.training.run_training`)."""
    from tg_metricattn.experiments.run_folder import LOCK_NAME, check_out_folder

    check_out_folder(out)
    if out.is_dir() and not overwrite and any(p.name != LOCK_NAME for p in out.iterdir()):
        raise ValueError(
            f"--out {str(out)!r} already holds results; pass --overwrite to replace them, --resume {str(out)!r} "
            "to continue them, or choose another --out."
        )


#: Options that ``train --resume`` takes beside the folder; every other one must agree with its config.json.
_RESUME_OPTIONS = ("resume", "allow_pickle", "no_progress")


def _given_options(args: argparse.Namespace) -> dict[str, object]:
    """The options of ``args.command`` given on its command line (not left at their defaults), by destination.

    The command's arguments are parsed again with every default set to a marker that no option can
    produce (and that argparse does not convert), so an option counts as given even at its default value.
    """
    command_parser: argparse.ArgumentParser = args.command_parser
    unset = object()
    saved = [(action, action.default) for action in command_parser._actions]
    try:
        for action, _ in saved:
            action.default = unset
        given = vars(command_parser.parse_args(args.argv[args.argv.index(args.command) + 1 :]))
    finally:
        for action, default in saved:
            action.default = default
    internal = ("func", "command_parser")
    return {dest: value for dest, value in given.items() if value is not unset and dest not in internal}


def _refuse_contradicting_options(args: argparse.Namespace, config: TrainConfig, folder: Path) -> None:
    """``train --resume`` continues a run with the settings of its ``config.json``: an option that says
    otherwise, or one that has no meaning for a resumed run (``--out``, ``--overwrite``), is an error."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    for dest, value in _given_options(args).items():
        option = "--" + dest.replace("_", "-")
        key = {"num_layers": "layers"}.get(dest, dest)
        if dest in _RESUME_OPTIONS:
            continue
        if key not in fields:
            raise ValueError(f"{option} has no effect with --resume: the run continues in {str(folder)!r}.")
        if dataclasses.replace(config, **{key: value}) != config:
            raise ValueError(
                f"--resume continues the run with the settings of {folder / 'config.json'} ({key} = "
                f"{getattr(config, key)!r}); {option} {value!r} contradicts them: drop it, or start a new run "
                "with another --out."
            )


def _default_out(*parts: str) -> str:
    return str(Path("runs") / "-".join(p.replace("/", "_") for p in parts))


def _demo(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tg_metricattn.experiments.demo import run_demo
    from tg_metricattn.experiments.run_folder import check_out_folder

    check_out_folder(args.out)
    run_demo(args.out, quick=args.quick)
    return 0


def _diagnose(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tg_metricattn.experiments.diagnose_command import diagnose_run
    from tg_metricattn.experiments.run_folder import check_out_folder

    if args.out is not None:
        check_out_folder(args.out)
    laplacians = tuple(args.laplacians.split(","))
    diagnose_run(
        args.checkpoint, args.out, laplacians, args.num_eigs, args.device, args.allow_pickle, args.fast, args.ablation
    )
    return 0


def _paper(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tg_metricattn.experiments.paper import PaperConfig, run_paper
    from tg_metricattn.experiments.run_folder import check_out_folder

    check_out_folder(args.out)
    config = PaperConfig(
        datasets=tuple(args.datasets),
        noises=tuple(args.noise),
        layers=tuple(args.layers),
        graphs=tuple(args.graphs),
        seeds=args.seeds,
        epochs=args.epochs,
        width=args.width,
        heads=args.heads,
        blocks=args.blocks,
        k=args.k,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        num_points=args.points,
        time_scale=args.time_scale,
        arch=args.arch,
        flow_time=args.flow_time,
        flow_steps=args.flow_steps,
    )
    run_paper(config, args.out, not args.no_progress)
    return 0


def _train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tg_metricattn.experiments.train_command import train_command

    progress = not args.no_progress
    if args.resume:
        resume = Path(args.resume)
        if RUN_NAME.fullmatch(resume.name) and (resume.parent / "config.json").is_file():
            resume = resume.parent  # one run_<seed> of a results folder: resume the folder (finished runs skip)
        if not (resume / "config.json").is_file():
            parser.error(f"--resume {args.resume!r}: not an existing run folder")
        config = TrainConfig.from_json(resume / "config.json")
        _refuse_contradicting_options(args, config, resume)
        args.out = str(resume)
        return train_command(config, str(resume), True, progress, args.allow_pickle)
    config = config_from_args(args)
    args.out = args.out or _default_out(config.task, config.dataset, config.layer)
    _check_new_out(Path(args.out), args.overwrite)
    return train_command(config, args.out, resume=False, progress=progress, overwrite=args.overwrite)


def _compare(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tg_metricattn.experiments.compare import compare_layers
    from tg_metricattn.experiments.run_folder import check_out_folder

    config = config_from_args(args)
    args.out = args.out or _default_out("compare", config.dataset)
    check_out_folder(args.out)
    compare_layers(config, args.layer_list, args.seeds, args.out, not args.no_progress)
    return 0


def _ogb(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tg_metricattn.experiments.ogb_protocol import run_ogb
    from tg_metricattn.experiments.run_folder import check_out_folder

    if not args.dataset.lower().startswith(("ogbn-", "ogbg-")):
        parser.error(f"--dataset must be an OGB dataset (ogbn-* or ogbg-*), got {args.dataset!r}")
    task = "graph" if args.dataset.lower().startswith("ogbg-") else "node"
    config = config_from_args(args, task=task, runs=args.runs)
    args.out = args.out or _default_out("ogb", config.dataset, config.layer)
    check_out_folder(args.out)
    run_ogb(config, args.out, not args.no_progress)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tgma`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    from tg_metricattn.datasets import UnsafeFileError
    from tg_metricattn.experiments.data import DataNotFoundError
    from tg_metricattn.experiments.run_folder import RunFolderBusyError

    try:
        return args.func(args, parser)
    except DataNotFoundError as error:
        print(f"tgma {args.command}: data not found: {error}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError, UnsafeFileError, RunFolderBusyError) as error:
        print(f"tgma {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"tgma {args.command}: interrupted{_how_to_continue(args)}", file=sys.stderr)
        return 130


def _how_to_continue(args: argparse.Namespace) -> str:
    """How to continue after Ctrl-C, naming the results folder of the command (if it has one)."""
    out = getattr(args, "out", None)
    if args.command == "train" and out:
        return f"; continue with: tgma train --resume {shlex.quote(out)}"
    if args.command in ("compare", "ogb", "paper") and out:
        return f"; the finished runs in {out!r} are kept: run the same command again to continue"
    return ""


if __name__ == "__main__":
    sys.exit(main())
