"""The preprocessing spec: one definition, JSON round trip, strict validation."""

import json

import numpy as np
import pytest

from edge_sdk.errors import MetadataError
from edge_sdk.spec import CIFAR10_CLASSES, PreprocessSpec

pytestmark = pytest.mark.sdk  # needs only the SDK's extras: scripts/test_sdk.sh runs it without TensorFlow


def test_default_spec_is_cifar10_scaled_to_unit_range():
    spec = PreprocessSpec()
    assert spec.labels == CIFAR10_CLASSES
    assert spec.input_size == (32, 32)
    out = spec.normalize(np.array([[[0, 128, 255]]], dtype=np.uint8))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[[0.0, 128 / 255, 1.0]]], rtol=1e-6)


def test_per_channel_normalization():
    spec = PreprocessSpec(mean=(10, 20, 30), std=(2, 4, 5))
    out = spec.normalize(np.full((1, 1, 3), 50, dtype=np.uint8))
    np.testing.assert_allclose(out[0, 0], [20.0, 7.5, 4.0])


def test_json_round_trip_is_exact():
    spec = PreprocessSpec(labels=("a", "b"), input_height=24, input_width=40, mean=(1, 2, 3), std=(4, 5, 6),
                          resize="center-crop", color_order="BGR")
    text = spec.to_json()
    assert json.loads(text)["labels"] == ["a", "b"]
    assert PreprocessSpec.from_json(text) == spec


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"labels": "abc"}', "labels"),
        ('{"labels": []}', "labels is empty"),
        ('{"labels": ["a", "a"]}', "duplicates"),
        ('{"std": [1, 0, 1]}', "std must not contain 0"),
        ('{"mean": [1, 2]}', "mean"),
        ('{"layout": "NCWH"}', "layout"),
        ('{"input_height": -3}', "input_height"),
        ('{"surprise": 1}', "unknown keys: surprise"),
        ('{"version": 99}', "unsupported spec version"),
    ],
)
def test_malformed_spec_raises_metadata_error(text, fragment):
    with pytest.raises(MetadataError, match=fragment):
        PreprocessSpec.from_json(text)
