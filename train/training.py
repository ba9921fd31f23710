"""Training runs: data split, the recipe, checkpoints, resume and the run report.

A run folder holds everything a run produced::

    best.keras          best validation model (written atomically)
    last.keras          last finished epoch, with optimizer state (for --resume)
    state.json          config, finished epochs, best score (for --resume)
    spec.json           the preprocessing spec the model expects
    history.csv/.json   per-epoch metrics, learning rate, wall and CPU time
    curves.png, confusion_matrix.png/.json, per_class_accuracy.json, predictions.png
    summary.json, model_summary.txt
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk._atomic import atomic_open, atomic_path, remove_stale_parts, write_text_atomic
from edge_sdk.errors import DatasetError, EdgeSDKError, ModelLoadError
from edge_sdk.spec import PreprocessSpec

from .model_file import check_keras_file
from .data import ImageSet, resolve_source, stratified_indices, train_val_split

log = logging.getLogger(__name__)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from . import models, plots  # noqa: E402
from .evaluation import classification_metrics, keras_probabilities  # noqa: E402
from .pipeline import make_dataset  # noqa: E402
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
    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.1
    optimizer: str = "sgd"  # "sgd" (Nesterov) or "adamw"
    weight_decay: float = 5e-3  # decoupled (Keras applies w -= lr * wd * w)
    warmup_epochs: float = 2.0
    label_smoothing: float = 0.1
    augment: bool = True
    cutout: int = 0  # side of the random square zeroed in each training image (0: off)
    val_size: int = 5000
    seed: int = 0
    limit: int | None = None
    patience: int | None = None
    init_from: str | None = None  # a trained .keras of the same architecture to start from (fine-tuning)
    command: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class SplitData:
    train: ImageSet
    val: ImageSet
    test: ImageSet | None
    source: str = ""


def load_splits(config: TrainConfig) -> SplitData:
    """Training/validation split (stratified, seeded) and the test split, honouring --limit."""
    source = resolve_source(config.data, cache_dir=config.cache_dir, progress=sys.stderr.isatty())
    full = source.load("train")
    if config.limit is not None:
        if config.limit < 2 * len(full.class_names):
            raise DatasetError(f"--limit {config.limit} is too small: need at least 2 images per class")
        val_size = min(config.val_size, max(len(full.class_names), config.limit // 4))
        full = full.subset(stratified_indices(full.labels, min(len(full), config.limit + val_size), config.seed))
    else:
        val_size = config.val_size
    train, val = train_val_split(full, val_size, config.seed)
    test = None
    if "test" in source.splits():
        test = source.load("test", full.class_names)
        if config.limit is not None and config.limit < len(test):
            test = test.subset(stratified_indices(test.labels, config.limit, config.seed))
    return SplitData(train, val, test, f"{source.kind} {source.path} (from {source.origin})")


def build_optimizer(config: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """SGD-Nesterov or AdamW with decoupled weight decay and the warm-up + cosine schedule."""
    schedule = WarmupCosine(
        peak=config.lr,
        total_steps=config.epochs * steps_per_epoch,
        warmup_steps=round(config.warmup_epochs * steps_per_epoch),
    )
    if config.optimizer == "sgd":
        opt = keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True, weight_decay=config.weight_decay)
    elif config.optimizer == "adamw":
        opt = keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay)
    else:
        raise EdgeSDKError(f"unknown optimizer {config.optimizer!r}; choose 'sgd' or 'adamw'")
    # Weight decay on BatchNorm scales/offsets and biases only hurts.
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


def new_model(config: TrainConfig, spec: PreprocessSpec) -> keras.Model:
    """The run's model, freshly initialized or (``config.init_from``) starting from a trained one's weights."""
    model = models.build_model(config.model, input_shape=(*spec.input_size, 3), num_classes=spec.num_classes)
    if config.init_from:
        copy_weights(load_keras_model(config.init_from), model, config.init_from)
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
    """The preprocessing spec saved next to a model (``spec.json``), or CIFAR-10's default."""
    spec_file = Path(model_path).with_name("spec.json")
    if spec_file.is_file():
        return PreprocessSpec.from_json(spec_file.read_text(encoding="utf-8"))
    log.warning("no spec.json beside %s; assuming the default CIFAR-10 preprocessing", model_path)
    return PreprocessSpec()


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
        if row.get("val_accuracy", -1.0) > self.state.get("best_val_accuracy", -1.0):
            self.state["best_val_accuracy"] = row["val_accuracy"]
            self.state["best_epoch"] = epoch + 1
            save_keras_atomic(self.model, self.run_dir / "best.keras")
        save_keras_atomic(self.model, self.run_dir / "last.keras")
        self.state["epochs_done"] = epoch + 1
        write_history(self.run_dir, history)
        write_json(self.run_dir / STATE_FILE, self.state)


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically."""
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


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


def train(config: TrainConfig, resume: bool = False) -> dict[str, Any]:
    """Train (or resume) a run into ``config.out``; return the summary that is also written to summary.json."""
    run_dir = Path(config.out)
    state: dict[str, Any]
    if resume:
        state_file = run_dir / STATE_FILE
        if not state_file.is_file() or not (run_dir / "last.keras").is_file():
            raise EdgeSDKError(f"nothing to resume in {run_dir}: no {STATE_FILE} and last.keras from a previous run")
        state = json.loads(state_file.read_text(encoding="utf-8"))
        saved = TrainConfig.from_dict(state["config"])
        saved.command = config.command or saved.command
        config = saved
    else:
        if (run_dir / STATE_FILE).exists():
            raise EdgeSDKError(f"{run_dir} already holds a run; use --resume to continue it or choose another --out")
        state = {"config": asdict(config), "epochs_done": 0, "history": []}
    if not 0 <= config.cutout < 32:
        raise EdgeSDKError(f"--cutout must be between 0 (off) and 31 pixels, got {config.cutout}")
    keras.utils.set_random_seed(config.seed)
    data = load_splits(config)  # before the run folder exists: a data error leaves nothing behind
    spec = PreprocessSpec(labels=data.train.class_names)
    resuming = resume and state["epochs_done"] > 0
    model = None if resuming else new_model(config, spec)  # a bad --init-from also fails before any write
    run_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(run_dir, RUN_FILES)  # temporary files of a run killed while saving
    write_text_atomic(run_dir / "spec.json", spec.to_json() + "\n")
    train_ds = make_dataset(
        data.train.images, data.train.labels, spec, batch_size=config.batch_size, training=True, augment=config.augment,
        seed=config.seed, cutout=config.cutout if config.augment else 0,
    )
    val_ds = make_dataset(data.val.images, data.val.labels, spec, batch_size=512, training=False)
    steps_per_epoch = -(-len(data.train) // config.batch_size)

    if model is None:
        model = load_keras_model(run_dir / "last.keras", compile=True)
        log.info("resuming %s from epoch %d", run_dir, state["epochs_done"])
    else:
        model.compile(
            optimizer=build_optimizer(config, steps_per_epoch),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
            metrics=["accuracy"],
            jit_compile=False,  # XLA costs 55-75% more CPU here
        )
    callbacks: list[keras.callbacks.Callback] = [RunRecorder(run_dir, config, len(data.train), state)]
    if config.patience:
        callbacks.append(keras.callbacks.EarlyStopping("val_accuracy", patience=config.patience, mode="max"))

    start = time.perf_counter()
    if state["epochs_done"] < config.epochs:
        # Progress bars go to stderr so stdout carries only the result (one JSON object with --json).
        with contextlib.redirect_stdout(sys.stderr):
            model.fit(
                train_ds,
                validation_data=val_ds,
                epochs=config.epochs,
                initial_epoch=state["epochs_done"],
                callbacks=callbacks,
                verbose=1 if sys.stderr.isatty() else 2,
                shuffle=False,  # the dataset shuffles itself, seeded
            )
    state["train_wall_s"] = state.get("train_wall_s", 0.0) + (time.perf_counter() - start)
    write_json(run_dir / STATE_FILE, state)
    return write_report(run_dir, config, state, data, spec)


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
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "python": sys.version.split()[0]},
    }
    write_json(run_dir / "summary.json", summary)
    return summary


def _median(values: list[float]) -> float | None:
    return float(np.median(values)) if values else None
