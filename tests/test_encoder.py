"""The SDK's input encoder: the lookup-table path for integer models is bit-identical to quantize(normalize(x))."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_sdk import Classifier, PreprocessSpec
from cifar_edge.cli.formats import FILE_NAMES, FORMATS
from edge_sdk.encoder import InputEncoder
from edge_sdk.errors import MetadataError
from edge_sdk.runtimes.base import quantize

pytestmark = pytest.mark.sdk  # needs only the SDK's extras: scripts/test_sdk.sh runs it without TensorFlow

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


def test_float_models_encode_by_table_exactly_as_normalize():
    spec = PreprocessSpec(mean=(10.0, 120.0, 250.0), std=(40.0, 90.0, 20.0))
    for fmt in (f for f in FORMATS.values() if f.suffix == ".onnx"):  # ONNX exports take float input
        for preprocess in (None, spec):
            clf = Classifier(EXPORT / fmt.file_name, preprocess=preprocess)
            for image in PIXELS:
                got = clf.encode(image)
                assert got.dtype == np.float32
                np.testing.assert_array_equal(got, clf.preprocess(image))  # bit for bit, not approximately


@pytest.mark.parametrize("fmt", list(FORMATS.values()), ids=list(FORMATS))
def test_classify_scores_are_exactly_the_probabilities(fmt):
    clf = Classifier(EXPORT / fmt.file_name, top_k=10)
    for image in PIXELS:
        probs = clf.probabilities(image)
        result = clf.classify(image)
        want = sorted(range(10), key=lambda i: (-probs[i], i))  # best first, ties in class order
        assert [c.index for c in result.categories] == want
        assert [c.score for c in result.categories] == [float(probs[i]) for i in want]


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_8bit_outputs_dequantize_by_table_exactly(dtype):
    from edge_sdk.runtimes.base import Backend, dequantize

    backend = Backend()
    backend.output_dtype, backend.output_quantization = np.dtype(dtype), (0.00390625 * 1.37, 7)
    every = np.arange(256, dtype=np.uint8).view(dtype).reshape(2, 128)
    want = dequantize(every, *backend.output_quantization)
    np.testing.assert_array_equal(backend.output_to_probabilities(every), want)
    wide = every.astype(np.int32)  # not the declared dtype: the plain arithmetic path
    np.testing.assert_array_equal(backend.output_to_probabilities(wide), want)


def _reference_categories(probs, labels, allowed, threshold, top_k):
    """The ranking before the per-call trimming: numpy's stable argsort of -probs, then the filters."""
    picked = []
    for i in np.argsort(-probs, kind="stable"):
        if (allowed is not None and not allowed[i]) or probs[i] < threshold:
            continue
        picked.append((int(i), labels[i], float(probs[i])))
        if len(picked) == top_k:
            break
    return picked


@pytest.mark.parametrize("classes", [3, 10, 64, 65, 300])
def test_categories_rank_like_numpy_with_ties_filters_and_negative_scores(classes):
    from types import SimpleNamespace

    from edge_sdk.classifier import Classifier as C

    rng = np.random.default_rng(classes)
    labels = tuple(f"c{i}" for i in range(classes))
    for trial in range(60):
        probs = rng.integers(-3, 4, classes).astype(np.float32) / 4  # many ties, some negative scores
        allowed = None if trial % 3 else rng.random(classes) < 0.6
        threshold = float(rng.choice([0.0, 0.25, -1.0]))
        top_k = int(rng.integers(1, classes + 2))
        fake = SimpleNamespace(spec=SimpleNamespace(labels=labels), _allowed=None if allowed is None else allowed.tolist())
        got = [tuple(c) for c in C._categories(fake, probs.tolist(), top_k, threshold)]
        assert got == _reference_categories(probs, labels, allowed, threshold, top_k)
    with pytest.raises(Exception, match="non-finite"):
        C._categories(fake, [float("nan")] + [0.0] * (classes - 1), 1, 0.0)


@pytest.mark.parametrize("scale, zero_point, identity", [(1 / 255, 0, True), (1 / 255, 3, False), (1 / 128, 0, False)])
def test_uint8_inputs_encode_from_the_files_quantization(scale, zero_point, identity):
    """A uint8-input model (``--tflite-input-type uint8``) gets quantize(normalize(pixels)) with its own scale and
    zero point; for scale 1/255 and zero point 0 that is the pixels themselves (no table look-up)."""
    from types import SimpleNamespace

    from edge_sdk.encoder import InputEncoder

    spec = PreprocessSpec()
    backend = SimpleNamespace(input_dtype=np.dtype(np.uint8), input_quantization=(scale, zero_point))
    encoder = InputEncoder(spec, backend.input_dtype, backend.input_quantization)
    got = encoder.encode(PIXELS)
    assert got.dtype == np.uint8 and encoder._identity is identity
    np.testing.assert_array_equal(got, quantize(spec.normalize(PIXELS), scale, zero_point, np.dtype(np.uint8)))
    if identity:
        np.testing.assert_array_equal(got, PIXELS)


def _channel_mean_model(path: Path, channels_first: bool) -> Path:
    """A 3-class ONNX model whose scores are the softmax of its three input channels' means."""
    onnx = pytest.importorskip("onnx")  # the train extra's; absent from an SDK-only install
    from onnx import TensorProto, helper

    shape, axes = (["N", 3, 4, 4], [2, 3]) if channels_first else (["N", 4, 4, 3], [1, 2])
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["x"], ["m"], axes=axes, keepdims=0),
         helper.make_node("Mul", ["m", "k"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["probs"], axis=1)],
        "channel_means",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor("k", TensorProto.FLOAT, [], [10.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


RED = np.zeros((4, 4, 3), np.uint8)
RED[..., 0] = 255


def test_nchw_models_get_channels_first_tensors_and_colour_order_is_applied(tmp_path):
    pytest.importorskip("onnxruntime")
    nchw = _channel_mean_model(tmp_path / "nchw.onnx", channels_first=True)
    nhwc = _channel_mean_model(tmp_path / "nhwc.onnx", channels_first=False)
    labels = ["first", "second", "third"]
    first = Classifier(nchw, labels=labels)  # no metadata: the layout comes from the input shape
    assert first.spec.layout == "NCHW" and first.spec.input_size == (4, 4)
    assert first.classify(RED).top.label == "first"
    assert first.encode(RED).shape == (1, 3, 4, 4)
    np.testing.assert_array_equal(first.encode(PIXELS[0][:4, :4]),
                                  Classifier(nhwc, labels=labels).encode(PIXELS[0][:4, :4]).transpose(0, 3, 1, 2))
    for model in (nchw, nhwc):  # a BGR model sees red in its last channel, whatever the layout
        bgr = Classifier(model, labels=labels, preprocess={"color_order": "BGR"})
        assert bgr.classify(RED).top.label == "third"
        assert bgr.classify(RED[..., ::-1], color="bgr").top.label == "third"
    with pytest.raises(MetadataError, match="NHWC"):
        Classifier(nchw, labels=labels, preprocess={"layout": "NHWC"})


@pytest.mark.parametrize("spec", [PreprocessSpec(), PreprocessSpec(mean=(10.0, 120.0, 250.0), std=(40.0, 90.0, 20.0),
                                                                   color_order="BGR")], ids=["default", "bgr"])
def test_the_training_pipeline_feeds_keras_what_the_sdk_encoder_feeds_the_runtime(spec):
    pytest.importorskip("tensorflow")  # the train extra's
    from cifar_edge.train.pipeline import make_dataset

    labels = np.arange(len(PIXELS)) % spec.num_classes
    (batch, _), = make_dataset(PIXELS, labels, spec, batch_size=len(PIXELS), training=False).as_numpy_iterator()
    np.testing.assert_array_equal(batch, InputEncoder(spec).encode(PIXELS))  # float input: bit for bit


def test_keras_paths_refuse_a_channels_first_spec():
    with pytest.raises(MetadataError, match="Keras models take NHWC"):
        PreprocessSpec(layout="NCHW").require_channels_last("spec.json")
    assert PreprocessSpec(layout="NCHW").input_shape(2) == (2, 3, 32, 32)
