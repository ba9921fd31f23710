"""A minimal protobuf wire-format reader (standard library only), for ONNX files.

The SDK reads ONNX metadata and checks a model's tensors without the ``onnx``
package. Malformed input raises :class:`~edge_sdk.errors.MetadataError`.
"""

from __future__ import annotations

from collections.abc import Iterator

from .errors import MetadataError


def varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Decode the varint at ``pos``; return (value, position after it)."""
    result = shift = 0
    while True:
        if pos >= len(data):
            raise MetadataError("ONNX file is truncated or corrupt (varint past the end)")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise MetadataError("ONNX file is corrupt (varint too long)")


def fields(data: bytes | memoryview) -> Iterator[tuple[int, int, int | bytes | memoryview]]:
    """Yield (field number, wire type, value) of a protobuf message; value is bytes (or a memoryview slice of
    a memoryview) for length-delimited fields."""
    pos = 0
    while pos < len(data):
        key, pos = varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = varint(data, pos)
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = varint(data, pos)
            if pos + length > len(data):
                raise MetadataError("ONNX file is truncated or corrupt (field past the end)")
            value, pos = data[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise MetadataError(f"not an ONNX model (unexpected protobuf wire type {wire})")
        if pos > len(data):
            raise MetadataError("ONNX file is truncated or corrupt")
        yield number, wire, value
