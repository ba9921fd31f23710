"""Our TFLite exports are drop-in models for MediaPipe Tasks' ImageClassifier (the real ``mediapipe`` package).

A small conversion of a float ``resnet8`` (the network of ``edge``, whose shipped model is quantization-aware and
exports int8 only: its bundled file is checked at the end) to float TFLite and the uint8-input int8 TFLite is
classified by MediaPipe and by ``edge_sdk.Classifier`` on 1,000 shared CIFAR-10 test images: the
top-1 label names must agree on >= 99%. Needs the ``train`` extra (TensorFlow, MediaPipe).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_sdk import Classifier
from edge_sdk.metadata import read_metadata, tflite_metadata_entry
from edge_sdk.spec import CIFAR10_CLASSES
from edge_sdk.standard_metadata import METADATA_NAME, read_standard_metadata

pytest.importorskip("tensorflow")
mp = pytest.importorskip("mediapipe")
vision = pytest.importorskip("mediapipe.tasks.python.vision")

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
EDGE = REPO / "models" / "resnet8"
FIXTURE = Path(__file__).parent / "fixtures" / "standard_metadata_classifier.tflite"
AGREEMENT_IMAGES = 1000


@pytest.fixture(scope="module")
def export(tmp_path_factory, cifar10_dir, session_cache) -> Path:
    """``cifar-edge convert models/resnet8/best.keras --formats tflite,tflite-int8 --tflite-input-type uint8``."""
    from cifar_edge.convert.converter import ConvertConfig, convert

    out = tmp_path_factory.mktemp("edge-uint8")
    convert(ConvertConfig(model=str(EDGE / "best.keras"), out=str(out), formats=("tflite", "tflite-int8"),
                          tflite_input_type="uint8", calib_size=500, limit=200, data=str(cifar10_dir),
                          cache_dir=str(session_cache)))
    return out


@pytest.fixture(scope="module")
def test_images(cifar10_dir, session_cache) -> np.ndarray:
    from cifar_edge.train.data import resolve_source

    test = resolve_source(str(cifar10_dir), cache_dir=str(session_cache), progress=False).load("test", CIFAR10_CLASSES)
    return test.images[:AGREEMENT_IMAGES]


def _mediapipe_top1(path: Path, images: np.ndarray) -> list[str]:
    classifier = vision.ImageClassifier.create_from_model_path(str(path))
    try:
        return [classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image)))
                .classifications[0].categories[0].category_name for image in images]
    finally:
        classifier.close()


@pytest.mark.parametrize("file", ["model_float32.tflite", "model_int8.tflite"])
def test_mediapipe_image_classifier_agrees_with_the_sdk(export, test_images, file):
    path = export / file
    ours = [result.top.label for result in Classifier(path, top_k=1).classify_batch(test_images)]
    theirs = _mediapipe_top1(path, test_images)
    assert len(theirs) == len(ours) == AGREEMENT_IMAGES
    assert set(theirs) <= set(CIFAR10_CLASSES)  # label names from the file's standard metadata
    agreement = np.mean([a == b for a, b in zip(ours, theirs)])
    assert agreement >= 0.99, f"{file}: MediaPipe and the SDK agree on {agreement:.2%} of {AGREEMENT_IMAGES} images"


def test_uint8_variant_takes_the_pixels_themselves(export, test_images):
    clf = Classifier(export / "model_int8.tflite")
    assert clf._backend.input_dtype == np.uint8 and clf._backend.output_dtype == np.uint8
    scale, zero_point = clf._backend.input_quantization
    assert zero_point == 0 and scale == pytest.approx(1 / 255)
    np.testing.assert_array_equal(clf.encode(test_images[0]), test_images[:1])
    assert read_metadata(export / "model_int8.tflite").extra["calibration"]["tflite_input_type"] == "uint8"


def test_both_metadata_survive_beside_the_converters_entries(export):
    data = (export / "model_int8.tflite").read_bytes()
    assert all(tflite_metadata_entry(data, name)
               for name in ("cifar_edge", METADATA_NAME, "min_runtime_version", "CONVERSION_METADATA"))
    ours = read_metadata(data)
    standard = read_standard_metadata(data)
    assert ours.spec.labels == standard.labels == CIFAR10_CLASSES
    assert standard.normalization() == (ours.spec.mean, ours.spec.std)
    assert standard.name == ours.model_name and standard.color_space == "RGB"


def test_mediapipe_refuses_int8_inputs(tmp_path):
    """Why the bundled files take uint8: MediaPipe's ImageClassifier takes uint8 or float32 inputs only."""
    from cifar_edge.convert.embed import embed_metadata

    source = REPO / "models" / "resnet8" / "export" / "model_int8.tflite"  # an int8-input export
    assert Classifier(source).describe()["input_dtype"] == "int8"
    int8 = source.read_bytes()
    path = tmp_path / "int8.tflite"
    path.write_bytes(embed_metadata(int8, read_metadata(int8)))
    assert read_standard_metadata(path.read_bytes()).labels == CIFAR10_CLASSES
    with pytest.raises(ValueError, match="uint8/float32, got INT8"):
        vision.ImageClassifier.create_from_model_path(str(path))


def test_mediapipe_applies_the_fixtures_normalization_as_the_sdk_does():
    """The SDK-side fixture is a valid MediaPipe classifier whose answers depend on its normalization."""
    grays = np.stack([np.full((8, 8, 3), v, np.uint8) for v in (100, 200)])
    assert _mediapipe_top1(FIXTURE, grays) == ["dark", "bright"]
    assert [r.top.label for r in Classifier(FIXTURE).classify_batch(grays)] == ["dark", "bright"]


def test_fixture_script_still_builds_what_is_committed():
    """scripts/make_standard_metadata_fixture.py builds a file whose metadata equals the committed one's."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_fixture", REPO / "scripts" / "make_standard_metadata_fixture.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert read_standard_metadata(script.build()) == read_standard_metadata(FIXTURE.read_bytes())


def test_writer_stores_one_value_for_alike_channels_three_otherwise_and_refuses_bgr():
    from cifar_edge.convert.embed import with_associated_files, with_metadata_entries
    from cifar_edge.convert.standard_metadata import build_standard_metadata
    from edge_sdk.errors import MetadataError
    from edge_sdk.spec import PreprocessSpec

    tflite = FIXTURE.read_bytes()
    spec = PreprocessSpec(labels=("bright", "dark"), input_height=8, input_width=8,
                          mean=(120.0, 127.5, 135.0), std=(60.0, 64.0, 68.0))
    payload = build_standard_metadata(tflite, spec, "per-channel")
    data = with_associated_files(with_metadata_entries(tflite, {METADATA_NAME: payload.buffer}), payload.files)
    assert read_standard_metadata(data).normalization() == (spec.mean, spec.std)
    alike = build_standard_metadata(tflite, PreprocessSpec(labels=("bright", "dark"), input_height=8, input_width=8),
                                    "alike")
    data = with_metadata_entries(tflite, {METADATA_NAME: alike.buffer})
    assert read_standard_metadata(data, with_labels=False).std == (255.0,)
    with pytest.raises(MetadataError, match="not BGR"):
        build_standard_metadata(tflite, PreprocessSpec(labels=("a", "b"), input_height=8, input_width=8,
                                                       color_order="BGR"), "bgr")


@pytest.mark.parametrize("name", ["default", "edge"])
def test_mediapipe_opens_every_bundled_tflite_file_as_it_is(name, test_images):
    """Issue 27: the bundled TFLite files take uint8, so MediaPipe's ImageClassifier runs them unchanged."""
    from edge_sdk.bundled import bundled_path

    path = bundled_path(name, ".tflite")
    images = test_images[:100]
    theirs = _mediapipe_top1(path, images)
    ours = [r.top.label for r in Classifier(path, top_k=1).classify_batch(images)]
    assert np.mean([a == b for a, b in zip(ours, theirs)]) >= 0.99
