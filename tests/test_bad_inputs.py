"""Bad inputs through the SDK, the command line and the data layer (issue 8).

Every case asserts the exact error class (SDK and data layer) or exit status 2
with one line on stderr and no traceback (CLI), a message that names the
problem, and that no output, partial file or empty folder is left behind.
Odd but valid pictures (1x1, 16-bit, CMYK, palette, LA) must be classified.
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

import numpy as np
import onnx
import pytest
from builders import make_image_tree, make_official_folder, write_pickle
from PIL import Image

from edge_sdk import Classifier
from edge_sdk.errors import InvalidImageError, MetadataError, ModelLoadError
from cifar_edge.cli.errors import DatasetError
from cifar_edge.train.errors import UnsafeDataError
from cifar_edge.cli.formats import FORMATS
from edge_sdk.inputs import to_rgb_array
from edge_sdk.metadata import METADATA_KEY, tflite_metadata_entry
from cifar_edge.train.data import load_split, resolve_source
from cifar_edge.train.data.cifar_official import BATCHES_DIRNAME

# Pillow warns about the corrupt pictures made here on purpose
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL.*")

REPO = Path(__file__).resolve().parents[1]
EXPORT = REPO / "models" / "resnet8" / "export"
INT8_TFLITE = EXPORT / FORMATS["tflite-int8"].file_name
FLOAT_ONNX = EXPORT / FORMATS["onnx"].file_name
RESNET8_KERAS = REPO / "models" / "resnet8" / "best.keras"
BOMB_SIDE = 20_000


# --------------------------------------------------------------------------- builders
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(width: int, height: int, bit_depth: int, color_type: int, rows: bytes | None = None) -> bytes:
    """A PNG written by hand: any bit depth, and pictures too big to build with Pillow (all-zero rows)."""
    if rows is None:  # zero pixels, compressed in slices: 20,000 x 20,000 costs ~50 KB and a fraction of a second
        row = b"\x00" * (1 + (width * bit_depth + 7) // 8)
        packer = zlib.compressobj(9)
        parts = [packer.compress(row * 1000) for _ in range(height // 1000)]
        idat = b"".join([*parts, packer.compress(row * (height % 1000)), packer.flush()])
    else:
        idat = zlib.compress(rows)
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def png16_bytes(pixels: np.ndarray, color_type: int) -> bytes:
    """A 16-bit PNG (grayscale: color type 0, RGB: 2) of ``pixels`` (uint16, HxW or HxWxC)."""
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in pixels)
    return png_bytes(pixels.shape[1], pixels.shape[0], 16, color_type, rows)


def huge_jpeg_bytes(side: int) -> bytes:
    """A small JPEG whose frame header (SOF0) claims ``side`` x ``side`` pixels."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 20, 30)).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", side, side)
    return bytes(data)


def tiff_with_oversized_tag(tag: int) -> bytes:
    """A TIFF whose tag ``tag`` claims more data than the file holds: Pillow warns, skips the tag, goes on."""
    data = bytearray(encoded(Image.new("RGB", (10, 12), (1, 2, 3)), "TIFF"))
    assert data[:2] == b"II"  # little-endian: first IFD offset at byte 4, then 12-byte entries
    ifd = struct.unpack_from("<I", data, 4)[0]
    for entry in range(ifd + 2, ifd + 2 + 12 * struct.unpack_from("<H", data, ifd)[0], 12):
        if struct.unpack_from("<H", data, entry)[0] == tag:
            struct.pack_into("<I", data, entry + 4, 0xFFFFFF)  # the entry's value count
            return bytes(data)
    raise AssertionError(f"no tag {tag} in the TIFF")


def encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _palette_with_transparency() -> Image.Image:
    img = Image.new("RGB", (40, 40), (200, 100, 50)).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    img.info["transparency"] = 0
    return img


# Odd but valid pictures and the RGB pixel every one of their 32x32 pixels must decode to.
VALID_ODD_IMAGES = {
    "one_pixel.png": (lambda: encoded(Image.new("RGB", (1, 1), (200, 100, 50)), "PNG"), (200, 100, 50)),
    "gray16.png": (lambda: png16_bytes(np.full((40, 40), 40000, np.uint16), 0), (156, 156, 156)),  # top 8 bits
    "rgb16.png": (lambda: png16_bytes(np.tile(np.array([65535, 32768, 0], np.uint16), (8, 8, 1)), 2), (255, 128, 0)),
    "cmyk.jpg": (lambda: encoded(Image.new("CMYK", (40, 40), (0, 255, 255, 0)), "JPEG", quality=95), (255, 0, 0)),
    "palette.png": (lambda: encoded(Image.new("RGB", (40, 40), (200, 100, 50)).convert(
        "P", palette=Image.Palette.ADAPTIVE, colors=4), "PNG"), (200, 100, 50)),
    "palette_transparent.png": (lambda: encoded(_palette_with_transparency(), "PNG"), (200, 100, 50)),
    "la.png": (lambda: encoded(Image.new("LA", (40, 40), (100, 128)), "PNG"), (100, 100, 100)),
    "warns.tif": (lambda: tiff_with_oversized_tag(278), (1, 2, 3)),  # RowsPerStrip skipped, with warnings
}


def _truncated(fmt: str) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = encoded(Image.fromarray(pixels), fmt)
    return data[: len(data) // 2]


BAD_IMAGES = {
    "empty.jpg": lambda: b"",
    "truncated.jpg": lambda: _truncated("JPEG"),
    "truncated.png": lambda: _truncated("PNG"),
    "text.jpg": lambda: b"this is a shopping list, not a picture\n",
    "text.png": lambda: b"this is a shopping list, not a picture\n",
    "bomb.png": lambda: png_bytes(BOMB_SIDE, BOMB_SIDE, 1, 0),  # 400 megapixels, complete and valid
    "bomb.jpg": lambda: huge_jpeg_bytes(BOMB_SIDE),
    "bomb100.png": lambda: png_bytes(10_000, 10_000, 1, 0),  # in the band where Pillow only warns
    "no_strips.tif": lambda: tiff_with_oversized_tag(273),  # StripOffsets skipped (with warnings): undecodable
}


def _onnx_with(edit) -> bytes:
    proto = onnx.load(FLOAT_ONNX)
    edit(proto)
    return proto.SerializeToString()


def _edit_metadata(change):
    def edit(proto):
        (prop,) = [p for p in proto.metadata_props if p.key == METADATA_KEY]
        prop.value = change(prop.value)
    return edit


def _edit_spec(**fields):
    def change(text: str) -> str:
        meta = json.loads(text)
        meta["spec"].update(fields)
        return json.dumps(meta)
    return _edit_metadata(change)


def _drop_metadata(proto) -> None:
    del proto.metadata_props[:]


def _input_dims(*dims: int):
    def edit(proto):
        for dim, value in zip(proto.graph.input[0].type.tensor_type.shape.dim, dims):
            dim.ClearField("dim_param")
            dim.dim_value = value
    return edit


def _external_initializer(proto) -> None:
    """Move one weight into an external data file next to the working directory (it would be read from there)."""
    init = proto.graph.initializer[3]
    init.ClearField("raw_data")
    init.data_location = onnx.TensorProto.EXTERNAL
    entry = init.external_data.add()
    entry.key, entry.value = "location", "secret.bin"


def _external_constant(proto) -> None:
    """The same, hidden in a Constant node's tensor attribute instead of an initializer."""
    value = onnx.helper.make_tensor("leak", onnx.TensorProto.FLOAT, [4], [0.0] * 4)
    value.ClearField("float_data")
    value.data_location = onnx.TensorProto.EXTERNAL
    entry = value.external_data.add()
    entry.key, entry.value = "location", "secret.bin"
    proto.graph.node.append(onnx.helper.make_node("Constant", [], ["leak_out"], value=value))


def _tflite_with_metadata_name(name: bytes) -> bytes:
    data = INT8_TFLITE.read_bytes()
    assert data.count(METADATA_KEY.encode()) == 1 and len(name) == len(METADATA_KEY)
    return data.replace(METADATA_KEY.encode(), name)


def _tflite_with_broken_json() -> bytes:
    data = INT8_TFLITE.read_bytes()
    start = data.index(tflite_metadata_entry(data, METADATA_KEY))
    return data[:start] + b"!" + data[start + 1 :]  # the JSON object now starts with "!"


BAD_MODELS = {
    "random.tflite": lambda: np.random.default_rng(0).bytes(4096),
    "truncated.tflite": lambda: INT8_TFLITE.read_bytes()[: INT8_TFLITE.stat().st_size // 2],
    "truncated.onnx": lambda: FLOAT_ONNX.read_bytes()[: FLOAT_ONNX.stat().st_size // 2],
    "empty.onnx": lambda: b"",
    "text.onnx": lambda: b"name,score\ncat,0.9\n",
    "input64.onnx": lambda: _onnx_with(_input_dims(1, 64, 64, 3)),
    "nchw.onnx": lambda: _onnx_with(_input_dims(1, 3, 32, 32)),
    "external_init.onnx": lambda: _onnx_with(_external_initializer),
    "external_const.onnx": lambda: _onnx_with(_external_constant),
    "no_metadata.onnx": lambda: _onnx_with(_drop_metadata),
    "bad_json.onnx": lambda: _onnx_with(_edit_metadata(lambda text: "{" + text)),
    "metadata_v99.onnx": lambda: _onnx_with(_edit_metadata(lambda text: text.replace('"format_version":1', '"format_version":99'))),
    "labels3.onnx": lambda: _onnx_with(_edit_spec(labels=["cat", "dog", "frog"])),
    "deep_json.onnx": lambda: _onnx_with(_edit_metadata(lambda text: "[" * 100_000)),
    "no_metadata.tflite": lambda: _tflite_with_metadata_name(b"xifar_edge"),
    "bad_json.tflite": _tflite_with_broken_json,
    "random.keras": lambda: np.random.default_rng(1).bytes(3000),
    "empty.keras": lambda: b"",
}


class Evil:
    """Unpickling this would run a shell command that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def unsafe_archive(path: Path, kind: str) -> Path:
    """A cifar-10-python.tar.gz whose first member escapes the destination (``kind``), then a good batch."""
    if kind == "parent":
        bad = tarfile.TarInfo(f"{BATCHES_DIRNAME}/../../escaped.txt")
    elif kind == "absolute":
        bad = tarfile.TarInfo(str(path.parent / "absolute-escape.txt"))
    else:
        bad = tarfile.TarInfo(BATCHES_DIRNAME if kind == "symlink" else f"{BATCHES_DIRNAME}/test_batch")
        bad.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
        bad.linkname = "/etc" if kind == "symlink" else "/etc/passwd"
    payload = b"pwned"
    if bad.isfile():
        bad.size = len(payload)
    with tarfile.open(path, "w:gz") as tar:
        tar.addfile(bad, io.BytesIO(payload) if bad.isfile() else None)
        good = tarfile.TarInfo(f"{BATCHES_DIRNAME}/data_batch_1")
        good.size = len(payload)
        tar.addfile(good, io.BytesIO(payload))
    return path


def _write_all(folder: Path, builders: dict) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, build in builders.items():
        paths[name] = folder / name
        paths[name].write_bytes(build())
    return paths


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """Every bad or odd input of this module, written once: pictures, models, data sets, archives."""
    root = tmp_path_factory.mktemp("bad-inputs")
    paths = {**_write_all(root / "images", {**BAD_IMAGES, **{k: v[0] for k, v in VALID_ODD_IMAGES.items()}}),
             **_write_all(root / "models", BAD_MODELS)}

    data = root / "data"
    make_image_tree(data / "good", per_class=2)
    (data / "no_classes" / "train").mkdir(parents=True)
    make_image_tree(data / "one_class", classes=("cat",), per_class=2)
    for name in ("cat", "dog"):
        (data / "unreadable" / "train" / name).mkdir(parents=True)
        (data / "unreadable" / "train" / name / "0000.jpg").write_bytes(BAD_IMAGES["text.jpg"]())
        (data / "unreadable" / "train" / name / "0001.png").write_bytes(BAD_IMAGES["truncated.png"]())
    folder, _ = make_official_folder(data / "evil")
    marker = data / "EVIL-RAN"
    for batch in ("data_batch_1", "test_batch"):
        write_pickle(folder / batch, {b"data": np.zeros((1, 3072), np.uint8), b"labels": [Evil(marker)]})
    paths["evil-marker"] = marker
    for kind in ("parent", "absolute", "symlink", "hardlink"):
        paths[f"{kind}.tar.gz"] = unsafe_archive(data / f"{kind}.tar.gz", kind)
    for name in ("good", "no_classes", "one_class", "unreadable", "evil"):
        paths[name] = data / name
    return paths


@pytest.fixture(scope="module")
def clf() -> Classifier:
    return Classifier(INT8_TFLITE)


def assert_probabilities(result, clf: Classifier) -> None:
    assert result.top is not None and result.top.label in clf.labels
    assert 0.0 <= result.top.score <= 1.0


# --------------------------------------------------------------------------- SDK: pictures
@pytest.mark.parametrize(
    "name, fragment",
    [
        ("empty.jpg", "is empty (0 bytes)"),
        ("truncated.jpg", "image file is truncated"),
        ("truncated.png", "image file is truncated"),
        ("text.jpg", "not a known image format"),
        ("text.png", "not a known image format"),
        ("bomb.png", "too large to decode safely"),
        ("bomb.jpg", "too large to decode safely"),
        ("bomb100.png", "10000x10000 pixels, more than the 64,000,000 allowed"),
        ("no_strips.tif", "not a known image format"),
    ],
)
def test_bad_picture_files_raise_invalid_image_error(clf, inputs, name, fragment):
    with pytest.raises(InvalidImageError, match=re.escape(fragment)) as info:
        clf.classify(inputs[name])
    assert str(inputs[name]) in str(info.value)
    with pytest.raises(InvalidImageError, match=re.escape(fragment)):  # the same picture as encoded bytes
        clf.classify(inputs[name].read_bytes())


def test_a_folder_is_not_an_image(clf, tmp_path):
    with pytest.raises(InvalidImageError, match="not an image file"):
        clf.classify(tmp_path)


@pytest.mark.parametrize("name", sorted(VALID_ODD_IMAGES))
def test_odd_but_valid_pictures_are_converted_and_classified(clf, inputs, name):
    _, pixel = VALID_ODD_IMAGES[name]
    expected = np.broadcast_to(np.array(pixel, np.uint8), (32, 32, 3))
    with Image.open(inputs[name]) as opened:
        for source in (inputs[name], inputs[name].read_bytes(), opened):
            assert np.abs(to_rgb_array(source, 32, 32).astype(int) - expected).max() <= 2, type(source)
    result = clf.classify(inputs[name])
    assert_probabilities(result, clf)
    np.testing.assert_allclose(clf.probabilities(inputs[name]), clf.probabilities(np.ascontiguousarray(expected)),
                               atol=0.02)


def test_decompression_bomb_is_refused_without_allocating(inputs):
    # In a fresh process: peak RSS after refusing a 400-megapixel PNG and JPEG (file and bytes) stays
    # where it was; decoding either would need 400 MB to 1.2 GB.
    code = (
        "import resource, sys\n"
        "import numpy as np\n"
        "from edge_sdk import Classifier\n"
        "from edge_sdk.errors import InvalidImageError\n"
        f"clf = Classifier({str(INT8_TFLITE)!r})\n"
        "clf.classify(np.zeros((32, 32, 3), np.uint8))  # warm: the first call allocates the runtime's buffers\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "refused = 0\n"
        "for path in sys.argv[1:]:\n"
        "    for image in (path, open(path, 'rb').read()):\n"
        "        try:\n"
        "            clf.classify(image)\n"
        "        except InvalidImageError:\n"
        "            refused += 1\n"
        "print(refused, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(inputs["bomb.png"]), str(inputs["bomb.jpg"])],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    refused, growth_mb = map(int, proc.stdout.split())
    assert refused == 4
    assert growth_mb < 40, f"peak RSS grew by {growth_mb} MiB while refusing the pictures"


# --------------------------------------------------------------------------- SDK: arrays and other objects
@pytest.mark.parametrize(
    "image, fragment",
    [
        (np.zeros(7, np.uint8), r"must be HxW, HxWx1, HxWx3 or HxWx4, got shape \(7,\)"),
        (np.zeros((1, 32, 32, 3), np.uint8), r"got shape \(1, 32, 32, 3\)"),
        (np.array(5, np.uint8), r"got shape \(\)"),
        (np.zeros((32, 32, 2), np.uint8), r"got shape \(32, 32, 2\)"),
        (np.zeros((32, 32, 5), np.uint8), r"got shape \(32, 32, 5\)"),
        (np.zeros((0, 32, 3), np.uint8), r"image array is empty \(shape \(0, 32, 3\)\)"),
        (np.zeros((32, 0), np.float32), r"image array is empty"),
        (np.full((32, 32, 3), np.nan, np.float32), "NaN or infinite"),
        (np.full((32, 32, 3), np.inf, np.float64), "NaN or infinite"),
        (np.full((32, 32, 3), -np.inf, np.float16), "NaN or infinite"),
        (np.full((32, 32, 3), 255.0, np.float32), r"values in \[0, 1\], got 255..255"),
        (np.zeros((32, 32, 3), np.int64), "unsupported image dtype int64"),
        (np.zeros((32, 32, 3), np.uint16), "unsupported image dtype uint16"),
        (np.zeros((32, 32, 3), bool), "boolean arrays are not images"),
        (np.zeros((32, 32, 3), object), "unsupported image dtype object"),
        (Image.new("RGB", (0, 0)), r"PIL image has no pixels \(size 0x0\)"),
        ([[0, 0], [0, 0]], "unsupported image type list"),
        (None, "unsupported image type NoneType"),
    ],
)
def test_bad_arrays_and_objects_raise_invalid_image_error(clf, image, fragment):
    with pytest.raises(InvalidImageError, match=fragment):
        clf.classify(image)


def test_sixteen_bit_pil_image_is_converted_like_the_file(clf, inputs):
    # A 16-bit PIL image handed over directly keeps its top 8 bits, as the file does (no clipping to white).
    with Image.open(inputs["gray16.png"]) as img:
        assert img.mode.startswith("I")
        np.testing.assert_array_equal(to_rgb_array(img, 32, 32), to_rgb_array(inputs["gray16.png"], 32, 32))
        np.testing.assert_array_equal(clf.probabilities(img), clf.probabilities(inputs["gray16.png"]))


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_ndarray_subclass_is_accepted(clf):
    gray = np.matrix(np.full((32, 32), 90, np.uint8))  # a 2-D-only subclass: given channels without a resize
    np.testing.assert_array_equal(clf.probabilities(gray), clf.probabilities(np.full((32, 32, 3), 90, np.uint8)))


# --------------------------------------------------------------------------- SDK: models
@pytest.mark.parametrize(
    "name, error, fragment",
    [
        ("random.tflite", ModelLoadError, "cannot load the TFLite model"),
        ("truncated.tflite", ModelLoadError, "cannot load the TFLite model"),
        ("truncated.onnx", ModelLoadError, "cannot load the ONNX model"),
        ("empty.onnx", ModelLoadError, "model file is empty"),
        ("text.onnx", ModelLoadError, "cannot load the ONNX model"),
        ("input64.onnx", MetadataError, r"spec says input \(32, 32, 3\) \(NHWC\) but the model takes \(64, 64, 3\)$"),
        ("nchw.onnx", MetadataError, r"spec says input \(32, 32, 3\) \(NHWC\) but the model takes \(3, 32, 32\) "
                                    r"\(a NCHW model: give it layout NCHW in preprocess=\)"),
        ("external_init.onnx", ModelLoadError, "keeps tensor\\(s\\) .*Squeeze.* in external data files"),
        ("external_const.onnx", ModelLoadError, "keeps tensor\\(s\\) leak in external data files"),
        ("no_metadata.onnx", MetadataError, "carries no cifar-edge metadata; pass labels="),
        ("bad_json.onnx", MetadataError, "model metadata is not valid JSON"),
        ("metadata_v99.onnx", MetadataError, "unsupported model metadata version 99"),
        ("labels3.onnx", MetadataError, "3 labels but the model has 10 outputs"),
        ("deep_json.onnx", MetadataError, "model metadata is not valid JSON: nested too deeply"),
        ("no_metadata.tflite", MetadataError, "carries no cifar-edge metadata; pass labels="),
        ("bad_json.tflite", MetadataError, "model metadata is not valid JSON"),
    ],
)
def test_bad_models_raise_typed_errors_naming_the_file(inputs, name, error, fragment):
    with pytest.raises(error, match=fragment) as info:
        Classifier(inputs[name])
    assert type(info.value) is error
    assert str(inputs[name]) in str(info.value)


def test_labels_argument_that_does_not_match_the_outputs(inputs):
    with pytest.raises(MetadataError, match="3 labels but the model has 10 outputs"):
        Classifier(inputs["no_metadata.onnx"], labels=["cat", "dog", "frog"])


def test_metadata_reader_names_a_missing_file(tmp_path):
    from edge_sdk.metadata import read_metadata

    with pytest.raises(ModelLoadError, match="model file not found"):
        read_metadata(tmp_path / "absent.onnx")


# --------------------------------------------------------------------------- data layer
def test_malicious_reduce_in_a_batch_is_refused_and_never_runs(inputs, tmp_path):
    with pytest.raises(UnsafeDataError, match=r"pickle references posix\.system, which is not allowed") as info:
        load_split("test", inputs["evil"], cache_dir=tmp_path, download=False)
    assert "test_batch" in str(info.value)
    assert not inputs["evil-marker"].exists()


@pytest.mark.parametrize(
    "kind, fragment",
    [
        ("parent", "has a '..' path component"),
        ("absolute", "has an absolute path"),
        ("symlink", r"is a link \('/etc'\)"),
        ("hardlink", r"is a link \('/etc/passwd'\)"),
    ],
)
def test_unsafe_archives_are_refused_before_anything_is_written(inputs, tmp_path, kind, fragment):
    cache = tmp_path / "cache"
    with pytest.raises(UnsafeDataError, match=fragment):
        resolve_source(inputs[f"{kind}.tar.gz"], cache_dir=cache, download=False)
    assert list(cache.rglob("*")) == []  # no extracted file and no empty extraction folder
    assert not (inputs[f"{kind}.tar.gz"].parent / "escaped.txt").exists()
    assert not (inputs[f"{kind}.tar.gz"].parent / "absolute-escape.txt").exists()


@pytest.mark.parametrize(
    "name, error, fragment",
    [
        ("no_classes", DatasetError, "no data set recognized"),
        ("one_class", DatasetError, "needs at least 2 class folders .* found only 'cat'"),
        ("unreadable", DatasetError, r"none of the 4 image files .* could be decoded \(first: cannot decode image"),
    ],
)
def test_unusable_image_folders_raise_dataset_error(inputs, tmp_path, name, error, fragment):
    with pytest.raises(error, match=fragment) as info:
        load_split("train", inputs[name], cache_dir=tmp_path, download=False)
    assert type(info.value) is error  # not a subclass such as UnsafeDataError
    assert not (tmp_path / "decoded").exists()  # no cache file for a failed load


def test_unreadable_files_among_good_ones_are_skipped_and_named(inputs, tmp_path):
    tree = tmp_path / "tree"
    make_image_tree(tree, classes=("cat", "dog"), per_class=2)
    for name in ("empty.jpg", "truncated.jpg", "text.png", "bomb.png"):
        (tree / "train" / "cat" / name).write_bytes(inputs[name].read_bytes())
    data = load_split("train", tree, cache_dir=tmp_path / "cache", download=False)
    assert len(data) == 4 and data.images.shape == (4, 32, 32, 3)
    reasons = {Path(s.path).name: s.reason for s in data.skipped}
    assert set(reasons) == {"empty.jpg", "truncated.jpg", "text.png", "bomb.png"}
    assert "empty" in reasons["empty.jpg"] and "truncated" in reasons["truncated.jpg"]
    assert "too large to decode safely" in reasons["bomb.png"]


# --------------------------------------------------------------------------- command line
# Dropping the capabilities that let root write anywhere, then exec'ing the command: so a read-only
# folder is read-only for the command even when the tests run as root (a no-op for other users).
_WITHOUT_ROOT_OVERRIDE = (
    "import ctypes, os, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH; 24 = PR_CAPBSET_DROP\n"
    "    if libc.prctl(24, cap, 0, 0, 0) != 0:\n"
    "        sys.exit('cannot drop capability %d: %s' % (cap, os.strerror(ctypes.get_errno())))\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)


def run_cli(*args: str, as_non_root: bool = False) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "cifar_edge.cli", *args]
    if as_non_root and os.geteuid() == 0:
        command = [sys.executable, "-c", _WITHOUT_ROOT_OVERRIDE, *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=REPO)


@pytest.fixture
def locked(tmp_path) -> Path:
    """A folder nobody may write in."""
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)


CLI_CASES = [
    # (argv with {placeholders}, fragment of the one stderr line, output folders that must stay absent (or empty))
    (["predict", "{empty.jpg}"], "image file is empty (0 bytes)", []),
    (["predict", "{truncated.png}"], "image file is truncated", []),
    (["predict", "{text.jpg}"], "not a known image format", []),
    (["predict", "{bomb.png}"], "image is too large to decode safely", []),
    (["predict", "{bomb100.png}"], "10000x10000 pixels", []),
    (["predict", "/dev/null"], "not an image file (a folder or device)", []),  # a folder is searched for images
    (["predict", "{no_strips.tif}"], "not a known image format", []),  # Pillow's warnings stay off stderr
    (["predict", "{one_pixel.png}", "--model", "{random.tflite}"], "cannot load the TFLite model", []),
    (["predict", "{one_pixel.png}", "--model", "{truncated.onnx}"], "cannot load the ONNX model", []),
    (["predict", "{one_pixel.png}", "--model", "{no_metadata.tflite}"], "carries no cifar-edge metadata", []),
    (["predict", "{one_pixel.png}", "--model", "{bad_json.onnx}"], "model metadata is not valid JSON", []),
    (["predict", "{one_pixel.png}", "--model", "{labels3.onnx}"], "3 labels but the model has 10 outputs", []),
    (["predict", "{one_pixel.png}", "--model", "{input64.onnx}"], "but the model takes (64, 64, 3)", []),
    (["evaluate", "{random.keras}", "--data", "{good}"], "not a zip archive (3,000 bytes", []),
    (["evaluate", "{empty.keras}", "--data", "{good}"], "the file is empty (0 bytes)", []),
    (["evaluate", "{keras}", "--data", "{one_class}"], "found only 'cat'", []),
    (["convert", "{random.keras}", "--out", "{tmp}/out"], "not a zip archive", ["{tmp}/out"]),
    (["convert", "{keras}", "--out", "{locked}/export"], "no write permission in {locked}", ["{locked}"]),
    (["convert", "{keras}", "--out", "{tmp}/out", "--data", "{parent.tar.gz}", "--cache-dir", "{tmp}/cache"],
     "has a '..' path component", ["{tmp}/out", "{tmp}/cache"]),
    (["camera", "--headless", "--source", "{text.png}", "--log", "{tmp}/out/log.jsonl"],
     "not a known image format", ["{tmp}/out"]),
    (["camera", "--headless", "--source", "{bomb.png}", "--output", "{tmp}/out/video.mp4"],
     "image is too large to decode safely", ["{tmp}/out"]),
    (["camera", "--headless", "--source", "{one_pixel.png}", "--model", "{random.tflite}", "--log", "{tmp}/out/l.jsonl"],
     "cannot load the TFLite model", ["{tmp}/out"]),
    (["camera", "--headless", "--source", "{one_pixel.png}", "--log", "{locked}/log.jsonl"],
     "Permission denied: {locked}/log.jsonl", ["{locked}"]),
    (["camera", "--headless", "--source", "{one_pixel.png}", "--output", "{locked}/video.mp4"],
     "Permission denied: {locked}/video.mp4", ["{locked}"]),
    (["train", "--data", "{no_classes}", "--out", "{tmp}/run"], "no data set recognized", ["{tmp}/run"]),
    (["train", "--data", "{one_class}", "--out", "{tmp}/run"], "found only 'cat'", ["{tmp}/run"]),
    (["train", "--data", "{symlink.tar.gz}", "--out", "{tmp}/run", "--cache-dir", "{tmp}/cache"],
     "is a link ('/etc')", ["{tmp}/run", "{tmp}/cache"]),
    (["train", "--data", "{good}", "--out", "{locked}/run"], "no write permission in {locked}", ["{locked}"]),
    (["train", "--data", "{unreadable}", "--out", "{tmp}/run", "--epochs", "1"],
     "none of the 4 image files", ["{tmp}/run"]),
    (["data", "stats", "--data", "{evil}"], "pickle references posix.system", []),
    (["data", "stats", "--data", "{absolute.tar.gz}", "--cache-dir", "{tmp}/cache"], "has an absolute path",
     ["{tmp}/cache"]),
    (["data", "grid", "--data", "{unreadable}", "--out", "{tmp}/out/grid.png"], "could be decoded", ["{tmp}/out"]),
    (["data", "grid", "--data", "{good}", "--out", "{locked}/grid.png"], "no write permission in {locked}",
     ["{locked}"]),
]


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


@pytest.mark.parametrize("argv, fragment, outputs", CLI_CASES, ids=[f"{c[0][0]}-{i}" for i, c in enumerate(CLI_CASES)])
def test_cli_errors_are_one_line_exit_2_and_leave_nothing(inputs, tmp_path, locked, argv, fragment, outputs):
    values = {**{k: str(v) for k, v in inputs.items()}, "tmp": str(tmp_path), "locked": str(locked),
              "keras": str(RESNET8_KERAS)}
    proc = run_cli(*[_fill(a, values) for a in argv], as_non_root="{locked}" in " ".join(argv))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    command = argv[0]
    assert len(lines) == 1 and lines[0].startswith(f"cifar-edge {command}: error: "), proc.stderr
    assert _fill(fragment, values) in lines[0], proc.stderr
    for template in outputs:
        folder = Path(_fill(template, values))
        if template in ("{locked}", "{tmp}/cache"):  # existed before, or a cache root: must hold nothing
            assert not folder.exists() or list(folder.rglob("*")) == [], f"{folder} holds {list(folder.rglob('*'))}"
        else:  # an output folder the command would have created
            assert not folder.exists(), f"{folder} was left behind: {list(folder.rglob('*'))}"
    assert not inputs["evil-marker"].exists()


def test_cli_classifies_odd_but_valid_pictures(inputs):
    names = sorted(VALID_ODD_IMAGES)
    proc = run_cli("predict", *(str(inputs[n]) for n in names), "--model", str(INT8_TFLITE), "--json")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    results = json.loads(proc.stdout)["results"]
    assert [Path(r["image"]).name for r in results] == names
    assert all(len(r["categories"]) == 3 and 0 < r["categories"][0]["score"] <= 1 for r in results)
