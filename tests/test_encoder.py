"""The SDK's input encoder: the lookup-table path for integer models is bit-identical to quantize(normalize(x))."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_sdk import Classifier, PreprocessSpec
from edge_sdk.formats import FILE_NAMES, FORMATS
from edge_sdk.runtimes import quantize

EXPORT = Path(__file__).resolve().parents[1] / "models" / "resnet8" / "export"
PIXELS = np.random.default_rng(7).integers(0, 256, size=(5, 32, 32, 3), dtype=np.uint8)


def _expected(clf: Classifier, image: np.ndarray) -> np.ndarray:
    x = clf.preprocess(image)
    q = clf._backend.input_quantization
    return x if q is None else quantize(x, *q, clf._backend.input_dtype)


@pytest.mark.parametrize("name", FILE_NAMES)
def test_encode_equals_quantized_normalized_input(name):
    clf = Classifier(EXPORT / name)
    for image in PIXELS:
        got = clf.encode(image)
        assert got.dtype == clf._backend.input_dtype and got.shape == (1, 32, 32, 3)
        np.testing.assert_array_equal(got, _expected(clf, image))


def test_int8_default_spec_maps_each_pixel_to_pixel_minus_128():
    clf = Classifier(EXPORT / FORMATS["tflite-int8"].file_name)
    np.testing.assert_array_equal(clf.encode(PIXELS[0]), (PIXELS[0].astype(np.int16) - 128).astype(np.int8)[None])


def test_per_channel_normalization_and_bgr_models_use_one_table_per_channel():
    spec = PreprocessSpec(mean=(10.0, 120.0, 250.0), std=(40.0, 90.0, 20.0), color_order="BGR")
    clf = Classifier(EXPORT / FORMATS["tflite-int8"].file_name, preprocess=spec)
    assert clf._encoder._lut.shape == (3, 256)
    for image in PIXELS:
        np.testing.assert_array_equal(clf.encode(image), _expected(clf, image))
    # a BGR model sees the channels reversed: the first input channel is the image's blue one
    flipped = Classifier(EXPORT / FORMATS["tflite-int8"].file_name, preprocess=PreprocessSpec(color_order="BGR"))
    plain = Classifier(EXPORT / FORMATS["tflite-int8"].file_name)
    np.testing.assert_array_equal(flipped.encode(PIXELS[0])[0, :, :, 0], plain.encode(PIXELS[0])[0, :, :, 2])


def test_batch_encoding_equals_one_by_one():
    clf = Classifier(EXPORT / FORMATS["tflite-int8"].file_name, top_k=10)
    batch = clf.classify_batch(list(PIXELS))
    for image, result in zip(PIXELS, batch):
        single = clf.classify(image)
        assert [c.index for c in single.categories] == [c.index for c in result.categories]
        np.testing.assert_allclose([c.score for c in single.categories], [c.score for c in result.categories])
