"""Standard TFLite Model Metadata for an image classifier, built with MediaPipe's metadata writers.

The metadata MediaPipe Tasks' ``ImageClassifier``, LiteRT's support library and Netron read: the
model's name, the input image tensor (RGB, its ``NormalizationOptions`` mean/std in pixel units,
which is exactly :class:`~edge_sdk.spec.PreprocessSpec`'s convention) and the output probability
tensor with its label file. Each tensor's metadata comes from MediaPipe's own builders
(``mediapipe.tasks.python.metadata.metadata_writers.metadata_info``), assembled as MediaPipe's
``metadata_writer`` does and packed with its generated schema code.

MediaPipe's ``MetadataWriter.populate()`` itself cannot run with the MediaPipe releases that
install beside NumPy 2 (0.10.30 to 1.2.3): its ``metadata`` module imports the native
``mediapipe.tasks.cc.metadata.python._pywrap_metadata_version``, which those wheels do not ship.
:func:`cifar_edge.convert.embed.embed_tflite_metadata` therefore does the populator's two steps: it stores
the buffer as the model's ``TFLITE_METADATA`` entry and appends the label file as a zip archive
after the flatbuffer, as MediaPipe's populator lays a file out.
"""

from __future__ import annotations

from dataclasses import dataclass

from cifar_edge.cli.extras import require
from edge_sdk.errors import MetadataError
from edge_sdk.spec import PreprocessSpec
from edge_sdk.standard_metadata import METADATA_IDENTIFIER

LABEL_FILE = "labels.txt"
#: the oldest metadata parser that reads what is written here (no vocabulary files, tensor groups,
#: custom metadata or subgraph process units): what MediaPipe 0.10.21's native version check returns
MIN_PARSER_VERSION = "1.0.0"
DESCRIPTION = "Identify the most prominent object in the image from a known set of categories."


@dataclass(frozen=True)
class StandardMetadataPayload:
    """The ``TFLITE_METADATA`` flatbuffer and the associated files it names (file name -> bytes)."""

    buffer: bytes
    files: dict[str, bytes]


def build_standard_metadata(tflite: bytes, spec: PreprocessSpec, model_name: str) -> StandardMetadataPayload:
    """The standard metadata of the image classifier ``tflite`` (a serialized model) preprocessed as ``spec``.

    Raises :class:`~edge_sdk.errors.MissingExtraError` when ``mediapipe`` is not installed, and
    :class:`~edge_sdk.errors.MetadataError` for a spec the standard cannot express (BGR input, a label
    holding a line break).
    """
    require("mediapipe", "train", "standard TFLite metadata", quiet=True)
    import flatbuffers
    from mediapipe.tasks.metadata import metadata_schema_py_generated as schema
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_info, writer_utils

    if spec.color_order != "RGB":
        raise MetadataError(f"standard TFLite metadata describes RGB or grayscale inputs, not {spec.color_order}")
    if any(len(label.splitlines()) != 1 for label in spec.labels):
        raise MetadataError("standard TFLite metadata stores one label per line; a label is empty or holds a line break")
    model = bytearray(tflite)
    image = metadata_info.InputImageTensorMd(
        name="image",
        description=f"RGB image of {spec.input_height}x{spec.input_width} pixels, normalized as (pixel - mean) / std.",
        norm_mean=_per_channel_or_one(spec.mean),
        norm_std=_per_channel_or_one(spec.std),
        color_space_type=schema.ColorSpaceType.RGB,
        tensor_type=writer_utils.get_input_tensor_types(model)[0],
    )
    probabilities = metadata_info.ClassificationTensorMd(
        name="probability",
        description=f"Probabilities of the {spec.num_classes} labels.",
        label_files=[metadata_info.LabelFileMd(LABEL_FILE)],
        tensor_type=writer_utils.get_output_tensor_types(model)[0],
    )
    subgraph = schema.SubGraphMetadataT()
    subgraph.inputTensorMetadata = [image.create_metadata()]
    subgraph.outputTensorMetadata = [probabilities.create_metadata()]
    metadata = metadata_info.GeneralMd(name=model_name, description=DESCRIPTION).create_metadata()
    metadata.subgraphMetadata = [subgraph]
    metadata.minParserVersion = MIN_PARSER_VERSION
    builder = flatbuffers.Builder(0)
    builder.Finish(metadata.Pack(builder), METADATA_IDENTIFIER)
    labels = "\n".join(spec.labels).encode("utf-8")
    return StandardMetadataPayload(bytes(builder.Output()), {LABEL_FILE: labels})


def _per_channel_or_one(values: tuple[float, float, float]) -> list[float]:
    """One value when every channel has the same (MediaPipe Tasks refuses per-channel normalization:
    "Per-channel image normalization is not available"), else one per channel (TFLite Support reads it)."""
    return [values[0]] if len(set(values)) == 1 else list(values)
