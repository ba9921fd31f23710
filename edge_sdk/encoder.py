"""Turn uint8 RGB pixels into the exact tensor a model takes, in one vectorized step.

For a float model that is the spec's normalization. For an integer model the
normalization and the input quantization together map each 0-255 pixel value
to one integer, so the encoder precomputes that map as a 256-entry lookup
table per channel (the same arithmetic as ``quantize(spec.normalize(x))``,
hence bit-identical) and encodes an image with one ``np.take``: no float
intermediate, no per-call temporaries beyond the output.
"""

from __future__ import annotations

import numpy as np

from .runtimes.base import Backend, quantize
from .spec import PreprocessSpec


class InputEncoder:
    """Encode ``(N, H, W, 3)`` uint8 RGB pixels for one model (float or quantized input)."""

    def __init__(self, spec: PreprocessSpec, backend: Backend) -> None:
        self.dtype = backend.input_dtype
        self._spec = spec
        self._bgr = spec.color_order == "BGR"
        self._lut: np.ndarray | None = None
        if backend.input_quantization is not None:
            levels = np.broadcast_to(np.arange(256, dtype=np.float32)[:, None], (256, 3))
            table = quantize(spec.normalize(levels), *backend.input_quantization, self.dtype).T  # (3, 256)
            # one table serves every channel when the channels are normalized alike (the usual case)
            self._lut = table[0].copy() if (table == table[0]).all() else table
            self._channel = np.arange(3)

    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        """Normalized float32 values (the model's input before any quantization)."""
        if self._bgr:
            pixels = pixels[..., ::-1]
        return self._spec.normalize(pixels)

    def encode(self, pixels: np.ndarray) -> np.ndarray:
        """The model input tensor for uint8 RGB pixels of the model's input size."""
        if self._lut is None:
            return self.normalize(pixels)
        if self._bgr:
            pixels = pixels[..., ::-1]
        if self._lut.ndim == 1:
            return np.take(self._lut, pixels)
        return self._lut[self._channel, pixels]
