"""Property-based tests (hypothesis) of preprocessing and of the metadata reader (issue 8).

* Preprocessing over random shapes, dtypes, values, PIL modes, corrupted
  pictures and odd objects never fails with anything but the SDK's own
  :class:`InvalidImageError`, refuses exactly the invalid arrays, and otherwise
  returns a probability vector that sums to 1.
* The metadata reader over random and corrupted model bytes raises
  :class:`MetadataError` or returns valid metadata (or None: no metadata).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from edge_sdk import Classifier
from edge_sdk.bundled import bundled_path
from edge_sdk.errors import InvalidArgumentError, InvalidImageError, MetadataError
from cifar_edge.cli.formats import FORMATS
from edge_sdk.metadata import METADATA_KEY, ModelMetadata, read_metadata, tflite_metadata_entry

# Pillow warns about the corrupt pictures made here on purpose
pytestmark = [pytest.mark.sdk, pytest.mark.filterwarnings("ignore::UserWarning:PIL.*")]  # sdk: scripts/test_sdk.sh

EXPORT = Path(__file__).resolve().parents[1] / "models" / "resnet8" / "export"
# int8 outputs come in steps of 1/256: ten of them sum to 1 within a few steps
SUM_TOLERANCE = 0.02

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def clf() -> Classifier:
    """The bundled default model (int8 TFLite), loaded once."""
    return Classifier(bundled_path("default", ".tflite"))


def assert_probability_vector(probs: np.ndarray, n: int) -> None:
    assert probs.shape == (n,) and probs.dtype == np.float32
    assert np.isfinite(probs).all() and (probs >= 0).all() and (probs <= 1).all()
    assert abs(float(probs.sum()) - 1.0) <= SUM_TOLERANCE


def classify_or_refuse(clf: Classifier, image, color: str = "rgb") -> np.ndarray | None:
    """The probabilities, or None when the SDK refused the input with its own error (anything else fails):
    InvalidImageError for the picture, InvalidArgumentError for a color that does not exist."""
    try:
        probs = clf.probabilities(image, color=color)
    except (InvalidImageError, InvalidArgumentError) as exc:
        assert isinstance(exc, InvalidImageError) or color not in ("rgb", "bgr")
        assert str(exc), "an error must say what is wrong"
        return None
    assert_probability_vector(probs, len(clf.labels))
    return probs


# --------------------------------------------------------------------------- arrays
DTYPES = [np.uint8, np.int8, np.int16, np.uint16, np.int32, np.int64, np.float16, np.float32, np.float64,
          np.dtype(">f4"), np.dtype(">u2"), np.bool_, np.complex64]


def is_valid_array(a: np.ndarray) -> bool:
    """What the SDK documents as an image array: uint8 or floats in [0, 1]; HxW, HxWx1, HxWx3 or HxWx4."""
    shape_ok = a.size > 0 and (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (1, 3, 4)))
    if not shape_ok:
        return False
    if a.dtype == np.uint8:
        return True
    if np.issubdtype(a.dtype, np.floating):
        return bool(np.isfinite(a).all() and a.min() >= 0 and a.max() <= 1)
    return False


any_arrays = st.sampled_from(DTYPES).flatmap(
    lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=40))
)
image_like_arrays = st.one_of(
    hnp.arrays(np.uint8, st.tuples(st.integers(1, 70), st.integers(1, 70), st.sampled_from([1, 3, 4]))),
    hnp.arrays(np.uint8, st.tuples(st.integers(1, 70), st.integers(1, 70))),
    hnp.arrays(st.sampled_from([np.float16, np.float32, np.float64]),
               st.tuples(st.integers(1, 48), st.integers(1, 48), st.sampled_from([3, 4])),
               elements=st.floats(0, 1, width=16)),
)


@PROPERTY
@given(image=st.one_of(any_arrays, image_like_arrays), color=st.sampled_from(["rgb", "bgr"]))
def test_arrays_are_classified_or_refused_exactly_when_invalid(clf, image, color):
    probs = classify_or_refuse(clf, image, color)
    assert (probs is not None) == is_valid_array(image), (image.dtype, image.shape)


# --------------------------------------------------------------------------- PIL images
PIL_MODES = ["1", "L", "P", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "I", "F", "LA", "PA",
             "I;16", "I;16B", "I;16L"]


@st.composite
def pil_images(draw) -> Image.Image:
    mode = draw(st.sampled_from(PIL_MODES))
    size = (draw(st.integers(0, 40)), draw(st.integers(0, 40)))
    img = Image.new(mode, size)
    n = len(img.tobytes())
    if n:
        img.frombytes(draw(st.binary(min_size=n, max_size=n)))
    return img


@PROPERTY
@given(image=pil_images())
def test_pil_images_of_every_mode_are_classified_unless_empty(clf, image):
    probs = classify_or_refuse(clf, image)
    assert (probs is not None) == (image.width > 0 and image.height > 0), image


# --------------------------------------------------------------------------- encoded pictures
def _encoded(fmt: str, mode: str, **kw) -> bytes:
    pixels = np.random.default_rng(len(fmt)).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buf, fmt, **kw)
    return buf.getvalue()


PICTURES = [_encoded("PNG", "RGB"), _encoded("PNG", "P"), _encoded("JPEG", "RGB"), _encoded("JPEG", "CMYK"),
            _encoded("BMP", "RGB"), _encoded("GIF", "P"), _encoded("WEBP", "RGB"), _encoded("TIFF", "RGB"),
            _encoded("PNG", "LA")]


@st.composite
def corrupted(draw, originals: list[bytes]) -> bytes:
    """One of ``originals`` truncated, with bytes overwritten, and/or with random bytes inserted."""
    data = bytearray(draw(st.sampled_from(originals)))
    for _ in range(draw(st.integers(0, 6))):
        pos = draw(st.integers(0, len(data) - 1))
        data[pos] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        pos = draw(st.integers(0, len(data)))
        data[pos:pos] = draw(st.binary(max_size=16))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@PROPERTY
@given(data=st.one_of(corrupted(PICTURES), st.binary(max_size=300)))
def test_corrupted_pictures_are_refused_with_the_sdk_error_or_classified(clf, data):
    classify_or_refuse(clf, data)


@PROPERTY
@given(image=st.one_of(st.text(max_size=40), st.none(), st.integers(), st.floats(), st.lists(st.integers(0, 255)),
                       st.dictionaries(st.text(max_size=3), st.integers())),
       color=st.text(max_size=4))
def test_other_objects_and_colors_are_refused_with_the_sdk_error(clf, image, color):
    # a string is a path (none of these exist); everything else is not an image
    assume(not (isinstance(image, str) and Path(image.replace("\0", "")).exists()))
    assert classify_or_refuse(clf, image, color) is None


# --------------------------------------------------------------------------- metadata reader
MODEL_FILES = [(EXPORT / f.file_name).read_bytes() for f in FORMATS.values() if f.quantized]  # TFLite first


def metadata_or_error(data: bytes) -> ModelMetadata | None:
    try:
        meta = read_metadata(data)
    except MetadataError as exc:
        assert str(exc)
        return None
    assert meta is None or isinstance(meta, ModelMetadata)
    if meta is not None:  # valid: it survives its own round trip
        assert ModelMetadata.from_json(meta.to_json()) == meta
    return meta


@settings(max_examples=300, deadline=None)
@given(data=st.one_of(st.binary(max_size=600), st.binary(min_size=4, max_size=600).map(lambda b: b[:4] + b"TFL3" + b[4:])))
def test_metadata_reader_over_random_bytes(data):
    metadata_or_error(data)


@settings(max_examples=150, deadline=None)
@given(data=corrupted(MODEL_FILES))
def test_metadata_reader_over_corrupted_models(data):
    metadata_or_error(data)


def _shipped_metadata() -> dict:
    return json.loads(tflite_metadata_entry(MODEL_FILES[0], METADATA_KEY))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@st.composite
def edited_metadata(draw) -> str:
    """The shipped metadata JSON with one field (top level or in the spec) replaced, removed or added."""
    meta = _shipped_metadata()
    target = meta["spec"] if draw(st.booleans()) else meta
    key = draw(st.sampled_from(sorted(target)) | st.text(max_size=8))
    if draw(st.booleans()) and key in target:
        del target[key]
    else:
        target[key] = draw(json_values)
    return json.dumps(meta)


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(edited_metadata(), json_values.map(json.dumps), st.text(max_size=60)))
def test_metadata_json_is_parsed_or_refused(text):
    try:
        meta = ModelMetadata.from_json(text)
    except MetadataError:
        return
    assert ModelMetadata.from_json(meta.to_json()) == meta
    assert meta.spec.num_classes >= 1 and meta.spec.input_height >= 1 and all(s != 0 for s in meta.spec.std)
