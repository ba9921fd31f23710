"""Embed :class:`edge_sdk.metadata.ModelMetadata` into TFLite and ONNX models."""

from __future__ import annotations

from typing import Any

import flatbuffers
import numpy as np
from tensorflow.lite.python import schema_py_generated as schema

from edge_sdk.metadata import METADATA_KEY, ModelMetadata, is_tflite


def embed_metadata(model: bytes, metadata: ModelMetadata) -> bytes:
    """``model`` (a serialized TFLite or ONNX file) with ``metadata`` embedded in its own container."""
    if is_tflite(model):
        return embed_tflite_metadata(model, metadata)
    import onnx

    proto = onnx.load_from_string(model)
    embed_onnx_metadata(proto, metadata)
    return proto.SerializeToString()


def embed_tflite_metadata(tflite: bytes, metadata: ModelMetadata) -> bytes:
    """Return ``tflite`` with the metadata JSON added as the ``cifar_edge`` ``Model.metadata`` entry.

    An existing ``cifar_edge`` entry is replaced; other entries (the converter's
    own ``min_runtime_version`` and ``CONVERSION_METADATA``) are kept, so stock
    runtimes load the file unchanged.
    """
    model = schema.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
    payload = np.frombuffer(metadata.to_json().encode("utf-8"), dtype=np.uint8)
    buffer = schema.BufferT()
    buffer.data = payload
    model.buffers = list(model.buffers or [])
    entries = [m for m in (model.metadata or []) if _name(m) != METADATA_KEY]
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_KEY
    entry.buffer = len(model.buffers) - 1
    model.metadata = [*entries, entry]
    builder = flatbuffers.Builder(len(tflite) + len(payload) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _name(entry: Any) -> str:
    name = entry.name
    return name.decode("utf-8") if isinstance(name, bytes) else str(name)


def embed_onnx_metadata(model: Any, metadata: ModelMetadata) -> None:
    """Set the ``cifar_edge`` entry of an ``onnx.ModelProto``'s ``metadata_props`` (in place)."""
    kept = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    prop = model.metadata_props.add()
    prop.key = METADATA_KEY
    prop.value = metadata.to_json()
    model.producer_name = "cifar-edge"
