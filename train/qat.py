"""Quantization-aware training (QAT): a Keras model rebuilt to compute what its int8 TFLite file computes.

Post-training int8 leaves ``edge`` at 98.97% agreement with Keras (docs/parity.md): about 1.4% of the
test images sit within 0.01 of a tie between two classes, and the rounding of weights (65 flips) and
of activations (82 flips, measured with the weights already on their int8 grid) tips half of them.
No post-training setting closes that; a model that is *itself* the quantized function does.

:func:`quantize_aware` rebuilds a trained functional model layer by layer:

- each ``Conv2D`` (with the ``BatchNormalization`` after it folded in, as the TFLite converter folds
  it) becomes a :class:`QuantConv2D`: its kernel rounded per output channel to ``k * step`` with
  integer ``|k| <= 63`` (:data:`WEIGHT_LEVELS`) and ``step`` a power of two, its bias to the int32
  steps the file stores. The TFLite file holds exactly these integers, and the ONNX file too, without
  the saturation of ONNX Runtime's u8s8 kernels on x86 CPUs without VNNI;
- every tensor the int8 file stores (the input, each ReLU, a convolution or sum that no ReLU
  follows, the pooled features) passes through a :class:`FakeQuant` with a fixed per-tensor range
  measured on calibration images (:func:`calibrate_ranges`); max-pooling keeps its input's grid;
- the head (``Dense`` logits, a ``Rescaling`` of them, softmax) stays float: on int8 logits, a
  one-step rounding difference between Keras and an integer kernel flips the images whose two best
  classes share a step.

Fine-tuning that model (``cifar-edge train --init-from MODEL --qat``; straight-through gradients) lets
the weights adapt to the rounding. The converters read every scale off the fake-quantization ops (no
calibration pass; :func:`cifar_edge.convert.export.tflite_int8` and ``onnx_int8``): measured on the
shipped ``edge``, Keras, its int8 TFLite file and its int8 ONNX file then agree on 99.9-100% of the
test images (Keras rounds in float32 what the files compute in integers; power-of-two weight steps and
the rounded bias leave only exact ties to differ).

Supported layers: those of the ``resnet8`` and airbench nets (``Conv2D``, ``BatchNormalization`` after a
convolution, ``ReLU``, ``Add``, ``MaxPooling2D``, ``GlobalAveragePooling2D``, ``GlobalMaxPooling2D``,
``Dense``, ``Rescaling``, ``Softmax``, ``Activation("softmax")``); anything else raises
:class:`EdgeSDKError` naming the layer.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from .errors import EdgeSDKError

#: bits of every weight and activation (TFLite's int8)
BITS = 8
#: largest weight value per channel: 63 of int8's 127 steps, so that ONNX Runtime's u8s8 kernels on x86
#: without VNNI cannot saturate (two products of 255 x 63 fit in int16) while the grid stays TFLite's
WEIGHT_LEVELS = 63
#: layers whose output keeps its input's int8 grid (a maximum picks one of the values): nothing new to measure
GRID_KEEPING = (keras.layers.MaxPooling2D, keras.layers.GlobalMaxPooling2D)
#: calibration images per batch when measuring activation ranges
RANGE_BATCH = 250


def _fake_quant_kernel(kernel: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """``kernel`` rounded per output channel (last axis) to ``k * step`` with integer ``|k| <= WEIGHT_LEVELS``,
    and ``step``: the smallest power of two that holds the channel's largest weight in :data:`WEIGHT_LEVELS`
    steps (a power of two keeps ``k * step`` exact in float32, so Keras multiplies the very numbers the int8
    kernels do). An int8 grid (``+-127`` steps, narrow range) whose values use 7 bits."""
    axes = list(range(len(kernel.shape) - 1))
    largest = tf.maximum(tf.reduce_max(tf.abs(kernel), axis=axes), 1e-30)
    step = tf.stop_gradient(tf.pow(2.0, tf.math.ceil(tf.math.log(largest / WEIGHT_LEVELS) / tf.math.log(2.0))))
    return tf.quantization.fake_quant_with_min_max_vars_per_channel(
        kernel, -127.0 * step, 127.0 * step, num_bits=BITS, narrow_range=True), step


def int8_kernel(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The integers and per-channel steps of a kernel already on the grid :func:`_fake_quant_kernel` rounds to,
    output channels on the first axis (ONNX's layout): ``(k, step)`` with ``kernel == k * step``. A channel whose
    largest ``|k|`` is below :data:`WEIGHT_LEVELS` / 2 gets a smaller power-of-two step and the same values. Raises
    :class:`EdgeSDKError` for a kernel off such a grid."""
    kernel = np.asarray(kernel, np.float64)
    largest = np.maximum(np.abs(kernel).reshape(len(kernel), -1).max(axis=1), 1e-30)
    step = 2.0 ** np.ceil(np.log2(largest / WEIGHT_LEVELS))
    levels = kernel / step.reshape(-1, *[1] * (kernel.ndim - 1))
    if np.abs(levels - np.round(levels)).max() > 1e-3 or np.abs(levels).max() > WEIGHT_LEVELS + 1e-3:
        raise EdgeSDKError("the kernel is not on its quantization-aware int8 grid")
    return np.round(levels).astype(np.int8), step


def _round_straight_through(x: tf.Tensor) -> tf.Tensor:
    return x + tf.stop_gradient(tf.round(x) - x)


@keras.saving.register_keras_serializable(package="cifar_edge")
class FakeQuant(keras.layers.Layer):
    """A tensor rounded to an 8-bit grid over a fixed range ``[low, high]`` (zero exactly representable);
    gradients pass straight through inside the range. The range is a saved, non-trained weight."""

    def __init__(self, low: float = 0.0, high: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._initial = (float(low), float(high))

    def build(self, input_shape: Any) -> None:
        self.low = self.add_weight(name="low", shape=(), initializer=keras.initializers.Constant(self._initial[0]),
                                   trainable=False)
        self.high = self.add_weight(name="high", shape=(), initializer=keras.initializers.Constant(self._initial[1]),
                                    trainable=False)

    def call(self, inputs: Any) -> Any:
        return tf.quantization.fake_quant_with_min_max_vars(inputs, self.low, self.high, num_bits=BITS)

    def get_config(self) -> dict[str, Any]:
        low, high = (float(self.low.numpy()), float(self.high.numpy())) if self.built else self._initial
        return {**super().get_config(), "low": low, "high": high}


@keras.saving.register_keras_serializable(package="cifar_edge")
class QuantConv2D(keras.layers.Conv2D):
    """A ``Conv2D`` whose kernel is fake-quantized per channel (:func:`_fake_quant_kernel`) and whose bias (always
    on: it carries a folded BatchNorm) is rounded as the int8 file stores it, to int32 steps of ``input_scale *
    step`` (``input_scale``: the step of the 8-bit input, set by :func:`quantize_aware`; 0 leaves the bias float)."""

    def __init__(self, *args: Any, input_scale: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.input_scale = float(input_scale)

    def call(self, inputs: Any) -> Any:
        kernel, step = _fake_quant_kernel(self.kernel)
        grid = tf.constant(self.input_scale, tf.float32) * step
        safe = tf.where(grid > 0, grid, tf.ones_like(grid))
        bias = tf.where(grid > 0, _round_straight_through(self.bias / safe) * safe, self.bias)
        return self.convolution_op(inputs, kernel) + bias

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "input_scale": self.input_scale}


def is_quantize_aware(model: Any) -> bool:
    """True when ``model`` (or a model nested in it) holds :class:`FakeQuant` layers (:func:`quantize_aware`)."""
    return any(isinstance(layer, FakeQuant) or is_quantize_aware(layer) for layer in getattr(model, "layers", []))


def _producers(layer: Any) -> list[Any]:
    node = layer._inbound_nodes[0]
    return [t._keras_history.operation for t in node.input_tensors]


def _consumers(model: keras.Model) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {layer.name: [] for layer in model.layers}
    for layer in model.layers:
        if not isinstance(layer, keras.layers.InputLayer):
            for producer in _producers(layer):
                out[producer.name].append(layer)
    return out


def _is_softmax(layer: Any) -> bool:
    return isinstance(layer, keras.layers.Softmax) or (
        isinstance(layer, keras.layers.Activation) and getattr(layer.activation, "__name__", "") == "softmax")


def _folded_conv(conv: keras.layers.Conv2D, bn: keras.layers.BatchNormalization | None) -> QuantConv2D:
    """A :class:`QuantConv2D` computing ``bn(conv(x))`` (inference BatchNorm), weights set."""
    if conv.groups != 1 or conv.dilation_rate != (1, 1) or conv.activation is not keras.activations.linear:
        raise EdgeSDKError(f"quantization-aware training: {conv.name} (grouped, dilated or with an activation) "
                           "is not supported")
    kernel = np.asarray(conv.kernel, np.float64)
    bias = np.asarray(conv.bias, np.float64) if conv.use_bias else np.zeros(kernel.shape[-1])
    if bn is not None:
        gamma = np.asarray(bn.gamma, np.float64) if bn.scale else 1.0
        beta = np.asarray(bn.beta, np.float64) if bn.center else 0.0
        factor = gamma / np.sqrt(np.asarray(bn.moving_variance, np.float64) + bn.epsilon)
        kernel, bias = kernel * factor, (bias - np.asarray(bn.moving_mean, np.float64)) * factor + beta
    layer = QuantConv2D(conv.filters, conv.kernel_size, strides=conv.strides, padding=conv.padding,
                        use_bias=True, name=conv.name, trainable=conv.trainable)
    layer.build(conv.input.shape)
    layer.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    return layer


def quantize_aware(model: keras.Model, calibration: np.ndarray) -> keras.Model:
    """``model`` (functional, trained) rebuilt for quantization-aware training (module docstring), its
    activation ranges measured on ``calibration`` (normalized float32 images, as the model takes them).

    Raises :class:`EdgeSDKError` for a layer it cannot rebuild (named) or an empty ``calibration``."""
    if not len(calibration):
        raise EdgeSDKError("quantization-aware training needs calibration images; got none")
    consumers = _consumers(model)
    folded_into = {}  # BatchNorm name -> its convolution
    for layer in model.layers:
        after = consumers[layer.name]
        if isinstance(layer, keras.layers.Conv2D) and len(after) == 1 and isinstance(after[0], keras.layers.BatchNormalization):
            folded_into[after[0].name] = layer
    probes: list[tuple[str, Any]] = []  # (name of the FakeQuant, the original tensor it measures)
    tensors: dict[str, Any] = {}

    def quantized(name: str, original: Any, new: Any) -> Any:
        fq = FakeQuant(name=f"{name}_fq")
        probes.append((fq.name, original))
        return fq(new)

    for layer in model.layers:
        after = consumers[layer.name]
        if isinstance(layer, keras.layers.InputLayer):
            new_input = keras.Input(shape=layer.output.shape[1:], name=layer.name)
            tensors[layer.name] = (new_input, quantized(layer.name, layer.output, new_input))
            continue
        inputs = [tensors[p.name][1] for p in _producers(layer)]
        if isinstance(layer, keras.layers.Conv2D):
            if layer.name in {c.name for c in folded_into.values()}:
                tensors[layer.name] = (None, inputs[0])  # applied at its BatchNorm
                continue
            out = _folded_conv(layer, None)(inputs[0])
        elif isinstance(layer, keras.layers.BatchNormalization):
            if layer.name not in folded_into:
                raise EdgeSDKError(f"quantization-aware training: {layer.name} does not follow a convolution")
            out = _folded_conv(folded_into[layer.name], layer)(inputs[0])
        elif isinstance(layer, (keras.layers.Dense, keras.layers.Rescaling)) or _is_softmax(layer):  # the float head
            head = layer.__class__.from_config(layer.get_config())
            tensors[layer.name] = (None, head(inputs[0]))
            if isinstance(layer, keras.layers.Dense):
                head.set_weights(layer.get_weights())
            continue
        elif isinstance(layer, (keras.layers.ReLU, keras.layers.Add, keras.layers.GlobalAveragePooling2D,
                                keras.layers.MaxPooling2D, keras.layers.GlobalMaxPooling2D)):
            out = layer.__class__.from_config(layer.get_config())(inputs if isinstance(layer, keras.layers.Add)
                                                                  else inputs[0])
            if isinstance(layer, GRID_KEEPING):
                tensors[layer.name] = (None, out)
                continue
        else:
            raise EdgeSDKError(f"quantization-aware training does not support layer {layer.name} "
                               f"({type(layer).__name__})")
        stored = not (len(after) == 1 and isinstance(after[0], (keras.layers.ReLU, keras.layers.BatchNormalization)))
        tensors[layer.name] = (None, quantized(layer.name, layer.output, out) if stored else out)
    inputs = [tensors[layer.name][0] for layer in model.layers if isinstance(layer, keras.layers.InputLayer)]
    qat_model = keras.Model(inputs, tensors[model.layers[-1].name][1], name=model.name)
    calibrate_ranges(qat_model, keras.Model(model.inputs, [t for _, t in probes]), [n for n, _ in probes],
                     calibration)
    for layer in qat_model.layers:
        if isinstance(layer, QuantConv2D):
            source = _producers(layer)[0]
            while isinstance(source, GRID_KEEPING):
                source = _producers(source)[0]
            if not isinstance(source, FakeQuant):
                raise EdgeSDKError(f"quantization-aware training: the input of {layer.name} is not an 8-bit tensor")
            layer.input_scale = float(np.float32(source.high.numpy() - source.low.numpy()) / np.float32(255.0))
    return qat_model


def calibrate_ranges(qat_model: keras.Model, probe: keras.Model, names: list[str], calibration: np.ndarray) -> None:
    """Set each named :class:`FakeQuant` of ``qat_model`` to the min/max (widened to hold 0) of the
    matching ``probe`` output over ``calibration``."""
    low = np.full(len(names), np.inf)
    high = np.full(len(names), -np.inf)
    for start in range(0, len(calibration), RANGE_BATCH):
        outputs = probe.predict_on_batch(calibration[start:start + RANGE_BATCH])
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for i, out in enumerate(outputs):
            out = np.asarray(out)
            low[i], high[i] = min(low[i], float(out.min())), max(high[i], float(out.max()))
    for i, name in enumerate(names):
        fq = qat_model.get_layer(name)
        fq.low.assign(min(low[i], 0.0))
        fq.high.assign(max(high[i], 0.0) if high[i] > 0 else 1e-3)
