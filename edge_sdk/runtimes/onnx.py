"""``.onnx`` models on ONNX Runtime (CPU)."""

from __future__ import annotations

import numpy as np

from .._extras import require
from ..errors import MetadataError, ModelLoadError
from ..protobuf import fields
from .base import Backend, check_single_io

SUFFIXES = (".onnx",)
BACKENDS = {"onnxruntime": "onnxruntime"}


class OnnxBackend(Backend):
    """An ONNX model in an ``onnxruntime.InferenceSession`` (sessions are thread-safe)."""

    name = "onnxruntime"

    def __init__(self, model: bytes, num_threads: int | None = None) -> None:
        ort = require("onnxruntime", "onnx", "ONNX models")
        external = external_data_tensors(model)
        if external:
            raise ModelLoadError(
                f"the ONNX model keeps tensor(s) {', '.join(external[:3])} in external data files; the SDK loads "
                "self-contained models only (external data paths could make it read other files)"
            )
        options = ort.SessionOptions()
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
        self._input_name = inputs[0].name
        self.input_shape = tuple(d if isinstance(d, int) else -1 for d in inputs[0].shape)
        last = outputs[0].shape[-1]
        self.num_outputs = int(last) if isinstance(last, int) else 0
        self.supports_batch = self.input_shape[0] == -1

    def invoke(self, tensor: np.ndarray) -> np.ndarray:
        """``InferenceSession.run`` on a float32 NHWC tensor."""
        return self._session.run(None, {self._input_name: tensor})[0]


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
