"""The interface both runtime modules implement, the checks of a model's signature at load, and the affine
(de)quantization of integer inputs and outputs (the input encoder quantizes with the model's own scale and
zero point; outputs are dequantized to float32 probabilities)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np

from ..errors import ModelLoadError


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: np.dtype) -> np.ndarray:
    """Float values to integers of ``dtype`` with an affine ``scale``/``zero_point`` (rounded, clipped)."""
    info = np.iinfo(dtype)
    q = np.rint(x / scale + zero_point)
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Integers back to float32 values."""
    return (q.astype(np.float32) - zero_point) * np.float32(scale)


class Backend:
    """One model loaded on one runtime: :meth:`invoke`, the runtime's own call, and the facts the
    :class:`~edge_sdk.Classifier` reads. A quantized input or output sets ``input_quantization`` /
    ``output_quantization`` as ``(scale, zero_point)``."""

    name: str = ""
    input_shape: tuple[int, ...] = ()
    input_dtype: np.dtype = np.dtype(np.float32)
    output_dtype: np.dtype = np.dtype(np.float32)
    input_quantization: tuple[float, int] | None = None
    output_quantization: tuple[float, int] | None = None
    num_outputs: int = 0
    supports_batch: bool = True

    def invoke(self, tensor: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        """One call of the runtime on a tensor already in the model's input dtype; raw output."""
        raise NotImplementedError

    def output_to_probabilities(self, raw: np.ndarray) -> np.ndarray:
        """Dequantize a raw model output (float outputs pass through); 8-bit outputs by a 256-entry table,
        bit-identical to :func:`dequantize` and cheaper per call."""
        if self.output_quantization is None:
            return raw
        table = self._output_table
        if table is not None and raw.dtype == self.output_dtype:
            return table[raw.view(np.uint8)]
        return dequantize(raw, *self.output_quantization)

    @cached_property
    def _output_table(self) -> np.ndarray | None:
        """The float32 value of every 8-bit output ``q`` at index ``q`` viewed as uint8 (None for other outputs)."""
        dtype = self.output_dtype
        if self.output_quantization is None or dtype.itemsize != 1 or dtype.kind not in "iu":
            return None
        return dequantize(np.arange(256, dtype=np.uint8).view(dtype), *self.output_quantization)

    def describe(self) -> dict[str, Any]:
        """Input/output dtypes and shapes (for manifests and benchmarks)."""
        info: dict[str, Any] = {
            "backend": self.name,
            "input_shape": list(self.input_shape),
            "input_dtype": str(self.input_dtype),
            "output_dtype": str(self.output_dtype),
            "outputs": self.num_outputs,
        }
        for key, q in (("input_quantization", self.input_quantization), ("output_quantization", self.output_quantization)):
            if q is not None:
                info[key] = {"scale": float(q[0]), "zero_point": int(q[1])}
        return info


def check_signature(input_shape: tuple[int, ...], output_shape: tuple[int, ...] | None) -> None:
    """Raise :class:`ModelLoadError` unless the model takes a batch of 1 (or any) and returns (N, classes) scores.

    ``-1`` marks a dynamic dimension; ``output_shape`` None means the runtime does not know it
    (the classifier then checks every output it gets).
    """
    if input_shape and input_shape[0] not in (-1, 1):
        raise ModelLoadError(f"the SDK supports models with a batch of 1 or a dynamic batch; this one takes a fixed "
                             f"batch of {input_shape[0]} (input shape {tuple(input_shape)})")
    if output_shape is None:
        return
    if len(output_shape) != 2 or output_shape[0] not in (-1, 1) or output_shape[1] == 0:
        raise ModelLoadError(f"the SDK supports models whose output is one row of class scores per image, shape "
                             f"(N, classes); this one returns shape {tuple(output_shape)}")


def check_single_io(n_inputs: int, n_outputs: int) -> None:
    """Raise :class:`ModelLoadError` unless the model has one input and one output."""
    if n_inputs != 1 or n_outputs != 1:
        raise ModelLoadError(f"the SDK supports models with one input and one output; this one has {n_inputs} and "
                             f"{n_outputs}")
