"""Every number of every training recipe, in one place, as plain data (no Keras, no TensorFlow).

As airbench keeps its ``hyp`` dict at the top of its script, this module holds every
hyper-parameter the training code uses, each with a one-line comment: the two recipes
(:data:`RECIPES`, side by side), their schedule and weight averaging, the airbench net's shape and
BatchNorm settings, the run's defaults, the photo and camera augmentations, the outlier exposure
and the exact runs that made the shipped models (:data:`SHIPPED_RUNS`). The modules that build,
augment and train import their numbers from here; ``cifar-edge train --help`` and
:class:`~cifar_edge.train.training.TrainConfig` read their defaults from here, so nothing retypes them.

A model's registry entry (:mod:`cifar_edge.train.catalog`) names its recipe; ``cifar-edge train``
options override single values. When ``--batch-size`` is given without ``--lr`` the recipe's
learning rate scales linearly with the batch (the "linear scaling rule"; weight decay is per step
in Keras's decoupled form, so ``lr * weight_decay`` scales with it).

``airbench`` is airbench94's recipe (arXiv 2404.00498) in Keras terms: its PyTorch SGD sums the
loss over the batch and couples weight decay to the momentum buffer, so at batch 1024 its
``lr=11.5`` (per 1024 examples, divided by ``1024 * (1 + 1 / (1 - 0.85))``) is a Keras
mean-loss learning rate of 1.5, and its weight decay of 0.0153 per 1024 examples is a decoupled
``weight_decay`` of 0.0089 (``lr * wd`` = 0.0133 per step, momentum amplification included).
Batch 256 is used because it trains faster than 1024 on these CPUs.

The Keras pieces that use these numbers (the linear schedule, the optimizer with a faster
BatchNorm-offset rate, Lookahead) are in :mod:`cifar_edge.train.optim`.
"""

from __future__ import annotations

from typing import Any

# ==================================================================== the two recipes
_RECIPE_NAMES = ("classic", "airbench")
_RECIPE_ROWS: tuple[tuple[str, Any, Any], ...] = (
    # key                 classic    airbench
    ("batch_size",        128,       256),       # images per step (--batch-size without --lr scales lr with it)
    ("lr",                0.1,       0.375),     # peak learning rate (airbench: 11.5 per 1024 summed-loss examples)
    ("momentum",          0.9,       0.85),      # SGD-Nesterov momentum
    ("weight_decay",      5e-3,      0.0089),    # decoupled, per step (airbench: 0.0153 per 1024 examples)
    ("schedule",          "cosine",  "linear"),  # cosine: warm-up then cosine; linear: airbench's triangle (below)
    ("warmup_epochs",     2.0,       0.0),       # linear warm-up of the cosine schedule (linear warms up itself)
    ("label_smoothing",   0.1,       0.2),       # share of the target spread evenly over the classes
    ("pad",               4,         2),         # random-translate range in pixels (reflected border)
    ("bias_lr_scale",     1.0,       64.0),      # learning-rate multiplier of BatchNorm offsets (beta)
    ("lookahead",         False,     True),      # airbench's Lookahead/EMA weight averaging (below)
    ("decay_norm_params", False,     True),      # weight decay also on BatchNorm offsets and biases
    ("photo_augment",     False,     True),      # soften/sharpen and colour changes (PHOTO_* below)
)
#: recipe name -> every hyper-parameter of it (the table above, one dict per column)
RECIPES: dict[str, dict[str, Any]] = {
    name: {row[0]: row[1 + i] for row in _RECIPE_ROWS} for i, name in enumerate(_RECIPE_NAMES)
}
#: Keys a user can override; ``None`` in a :class:`~cifar_edge.train.training.TrainConfig` means "the recipe's".
RECIPE_KEYS = tuple(row[0] for row in _RECIPE_ROWS)

# ---------------------------------------------------------------- airbench's schedule and averaging
LINEAR_WARMUP_FRACTION = 0.23  # the "linear" schedule rises over this share of all steps...
LINEAR_START, LINEAR_END = 0.2, 0.07  # ...from 0.2 x peak to the peak, then falls to 0.07 x peak at the end
LOOKAHEAD_EVERY = 5  # Lookahead: every 5 steps ema = d * ema + (1 - d) * w and w = ema...
LOOKAHEAD_BASE = 0.95 ** LOOKAHEAD_EVERY  # ...with d = 0.95**5 * (step / total_steps)**3

# ==================================================================== the airbench net (train/airbench.py)
AIRBENCH_WIDTHS = (64, 256, 256)  # conv widths of the three blocks of `default` (airbench94)
AIRBENCH93_WIDTHS = (64, 128, 128)  # ... of `airbench93` and `airbench93-gelu`
AIRBENCH95_WIDTHS = (128, 384, 384)  # ... of `airbench95` (2.6x the MACs of `default`)
WHITEN_KERNEL = 2  # side of the frozen patch-whitening filters (2x2x3 patches: 24 filters as +V/-V pairs)
WHITEN_EPS = 5e-4  # added to the patch covariance's eigenvalues before 1/sqrt
BN_MOMENTUM = 0.6  # BatchNorm running-statistics momentum, Keras convention (PyTorch's 0.4)
BN_EPSILON = 1e-5  # BatchNorm epsilon (airbench's 1e-12 measured no different: README)
OUTPUT_SCALE = 1.0 / 9.0  # logits scaled by 1/9 before the softmax

# ==================================================================== a training run (train/training.py)
DEFAULT_MODEL = "resnet8"  # --model when none is given
EPOCHS = 30  # --epochs when none is given
DEFAULT_VAL_SIZE = 5000  # validation images taken from the training split (at most a tenth of it)
WHITENING_IMAGES = 5000  # training images whose 2x2 patch covariance sets the whitening filters
RECALIBRATION_IMAGES = 2000  # un-augmented training images that re-estimate BatchNorm statistics
QAT_CALIBRATION_IMAGES = 500  # un-augmented training images whose activation ranges --qat fixes (train/qat.py)
DISTILL_TEMPERATURE = 4.0  # softmax temperature of the teacher and student in the distillation loss
DISTILL_ALPHA = 0.9  # weight of the soft-target loss (1 - alpha goes to the labels)

# ==================================================================== photo augmentation (train/pipeline.py)
PHOTO_PROBABILITY = 0.5  # share of training images (per image and epoch) that get the photo changes
SOFTEN_RANGE = (-0.5, 1.0)  # blend towards a [1, 2, 1] blur (> 0) or away from it: sharpen (< 0)
BRIGHTNESS_DELTA = 0.08 * 255.0  # largest brightness shift, additive, on 0-255 pixels
CONTRAST_RANGE = (0.85, 1.15)  # contrast factor around the image mean
SATURATION_RANGE = (0.85, 1.15)  # saturation factor around each pixel's grey

# ==================================================================== camera framing (train/outliers.py)
CAMERA_PROBABILITY = 0.5  # share of training images re-framed (the rest keep CIFAR's own framing)
FRAME_SCALE_RANGE = (0.7, 1.25)  # object size after re-framing (< 1: zoomed out, > 1: zoomed in)
FRAME_ASPECT_RANGE = (3 / 4, 4 / 3)  # aspect-ratio change (a 4:3 or 16:9 frame squeezed to the square input)
FRAME_MAX_SHIFT = 0.2  # largest shift of the object's centre, in image sizes
FRAME_PAD = 0.5  # reflected border added around the image, in image sizes (zoom-out room)
WHITE_BALANCE_RANGE = (0.88, 1.12)  # per-channel gain (white balance)

# ==================================================================== outlier exposure (train/outliers.py)
ZOOM_PATCH_RANGE = (0.18, 0.35)  # side of the patch a "zoom" outlier enlarges, as a share of the image side
SHUFFLE_GRID = 4  # cells per side of the "shuffle" outlier
REAL_OUTLIER_SHARE = 0.5  # share of outliers taken from real photos when some are given (the rest synthetic)

# ==================================================================== the shipped models' runs
#: the outlier exposure of both quantization-aware fine-tunes (default-qat, edge-qat): a quarter batch of
#: outliers, half of them real photos of other things, all re-compressed as the training copy's JPEGs; the
#: last epoch kept, since validation scores CIFAR-10 only (docs/open-world.md)
_SHIPPED_OUTLIER_EXPOSURE: dict[str, Any] = {
    "outlier_fraction": 0.25, "outliers": "../shared/datasets/real-photos/unknown", "outlier_jpeg": 75, "keep_last": True,
}
#: ``cifar-edge train --recipe NAME`` trains exactly the run that made a shipped model: each entry is
#: the :class:`~cifar_edge.train.training.TrainConfig` values that differ from the defaults (its
#: model, recipe and epochs always named). Options given on the command line still win. To ship a
#: new model, replace its entry with ``shipped_options(summary["config"])`` of the new run's
#: ``summary.json``; ``tests/test_recipe_table.py`` holds each entry to ``models/*/summary.json``.
SHIPPED_RUNS: dict[str, dict[str, Any]] = {
    # models/default: `cifar-edge train --model default --epochs 30 --val-size 2000` (2026-12-03)
    "default-shipped": {"model": "default", "recipe": "airbench", "epochs": 30, "val_size": 2000},
    # models/default/qat (the bundled default files): default-shipped's model fine-tuned quantization-aware
    # (gently: 3 epochs at lr 0.003 kept its accuracy where 4 at 0.01 lost 0.1 point; docs/parity.md), with
    # outlier exposure
    "default-qat": {"model": "default", "recipe": "airbench", "epochs": 3, "lr": 0.003, "val_size": 2000,
                    "init_from": "models/default/best.keras", "qat": True, **_SHIPPED_OUTLIER_EXPOSURE},
    # models/edge: resnet8 distilled from models/default (run from the repository root)
    "edge-shipped": {"model": "resnet8", "recipe": "classic", "epochs": 60, "teacher": "models/default/best.keras",
                     "photo_augment": True, "label_smoothing": 0.0, "distill_alpha": 0.7},
    # models/edge/cycle2: edge-shipped's model trained a second cosine cycle (20 epochs, peak lr 0.02)
    "edge-cycle2": {"model": "resnet8", "recipe": "classic", "epochs": 20, "lr": 0.02, "warmup_epochs": 1.0,
                    "label_smoothing": 0.0, "photo_augment": True, "teacher": "models/default/best.keras",
                    "distill_alpha": 0.7, "init_from": "models/edge/best.keras"},
    # models/edge/qat (the bundled edge files): edge-cycle2's model fine-tuned quantization-aware (train/qat.py)
    # with outlier exposure
    "edge-qat": {"model": "resnet8", "recipe": "classic", "epochs": 8, "lr": 0.01, "warmup_epochs": 0.5,
                 "label_smoothing": 0.0, "photo_augment": True, "teacher": "models/default/best.keras",
                 "distill_alpha": 0.7, "init_from": "models/edge/cycle2/best.keras", "qat": True,
                 **_SHIPPED_OUTLIER_EXPOSURE},
}

#: TrainConfig fields that say where a run reads and writes, not what it trains: never part of an entry
_PLACE_KEYS = ("out", "data", "cache_dir", "command", "extra")


def resolve(recipe: str, given: dict[str, Any]) -> dict[str, Any]:
    """The recipe's values with every non-``None`` value of ``given`` taking precedence.

    Raises ``KeyError`` for an unknown recipe name.
    """
    values = dict(RECIPES[recipe])
    if given.get("batch_size") is not None and given.get("lr") is None:
        values["lr"] = values["lr"] * given["batch_size"] / values["batch_size"]
    values.update({k: v for k, v in given.items() if k in values and v is not None})
    return values


def shipped_options(config: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The :data:`SHIPPED_RUNS` entry of a finished run: the values of ``config`` (a run's
    ``summary.json`` ``"config"``) that differ from ``defaults`` (a default ``TrainConfig`` as a
    dict) once the recipe ``config`` names has filled its hyper-parameters in; ``model``,
    ``recipe`` and ``epochs`` always. Raises ``KeyError`` if ``config`` names no known recipe."""
    base = {**defaults, **RECIPES[config["recipe"]]}
    entry = {key: config[key] for key in ("model", "recipe", "epochs")}
    for key, value in config.items():
        if key not in entry and key not in _PLACE_KEYS and key in base and value != base[key]:
            entry[key] = value
    return entry


_MOVED_TO_OPTIM = ("LinearWarmupDecay", "BiasScaledSGD", "Lookahead")


def __getattr__(name: str) -> Any:
    """The Keras classes that lived here until issue 26 (now in :mod:`cifar_edge.train.optim`),
    imported (with Keras) only when asked for by their old name."""
    if name in _MOVED_TO_OPTIM:
        from . import optim

        return getattr(optim, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
