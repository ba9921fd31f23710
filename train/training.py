"""Training runs: data split, the recipe, checkpoints, resume and the run report.

A run folder holds everything a run produced::

    best.keras          best validation model (written atomically)
    last.keras          last finished epoch, with optimizer state (for --resume)
    state.json          config, finished epochs, best score (for --resume)
    spec.json           the preprocessing spec the model expects
    history.csv/.json   per-epoch metrics, learning rate, wall and CPU time
    curves.png, confusion_matrix.png/.json, per_class_accuracy.json, predictions.png
    summary.json, model_summary.txt

A distributed run (:mod:`cifar_edge.train.distribute`) writes these files on its chief only; every other
worker writes the same files into a temporary folder that is removed when it ends, and returns a
short summary (its role and the digest of its final weights) instead of the report.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from cifar_edge.cli.atomic import atomic_open, atomic_path, remove_stale_parts, write_text_atomic
from edge_sdk.errors import EdgeSDKError, ModelLoadError
from cifar_edge.cli.errors import DatasetError
from edge_sdk.spec import PreprocessSpec
from cifar_edge.cli.terminal import strict_json

from .model_file import check_keras_file
from .data import ImageSet, resolve_source, stratified_indices, train_val_split

log = logging.getLogger(__name__)

# TensorFlow's C++ log level is the command's business (cifar_edge.cli.main.main sets it), not the library's.
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from . import airbench, distill, models, optim, plots, precision, qat, recipes  # noqa: E402  (qat: its layers load)
from .distribute import (  # noqa: E402
    AverageMovingStatistics, Distribution, broadcast_from_chief, check_batch_split, check_same_run, distribute_input,
    fit_input, local_distribution, lost_worker_errors, run_folder, share_run_files,
)
from .evaluation import classification_metrics, keras_probabilities  # noqa: E402
from .pipeline import make_dataset  # noqa: E402
from .run_state import load_state  # noqa: E402
from .recipes import (  # noqa: E402  (every number of a run, commented, in the recipe table)
    DEFAULT_VAL_SIZE, DISTILL_ALPHA, DISTILL_TEMPERATURE, EPOCHS, QAT_CALIBRATION_IMAGES, RECALIBRATION_IMAGES, WHITENING_IMAGES,
)
from .schedule import WarmupCosine  # noqa: E402

STATE_FILE = "state.json"
#: Every file a run writes (each atomically: complete or absent, even when the run is killed).
RUN_FILES = (
    "best.keras", "last.keras", STATE_FILE, "spec.json", "history.csv", "history.json", "curves.png",
    "confusion_matrix.png", "confusion_matrix.json", "per_class_accuracy.json", "predictions.png", "summary.json",
    "model_summary.txt",
)


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved in ``state.json`` for --resume)."""

    model: str = "resnet8"
    out: str = "runs/resnet8"
    data: str | None = None
    cache_dir: str | None = None
    epochs: int = EPOCHS
    recipe: str | None = None  # train.recipes.RECIPES key; None: the model's registered recipe
    # None below means "the recipe's value" (train.recipes.RECIPES); resolved when the run starts.
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str = "sgd"  # "sgd" (Nesterov) or "adamw"
    momentum: float | None = None
    weight_decay: float | None = None  # decoupled (Keras applies w -= lr * wd * w)
    schedule: str | None = None  # "cosine" (warm-up + cosine) or "linear" (airbench's triangle)
    warmup_epochs: float | None = None
    label_smoothing: float | None = None
    pad: int | None = None  # random-translate range in pixels (reflected border)
    bias_lr_scale: float | None = None  # learning-rate multiplier of BatchNorm offsets
    lookahead: bool | None = None
    decay_norm_params: bool | None = None  # weight decay also on BatchNorm offsets and biases
    photo_augment: bool | None = None  # soften/sharpen and colour changes of the deployment path (pipeline._photo)
    augment: bool = True
    cutout: int = 0  # side of the random square zeroed in each training image (0: off)
    teacher: str | None = None  # a trained .keras whose soft targets are distilled into the model
    distill_temperature: float = DISTILL_TEMPERATURE
    distill_alpha: float = DISTILL_ALPHA  # weight of the soft-target loss (1 - alpha on the hard labels)
    bn_recalibrate: bool = True  # re-estimate BatchNorm statistics on un-augmented images before saving
    val_size: int | None = None  # None: DEFAULT_VAL_SIZE, or a tenth of the training split when smaller
    seed: int = 0
    limit: int | None = None  # train on this many images (stratified); validation comes from the rest
    eval_limit: int | None = None  # score the test split on this many images (stratified); None: all of it
    patience: int | None = None
    keep_last: bool = False  # best.keras holds the last epoch's weights, not those of the best validation accuracy
    init_from: str | None = None  # a trained .keras of the same architecture to start from (fine-tuning)
    qat: bool = False  # fine-tune init_from quantization-aware (train/qat.py): the int8 files then match it
    camera_augment: bool = False  # re-frame a share of the images as a camera does (outliers.camera_frame)
    outlier_fraction: float = 0.0  # outliers added per batch, as a share of the batch (0: no outlier exposure)
    outliers: str | None = None  # a folder of real photos of other things; half 0 of it is trained on
    outlier_jpeg: int = 0  # re-compress outliers as JPEGs of this quality (the training images' own; 0: not)
    resize: str = "stretch"  # how the SDK frames a picture for this model (saved in spec.json, so in its exports)
    command: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def resolved(self) -> TrainConfig:
        """A copy with the recipe named and every ``None`` hyper-parameter set from it.

        Raises :class:`EdgeSDKError` for an unknown recipe name.
        """
        name = self.recipe or models.recipe_of(self.model)
        if name not in recipes.RECIPES:
            raise EdgeSDKError(f"unknown recipe {name!r}; choose one of: {', '.join(recipes.RECIPES)}")
        values = recipes.resolve(name, {k: getattr(self, k) for k in recipes.RECIPE_KEYS})
        return replace(self, recipe=name, **values)


@dataclass
class SplitData:
    train: ImageSet
    val: ImageSet
    test: ImageSet | None
    source: str = ""


def load_splits(config: TrainConfig) -> SplitData:
    """Training/validation split (stratified, seeded) and the test split.

    ``limit`` caps the training images only (validation is drawn beside them, at most a quarter of
    ``limit``); ``eval_limit`` caps the test split, which is otherwise scored in full.
    """
    source = resolve_source(config.data, cache_dir=config.cache_dir, progress=sys.stderr.isatty())
    full = source.load("train")
    requested = config.val_size if config.val_size is not None else min(DEFAULT_VAL_SIZE, len(full) // 10)
    requested = max(requested, len(full.class_names))  # at least one image per class
    if config.limit is not None:
        if config.limit < 2 * len(full.class_names):
            raise DatasetError(f"--limit {config.limit} is too small: need at least 2 images per class")
        val_size = min(requested, max(len(full.class_names), config.limit // 4))
        full = full.subset(stratified_indices(full.labels, min(len(full), config.limit + val_size), config.seed))
    else:
        val_size = requested
    train, val = train_val_split(full, val_size, config.seed)
    test = None
    if "test" in source.splits():
        test = source.load("test", full.class_names)
        if config.eval_limit is not None and config.eval_limit < len(test):
            test = test.subset(stratified_indices(test.labels, config.eval_limit, config.seed))
    return SplitData(train, val, test, f"{source.kind} {source.path} (from {source.origin})")


def build_optimizer(config: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """SGD-Nesterov (BatchNorm offsets at ``bias_lr_scale`` x the rate) or AdamW, decoupled weight
    decay, and the recipe's schedule (warm-up + cosine, or airbench's linear triangle)."""
    total = config.epochs * steps_per_epoch
    if config.schedule == "linear":
        schedule = optim.LinearWarmupDecay(peak=config.lr, total_steps=total)
    elif config.schedule == "cosine":
        schedule = WarmupCosine(peak=config.lr, total_steps=total, warmup_steps=round(config.warmup_epochs * steps_per_epoch))
    else:
        raise EdgeSDKError(f"unknown schedule {config.schedule!r}; choose 'cosine' or 'linear'")
    if config.optimizer == "sgd":
        opt = optim.BiasScaledSGD(schedule, momentum=config.momentum, nesterov=True, weight_decay=config.weight_decay,
                                   bias_lr_scale=config.bias_lr_scale)
    elif config.optimizer == "adamw":
        opt = keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay)
    else:
        raise EdgeSDKError(f"unknown optimizer {config.optimizer!r}; choose 'sgd' or 'adamw'")
    if not config.decay_norm_params:
        # In the classic recipe weight decay on BatchNorm scales/offsets and biases only hurts.
        opt.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    return opt


def save_keras_atomic(model: keras.Model, path: Path) -> None:
    """Save a ``.keras`` file so that ``path`` is always a complete file or absent."""
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)


def load_keras_model(path: str | os.PathLike[str], compile: bool = False) -> keras.Model:
    """Load a ``.keras`` model in safe mode; raise :class:`ModelLoadError` naming the problem."""
    check_keras_file(path)
    try:
        return keras.models.load_model(path, compile=compile, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a bad file
        raise ModelLoadError(f"cannot load Keras model {path}: {exc}") from exc


def sample_images(images: ImageSet, n: int, seed: int) -> np.ndarray:
    """Up to ``n`` of ``images``, stratified over the classes, in a seeded random order, as floats.

    The splits are sorted by class: their first ``n`` images are often all one class, and
    batch statistics of class-sorted batches underestimate the variance of the mixed data.
    """
    picked = stratified_indices(images.labels, min(n, len(images)), seed)
    return images.images[np.random.default_rng(seed).permutation(picked)].astype(np.float32)


def new_model(config: TrainConfig, spec: PreprocessSpec, train_images: ImageSet | None = None) -> keras.Model:
    """The run's model, freshly initialized or (``config.init_from``) starting from a trained one's weights,
    rebuilt for quantization-aware training with ``config.qat`` (:func:`~cifar_edge.train.qat.quantize_aware`).

    A model with a whitening layer takes its filters from a class-stratified sample of ``train_images``.
    """
    model = models.build_model(config.model, input_shape=(*spec.input_size, 3), num_classes=spec.num_classes)
    model = precision.with_float32_output(model)  # a model built under a mixed-precision policy
    if config.qat and not config.init_from:
        raise EdgeSDKError("--qat fine-tunes a trained model: give it with --init-from")
    if config.qat and keras.config.dtype_policy().name == precision.MIXED_POLICY:
        raise EdgeSDKError("--qat simulates int8 arithmetic in float32: run it without --mixed-precision")
    if config.init_from:
        source = load_keras_model(config.init_from)
        if qat.is_quantize_aware(source):
            raise EdgeSDKError(f"--init-from {config.init_from} is already quantization-aware: start from its float model")
        copy_weights(source, model, config.init_from)
        if config.qat:
            if train_images is None:
                raise EdgeSDKError("--qat needs the training images to measure activation ranges")
            sample = sample_images(train_images, QAT_CALIBRATION_IMAGES, config.seed)
            model = qat.quantize_aware(model, np.asarray(spec.normalize(sample)))
    elif airbench.has_whitening(model) and train_images is not None:
        sample = sample_images(train_images, WHITENING_IMAGES, config.seed)
        airbench.init_whitening(model, np.asarray(spec.normalize(sample)))
    return model


def copy_weights(source: keras.Model, target: keras.Model, source_name: str) -> None:
    """Start ``target`` from ``source``'s weights; raise :class:`EdgeSDKError` unless the architectures match."""
    src, dst = source.get_weights(), target.get_weights()
    if len(src) != len(dst) or any(a.shape != b.shape for a, b in zip(src, dst)):
        raise EdgeSDKError(
            f"--init-from {source_name}: its weights do not fit the {target.name!r} model "
            f"({len(src)} tensors vs {len(dst)}, or different shapes); start from a model of the same --model"
        )
    target.set_weights(src)


def load_spec_beside(model_path: str | os.PathLike[str]) -> PreprocessSpec:
    """The preprocessing spec saved next to a model (``spec.json``), or CIFAR-10's default.

    Raises :class:`~edge_sdk.errors.MetadataError` for a malformed spec or one whose layout is not the
    Keras model's (NHWC)."""
    spec_file = Path(model_path).with_name("spec.json")
    if spec_file.is_file():
        spec = PreprocessSpec.from_json(spec_file.read_text(encoding="utf-8"))
        spec.require_channels_last(str(spec_file))
        return spec
    log.warning("no spec.json beside %s; assuming the default CIFAR-10 preprocessing", model_path)
    return PreprocessSpec()


RECALIBRATION_BATCH = 500


def recalibrate_batchnorm(model: keras.Model, images: np.ndarray, batch_size: int = RECALIBRATION_BATCH) -> None:
    """Set every BatchNorm layer's moving mean/variance to the average of its batch statistics on
    ``images`` (normalized floats), with the weights unchanged.

    A short run (or a slow momentum such as Keras's 0.99) saves statistics that lag the weights;
    this pass makes the saved model and its exports evaluate as its weights deserve.
    """
    layers = [layer for layer in models.iter_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    if not layers or len(images) == 0:
        return
    saved = [layer.momentum for layer in layers]
    try:
        for k, start in enumerate(range(0, len(images), batch_size)):
            for layer in layers:
                layer.momentum = k / (k + 1)  # running mean of the per-batch statistics
            model(images[start:start + batch_size], training=True)
    finally:
        for layer, momentum in zip(layers, saved):
            layer.momentum = momentum


class BatchNormRecalibration(keras.callbacks.Callback):
    """Re-estimate BatchNorm statistics before each validation pass, so validation accuracy, the
    best-epoch choice and the saved checkpoints all use statistics that match the weights."""

    def __init__(self, images: np.ndarray) -> None:
        super().__init__()
        self.images = images

    def on_test_begin(self, logs=None) -> None:
        recalibrate_batchnorm(self.model, self.images)


class RunRecorder(keras.callbacks.Callback):
    """Per epoch: timing, learning rate, history files, best and last checkpoints, resumable state."""

    def __init__(self, run_dir: Path, config: TrainConfig, train_images: int, state: dict[str, Any]) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.config = config
        self.train_images = train_images
        self.state = state
        self._t0 = 0.0
        self._c0 = 0.0

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self._t0, self._c0 = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        wall = time.perf_counter() - self._t0
        cpu = time.process_time() - self._c0
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
        row["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row["wall_s"] = round(wall, 3)
        row["images_per_s"] = round(self.train_images / wall, 1)
        row["cpu_ms_per_image"] = round(1000 * cpu / self.train_images, 4)
        history = self.state.setdefault("history", [])
        history.append(row)
        if self.config.keep_last or row.get("val_accuracy", -1.0) > self.state.get("best_val_accuracy", -1.0):
            self.state["best_val_accuracy"] = row["val_accuracy"]
            self.state["best_epoch"] = epoch + 1
            save_keras_atomic(precision.float32_copy(self.model), self.run_dir / "best.keras")
        save_keras_atomic(self.model, self.run_dir / "last.keras")
        self.state["epochs_done"] = epoch + 1
        write_history(self.run_dir, history)
        write_json(self.run_dir / STATE_FILE, self.state)


def write_json(path: Path, data: Any) -> None:
    """Write strict JSON atomically (a diverged run's NaN losses become ``null``)."""
    write_text_atomic(path, strict_json(data, indent=2) + "\n")


def write_history(run_dir: Path, history: list[dict[str, Any]]) -> None:
    """history.csv and history.json, one row per finished epoch."""
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    with atomic_open(run_dir / "history.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)
    write_json(run_dir / "history.json", history)


def _history_columns(history: list[dict[str, Any]]) -> dict[str, list[float]]:
    keys = {k for row in history for k in row}
    return {k: [row.get(k, float("nan")) for row in history] for k in keys if k != "epoch"}


#: What a worker needs from the chief to resume (its own temporary folder is gone).
RESUME_FILES = (STATE_FILE, "last.keras")
#: Options that may differ between the workers of one run (paths on each machine, the command line).
MACHINE_KEYS = ("out", "data", "cache_dir", "command", "teacher", "init_from", "outliers", "extra")


def train(config: TrainConfig, resume: bool = False, distribution: Distribution | None = None) -> dict[str, Any]:
    """Train (or resume) a run into ``config.out``; return the summary that is also written to summary.json.

    ``distribution`` (:func:`cifar_edge.train.distribute.make_distribution`; default: one device) runs it on
    several devices or workers: the model, its compilation, the optimizer, the callbacks' state and
    the input pipelines are all created under its strategy's scope, ``config.batch_size`` is the
    global batch, and only the chief writes ``config.out``; every other worker returns
    ``{"role": "worker", ...}`` with the digest of its final weights instead of the report.

    Raises :class:`EdgeSDKError` for a bad configuration or data (before anything is written),
    :class:`~cifar_edge.train.errors.DistributedTrainingError` for a batch that does not split across the
    replicas or a worker lost mid-run (every epoch finished before it is kept for ``resume``).
    """
    distribution = distribution or local_distribution()
    with run_folder(distribution, config.out) as run_dir:
        with lost_worker_errors(distribution, lambda: _epochs_done(run_dir)):
            return _train(config, resume, distribution, run_dir)


def _epochs_done(run_dir: Path) -> int:
    state_file = run_dir / STATE_FILE
    return json.loads(state_file.read_text(encoding="utf-8")).get("epochs_done", 0) if state_file.is_file() else 0


def _train(config: TrainConfig, resume: bool, distribution: Distribution, run_dir: Path) -> dict[str, Any]:
    state: dict[str, Any]
    check_same_run(distribution, {"resume": resume})  # before the collectives only a resumed run makes
    if resume:
        share_run_files(distribution, run_dir, RESUME_FILES)
        state_file = run_dir / STATE_FILE
        if not state_file.is_file() or not (run_dir / "last.keras").is_file():
            raise EdgeSDKError(f"nothing to resume in {config.out}: no {STATE_FILE} and last.keras from a previous run")
        state = load_state(state_file, TrainConfig)  # the schema checked: one clear error naming the field
        _check_same_dtype_policy(state, config.out)
        saved = TrainConfig.from_dict(state["config"])
        saved.command = config.command or saved.command
        saved.out = config.out  # the chief's folder, also where a worker's copy came from
        config = saved
    else:
        if (run_dir / STATE_FILE).exists():
            raise EdgeSDKError(f"{run_dir} already holds a run; use --resume to continue it or choose another --out")
        state = {"config": asdict(config), "epochs_done": 0, "history": []}
    if not 0 <= config.cutout < 32:
        raise EdgeSDKError(f"--cutout must be between 0 (off) and 31 pixels, got {config.cutout}")
    if not 0.0 <= config.outlier_fraction <= 1.0:
        raise EdgeSDKError(f"--outlier-fraction must lie in [0, 1], got {config.outlier_fraction}")
    if not 0 <= config.outlier_jpeg <= 100:
        raise EdgeSDKError(f"--outlier-jpeg must lie in [0, 100] (0: off), got {config.outlier_jpeg}")
    config = config.resolved()
    check_batch_split(config.batch_size, distribution)
    state["config"] = asdict(config)
    state["distribution"] = {**distribution.describe(config.batch_size),
                             "dtype_policy": keras.config.dtype_policy().name}
    keras.utils.set_random_seed(config.seed)
    data = load_splits(config)  # before the run folder exists: a data error leaves nothing behind
    spec = PreprocessSpec(labels=data.train.class_names, resize=config.resize)
    outlier_stream = _outlier_stream(config, data, spec)
    check_same_run(distribution, {**{k: v for k, v in state["config"].items() if k not in MACHINE_KEYS},
                                  "train_images": len(data.train), "val_images": len(data.val),
                                  "classes": list(spec.labels), "epochs_done": state["epochs_done"]})
    resuming = resume and state["epochs_done"] > 0
    teacher = load_keras_model(config.teacher) if config.teacher else None
    if teacher is not None and tuple(teacher.output.shape)[-1] != spec.num_classes:
        raise EdgeSDKError(f"--teacher {config.teacher} has {teacher.output.shape[-1]} outputs; the data has "
                           f"{spec.num_classes} classes")
    # the teacher predicts on this machine, outside the strategy (its predictions are not a distributed step)
    soft_targets = None if teacher is None else distill.teacher_targets(teacher, data.train.images, spec)
    with distribution.strategy.scope():
        # a bad --init-from also fails before any write
        model = None if resuming else new_model(config, spec, data.train)
        run_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_parts(run_dir, RUN_FILES)  # temporary files of a run killed while saving
        write_text_atomic(run_dir / "spec.json", spec.to_json() + "\n")
        train_ds = make_dataset(
            data.train.images, data.train.labels, spec, batch_size=config.batch_size, training=True,
            augment=config.augment, seed=config.seed, cutout=config.cutout if config.augment else 0, pad=config.pad,
            photo=bool(config.photo_augment), camera=config.camera_augment and config.augment,
            soft_targets=soft_targets, outliers=outlier_stream,
            outlier_batch=round(config.outlier_fraction * config.batch_size),
        )
        val_ds = distribute_input(make_dataset(data.val.images, data.val.labels, spec, batch_size=512, training=False))
        steps_per_epoch = -(-len(data.train) // config.batch_size)
        model = _compiled_model(model, config, spec, teacher is not None, run_dir, state, steps_per_epoch)
        callbacks = _callbacks(config, data, spec, run_dir, state, steps_per_epoch, distribution)
        start = time.perf_counter()
        if state["epochs_done"] < config.epochs:
            # Progress bars go to stderr so stdout carries only the result (one JSON object with --json).
            with contextlib.redirect_stdout(sys.stderr):
                model.fit(
                    fit_input(train_ds),
                    validation_data=val_ds,
                    epochs=config.epochs,
                    initial_epoch=state["epochs_done"],
                    callbacks=callbacks,
                    verbose=1 if sys.stderr.isatty() else 2,
                    shuffle=False,  # the dataset shuffles itself, seeded
                )
    state["train_wall_s"] = state.get("train_wall_s", 0.0) + (time.perf_counter() - start)
    state["final_weights_sha256"] = weights_sha256(model)
    write_json(run_dir / STATE_FILE, state)
    if not distribution.is_chief:
        # wait for the chief's report, so that no worker leaves while the chief may still need it
        chief = json.loads(broadcast_from_chief(distribution, None) or b"{}")
        return {"role": "worker", "task_index": distribution.task_index, "epochs": len(state["history"]),
                "final_weights_sha256": state["final_weights_sha256"], "distribution": state["distribution"],
                "chief_final_weights_sha256": chief.get("final_weights_sha256")}
    summary = write_report(run_dir, config, state, data, spec)
    if distribution.workers > 1:
        done = {"final_weights_sha256": summary["final_weights_sha256"]}
        broadcast_from_chief(distribution, json.dumps(done).encode())
    return summary


def _outlier_stream(config: TrainConfig, data: SplitData, spec: PreprocessSpec) -> tf.data.Dataset | None:
    """The outlier images of an outlier-exposure run (``outlier_fraction`` > 0), else ``None``.

    Raises :class:`EdgeSDKError` when the ``outliers`` folder cannot be read or holds no picture."""
    if config.outlier_fraction <= 0:
        return None
    from . import open_set, outliers

    photos = np.zeros((0, *spec.input_size, 3), np.uint8)
    if config.outliers:
        try:
            files = open_set.outlier_photo_files(config.outliers, half=0)
        except OSError as exc:
            raise EdgeSDKError(f"--outliers {config.outliers}: cannot list the folder: {exc}") from exc
        photos, skipped = open_set.load_photos(files, spec)
        if not len(photos):
            raise EdgeSDKError(f"--outliers {config.outliers}: no usable pictures in its training half")
        if skipped:
            log.warning("outlier exposure: skipped %d unreadable pictures: %s", len(skipped), ", ".join(skipped[:5]))
        log.info("outlier exposure: %d real photos from %s and synthetic outliers", len(photos), config.outliers)
    return outliers.outlier_dataset(data.train.images, photos, config.seed, jpeg_quality=config.outlier_jpeg)


def _check_same_dtype_policy(state: dict[str, Any], out: str) -> None:
    """Raise :class:`EdgeSDKError` unless Keras's dtype policy is the one the run was trained with:
    last.keras holds a loss-scale optimizer only under mixed precision, and its state would be lost."""
    saved = state.get("distribution", {}).get("dtype_policy", "float32")
    current = keras.config.dtype_policy().name
    if saved != current:
        flag = "with --mixed-precision" if saved == precision.MIXED_POLICY else "without --mixed-precision"
        raise EdgeSDKError(f"{out} was trained with the {saved} dtype policy, not {current}: resume it {flag}")


def _compiled_model(model: keras.Model | None, config: TrainConfig, spec: PreprocessSpec, distilling: bool,
                    run_dir: Path, state: dict[str, Any], steps_per_epoch: int) -> keras.Model:
    """``model`` compiled with the run's optimizer and loss, or (``None``) the run's last.keras with
    its optimizer state."""
    if model is None:
        log.info("resuming %s from epoch %d", run_dir, state["epochs_done"])
        return load_keras_model(run_dir / "last.keras", compile=True)
    model.compile(
        optimizer=build_optimizer(config, steps_per_epoch),
        loss=distill.DistillationLoss(spec.num_classes, config.distill_temperature,
                                      config.distill_alpha if distilling else 0.0, config.label_smoothing),
        metrics=[distill.accuracy_metric()],
        jit_compile=False,  # XLA costs 55-75% more CPU here
    )
    return model


def _callbacks(config: TrainConfig, data: SplitData, spec: PreprocessSpec, run_dir: Path, state: dict[str, Any],
               steps_per_epoch: int, distribution: Distribution) -> list[keras.callbacks.Callback]:
    """Lookahead, BatchNorm re-estimation, the replicas' moving statistics, the run recorder, early stopping."""
    callbacks: list[keras.callbacks.Callback] = []
    if config.lookahead:
        callbacks.append(optim.Lookahead(config.epochs * steps_per_epoch))
    if config.bn_recalibrate:
        sample = sample_images(data.train, RECALIBRATION_IMAGES, config.seed)
        callbacks.append(BatchNormRecalibration(np.asarray(spec.normalize(sample))))
    if distribution.replicas > 1:
        callbacks.append(AverageMovingStatistics(distribution.strategy))
    callbacks.append(RunRecorder(run_dir, config, len(data.train), state))
    if config.patience:
        callbacks.append(keras.callbacks.EarlyStopping("val_accuracy", patience=config.patience, mode="max"))
    return callbacks


def weights_sha256(model: keras.Model) -> str:
    """SHA-256 of every weight's bytes in order: equal digests mean bit-identical weights."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


def write_report(run_dir: Path, config: TrainConfig, state: dict[str, Any], data: SplitData, spec: PreprocessSpec) -> dict[str, Any]:
    """Evaluate best.keras on validation and test data and write every report file."""
    best = load_keras_model(run_dir / "best.keras")
    history = state["history"]
    plots.plot_curves(_history_columns(history), run_dir / "curves.png")

    val_metrics = classification_metrics(keras_probabilities(best, data.val.images, spec), data.val.labels, spec.labels)
    eval_set = data.test if data.test is not None else data.val
    probs = keras_probabilities(best, eval_set.images, spec)
    test_metrics = classification_metrics(probs, eval_set.labels, spec.labels)
    write_json(run_dir / "confusion_matrix.json", {"split": eval_set.split, "class_names": list(spec.labels),
                                                   "matrix": test_metrics["confusion_matrix"]})
    plots.plot_confusion_matrix(np.array(test_metrics["confusion_matrix"]), spec.labels, run_dir / "confusion_matrix.png",
                                title=f"Confusion matrix ({eval_set.split}, {len(eval_set):,} images)")
    write_json(run_dir / "per_class_accuracy.json", test_metrics["per_class_accuracy"])
    plots.plot_predictions(eval_set.images, eval_set.labels, probs, spec.labels, run_dir / "predictions.png", seed=config.seed)

    summary_text = io.StringIO()
    best.summary(print_fn=lambda line, **_: summary_text.write(line + "\n"))
    write_text_atomic(run_dir / "model_summary.txt", summary_text.getvalue())

    epochs_run = len(history)
    summary = {
        "model": config.model,
        "params": models.count_params(best),
        "macs": models.count_macs(best),
        "epochs": epochs_run,
        "best_epoch": state.get("best_epoch"),
        "train_images": len(data.train),
        "val_images": len(data.val),
        "test_split": eval_set.split,
        "test_images": len(eval_set),
        "train_wall_s": round(state.get("train_wall_s", 0.0), 1),
        "epoch_wall_s_median": _median([r["wall_s"] for r in history]),
        "images_per_s_median": _median([r["images_per_s"] for r in history]),
        "cpu_ms_per_image_median": _median([r["cpu_ms_per_image"] for r in history]),
        "val_accuracy": val_metrics["accuracy"],
        "val_loss": val_metrics["loss"],
        "test_accuracy": test_metrics["accuracy"],
        "test_loss": test_metrics["loss"],
        "per_class_test_accuracy": test_metrics["per_class_accuracy"],
        "config": asdict(config),
        "command": config.command,
        "data": data.source,
        "data_sha256": {name: split.content_sha256() for name, split in (("train", data.train), ("val", data.val),
                                                                         ("test", eval_set)) if split is not None},
        "distribution": state.get("distribution"),
        "final_weights_sha256": state.get("final_weights_sha256"),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "python": sys.version.split()[0]},
    }
    write_json(run_dir / "summary.json", summary)
    return summary


def _median(values: list[float]) -> float | None:
    return float(np.median(values)) if values else None
