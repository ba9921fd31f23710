"""``.onnx`` models on ONNX Runtime (CPU)."""

from __future__ import annotations

import numpy as np

from .._extras import require
from ..errors import ModelLoadError
from .base import Backend, check_single_io

SUFFIXES = (".onnx",)
BACKENDS = {"onnxruntime": "onnxruntime"}


class OnnxBackend(Backend):
    """An ONNX model in an ``onnxruntime.InferenceSession`` (sessions are thread-safe)."""

    name = "onnxruntime"

    def __init__(self, model: bytes, num_threads: int | None = None) -> None:
        ort = require("onnxruntime", "onnx", "ONNX models")
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


def load(model: bytes, num_threads: int | None, backend: str | None) -> Backend:
    """Open ``model`` in ONNX Runtime."""
    return OnnxBackend(model, num_threads)
