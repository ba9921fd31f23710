"""``.tflite`` models on LiteRT (``ai-edge-litert``), else ``tflite-runtime``, else ``tf.lite``."""

from __future__ import annotations

import importlib
import threading
from typing import Any

import numpy as np

from ..errors import BackendUnavailableError, ModelLoadError, install_line
from .base import Backend, check_signature, check_single_io

SUFFIXES = (".tflite",)
#: Backend names this module serves, most preferred first, with the module each one imports.
BACKENDS = {"litert": "ai_edge_litert", "tflite-runtime": "tflite_runtime", "tf-lite": "tensorflow"}
#: the pip extra that installs the preferred one
EXTRA = "litert"


class TFLiteBackend(Backend):
    """A TFLite flatbuffer on the first installed interpreter (or the one named)."""

    def __init__(self, model: bytes, num_threads: int | None = None, runtime: str | None = None) -> None:
        interpreter_cls, self.name = _interpreter_class(runtime)
        try:
            # LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate" on fd 2 here; the library leaves
            # the process's file descriptors alone (the cifar-edge CLI hides the line unless -v)
            self._interpreter = interpreter_cls(model_content=model, num_threads=num_threads)
            self._interpreter.allocate_tensors()
        except Exception as exc:  # ValueError, RuntimeError, or whatever the native loader raises
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
        if self.output_dtype not in (np.float32, np.int8, np.uint8):
            raise ModelLoadError(f"the SDK supports models that output float32, int8 or uint8 class scores; this one "
                                 f"outputs {self.output_dtype} (an arg-max or label output?)")
        input_signature, output_signature = _signature(self._input), _signature(self._output)
        check_signature(input_signature, output_signature)
        # batched calls (resizing the input) only when the model declares any batch; else one image per call
        self.supports_batch = input_signature[:1] == (-1,) and output_signature[:1] == (-1,)
        self.num_outputs = int(self._output["shape"][-1])
        if self.input_dtype != np.float32:
            self.input_quantization = _scale_zero_point(self._input, "input")
        if self.output_dtype != np.float32:
            self.output_quantization = _scale_zero_point(self._output, "output")
        self._input_index, self._output_index = self._input["index"], self._output["index"]
        self._batch = self.input_shape[0] if self.input_shape else 0
        self._lock = threading.Lock()  # an Interpreter must not be invoked from two threads at once

    def invoke(self, tensor: np.ndarray) -> np.ndarray:
        """``set_tensor`` + ``invoke`` + ``get_tensor`` (copied) on a tensor of the model's input dtype."""
        interpreter = self._interpreter
        with self._lock:
            if tensor.shape[0] != self._batch:
                interpreter.resize_tensor_input(self._input_index, list(tensor.shape))
                interpreter.allocate_tensors()
                self._batch = tensor.shape[0]
            interpreter.set_tensor(self._input_index, tensor)
            interpreter.invoke()
            return interpreter.get_tensor(self._output_index).copy()


def _signature(details: dict[str, Any]) -> tuple[int, ...]:
    """A tensor's shape with -1 for its dynamic dimensions (``shape_signature`` where the runtime has it)."""
    signature = details.get("shape_signature")
    shape = signature if signature is not None and len(signature) == len(details["shape"]) else details["shape"]
    return tuple(int(d) for d in shape)


def _scale_zero_point(details: dict[str, Any], which: str) -> tuple[float, int]:
    scale, zero_point = details["quantization"]
    if not scale:
        raise ModelLoadError(f"the model's {which} is {np.dtype(details['dtype'])} but carries no quantization scale")
    return float(scale), int(zero_point)


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
    tried = ", ".join(BACKENDS[name] for name in order)
    raise BackendUnavailableError(f"no TFLite runtime is installed (tried {tried}); install the '{EXTRA}' extra: "
                                  f"{install_line(EXTRA)}")


def load(model: bytes, num_threads: int | None, backend: str | None) -> Backend:
    """Open ``model`` on ``backend`` (one of :data:`BACKENDS`) or the first installed TFLite runtime."""
    return TFLiteBackend(model, num_threads, backend)
