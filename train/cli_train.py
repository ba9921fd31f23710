"""``cifar-edge train``, ``evaluate`` and ``compare``: training runs and their reports."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from edge_sdk.resize import RESIZE_MODES
from cifar_edge.cli.extras import require
from cifar_edge.cli.main import add_json_flag, check_output_folder, emit, summary
from cifar_edge.cli.argtypes import float_range, int_list, int_range, non_negative_int, positive_int, probability
from edge_sdk.errors import EdgeSDKError
from cifar_edge.cli.progress import progress_bar, wanted
from edge_sdk.spec import PreprocessSpec

from . import recipes
from .catalog import catalog_rows, model_names
from .model_file import check_keras_file
from .cli_options import add_data_options, check_data_early

MODEL_CHOICES_HELP = f"{', '.join(model_names())} (see --list-models)"
_C, _A = recipes.RECIPES["classic"], recipes.RECIPES["airbench"]  # the help strings quote the recipe table


def _both(key: str, unit: str = "") -> str:
    """``classic X, airbench Y`` for one recipe value, as the help strings quote it."""
    return f"classic {_C[key]:g}{unit}, airbench {_A[key]:g}{unit}"


def _require_training_stack() -> None:
    for module in ("tensorflow", "keras", "matplotlib"):
        require(module, "train", "training and evaluation", quiet=True)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train``, ``evaluate`` and ``compare`` subcommands."""
    p = subparsers.add_parser("train", help=summary("train"))
    p.add_argument("--model", help=f"model name (default {recipes.DEFAULT_MODEL}): {MODEL_CHOICES_HELP}")
    p.add_argument("--list-models", action="store_true", help="print name, parameters and MACs of each model")
    p.add_argument("--out", metavar="RUN_DIR", help="run folder (default runs/MODEL)")
    p.add_argument("--epochs", type=positive_int, help=f"default {recipes.EPOCHS}")
    p.add_argument("--patience", type=positive_int, help="stop after N epochs without a better validation accuracy")
    p.add_argument("--keep-last", action="store_true", default=None,
                   help="best.keras keeps the last epoch's weights instead of the best validation epoch's: for a "
                        "fixed schedule whose aim the validation split does not measure (outlier exposure)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last finished epoch")
    p.add_argument("--init-from", metavar="MODEL.keras",
                   help="start from this trained model's weights (same --model) instead of random ones: fine-tuning")
    p.add_argument("--qat", action="store_true", default=None,
                   help="with --init-from: fine-tune quantization-aware (int8 weights and activations simulated, "
                        "the ranges measured once); its int8 exports then compute what the Keras model computes")
    _add_distribution_options(p)
    _add_recipe_options(p, shipped=True)
    add_data_options(p)
    add_json_flag(p)
    p.set_defaults(func=run_train)

    e = subparsers.add_parser("evaluate", help=summary("evaluate"))
    e.add_argument("model", metavar="MODEL",
                   help="a trained .keras model (spec.json beside it gives its preprocessing), or an exported "
                        ".tflite/.onnx file or bundled model name, run through the SDK (no TensorFlow needed)")
    e.add_argument("--backend", help="runtime for an exported file (default: from its suffix)")
    e.add_argument("--split", default="test", help="split to evaluate (default test)")
    e.add_argument("--limit", type=positive_int, help="evaluate N images (stratified)")
    e.add_argument("--batch-size", type=positive_int, default=500)
    e.add_argument("--unknown-half", type=int, choices=(0, 1), metavar="{0,1}",
                   help="when the data folder has unknown/ (pictures of other things, scored as open-set figures): "
                        "use only this half of it, by file name; 'train --outliers' trains on half 0, so 1 measures "
                        "on pictures it did not see (default: all of it)")
    add_data_options(e)
    add_json_flag(e)
    e.set_defaults(func=run_evaluate)

    c = subparsers.add_parser("compare", help=summary("compare"))
    c.add_argument("--models", default="ann,seed-cnn,resnet8", help="comma-separated model names (default ann,seed-cnn,resnet8)")
    c.add_argument("--epochs", type=int_list(1), default="10",
                   help="comma-separated epoch budgets, e.g. 10,20,30 (default 10)")
    c.add_argument("--out", required=True, metavar="DIR", help="folder for the runs and the comparison table")
    c.add_argument("--ablate", action="store_true",
                   help="also train each model/budget without one recipe ingredient at a time "
                        "(augmentation, label smoothing, warm-up) and with AdamW instead of SGD")
    _add_recipe_options(c)
    add_data_options(c)
    add_json_flag(c)
    c.set_defaults(func=run_compare)


def _add_distribution_options(parser: argparse.ArgumentParser) -> None:
    """``--distribute``, ``--devices`` and ``--mixed-precision`` (docs/training.md: "Training on a cluster")."""
    parser.add_argument("--distribute", choices=("none", "mirrored", "multiworker"), default="none",
                        help="none (default): one device; mirrored: every local GPU (or --devices) in sync; "
                             "multiworker: the machines named by the TF_CONFIG environment variable, each running "
                             "this same command (only the chief, worker 0, writes --out). --batch-size is the "
                             "global batch, split evenly across the replicas")
    parser.add_argument("--devices", metavar="DEV[,DEV...]",
                        help="with --distribute mirrored: the local devices to use, e.g. GPU:0,GPU:1")
    parser.add_argument("--mixed-precision", action="store_true",
                        help="float16 compute with float32 weights (GPU only; refused on a CPU-only machine); "
                             "the output layer and best.keras stay float32")


def _add_recipe_options(parser: argparse.ArgumentParser, shipped: bool = False) -> None:
    """Recipe options; an omitted value comes from the model's recipe (train/recipes.py, plain data,
    which the help strings quote), so --help works without TensorFlow installed. With ``shipped``,
    ``--recipe`` also takes the names of the shipped models' runs (:data:`recipes.SHIPPED_RUNS`).
    Every option defaults to None ("not given"): :func:`_config_from_args` fills in the rest."""
    names = tuple(recipes.RECIPES) + (tuple(recipes.SHIPPED_RUNS) if shipped else ())
    runs = (f"; {', '.join(recipes.SHIPPED_RUNS)}: the exact run that made that shipped model (its model, epochs, "
            "teacher...; options given still win)") if shipped else ""
    parser.add_argument("--recipe", choices=names,
                        help="hyper-parameter set (default: the model's; the airbench nets use airbench, "
                             f"the others classic); the options below override single values{runs}")
    parser.add_argument("--batch-size", type=positive_int, help=f"{_both('batch_size')} (--lr scales with it unless given)")
    parser.add_argument("--lr", type=float_range(0.0, 100.0, lo_open=True),
                        help=f"peak learning rate ({_both('lr')} at batch {_A['batch_size']})")
    parser.add_argument("--optimizer", choices=("sgd", "adamw"), help="SGD-Nesterov (default) or AdamW")
    parser.add_argument("--momentum", type=float_range(0.0, 1.0, hi_open=True), help=f"SGD momentum ({_both('momentum')})")
    parser.add_argument("--weight-decay", type=float_range(0.0, 1.0), help=f"decoupled weight decay ({_both('weight_decay')})")
    parser.add_argument("--schedule", choices=("cosine", "linear"),
                        help=f"cosine: warm-up then cosine (classic); linear: {recipes.LINEAR_START:g}x -> 1x over "
                             f"{recipes.LINEAR_WARMUP_FRACTION:.0%}% of steps -> {recipes.LINEAR_END:g}x (airbench)")
    parser.add_argument("--warmup-epochs", type=float_range(0.0),
                        help=f"linear warm-up epochs of the cosine schedule (classic {_C['warmup_epochs']:g})")
    parser.add_argument("--label-smoothing", type=float_range(0.0, 1.0, hi_open=True), help=_both("label_smoothing"))
    parser.add_argument("--pad", type=int_range(0, 64), help=f"random-translate range in pixels ({_both('pad')})")
    parser.add_argument("--bias-lr-scale", type=float_range(0.0, lo_open=True),
                        help=f"learning-rate multiplier of BatchNorm offsets ({_both('bias_lr_scale')})")
    parser.add_argument("--lookahead", action=argparse.BooleanOptionalAction, default=None,
                        help=f"airbench's Lookahead weight averaging every {recipes.LOOKAHEAD_EVERY} steps "
                             "(airbench on, classic off)")
    parser.add_argument("--photo-augment", action=argparse.BooleanOptionalAction, default=None,
                        help="also soften/sharpen and vary brightness, contrast and saturation as camera pictures "
                             f"shrunk by the SDK differ from CIFAR's JPEGs, on {recipes.PHOTO_PROBABILITY:.0%}% of "
                             "the images (airbench on, classic off)")
    parser.add_argument("--no-augment", action="store_true", help="no random translate / flip (nor photo changes)")
    parser.add_argument("--cutout", type=non_negative_int, metavar="N",
                        help="also zero a random NxN square of each training image (default 0: off)")
    parser.add_argument("--no-bn-recalibrate", action="store_true",
                        help="keep BatchNorm's running statistics as training left them (default: re-estimate them "
                             f"on {recipes.RECALIBRATION_IMAGES:,} un-augmented training images before each validation "
                             "and checkpoint)")
    parser.add_argument("--teacher", metavar="MODEL.keras",
                        help="distil this trained model's soft targets into the new one (knowledge distillation)")
    parser.add_argument("--distill-temperature", type=float_range(0.0, lo_open=True),
                        help=f"softmax temperature of --teacher (default {recipes.DISTILL_TEMPERATURE:g})")
    parser.add_argument("--distill-alpha", type=probability,
                        help=f"weight of the soft-target loss; 1 - alpha goes to the labels (default {recipes.DISTILL_ALPHA:g})")
    parser.add_argument("--camera-augment", action="store_true", default=None,
                        help=f"re-frame {recipes.CAMERA_PROBABILITY:.0%}% of the training images as a camera does: "
                             "the object smaller or larger, "
                             "shifted, another aspect ratio, another white balance (train/outliers.py)")
    parser.add_argument("--outlier-fraction", type=probability, metavar="F",
                        help="outlier exposure: add F x batch-size outlier images (none of the classes, with a uniform "
                             "target) to every batch, made from the training images and --outliers (default 0: off)")
    parser.add_argument("--outliers", metavar="DIR",
                        help="with --outlier-fraction: a folder of real photos of other things; half of them (by file "
                             "name) are trained on, the other half is left for measuring")
    parser.add_argument("--outlier-jpeg", type=int_range(0, 100), metavar="Q",
                        help="with --outlier-fraction: re-compress every outlier as a JPEG of quality Q, the training "
                             "images' own (75 for the CIFAR-10 copy), so that compression artefacts tell nothing "
                             "(default 0: off)")
    parser.add_argument("--resize", choices=RESIZE_MODES,
                        help="how the SDK frames a picture for this model, saved in spec.json and every export "
                             "(default stretch)")
    parser.add_argument("--val-size", type=positive_int,
                        help=f"validation images taken from the training split (default {recipes.DEFAULT_VAL_SIZE:,}, "
                             "or a tenth of the "
                             "training split when that is smaller)")
    parser.add_argument("--seed", type=non_negative_int, help="default 0")
    parser.add_argument("--limit", type=positive_int,
                        help="train on N images (stratified), for quick tests; validation is drawn beside them "
                             "(at most N/4) and the test split is still scored in full (see --eval-limit)")
    parser.add_argument("--eval-limit", type=positive_int, metavar="N",
                        help="score the test split on N images (stratified) instead of all of it")


def _config_from_args(args: argparse.Namespace, model: str, epochs: int, out: str):
    """The run's :class:`~cifar_edge.train.training.TrainConfig`: the options given, over the
    shipped run that ``--recipe`` names (if it names one), over ``TrainConfig``'s defaults."""
    from .training import TrainConfig

    given = dict(
        data=args.data, cache_dir=args.cache_dir, recipe=args.recipe, batch_size=args.batch_size, lr=args.lr,
        optimizer=args.optimizer, momentum=args.momentum, weight_decay=args.weight_decay, schedule=args.schedule,
        warmup_epochs=args.warmup_epochs, label_smoothing=args.label_smoothing, pad=args.pad,
        bias_lr_scale=args.bias_lr_scale, lookahead=args.lookahead, photo_augment=args.photo_augment,
        augment=False if args.no_augment else None, cutout=args.cutout,
        bn_recalibrate=False if args.no_bn_recalibrate else None, teacher=args.teacher,
        distill_temperature=args.distill_temperature, distill_alpha=args.distill_alpha, val_size=args.val_size,
        seed=args.seed, limit=args.limit, eval_limit=args.eval_limit, patience=getattr(args, "patience", None),
        keep_last=getattr(args, "keep_last", None),
        init_from=getattr(args, "init_from", None), qat=getattr(args, "qat", None), camera_augment=args.camera_augment,
        outlier_fraction=args.outlier_fraction, outliers=args.outliers, outlier_jpeg=args.outlier_jpeg,
        resize=args.resize,
    )
    values = {**_shipped_run(args), **{k: v for k, v in given.items() if v is not None}}
    if args.recipe in recipes.SHIPPED_RUNS:
        values["recipe"] = recipes.SHIPPED_RUNS[args.recipe]["recipe"]
    values.update(model=model, epochs=epochs, out=out, command=shlex.join(["cifar-edge", *sys.argv[1:]]))
    return TrainConfig(**values)


def train_config(args: argparse.Namespace):
    """The :class:`~cifar_edge.train.training.TrainConfig` of a parsed ``cifar-edge train`` command
    (``--model``, ``--epochs`` and ``--out`` filled in as the command fills them)."""
    model, epochs = _model_and_epochs(args)
    return _config_from_args(args, model, epochs, args.out or f"runs/{model}")


def _model_and_epochs(args: argparse.Namespace) -> tuple[str, int]:
    shipped = _shipped_run(args)
    return (args.model or shipped.get("model", recipes.DEFAULT_MODEL),
            args.epochs or shipped.get("epochs", recipes.EPOCHS))


def _shipped_run(args: argparse.Namespace) -> dict[str, Any]:
    """The :data:`~cifar_edge.train.recipes.SHIPPED_RUNS` entry ``--recipe`` names, or ``{}``.

    Raises :class:`EdgeSDKError` when ``--model`` names another model than the entry's."""
    entry = dict(recipes.SHIPPED_RUNS.get(getattr(args, "recipe", None) or "", {}))
    if entry and getattr(args, "model", None) not in (None, entry["model"]):
        raise EdgeSDKError(f"--recipe {args.recipe} trains --model {entry['model']}; leave --model out "
                           f"(or name a plain recipe: {', '.join(recipes.RECIPES)})")
    return entry


def run_train(args: argparse.Namespace) -> int:
    if args.list_models:  # from the catalog: no TensorFlow needed, answers at once
        emit({"models": catalog_rows()}, args.json, _render_models)
        return 0
    shipped = _shipped_run(args)
    model, epochs = _model_and_epochs(args)
    if model not in model_names():
        raise EdgeSDKError(f"unknown model '{model}'; choose one of: {', '.join(model_names())}")
    cluster = _cluster_from_env(args)
    out = args.out or f"runs/{model}"
    if not args.resume:  # a resumed run trains on the data it started with
        if cluster is None or cluster.is_chief:  # other workers write into a temporary folder
            check_output_folder(out, f"--out {out}")
        for given in (args.init_from or shipped.get("init_from"), args.teacher or shipped.get("teacher")):
            if given:
                check_keras_file(given)
        check_data_early(args)
    _require_training_stack()
    from .training import train

    distribution = _start_distribution(args, cluster)
    config = train_config(args)
    summary = train(config, resume=args.resume, distribution=distribution)
    emit(summary, args.json, _render_summary if summary.get("role") != "worker" else _render_worker)
    return 0


def _cluster_from_env(args: argparse.Namespace):
    """The parsed ``TF_CONFIG`` of a ``--distribute multiworker`` run (checked before TensorFlow loads), else None."""
    if args.devices and args.distribute != "mirrored":
        raise EdgeSDKError("--devices applies to --distribute mirrored only")
    if args.distribute != "multiworker" or args.list_models:
        return None
    from .tf_config import TF_CONFIG_ENV, parse_tf_config

    return parse_tf_config(os.environ.get(TF_CONFIG_ENV))


def _start_distribution(args: argparse.Namespace, cluster):
    """The run's strategy, and the mixed-precision policy when asked for.

    Both are process-wide (a multi-worker strategy starts this process's gRPC server and waits for
    the cluster; the dtype policy is global in Keras), so the command sets them, not the library.
    """
    import keras

    from .distribute import make_distribution
    from .precision import MIXED_POLICY, check_mixed_precision

    devices = [d.strip() for d in args.devices.split(",") if d.strip()] if args.devices else None
    if args.mixed_precision:
        check_mixed_precision(devices)
    distribution = make_distribution(args.distribute, devices, cluster)
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy(MIXED_POLICY)
    return distribution


def _render_worker(s: dict[str, Any]) -> str:
    d = s["distribution"]
    return (f"worker {s['task_index']} of {d['workers']}: {s['epochs']} epochs done; the chief wrote the run folder\n"
            f"final weights sha256 {s['final_weights_sha256']}")


def _render_models(result: dict[str, Any]) -> str:
    width = max(len("model"), *(len(r["name"]) for r in result["models"]))
    lines = [f"{'model':<{width}} {'params':>12} {'MACs':>14}  description"]
    for r in result["models"]:
        lines.append(f"{r['name']:<{width}} {r['params']:>12,} {r['macs']:>14,}  {r['description']}")
    return "\n".join(lines)


def _render_summary(s: dict[str, Any]) -> str:
    return (
        f"model {s['model']}: {s['params']:,} params, {s['macs']:,} MACs\n"
        f"epochs {s['epochs']} (best {s['best_epoch']}), wall {s['train_wall_s']:.0f} s, "
        f"{s['images_per_s_median']:.0f} images/s, {s['cpu_ms_per_image_median']:.2f} CPU ms/image\n"
        f"validation accuracy {s['val_accuracy']:.4f} loss {s['val_loss']:.4f}\n"
        f"{s['test_split']} accuracy {s['test_accuracy']:.4f} loss {s['test_loss']:.4f} on {s['test_images']:,} images\n"
        f"run folder: {s['config']['out']}"
    )


def run_evaluate(args: argparse.Namespace) -> int:
    from edge_sdk.bundled import BUNDLED

    if args.model in BUNDLED or Path(args.model).suffix.lower() in (".tflite", ".onnx"):
        return _evaluate_exported(args)
    if args.backend:
        raise EdgeSDKError("--backend applies to an exported .tflite/.onnx file, not to a .keras model")
    check_keras_file(args.model)
    check_data_early(args)
    _require_training_stack()
    from .evaluation import keras_probabilities
    from .training import load_keras_model, load_spec_beside

    model = load_keras_model(args.model)
    spec = load_spec_beside(args.model)
    data, unknown = _evaluation_data(args, spec)
    probabilities = lambda images: keras_probabilities(model, images, spec, batch_size=args.batch_size)  # noqa: E731
    probs = _in_steps(probabilities, data.images, args.batch_size, wanted(args.json))
    return _report_evaluation(args, data, probs, spec, unknown=_unknown_probabilities(unknown, probabilities))


def _in_steps(probabilities, images, step: int, bars: bool):
    """``probabilities(images)`` computed ``step`` images at a time, with a progress bar when ``bars``."""
    import numpy as np

    parts = []
    with progress_bar(len(images), "evaluating", bars, unit="img") as bar:
        for start in range(0, len(images), step):
            parts.append(probabilities(images[start : start + step]))
            bar.update(len(parts[-1]))
    return np.concatenate(parts) if parts else probabilities(images[:0])


def _evaluate_exported(args: argparse.Namespace) -> int:
    """``evaluate`` of a .tflite/.onnx file through :class:`edge_sdk.Classifier`: the runtime, the
    embedded labels and preprocessing a device uses; TensorFlow is never imported."""
    from cifar_edge.cli.main import quiet_runtime
    from edge_sdk.classifier import Classifier

    check_data_early(args)
    with quiet_runtime(args):
        clf = Classifier(args.model, backend=args.backend)
    data, unknown = _evaluation_data(args, clf.spec)
    clf.batch_chunk = args.batch_size
    runtime = clf.backend_name
    with clf:
        probs = _in_steps(clf.probabilities_batch, data.images, args.batch_size, wanted(args.json))
        unknown_probs = _unknown_probabilities(unknown, clf.probabilities_batch)
    return _report_evaluation(args, data, probs, clf.spec, runtime=runtime, unknown=unknown_probs)


def _unknown_probabilities(unknown, probabilities):
    """``(probabilities of the unknown pictures, skipped paths)``, or None when there are none."""
    if unknown is None:
        return None
    images, skipped = unknown
    return probabilities(images), skipped


def _evaluation_data(args: argparse.Namespace, spec: PreprocessSpec):
    """The split to evaluate at the model's input size and resize mode (``spec``), its classes in the
    model's label order (a folder may hold only some of them), ``--limit`` applied; and, when the data
    folder has ``unknown/``, its pictures (``--unknown-half`` applied) with the paths of those skipped.

    Raises :class:`DatasetError` naming the model's labels and the data set's when they do not match.
    """
    from . import open_set

    from cifar_edge.cli.errors import DatasetError

    from .cli_options import source_from_args
    from .data import stratified_indices

    labels = spec.labels
    source = source_from_args(args)
    try:
        data = source.load(args.split, labels, spec=spec)
    except DatasetError as exc:
        raise DatasetError(
            f"{exc}. The model's labels are: {', '.join(labels)}; evaluate it on the data set it was trained "
            f"on (--data DIR; now {source.path})"
        ) from exc
    if args.limit is not None and args.limit < len(data):
        data = data.subset(stratified_indices(data.labels, args.limit, 0))
    folder = open_set.unknown_folder(source.path if source.kind == "image-folder" else None)
    if folder is None:
        return data, None
    try:
        files = open_set.outlier_photo_files(folder, getattr(args, "unknown_half", None))
    except OSError as exc:
        raise DatasetError(f"cannot list {folder}: {exc}") from exc
    return data, open_set.load_photos(files, spec)


def _report_evaluation(args: argparse.Namespace, data, probs, spec: PreprocessSpec, runtime: str = "keras",
                       unknown=None) -> int:
    from .evaluation import classification_metrics
    from .open_set import open_set_metrics

    result = {"model": args.model, "runtime": runtime, "split": args.split, "resize": spec.resize,
              **classification_metrics(probs, data.labels, spec.labels)}
    result["skipped_files"] = [s.path for s in data.skipped]
    if unknown is not None:
        unknown_probs, skipped = unknown
        result["open_set"] = open_set_metrics(probs, unknown_probs, spec.unknown_threshold, spec.unknown_score)
        result["open_set"]["unknown_half"] = getattr(args, "unknown_half", None)
        result["skipped_files"] += skipped
    emit(result, args.json, _render_evaluation)
    return 0


def _render_evaluation(r: dict[str, Any]) -> str:
    names = r["class_names"]
    width = max(12, *(len(n) for n in names))
    cell = max(5, max((len(str(v)) for row in r["confusion_matrix"] for v in row), default=1) + 1)
    lines = [
        f"{r['model']} ({r['runtime']}) on {r['split']} ({r['images']:,} images): accuracy {r['accuracy']:.4f}, "
        f"macro {r['macro_accuracy']:.4f}, loss {r['loss']:.4f}",
        "",
        f"{'':<{width}} {'':>9}   confusion matrix: rows = true class, columns = predicted class",
        f"{'class':<{width}} {'accuracy':>9}   " + " ".join(f"{n[:cell - 1]:>{cell}}" for n in names),
    ]
    for i, name in enumerate(names):
        acc = r["per_class_accuracy"][name]
        row = " ".join(f"{v:>{cell}}" for v in r["confusion_matrix"][i])
        lines.append(f"{name:<{width}} {('-' if acc is None else f'{acc:.4f}'):>9}   {row}")
    if r.get("open_set"):
        lines += ["", render_open_set(r["open_set"])]
    return "\n".join(lines)


def render_open_set(o: dict[str, Any]) -> str:
    """One paragraph of open-set figures (:func:`~cifar_edge.train.open_set.open_set_metrics`)."""
    pct = lambda v: "-" if v is None else f"{v:.1%}"  # noqa: E731
    half = "" if o.get("unknown_half") is None else f" (half {o['unknown_half']})"
    threshold = "none" if o["threshold"] is None else f"{o['threshold']:.3f}"
    return (f"open set: {o['known_images']} known vs {o['unknown_images']} unknown pictures{half}: "
            f"AUROC {pct(o['auroc'])} ({o['score']}); at the model's threshold ({threshold}) unknown rejected "
            f"{pct(o['unknown_rejected'])}, known rejected {pct(o['known_rejected'])}; unknown still labelled "
            f"when 90%/95% of known are kept: {pct(o['unknown_accepted_at_known_90'])}/"
            f"{pct(o['unknown_accepted_at_known_95'])}")


def run_compare(args: argparse.Namespace) -> int:
    _require_training_stack()
    from .compare import compare_runs

    model_names = [m.strip() for m in args.models.split(",") if m.strip()]
    budgets = args.epochs  # parsed and range-checked by int_list
    configs = [
        _config_from_args(args, m, e, f"{args.out}/{m}-e{e}") for m in model_names for e in budgets
    ]
    variants = None
    if args.ablate:
        from .compare import ablation_configs

        pairs = [pair for base in configs for pair in ablation_configs(base)]
        variants, configs = [name for name, _ in pairs], [config for _, config in pairs]
    result = compare_runs(configs, args.out, variants)
    emit(result, args.json, lambda r: r["markdown"], trusted_text=True)  # the tool's own table
    return 0
