"""Turn uint8 RGB pixels into the exact tensor a model takes, in one vectorized step.

Every pixel value 0-255 maps to one input value, so the encoder precomputes that map once as a 256-entry lookup table
per channel (the same arithmetic as ``spec.normalize(x)`` for a float model and ``quantize(spec.normalize(x))`` for an
integer one, hence bit-identical) and encodes an image with one ``np.take``: no float intermediate, no per-call
temporaries beyond the output. When the table of an int8 model is ``pixel - 128`` (inputs scaled to [0, 1] with the
usual scale 1/255 and zero point -128), the encoding is one XOR with 0x80 instead, the cheapest step there is; when it
is the pixel itself (a uint8 input of scale 1/255 and zero point 0, what ``--tflite-input-type uint8`` writes), the
pixels are the tensor.
"""

from __future__ import annotations

import numpy as np

from .runtimes.base import quantize
from .spec import PreprocessSpec

#: ``pixel - 128`` as int8, bit for bit ``pixel XOR 0x80``
_MINUS_128 = (np.arange(256, dtype=np.int16) - 128).astype(np.int8)
_SIGN_BIT = np.uint8(0x80)
_IDENTITY = np.arange(256, dtype=np.uint8)


class InputEncoder:
    """Turn ``(N, H, W, 3)`` uint8 RGB pixels into one model's input tensor: colour order, normalization,
    quantization (for an integer input) and layout, from the spec and the input's dtype and ``(scale,
    zero_point)``. It is built from :meth:`PreprocessSpec.normalize <edge_sdk.spec.PreprocessSpec.normalize>`,
    which training, evaluation and calibration use (tests/test_encoder.py checks they agree bit for bit)."""

    def __init__(self, spec: PreprocessSpec, input_dtype: np.dtype | type = np.float32,
                 input_quantization: tuple[float, int] | None = None) -> None:
        self.dtype = np.dtype(input_dtype)
        self._spec = spec
        self._bgr = spec.color_order == "BGR"
        self._nchw = spec.layout == "NCHW"
        levels = np.broadcast_to(np.arange(256, dtype=np.float32)[:, None], (256, 3))
        table = spec.normalize(levels)  # row v: what pixel value v becomes in each model channel
        if input_quantization is not None:
            table = quantize(table, *input_quantization, self.dtype)
        table = np.ascontiguousarray(table.T)  # (3, 256)
        # one table serves every channel when the channels are normalized alike (the usual case)
        self._lut = table[0].copy() if (table == table[0]).all() else table
        self._channel = np.arange(3)
        self._xor = self._lut.dtype == np.int8 and np.array_equal(self._lut, _MINUS_128)
        self._identity = self._lut.dtype == np.uint8 and np.array_equal(self._lut, _IDENTITY)

    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        """Normalized float32 values in the model's layout (its input before any quantization)."""
        x = self._spec.normalize(pixels)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if self._nchw else x

    def encode(self, pixels: np.ndarray) -> np.ndarray:
        """The model input tensor for a ``(N, H, W, 3)`` batch of uint8 RGB pixels of the model's input size."""
        if self._bgr:
            pixels = pixels[..., ::-1]  # the table's columns are the model's channels
        if self._xor:
            x = np.bitwise_xor(pixels, _SIGN_BIT).view(np.int8)
        elif self._identity:
            x = np.ascontiguousarray(pixels)
        elif self._lut.ndim == 1:
            x = np.take(self._lut, pixels)
        else:
            x = self._lut[self._channel, pixels]
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if self._nchw else x
