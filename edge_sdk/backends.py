"""Runtime backends: one small interface over LiteRT / tflite-runtime / tf.lite and ONNX Runtime.

A backend takes a batch of *normalized* float32 images (NHWC, as produced by
:meth:`edge_sdk.spec.PreprocessSpec.normalize`) and returns float32 class
probabilities. Integer models are handled inside: inputs are quantized with
the model's own scale and zero point, outputs dequantized.

The backend is chosen from the file suffix (``.tflite`` or ``.onnx``) unless
named; runtimes are imported only when a model needs them.
"""

from __future__ import annotations

import importlib
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ._extras import require, silenced_stderr_fd
from .errors import BackendUnavailableError, ModelLoadError

TFLITE_RUNTIMES = ("ai_edge_litert", "tflite_runtime", "tensorflow")
BACKENDS = ("litert", "tflite-runtime", "tf-lite", "onnxruntime")


def _quantize(x: np.ndarray, scale: float, zero_point: int, dtype: np.dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    q = np.rint(x / scale + zero_point)
    return np.clip(q, info.min, info.max).astype(dtype)


class Backend:
    """Common interface: ``run(batch) -> probabilities`` plus input/output facts."""

    name: str = ""
    input_shape: tuple[int, ...] = ()
    input_dtype: np.dtype = np.dtype(np.float32)
    output_dtype: np.dtype = np.dtype(np.float32)
    num_outputs: int = 0
    supports_batch: bool = True

    def run(self, batch: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Input/output dtypes and shapes (for manifests and benchmarks)."""
        return {
            "backend": self.name,
            "input_shape": list(self.input_shape),
            "input_dtype": str(self.input_dtype),
            "output_dtype": str(self.output_dtype),
            "outputs": self.num_outputs,
        }


class TFLiteBackend(Backend):
    """A ``.tflite`` model on LiteRT (``ai-edge-litert``), else ``tflite-runtime``, else ``tf.lite``."""

    def __init__(self, model: bytes, num_threads: int | None = None, runtime: str | None = None) -> None:
        interpreter_cls, self.name = _tflite_interpreter(runtime)
        try:
            with silenced_stderr_fd():  # LiteRT prints an INFO line when it applies XNNPACK
                self._interpreter = interpreter_cls(model_content=model, num_threads=num_threads)
                self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"{self.name} cannot load the TFLite model: {exc}") from exc
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelLoadError(
                f"the SDK supports models with one input and one output; this one has {len(inputs)} and {len(outputs)}"
            )
        self._input, self._output = inputs[0], outputs[0]
        self.input_shape = tuple(int(d) for d in self._input["shape"])
        self.input_dtype = np.dtype(self._input["dtype"])
        self.output_dtype = np.dtype(self._output["dtype"])
        self.num_outputs = int(self._output["shape"][-1])
        self._in_q = self._input["quantization"]
        self._out_q = self._output["quantization"]
        self._batch = self.input_shape[0]
        self._lock = threading.Lock()  # an Interpreter must not be invoked from two threads at once

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities for a normalized float32 NHWC batch."""
        x = batch
        if self.input_dtype != np.float32:
            scale, zero_point = self._in_q
            x = _quantize(batch, scale, zero_point, self.input_dtype)
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
            scale, zero_point = self._out_q
            out = (out.astype(np.float32) - zero_point) * scale
        return out

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        if self.input_dtype != np.float32:
            info["input_quantization"] = {"scale": float(self._in_q[0]), "zero_point": int(self._in_q[1])}
        if self.output_dtype != np.float32:
            info["output_quantization"] = {"scale": float(self._out_q[0]), "zero_point": int(self._out_q[1])}
        return info


def _tflite_interpreter(runtime: str | None) -> tuple[Any, str]:
    """The first importable TFLite interpreter class, or the one named."""
    names = {"litert": "ai_edge_litert", "tflite-runtime": "tflite_runtime", "tf-lite": "tensorflow"}
    order = [names[runtime]] if runtime else list(TFLITE_RUNTIMES)
    for module in order:
        try:
            if module == "ai_edge_litert":
                return importlib.import_module("ai_edge_litert.interpreter").Interpreter, "litert"
            if module == "tflite_runtime":
                return importlib.import_module("tflite_runtime.interpreter").Interpreter, "tflite-runtime"
            return importlib.import_module("tensorflow").lite.Interpreter, "tf-lite"
        except ImportError:
            continue
    raise BackendUnavailableError(
        "no TFLite runtime is installed (tried "
        + ", ".join(order)
        + "); install the 'litert' extra: pip install 'cifar-edge[litert]'"
    )


class OnnxBackend(Backend):
    """An ``.onnx`` model on ONNX Runtime (CPU)."""

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
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelLoadError(
                f"the SDK supports models with one input and one output; this one has {len(inputs)} and {len(outputs)}"
            )
        self._input_name = inputs[0].name
        self.input_shape = tuple(d if isinstance(d, int) else -1 for d in inputs[0].shape)
        if inputs[0].type != "tensor(float)":
            raise ModelLoadError(f"the SDK supports ONNX models with float input; this one takes {inputs[0].type}")
        last = outputs[0].shape[-1]
        self.num_outputs = int(last) if isinstance(last, int) else 0
        self.supports_batch = self.input_shape[0] == -1

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities for a normalized float32 NHWC batch (ONNX Runtime sessions are thread-safe)."""
        x = np.ascontiguousarray(batch, dtype=np.float32)
        return np.asarray(self._session.run(None, {self._input_name: x})[0], dtype=np.float32)


def open_backend(
    model: str | os.PathLike[str], backend: str | None = None, num_threads: int | None = None
) -> Backend:
    """Load ``model`` on the backend its suffix implies (or the one named in ``backend``)."""
    path = Path(model)
    if not path.is_file():
        raise ModelLoadError(f"model file not found: {path}")
    data = path.read_bytes()
    if not data:
        raise ModelLoadError(f"model file is empty: {path}")
    kind = backend or {".tflite": "tflite", ".onnx": "onnxruntime"}.get(path.suffix.lower())
    if kind is None:
        raise ModelLoadError(f"unknown model type {path.suffix!r} (expected .tflite or .onnx): {path}")
    if kind not in (*BACKENDS, "tflite"):
        raise BackendUnavailableError(f"unknown backend {kind!r}; choose one of: {', '.join(BACKENDS)}")
    try:
        if kind == "onnxruntime":
            return OnnxBackend(data, num_threads)
        return TFLiteBackend(data, num_threads, None if kind == "tflite" else kind)
    except ModelLoadError as exc:
        raise ModelLoadError(f"{path}: {exc}") from exc


def run_batched(backend: Backend, inputs: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Run ``inputs`` through ``backend`` in batches (one image at a time if it has a fixed batch of 1)."""
    step = batch_size if backend.supports_batch else 1
    out = [backend.run(inputs[i : i + step]) for i in range(0, len(inputs), step)]
    return np.concatenate(out) if out else np.zeros((0, backend.num_outputs), np.float32)
