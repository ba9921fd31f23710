"""The SDK reads the standard TFLite Model Metadata (labels, normalization) without TensorFlow or MediaPipe.

Runs in the SDK's own venv too (scripts/test_sdk.sh). The fixture is a tiny float classifier carrying
only standard metadata, written by scripts/make_standard_metadata_fixture.py with MediaPipe's writer
builders: it calls a gray 100 image "dark" and a gray 200 image "bright" only when its normalization
(mean 110, std 40) is applied.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edge_sdk import Classifier
from edge_sdk.errors import MetadataError
from edge_sdk.metadata import read_metadata, tflite_metadata_entry
from edge_sdk.spec import PreprocessSpec
from edge_sdk.standard_metadata import METADATA_NAME, StandardMetadata, read_standard_metadata, standard_spec

pytestmark = pytest.mark.sdk  # needs only the SDK's extras: scripts/test_sdk.sh runs it without TensorFlow

pytest.importorskip("ai_edge_litert")

FIXTURE = Path(__file__).parent / "fixtures" / "standard_metadata_classifier.tflite"
GRAY_100 = np.full((8, 8, 3), 100, np.uint8)
GRAY_200 = np.full((8, 8, 3), 200, np.uint8)


@pytest.fixture(scope="module")
def data() -> bytes:
    return FIXTURE.read_bytes()


def _copy(tmp_path: Path, data: bytes, name: str = "model.tflite") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_fixture_carries_only_the_standard_metadata(data):
    assert tflite_metadata_entry(data, METADATA_NAME)
    assert read_metadata(data) is None  # no cifar_edge entry: the labels can only come from the standard one
    assert read_standard_metadata(data) == StandardMetadata(
        name="standard-metadata-fixture", color_space="RGB", mean=(110.0,), std=(40.0,), labels=("bright", "dark"))


def test_classifier_takes_labels_and_normalization_from_standard_metadata():
    clf = Classifier(FIXTURE)
    assert clf.metadata is None
    assert clf.labels == ("bright", "dark")
    assert (clf.spec.mean, clf.spec.std, clf.spec.input_size) == ((110.0,) * 3, (40.0,) * 3, (8, 8))
    assert clf.classify(GRAY_100).top.label == "dark"
    assert clf.classify(GRAY_200).top.label == "bright"
    np.testing.assert_allclose(clf.preprocess(GRAY_100), np.full((1, 8, 8, 3), -0.25, np.float32))


def test_labels_and_preprocess_arguments_override_the_standard_metadata():
    relabelled = Classifier(FIXTURE, labels=["light", "shadow"])
    assert relabelled.labels == ("light", "shadow")
    assert relabelled.classify(GRAY_100).top.label == "shadow"  # the file's normalization still applies
    unit_scaled = Classifier(FIXTURE, preprocess=PreprocessSpec(labels=("bright", "dark"), input_height=8, input_width=8))
    assert unit_scaled.classify(GRAY_100).top.label == "bright"  # [0, 1] scaling: the mean is positive


def test_standard_spec_is_none_for_files_without_it(data, shipped_export):
    renamed = data.replace(METADATA_NAME.encode(), b"TFLITE_METADATX")  # the entry under another name
    assert read_standard_metadata(renamed) is None
    assert standard_spec(renamed, (1, 8, 8, 3), "renamed.tflite") is None
    assert read_standard_metadata((shipped_export / "model_float32.onnx").read_bytes()) is None


def test_a_file_without_either_metadata_needs_labels(tmp_path, data):
    path = _copy(tmp_path, data.replace(METADATA_NAME.encode(), b"TFLITE_METADATX"))
    with pytest.raises(MetadataError, match="carries no cifar-edge metadata; pass labels="):
        Classifier(path)
    assert Classifier(path, labels=["bright", "dark"]).spec.mean == (0.0, 0.0, 0.0)


def _zip_offset(data: bytes) -> int:
    return zipfile.ZipFile(io.BytesIO(data)).infolist()[0].header_offset


def test_a_missing_label_file_is_a_metadata_error_naming_the_file(tmp_path, data):
    path = _copy(tmp_path, data[: _zip_offset(data)], "no-labels.tflite")  # the zip after the flatbuffer cut off
    with pytest.raises(MetadataError, match=r"no-labels\.tflite: .*labels\.txt"):
        Classifier(path)
    assert Classifier(path, labels=["bright", "dark"]).classify(GRAY_100).top.label == "dark"


def test_a_label_file_of_another_name_is_reported(data):
    offset = _zip_offset(data)
    renamed = data[:offset] + data[offset:].replace(b"labels.txt", b"labelz.txt")
    with pytest.raises(MetadataError, match="names label file labels.txt, which the model file does not hold"):
        read_standard_metadata(renamed)


def test_a_bad_identifier_is_refused(data):
    raw = tflite_metadata_entry(data, METADATA_NAME)
    start = data.index(raw)
    corrupt = data[: start + 4] + b"XXXX" + data[start + 8 :]
    with pytest.raises(MetadataError, match="not a TFLite ModelMetadata flatbuffer"):
        read_standard_metadata(corrupt)


def test_normalization_needs_one_or_three_values():
    assert StandardMetadata("m", "RGB", (1.0, 2.0, 3.0), (4.0, 5.0, 6.0), None).normalization() == (
        (1.0, 2.0, 3.0), (4.0, 5.0, 6.0))
    assert StandardMetadata("m", "RGB", None, None, None).normalization() is None
    with pytest.raises(MetadataError, match="2 NormalizationOptions mean values"):
        StandardMetadata("m", "RGB", (1.0, 2.0), (4.0,), None).normalization()


def test_corrupt_metadata_bytes_raise_only_metadata_errors(data):
    """Every single-byte change inside the metadata buffer either still parses or raises MetadataError."""
    raw = tflite_metadata_entry(data, METADATA_NAME)
    start = data.index(raw)
    rng = np.random.default_rng(0)
    outcomes = {"parsed": 0, "refused": 0}
    for _ in range(400):
        pos = start + int(rng.integers(len(raw)))
        corrupt = bytearray(data)
        corrupt[pos] = int(rng.integers(256))
        try:
            read_standard_metadata(bytes(corrupt))
            outcomes["parsed"] += 1
        except MetadataError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0, outcomes  # corruption is noticed, not only tolerated
