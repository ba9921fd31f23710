"""``.tflite`` models on LiteRT (``ai-edge-litert``), else ``tflite-runtime``, else ``tf.lite``."""

from __future__ import annotations

import importlib
import threading
from typing import Any

import numpy as np

from .._extras import silenced_stderr_fd
from ..errors import BackendUnavailableError, ModelLoadError
from .base import Backend, check_single_io, dequantize, quantize

SUFFIXES = (".tflite",)
#: Backend names this module serves, most preferred first, with the module each one imports.
BACKENDS = {"litert": "ai_edge_litert", "tflite-runtime": "tflite_runtime", "tf-lite": "tensorflow"}


class TFLiteBackend(Backend):
    """A TFLite flatbuffer on the first installed interpreter (or the one named)."""

    def __init__(self, model: bytes, num_threads: int | None = None, runtime: str | None = None) -> None:
        interpreter_cls, self.name = _interpreter_class(runtime)
        try:
            with silenced_stderr_fd():  # LiteRT prints an INFO line when it applies XNNPACK
                self._interpreter = interpreter_cls(model_content=model, num_threads=num_threads)
                self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"{self.name} cannot load the TFLite model: {exc}") from exc
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        check_single_io(len(inputs), len(outputs))
        self._input, self._output = inputs[0], outputs[0]
        self.input_shape = tuple(int(d) for d in self._input["shape"])
        self.input_dtype = np.dtype(self._input["dtype"])
        self.output_dtype = np.dtype(self._output["dtype"])
        if self.input_dtype not in (np.float32, np.int8, np.uint8):
            raise ModelLoadError(f"the SDK supports float32, int8 or uint8 model inputs; this one takes {self.input_dtype}")
        self.num_outputs = int(self._output["shape"][-1])
        self._in_q = self._input["quantization"]
        self._out_q = self._output["quantization"]
        self._batch = self.input_shape[0]
        self._lock = threading.Lock()  # an Interpreter must not be invoked from two threads at once

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities for a normalized float32 NHWC batch."""
        if self.input_dtype != np.float32:
            x = quantize(batch, self._in_q[0], self._in_q[1], self.input_dtype)
        else:
            x = np.ascontiguousarray(batch, dtype=np.float32)
        with self._lock:
            if x.shape[0] != self._batch:
                self._interpreter.resize_tensor_input(self._input["index"], list(x.shape))
                self._interpreter.allocate_tensors()
                self._batch = x.shape[0]
            self._interpreter.set_tensor(self._input["index"], x)
            self._interpreter.invoke()
            out = self._interpreter.get_tensor(self._output["index"]).copy()
        if self.output_dtype != np.float32:
            out = dequantize(out, self._out_q[0], self._out_q[1])
        return out

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        if self.input_dtype != np.float32:
            info["input_quantization"] = {"scale": float(self._in_q[0]), "zero_point": int(self._in_q[1])}
        if self.output_dtype != np.float32:
            info["output_quantization"] = {"scale": float(self._out_q[0]), "zero_point": int(self._out_q[1])}
        return info


def _interpreter_class(runtime: str | None) -> tuple[Any, str]:
    """The first importable TFLite interpreter class, or the one named."""
    order = [runtime] if runtime else list(BACKENDS)
    for name in order:
        module = BACKENDS[name]
        try:
            if module == "tensorflow":
                return importlib.import_module("tensorflow").lite.Interpreter, name
            return importlib.import_module(f"{module}.interpreter").Interpreter, name
        except ImportError:
            continue
    raise BackendUnavailableError(
        "no TFLite runtime is installed (tried "
        + ", ".join(BACKENDS[name] for name in order)
        + "); install the 'litert' extra: pip install 'cifar-edge[litert]'"
    )


def load(model: bytes, num_threads: int | None, backend: str | None) -> Backend:
    """Open ``model`` on ``backend`` (one of :data:`BACKENDS`) or the first installed TFLite runtime."""
    return TFLiteBackend(model, num_threads, backend)
