"""Keras -> float32/int8 TFLite and float32/int8 ONNX: the exporters named by :mod:`cifar_edge.cli.formats`.

Every exporter takes ``(model, calibration, *, cache=None, **options)`` (``options``: the format's
quantization options) and returns the file's bytes, without metadata (:mod:`cifar_edge.convert.embed` adds it).
``cache`` is a dict one conversion passes to each call, so that ONNX int8 reuses the float ONNX model.
"""

from __future__ import annotations

import contextlib
import io
import warnings
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from edge_sdk.errors import EdgeSDKError

from cifar_edge.train.qat import int8_kernel, is_quantize_aware

CALIBRATION_METHODS = ("minmax", "percentile", "entropy")
ACTIVATION_TYPES = ("uint8", "int8")
TFLITE_IO_TYPES = ("int8", "uint8")
ONNX_OPSET = 17
#: the name part of the convolutions both int8 exporters keep in float (the airbench nets' whitening filters)
FLOAT_CONV_MARK = "whiten"


def _input_signature(model: Any) -> list[tf.TensorSpec]:
    shape = (None, *model.inputs[0].shape[1:])
    return [tf.TensorSpec(shape, tf.float32, name="input")]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No SavedModel endpoint listing (Keras 3 prints it to stdout) and no warning about int8 input
    statistics (they come from the representative data set; TF warns regardless)."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        yield


def _convert_quietly(converter: Any) -> bytes:
    """Run a TFLite converter :func:`_quiet`-ly."""
    with _quiet():
        return converter.convert()


def tflite_float(model: Any, calibration: np.ndarray | None = None, *, cache: dict[str, Any] | None = None) -> bytes:
    """Float32 TFLite flatbuffer of a Keras model (no calibration)."""
    return _convert_quietly(tf.lite.TFLiteConverter.from_keras_model(model))


def tflite_int8(model: Any, calibration: np.ndarray, *, tflite_input_type: str = "int8",
                cache: dict[str, Any] | None = None) -> bytes:
    """Integer TFLite: int8 builtins, calibrated on ``calibration``, with int8 input and output, or
    uint8 input and output for ``tflite_input_type="uint8"`` (the 8-bit type MediaPipe Tasks' ImageClassifier
    takes; the converter adds a requantize op at each end). Raises :class:`EdgeSDKError` for another type.

    ``calibration`` holds normalized float32 images; with inputs in [0, 1] the
    input quantization becomes scale 1/255 with zero point -128 (int8: the model
    takes ``pixel - 128``) or 0 (uint8: the model takes the pixel itself), and
    the normalization folds into it.

    The ops :func:`tflite_float_nodes` names (the airbench nets' frozen whitening convolution) stay
    float32 between a dequantize and a quantize op, as in :func:`onnx_int8`: measured on the shipped
    ``default`` (flip TTA, 10,000 test images), agreement with Keras rises from 99.27% to 99.66% for
    0.2% of the model's MACs.

    A quantization-aware model (:mod:`cifar_edge.train.qat`) is not calibrated: its fake-quantization ops give
    every scale, and its float head keeps a float32 output.
    """
    if tflite_input_type not in TFLITE_IO_TYPES:
        raise EdgeSDKError(f"unknown TFLite input type {tflite_input_type!r}; choose one of: {', '.join(TFLITE_IO_TYPES)}")
    io_type = tf.int8 if tflite_input_type == "int8" else tf.uint8
    if is_quantize_aware(model):
        return _tflite_from_fake_quant(model, io_type)

    def representative() -> Iterator[list[np.ndarray]]:
        for i in range(len(calibration)):
            yield [calibration[i : i + 1].astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter._experimental_calibrate_only = True  # the float model with its activation ranges, quantized below
    calibrated = _convert_quietly(converter)
    # the step TFLiteConverter.convert() runs next on its own, with the named ops left out of quantization
    # (`tf.lite.experimental.QuantizationDebugger` calls the same function for its denylisted nodes)
    from tensorflow.lite.python.convert import mlir_quantize

    with _quiet():
        return mlir_quantize(calibrated, input_data_type=io_type, output_data_type=io_type,
                             denylisted_nodes=tflite_float_nodes(calibrated) or None)


def _tflite_from_fake_quant(model: Any, io_type: Any) -> bytes:
    """The int8 file of a quantization-aware model: the converter reads each tensor's scale and zero point off
    the model's fake-quantization ops (no representative data); the head without them stays float."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.inference_input_type = io_type
    return _convert_quietly(converter)


def tflite_float_nodes(model: bytes) -> list[str]:
    """Output tensor names of the ops :func:`tflite_int8` keeps in float32, read off a calibrated (or
    quantized) TFLite file of the same model: every ``CONV_2D`` whose name holds :data:`FLOAT_CONV_MARK`
    (the airbench nets' frozen 2x2 whitening filters span a wide range within each filter; the rule of
    :func:`_nodes_left_in_float`)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model)
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    return [names[op["outputs"][0]] for op in interpreter._get_ops_details()
            if op["op_name"] == "CONV_2D" and FLOAT_CONV_MARK in names[op["outputs"][0]]]


def onnx_float(model: Any, calibration: np.ndarray | None = None, *, cache: dict[str, Any] | None = None) -> bytes:
    """Float32 ONNX model via tf2onnx with an explicit input signature (needed for Keras 3), serialized.

    Kept in ``cache`` (when given) for :func:`onnx_int8` of the same model.
    """
    if cache is not None and "onnx_float" in cache:
        return cache["onnx_float"]
    import tf2onnx

    # tf2onnx's from_keras reads model.output_names, which Keras 3 functional models lack.
    if not hasattr(model, "output_names"):
        model.output_names = [t.name.split(":")[0] for t in model.outputs]
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=_input_signature(model), opset=ONNX_OPSET)
    data = proto.SerializeToString()
    if cache is not None:
        cache["onnx_float"] = data
    return data


class _ArrayReader:
    """onnxruntime CalibrationDataReader over a float32 array, one image per call."""

    def __init__(self, input_name: str, images: np.ndarray) -> None:
        self._input_name = input_name
        self._images = images
        self._i = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._i >= len(self._images):
            return None
        x = self._images[self._i : self._i + 1].astype(np.float32)
        self._i += 1
        return {self._input_name: x}

    def rewind(self) -> None:
        self._i = 0


def onnx_int8(
    model: Any,
    calibration: np.ndarray,
    *,
    calib_method: str = "minmax",
    onnx_activations: str = "uint8",
    onnx_reduce_range: bool = True,
    cache: dict[str, Any] | None = None,
) -> bytes:
    """Static QDQ quantization of :func:`onnx_float` with onnxruntime: pre-processing, per-channel int8 weights,
    ``onnx_activations`` activations, ``calib_method`` calibration; serialized. Raises :class:`EdgeSDKError` for an
    unknown method or activation type.

    ``onnx_reduce_range`` keeps weights to 7 bits. x86 CPUs without VNNI (AVX2, AVX-512F)
    run ONNX Runtime's int8 convolutions with ``vpmaddubsw``, whose 16-bit sums of
    8-bit products saturate: on an AMD EPYC (AVX2) full-range weights cost the
    default model 4.7 points of accuracy (agreement with Keras 90.6%), 7-bit weights
    0.3 points (99.3%). The same file then runs correctly on every CPU.

    A quantization-aware model (:mod:`cifar_edge.train.qat`) is not calibrated: :func:`_onnx_from_fake_quant`.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if calib_method not in CALIBRATION_METHODS:
        raise EdgeSDKError(f"unknown calibration method {calib_method!r}; choose one of: {', '.join(CALIBRATION_METHODS)}")
    if is_quantize_aware(model):
        return _onnx_from_fake_quant(onnx.load_from_string(onnx_float(model, cache=cache)))
    if onnx_activations not in ACTIVATION_TYPES:
        raise EdgeSDKError(f"unknown activation type {onnx_activations!r}; choose one of: {', '.join(ACTIVATION_TYPES)}")
    methods = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }
    with tempfile.TemporaryDirectory(prefix="cifar-edge-onnx-") as tmp:
        src, pre, out = Path(tmp, "float.onnx"), Path(tmp, "pre.onnx"), Path(tmp, "int8.onnx")
        float_model = onnx.load_from_string(onnx_float(model, cache=cache))
        onnx.save(float_model, src)
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=False)
        input_name = float_model.graph.input[0].name
        float_nodes = _nodes_left_in_float(onnx.load(pre).graph)
        quantize_static(
            str(pre),
            str(out),
            _ArrayReader(input_name, calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8 if onnx_activations == "uint8" else QuantType.QInt8,
            weight_type=QuantType.QInt8,
            reduce_range=onnx_reduce_range,
            calibrate_method=methods[calib_method],
            nodes_to_exclude=float_nodes,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
        return out.read_bytes()


def _onnx_from_fake_quant(model: Any) -> bytes:
    """A quantization-aware model's int8 ONNX file from its tf2onnx graph, serialized.

    tf2onnx turns each activation's fake quantization into a QuantizeLinear/DequantizeLinear pair and folds each
    kernel's into a float constant on its grid (``k * step``, ``|k| <= 63``, ``step`` a power of two per output
    channel). Each such kernel becomes int8 ``k`` with a per-channel DequantizeLinear in front of its Conv, so that
    ONNX Runtime runs QLinearConv on exactly the integers the TFLite file holds (7 bits: no u8s8 saturation).
    Raises :class:`EdgeSDKError` for a kernel that is not on such a grid.
    """
    from onnx import helper, numpy_helper

    initializers = {tensor.name: tensor for tensor in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        name = node.input[1] if node.op_type == "Conv" and len(node.input) > 1 else None
        if name in initializers:
            try:
                levels, step = int8_kernel(numpy_helper.to_array(initializers[name]))
            except EdgeSDKError as exc:
                raise EdgeSDKError(f"quantization-aware ONNX export: {node.name}: {exc}") from None
            model.graph.initializer.remove(initializers[name])
            model.graph.initializer.extend([
                numpy_helper.from_array(levels, f"{name}_int8"),
                numpy_helper.from_array(step.astype(np.float32), f"{name}_scale"),
                numpy_helper.from_array(np.zeros(len(step), np.int8), f"{name}_zero_point")])
            nodes.append(helper.make_node("DequantizeLinear", [f"{name}_int8", f"{name}_scale", f"{name}_zero_point"],
                                          [name], axis=0, name=f"{name}_dequantize"))
        nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model.SerializeToString()


def _nodes_left_in_float(graph: Any) -> list[str]:
    """Names of the nodes :func:`onnx_int8` keeps in float.

    - The airbench nets' frozen 2x2 whitening filters span a wide range within each filter: at 7 bits
      they cost the default model 2.6 points of agreement with Keras (97.4%); left in float (0.28 M of
      its 118 M MACs) the file agrees on 99.8%. Every node before them (a TTA export's mirror and
      concatenation) stays float too: a quantized input in front of a float convolution makes ONNX
      Runtime's ``WeightBiasQuantization`` graph optimization quantize the filters at load time anyway
      (measured: flip-TTA default 97.2% agreement with Keras; 99.3% with that optimization off).
    - The probability tail (Softmax, and the mean of a TTA export's two views): two uint8-quantized
      probability vectors averaged flip near-ties (98.8% agreement with flip TTA).
    """
    producer = {output: node for node in graph.node for output in node.output}
    keep: dict[str, None] = {}
    pending = [node for node in graph.node if node.op_type == "Conv" and FLOAT_CONV_MARK in node.name]
    while pending:
        node = pending.pop()
        if node.name in keep:
            continue
        keep[node.name] = None
        pending.extend(producer[name] for name in node.input if name in producer)
    keep.update((node.name, None) for node in graph.node if node.op_type in ("Softmax", "ReduceMean"))
    return list(keep)
