"""``.onnx`` models on ONNX Runtime (CPU)."""

from __future__ import annotations

import logging

import numpy as np

from ..errors import MetadataError, ModelLoadError, require
from ..metadata import fields
from .base import Backend, check_signature, check_single_io

SUFFIXES = (".onnx",)
BACKENDS = {"onnxruntime": "onnxruntime"}
#: the pip extra that installs it
EXTRA = "onnx"


class OnnxBackend(Backend):
    """An ONNX model in an ``onnxruntime.InferenceSession`` (sessions are thread-safe)."""

    name = "onnxruntime"

    def __init__(self, model: bytes, num_threads: int | None = None) -> None:
        ort = require("onnxruntime", EXTRA, "ONNX models")
        external = external_data_tensors(model)
        if external:
            raise ModelLoadError(f"the ONNX model keeps tensor(s) {', '.join(external[:3])} in external data files; "
                                 "the SDK loads self-contained models only (external data paths could make it read "
                                 "other files)")
        options = ort.SessionOptions()
        # ONNX Runtime prints its own warnings and errors on stderr; every error reaches the caller as an
        # exception (ModelLoadError here, InferenceError from the Classifier), so only -v shows them
        options.log_severity_level = 0 if logging.getLogger().isEnabledFor(logging.DEBUG) else 4
        if num_threads:
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelLoadError(f"onnxruntime cannot load the ONNX model: {exc}") from exc
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        check_single_io(len(inputs), len(outputs))
        if inputs[0].type != "tensor(float)":
            raise ModelLoadError(f"the SDK supports ONNX models with float input; this one takes {inputs[0].type}")
        if outputs[0].type != "tensor(float)":
            raise ModelLoadError(f"the SDK supports ONNX models that output float class scores; this one outputs "
                                 f"{outputs[0].type} (an arg-max or label output?)")
        self._input_name = inputs[0].name
        self.input_shape = _dims(inputs[0].shape) or ()
        output_shape = _dims(outputs[0].shape)
        check_signature(self.input_shape, output_shape)
        last = output_shape[-1] if output_shape else -1
        self.num_outputs = max(int(last), 0)
        # batched calls only when both ends take any batch (a fixed batch of 1 runs one image per call)
        self.supports_batch = bool(self.input_shape) and self.input_shape[0] == -1 and (
            output_shape is None or output_shape[0] == -1)

    def invoke(self, tensor: np.ndarray) -> np.ndarray:
        """``InferenceSession.run`` on a float32 NHWC tensor."""
        return self._session.run(None, {self._input_name: tensor})[0]


def _dims(shape: list | None) -> tuple[int, ...] | None:
    """An ONNX Runtime shape with -1 for symbolic or unknown dimensions; None when even the rank is unknown."""
    if shape is None:
        return None
    return tuple(d if isinstance(d, int) and d >= 0 else -1 for d in shape)


# ONNX message kinds -> {field number: kind of the nested message} for every path to a TensorProto
_NESTED = {
    "model": {7: "graph", 20: "training", 25: "function"},
    "training": {1: "graph", 2: "graph"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "node": {5: "attribute"},
    "function": {7: "node", 11: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
}
_TENSOR_NAME, _TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION, _EXTERNAL = 8, 13, 14, 1


def external_data_tensors(model: bytes) -> list[str]:
    """Names of the tensors (initializers, constants, in subgraphs and functions too) stored outside the file."""
    found: list[str] = []
    stack: list[tuple[memoryview, str]] = [(memoryview(model), "model")]
    try:
        while stack:
            message, kind = stack.pop()
            if kind == "tensor":
                name, external = "?", False
                for number, wire, value in fields(message):
                    if number == _TENSOR_NAME and wire == 2:
                        name = bytes(value).decode("utf-8", errors="replace")
                    external |= (number == _TENSOR_EXTERNAL_DATA and wire == 2) or (
                        number == _TENSOR_DATA_LOCATION and wire == 0 and value == _EXTERNAL)
                if external:
                    found.append(name)
                continue
            nested = _NESTED[kind]
            stack.extend((value, nested[number]) for number, wire, value in fields(message)
                         if wire == 2 and number in nested)
    except MetadataError as exc:
        raise ModelLoadError(f"cannot load the ONNX model: {exc}") from exc
    return found


def load(model: bytes, num_threads: int | None, backend: str | None) -> Backend:
    """Open ``model`` in ONNX Runtime."""
    return OnnxBackend(model, num_threads)
