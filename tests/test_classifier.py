"""edge_sdk.Classifier on the committed exports: every input kind, filters, batches, threads and clear errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_sdk import CIFAR10_CLASSES, Category, Classifier, PreprocessSpec
from cifar_edge.cli.formats import FORMATS
from edge_sdk.errors import (
    ClosedError,
    BackendUnavailableError,
    InvalidArgumentError,
    InvalidImageError,
    MetadataError,
    ModelLoadError,
)

pytestmark = pytest.mark.sdk  # needs only the SDK's extras: scripts/test_sdk.sh runs it without TensorFlow

FORMAT_LIST = list(FORMATS.values())


@pytest.fixture(scope="module")
def cat_images(cifar10_dir) -> list[Path]:
    return sorted((cifar10_dir / "test" / "cat").glob("*.jpg"))[:8]


@pytest.mark.parametrize("fmt", FORMAT_LIST, ids=list(FORMATS))
def test_labels_from_metadata_and_sorted_probabilities(shipped_export, cat_images, fmt):
    clf = Classifier(shipped_export / fmt.file_name, top_k=4)
    assert clf.labels[3] == "cat" and len(clf.labels) == 10
    assert clf.backend_name == fmt.runtime
    result = clf.classify(cat_images[0])
    scores = [c.score for c in result.categories]
    assert len(result.categories) == 4 and scores == sorted(scores, reverse=True)
    assert all(isinstance(c, Category) and c.label == clf.labels[c.index] for c in result.categories)
    probs = clf.probabilities(cat_images[0])
    assert probs.shape == (10,) and probs.sum() == pytest.approx(1.0, abs=0.02)
    assert result.top.index == int(np.argmax(probs))
    assert result.timing.inference_ms > 0 and result.timing.total_ms >= result.timing.inference_ms


@pytest.mark.parametrize("fmt", FORMAT_LIST, ids=list(FORMATS))
def test_batch_equals_single_calls(shipped_export, cat_images, fmt):
    clf = Classifier(shipped_export / fmt.file_name)
    batch = clf.classify_batch(cat_images)
    assert len(batch) == len(cat_images)
    for path, result in zip(cat_images, batch):
        single = clf.classify(path)
        assert [c.index for c in single.categories] == [c.index for c in result.categories]
        np.testing.assert_allclose([c.score for c in single.categories], [c.score for c in result.categories], atol=1e-5)
    assert clf.classify_batch([]) == []


def test_every_input_kind_gives_the_same_answer(shipped_export, cat_images):
    out = shipped_export
    clf = Classifier(out / "model_float32.tflite")
    path = cat_images[1]
    rgb = np.asarray(Image.open(path).convert("RGB"))
    reference = clf.probabilities(rgb)
    same = [
        clf.probabilities(str(path)),
        clf.probabilities(path),
        clf.probabilities(path.read_bytes()),
        clf.probabilities(Image.open(path)),
        clf.probabilities(np.ascontiguousarray(rgb[:, :, ::-1]), color="bgr"),
        clf.probabilities(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])),  # RGBA
        clf.probabilities(rgb.astype(np.float32) / 255.0),
    ]
    for probs in same:
        np.testing.assert_allclose(probs, reference, atol=1e-5)
    gray = np.asarray(Image.open(path).convert("L"))
    np.testing.assert_allclose(clf.probabilities(gray), clf.probabilities(np.dstack([gray] * 3)), atol=1e-6)
    big = np.asarray(Image.fromarray(rgb).resize((320, 240)))
    assert clf.classify(big).top is not None  # any size is resized to the model input


def test_full_size_photographs_are_resized_and_classified(shipped_export, cifar10_dir, tmp_path):
    # 640x480 JPEGs made by upscaling real test images: resized back to 32x32 they must mostly
    # keep the answer the model gives on the originals.
    out = shipped_export
    clf = Classifier(out / "model_int8.tflite")
    originals = [p for d in sorted((cifar10_dir / "test").iterdir()) for p in sorted(d.glob("*.jpg"))[:3]]
    same = 0
    for i, path in enumerate(originals):
        big = tmp_path / f"photo{i}.jpg"
        Image.open(path).convert("RGB").resize((640, 480), Image.BICUBIC).save(big, quality=95)
        result = clf.classify(big)
        assert result.top is not None and 0.0 < result.top.score <= 1.0
        same += result.top.index == clf.classify(path).top.index
    assert same >= 0.8 * len(originals), f"{same}/{len(originals)} upscaled photos kept their label"


@pytest.mark.parametrize(
    "image, fragment",
    [
        (np.full((32, 32, 3), np.nan, np.float32), "NaN or infinite"),
        (np.full((32, 32, 3), 2.0, np.float32), r"values in \[0, 1\], got 2..2"),
        (np.zeros((32, 32, 3), np.int64), "unsupported image dtype int64"),
        (np.zeros((2, 32, 32, 3), np.uint8), "must be HxW, HxWx1, HxWx3 or HxWx4"),
        (np.zeros((32, 32, 2), np.uint8), "must be HxW, HxWx1, HxWx3 or HxWx4"),
        (np.zeros((0, 32, 3), np.uint8), "empty"),
        (b"", "empty"),
        (b"definitely not an image", "cannot decode image"),
        ("/nonexistent/cat.jpg", "image file not found"),
        (12345, "unsupported image type int"),
    ],
)
def test_bad_images_raise_invalid_image_error(shipped_export, image, fragment):
    out = shipped_export
    clf = Classifier(out / "model_int8.tflite")
    with pytest.raises(InvalidImageError, match=fragment):
        clf.classify(image)


def test_threshold_allowlist_denylist(shipped_export, cat_images):
    out = shipped_export
    clf = Classifier(out / "model_int8.tflite", top_k=10)
    probs = clf.probabilities(cat_images[2])
    allowed = Classifier(out / "model_int8.tflite", top_k=10, allowlist=["cat", "dog"]).classify(cat_images[2])
    assert {c.label for c in allowed.categories} == {"cat", "dog"}
    denied = Classifier(out / "model_int8.tflite", top_k=10, denylist=["cat"]).classify(cat_images[2])
    assert "cat" not in {c.label for c in denied.categories} and len(denied.categories) == 9
    # int8 scores come in steps of 1/256, so ties happen: the threshold keeps every score >= it.
    threshold = float(np.unique(probs)[-2])
    kept = Classifier(out / "model_int8.tflite", top_k=10, score_threshold=threshold).classify(cat_images[2])
    assert {c.index for c in kept.categories} == set(np.flatnonzero(probs >= threshold).tolist())
    assert 2 <= len(kept.categories) < 10
    assert [c.score for c in kept.categories] == sorted((c.score for c in kept.categories), reverse=True)
    with pytest.raises(InvalidArgumentError, match="unknown label"):  # an EdgeSDKError, still a ValueError
        Classifier(out / "model_int8.tflite", allowlist=["unicorn"])


def test_top_k_and_threshold_per_call_override_the_constructor(shipped_export, cat_images):
    clf = Classifier(shipped_export / "model_int8.tflite")  # defaults: top_k=3, score_threshold=0.0
    assert len(clf.classify(cat_images[0]).categories) == 3
    probs = clf.probabilities(cat_images[0])
    assert [c.index for c in clf.classify(cat_images[0], top_k=10).categories] == np.argsort(-probs, kind="stable").tolist()
    assert len(clf.classify(cat_images[0]).categories) == 3  # the override did not stick
    best = float(probs.max())
    assert [c.score for c in clf.classify(cat_images[0], top_k=10, score_threshold=best).categories] == [pytest.approx(best)]
    batch = clf.classify_batch(cat_images[:4], top_k=1)
    assert [len(r.categories) for r in batch] == [1, 1, 1, 1]
    assert [r.top.index for r in batch] == [clf.classify(p).top.index for p in cat_images[:4]]
    assert all(len(r.categories) == 3 for r in clf.classify_batch(cat_images[:2]))


@pytest.mark.parametrize("options", [dict(top_k=0), dict(top_k=2.5), dict(top_k=True), dict(score_threshold=1.5),
                                     dict(score_threshold=float("nan")), dict(score_threshold="0.5")])
def test_bad_classify_options_raise_a_typed_error(shipped_export, cat_images, options):
    clf = Classifier(shipped_export / "model_int8.tflite")
    for call in (lambda: clf.classify(cat_images[0], **options), lambda: clf.classify_batch(cat_images[:1], **options),
                 lambda: Classifier(shipped_export / "model_int8.tflite", **options)):
        with pytest.raises(InvalidArgumentError, match="top_k|score_threshold"):
            call()


def test_concurrent_classify_from_threads_is_correct(shipped_export, cat_images):
    out = shipped_export
    clf = Classifier(out / "model_int8.tflite")
    expected = [clf.classify(p).categories for p in cat_images]
    errors: list[BaseException] = []
    mismatches = []

    def worker(offset: int) -> None:
        try:
            for k in range(40):
                i = (k + offset) % len(cat_images)
                if clf.classify(cat_images[i]).categories != expected[i]:
                    mismatches.append(i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and mismatches == []


def test_model_errors(tmp_path, shipped_export):
    out = shipped_export
    with pytest.raises(ModelLoadError, match="model file not found"):
        Classifier(tmp_path / "missing.tflite")
    (tmp_path / "random.tflite").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelLoadError, match="random.tflite"):
        Classifier(tmp_path / "random.tflite")
    data = (out / "model_int8.tflite").read_bytes()
    (tmp_path / "truncated.tflite").write_bytes(data[: len(data) // 2])
    with pytest.raises((ModelLoadError, MetadataError)):
        Classifier(tmp_path / "truncated.tflite")
    (tmp_path / "model.pt").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="unknown model type '.pt'"):
        Classifier(tmp_path / "model.pt")
    with pytest.raises(BackendUnavailableError, match="unknown backend"):
        Classifier(out / "model_int8.tflite", backend="tensorrt")
    with pytest.raises(MetadataError, match="10 outputs"):
        Classifier(out / "model_int8.tflite", labels=["a", "b", "c"])


def test_model_without_metadata_needs_labels(tmp_path, shipped_export):
    onnx = pytest.importorskip("onnx")  # the train extra's; absent from an SDK-only install

    out = shipped_export
    proto = onnx.load(out / "model_float32.onnx")
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, bare)
    with pytest.raises(MetadataError, match="no cifar-edge metadata; pass labels="):
        Classifier(bare)
    clf = Classifier(bare, labels=[f"c{i}" for i in range(10)])
    reference = Classifier(out / "model_float32.onnx")
    image = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    np.testing.assert_allclose(clf.probabilities(image), reference.probabilities(image), atol=1e-6)
    assert clf.classify(image).top.label.startswith("c")


def test_partial_preprocess_overrides_merge_key_by_key_and_keep_the_files_labels(tmp_path, shipped_export):
    onnx = pytest.importorskip("onnx")  # the train extra's; absent from an SDK-only install
    import json

    proto = onnx.load(shipped_export / "model_float32.onnx")
    (entry,) = [p for p in proto.metadata_props if p.key == "cifar_edge"]
    meta = json.loads(entry.value)
    own = [f"kind{i}" for i in range(10)]  # a 10-class model that is not CIFAR-10
    meta["spec"]["labels"] = own
    entry.value = json.dumps(meta)
    relabelled = tmp_path / "relabelled.onnx"
    onnx.save(proto, relabelled)

    cropped = Classifier(relabelled, preprocess={"resize": "center-crop"})
    assert cropped.labels == tuple(own) and cropped.spec.resize == "center-crop"
    assert Classifier(relabelled, preprocess={"std": [127.5] * 3}, resize="center-crop").spec.mean == (0.0,) * 3
    both = Classifier(relabelled, preprocess={"resize": "center-crop"}, labels=[f"x{i}" for i in range(10)])
    assert both.labels[0] == "x0" and both.spec.resize == "center-crop"
    whole = Classifier(relabelled, preprocess=PreprocessSpec(resize="center-crop"))  # a whole spec replaces all
    assert whole.labels == CIFAR10_CLASSES
    with pytest.raises(MetadataError, match="unknown keys: colour"):
        Classifier(relabelled, preprocess={"colour": "BGR"})


def test_context_manager_closes(shipped_export):
    out = shipped_export
    with Classifier(out / "model_int8.tflite") as clf:
        assert clf.classify(np.zeros((32, 32, 3), np.uint8)).top is not None
    with pytest.raises(ClosedError, match="closed"):
        clf.classify(np.zeros((32, 32, 3), np.uint8))


def test_predict_cli(shipped_export, cat_images):
    out = shipped_export
    proc = subprocess.run(
        [sys.executable, "-m", "cifar_edge.cli", "predict", *map(str, cat_images[:3]), "/etc/hostname", "--model",
         str(out / "model_int8.tflite"), "--json", "--top-k", "2"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2  # one input was not an image
    result = json.loads(proc.stdout)
    assert [len(r.get("categories", [])) for r in result["results"]] == [2, 2, 2, 0]
    assert "error" in result["results"][3]
    assert proc.stderr.strip().splitlines() == [f"cifar-edge predict: error: {result['results'][3]['error']}"]


def test_predict_accepts_folders_recursively_with_a_count(shipped_export, cat_images, tmp_path):
    (tmp_path / "pets" / "more").mkdir(parents=True)
    (tmp_path / "empty").mkdir()
    shutil.copy(cat_images[0], tmp_path / "pets" / "a.jpg")
    shutil.copy(cat_images[1], tmp_path / "pets" / "more" / "b.JPG")
    (tmp_path / "pets" / "notes.txt").write_text("not a picture")
    proc = subprocess.run(
        [sys.executable, "-m", "cifar_edge.cli", "predict", str(tmp_path / "pets"), str(cat_images[2]), "--model",
         str(shipped_export / "model_int8.tflite"), "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["images"] == 3 and result["folders"] == {str(tmp_path / "pets"): 2}
    assert [r["image"] for r in result["results"]] == [
        str(tmp_path / "pets" / "a.jpg"), str(tmp_path / "pets" / "more" / "b.JPG"), str(cat_images[2])]
    text = subprocess.run(
        [sys.executable, "-m", "cifar_edge.cli", "predict", str(tmp_path / "pets"), str(tmp_path / "empty"), "--model",
         str(shipped_export / "model_int8.tflite")],
        capture_output=True, text=True, timeout=120,
    )
    assert text.returncode == 2  # the empty folder is an error, the other one is still classified
    assert f"{tmp_path / 'pets'}: 2 image(s)" in text.stdout and "b.JPG:" in text.stdout
    assert "no image files" in text.stderr and str(tmp_path / "empty") in text.stderr


def test_benchmark_reports_consistent_figures(shipped_export):
    from cifar_edge.cli.benchmark import benchmark

    out = shipped_export
    r = benchmark(out / "model_int8.tflite", num_threads=1, runs=30, warmup=3, batch=8)
    lat = r["latency_ms"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"]
    assert r["runtime_latency_ms"]["p50"] > 0 and r["sdk_overhead_ratio"] > 0
    # the overhead in microseconds is the difference of the two medians the ratio divides
    assert r["sdk_overhead_us"] == pytest.approx(1e3 * (lat["p50"] - r["runtime_latency_ms"]["p50"]), abs=0.11)
    assert r["throughput_images_per_s"] > 0 and r["load_ms"] > 0
    assert r["file_bytes"] == (out / "model_int8.tflite").stat().st_size
    assert r["peak_rss_mb"] > 10 and r["backend"] == "litert"


def test_a_closed_classifier_and_a_bad_color_raise_their_own_errors():
    """Issue 26: a closed Classifier raises ClosedError; a color that does not exist is a bad argument."""
    from edge_sdk.errors import ClosedError, InvalidArgumentError

    pixels = np.zeros((32, 32, 3), np.uint8)
    clf = Classifier("edge")
    with pytest.raises(InvalidArgumentError, match="color"):
        clf.classify(np.zeros((48, 64, 3), np.uint8), color="rgba")
    clf.close()
    with pytest.raises(ClosedError, match="closed"):
        clf.classify(pixels)
    with pytest.raises(ClosedError):
        clf.classify_batch([pixels, pixels])
