"""Registry of Keras 3 image classifiers for CIFAR-10-style inputs.

Every model takes ``(32, 32, 3)`` float images already scaled to ``[0, 1]``
(normalisation happens outside the model) and outputs class probabilities
(the last layer is a :class:`keras.layers.Softmax`).

All models are quantization friendly: they use only ``Conv2D`` (without bias
when a ``BatchNormalization`` follows, in Conv -> BN -> ReLU order so BN folds
into the convolution), ``BatchNormalization``, ``ReLU``, ``MaxPooling2D``,
``GlobalAveragePooling2D``, ``GlobalMaxPooling2D``, ``Add``, ``Flatten``,
``Dense``, ``Dropout`` and ``Softmax`` -- ops that TFLite int8 builtins and
ONNX support. No kernel regularizers are used (the optimizer applies weight
decay). Construction is deterministic once the caller has called
``keras.utils.set_random_seed``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import keras

from edge_sdk.errors import EdgeSDKError

from .airbench import build_airbench
from .recipes import AIRBENCH93_WIDTHS, AIRBENCH95_WIDTHS
from .catalog import CATALOG, model_names, recipe_of  # noqa: F401  (re-exported)

InputShape = tuple[int, int, int]

DEFAULT_INPUT_SHAPE: InputShape = (32, 32, 3)
DEFAULT_NUM_CLASSES = 10
DEFAULT_WIDTH = 24  # base channel count ``c`` of the ``default`` ResNet-9


@dataclass(frozen=True)
class ModelEntry:
    """One registered model: its name, a one-line description and its builder."""

    name: str
    description: str
    build: Callable[..., keras.Model]
    recipe: str = "classic"  # key of train.recipes.RECIPES
    int8_friendly: bool = True  # only layers that quantize to int8 TFLite builtins XNNPACK delegates


# --------------------------------------------------------------------------- helpers


def _conv_bn_relu(x, filters: int, name: str, kernel_size: int = 3, strides: int = 1, relu: bool = True):
    """Conv2D (no bias) -> BatchNormalization -> optional ReLU, with readable layer names."""
    x = keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        name=f"{name}_conv",
    )(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    if relu:
        x = keras.layers.ReLU(name=f"{name}_relu")(x)
    return x


def _classifier_head(x, num_classes: int):
    """Dense logits followed by a separate Softmax layer (the model outputs probabilities)."""
    x = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.layers.Softmax(name="probs")(x)


# --------------------------------------------------------------------------- builders


def build_ann(input_shape: InputShape = DEFAULT_INPUT_SHAPE, num_classes: int = DEFAULT_NUM_CLASSES) -> keras.Model:
    """Dense baseline: Flatten -> Dense 3000 relu -> Dense 1000 relu -> Dense softmax."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Flatten(name="flatten")(inputs)
    x = keras.layers.Dense(3000, activation="relu", name="dense1")(x)
    x = keras.layers.Dense(1000, activation="relu", name="dense2")(x)
    outputs = _classifier_head(x, num_classes)
    return keras.Model(inputs, outputs, name="ann")


def build_seed_cnn(input_shape: InputShape = DEFAULT_INPUT_SHAPE, num_classes: int = DEFAULT_NUM_CLASSES) -> keras.Model:
    """The classic Keras-tutorial CNN with MaxNorm(3) kernel constraints and dropout."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Conv2D(
        32, 3, padding="same", activation="relu", kernel_constraint=keras.constraints.MaxNorm(3), name="conv1"
    )(inputs)
    x = keras.layers.Dropout(0.2, name="dropout1")(x)
    x = keras.layers.Conv2D(
        32, 3, padding="same", activation="relu", kernel_constraint=keras.constraints.MaxNorm(3), name="conv2"
    )(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(512, activation="relu", kernel_constraint=keras.constraints.MaxNorm(3), name="dense")(x)
    x = keras.layers.Dropout(0.5, name="dropout2")(x)
    outputs = _classifier_head(x, num_classes)
    return keras.Model(inputs, outputs, name="seed_cnn")


def build_resnet8(input_shape: InputShape = DEFAULT_INPUT_SHAPE, num_classes: int = DEFAULT_NUM_CLASSES) -> keras.Model:
    """MLPerf-Tiny image-classification ResNet-8 (three residual stacks of 16, 32, 64 filters)."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = _conv_bn_relu(inputs, 16, "stem")
    for index, (filters, strides) in enumerate(((16, 1), (32, 2), (64, 2)), start=1):
        name = f"stack{index}"
        y = _conv_bn_relu(x, filters, f"{name}_a", strides=strides)
        y = _conv_bn_relu(y, filters, f"{name}_b", relu=False)
        if strides != 1 or x.shape[-1] != filters:
            # Projection shortcut (1x1, stride 2), with bias: no BN follows it.
            x = keras.layers.Conv2D(
                filters, 1, strides=strides, padding="same", kernel_initializer="he_normal", name=f"{name}_shortcut"
            )(x)
        x = keras.layers.Add(name=f"{name}_add")([x, y])
        x = keras.layers.ReLU(name=f"{name}_out")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = _classifier_head(x, num_classes)
    return keras.Model(inputs, outputs, name="resnet8")


def build_resnet9(
    input_shape: InputShape = DEFAULT_INPUT_SHAPE,
    num_classes: int = DEFAULT_NUM_CLASSES,
    width: int = DEFAULT_WIDTH,
) -> keras.Model:
    """Myrtle.ai / DAWNBench ResNet-9 (David Page, 2018) with base width ``width`` (original: 64).

    Residual blocks follow the original: ``x + relu(bn(conv(relu(bn(conv(x))))))``.
    """
    c = width
    inputs = keras.Input(shape=input_shape, name="image")
    x = _conv_bn_relu(inputs, c, "prep")

    x = _conv_bn_relu(x, 2 * c, "layer1")
    x = keras.layers.MaxPooling2D(2, name="layer1_pool")(x)
    y = _conv_bn_relu(x, 2 * c, "layer1_res1")
    y = _conv_bn_relu(y, 2 * c, "layer1_res2")
    x = keras.layers.Add(name="layer1_add")([x, y])

    x = _conv_bn_relu(x, 4 * c, "layer2")
    x = keras.layers.MaxPooling2D(2, name="layer2_pool")(x)

    x = _conv_bn_relu(x, 8 * c, "layer3")
    x = keras.layers.MaxPooling2D(2, name="layer3_pool")(x)
    y = _conv_bn_relu(x, 8 * c, "layer3_res1")
    y = _conv_bn_relu(y, 8 * c, "layer3_res2")
    x = keras.layers.Add(name="layer3_add")([x, y])

    x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    outputs = _classifier_head(x, num_classes)
    return keras.Model(inputs, outputs, name="resnet9")


# --------------------------------------------------------------------------- registry

#: Keras builder of every model in :data:`cifar_edge.train.catalog.CATALOG` (its name, description, recipe and counts).
BUILDERS: dict[str, Callable[..., keras.Model]] = {
    "default": build_airbench,
    "airbench93": lambda **kw: build_airbench(widths=AIRBENCH93_WIDTHS, name="airbench93", **kw),
    "airbench93-gelu": lambda **kw: build_airbench(widths=AIRBENCH93_WIDTHS, name="airbench93_gelu", activation="gelu", **kw),
    "airbench95": lambda **kw: build_airbench(widths=AIRBENCH95_WIDTHS, name="airbench95", **kw),
    "resnet9": build_resnet9,
    "resnet8": build_resnet8,
    "seed-cnn": build_seed_cnn,
    "ann": build_ann,
}

MODELS: dict[str, ModelEntry] = {
    name: ModelEntry(name, entry.description, BUILDERS[name], recipe=entry.recipe, int8_friendly=entry.int8_friendly)
    for name, entry in CATALOG.items()
}


def build_model(
    name: str, input_shape: InputShape = DEFAULT_INPUT_SHAPE, num_classes: int = DEFAULT_NUM_CLASSES
) -> keras.Model:
    """Build a fresh, uncompiled model by registry name; unknown names raise :class:`EdgeSDKError`."""
    entry = MODELS.get(name)
    if entry is None:
        raise EdgeSDKError(f"unknown model {name!r}; choose one of: {', '.join(model_names())}")
    return entry.build(input_shape=tuple(input_shape), num_classes=num_classes)


# --------------------------------------------------------------------------- statistics


def count_params(model: keras.Model) -> int:
    """Number of scalars in all weights, trainable and not (BatchNormalization statistics included)."""
    return int(sum(math.prod(int(d) for d in w.shape) for w in model.weights))


def iter_layers(model: keras.Model):
    """Yield the leaf layers of ``model``, descending into nested models."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from iter_layers(layer)
        else:
            yield layer


def _spatial_size(layer: keras.layers.Layer) -> int:
    """Product of the output's spatial dimensions (everything but batch and channels)."""
    shape = tuple(layer.output.shape)
    channels_first = getattr(layer, "data_format", "channels_last") == "channels_first"
    spatial = shape[2:] if channels_first else shape[1:-1]
    return math.prod(int(d) for d in spatial)


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates of one forward pass at batch size 1.

    ``Conv2D``: out_h * out_w * kh * kw * (in_c / groups) * out_c; ``DepthwiseConv2D``:
    out_h * out_w * kh * kw * in_c * depth_multiplier; ``Dense``: in * out (times any
    leading non-batch dimensions). Every other layer counts as 0.
    """
    total = 0
    for layer in iter_layers(model):
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)) and not isinstance(
            layer, keras.layers.Conv2DTranspose
        ):
            # Conv2D kernel: (kh, kw, in_c / groups, out_c); depthwise: (kh, kw, in_c, multiplier).
            total += _spatial_size(layer) * math.prod(int(d) for d in layer.kernel.shape)
        elif isinstance(layer, keras.layers.Dense):
            in_units, out_units = (int(d) for d in layer.kernel.shape)
            leading = math.prod(int(d) for d in tuple(layer.output.shape)[1:-1])
            total += leading * in_units * out_units
    return int(total)


def describe_models(
    input_shape: InputShape = DEFAULT_INPUT_SHAPE, num_classes: int = DEFAULT_NUM_CLASSES
) -> list[dict]:
    """``{"name", "description", "params", "macs"}`` for every registered model, each built fresh."""
    rows = []
    for entry in MODELS.values():
        model = build_model(entry.name, input_shape=input_shape, num_classes=num_classes)
        rows.append(
            {"name": entry.name, "description": entry.description, "params": count_params(model), "macs": count_macs(model)}
        )
        del model
    return rows
