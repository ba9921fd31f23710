"""Open world (issue 23): the "unknown" verdict, open-set evaluation, framing modes and the fast frame path."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_sdk import Classifier
from edge_sdk.errors import InvalidArgumentError, MetadataError
from edge_sdk.images import image_files, load_image
from edge_sdk.resize import RESIZE_MODES, crop_box, draft_scale, fit_size, resize_image, resize_pixels
from edge_sdk.spec import PreprocessSpec, unknown_score

from cifar_edge.train.open_set import (auroc, calibrate_threshold, open_set_metrics, outlier_half, outlier_photo_files,
                                       unknown_scores)
from test_training import REPO, cli

REAL_PHOTOS = REPO.parent / "shared" / "datasets" / "real-photos"
EDGE_EXPORT = REPO / "models" / "edge" / "export"


def _real_photos() -> Path:
    if not REAL_PHOTOS.is_dir():
        pytest.fail(f"the real-photo folder is missing: {REAL_PHOTOS} (../shared beside the repository)")
    return REAL_PHOTOS


# ----------------------------------------------------------------- the rule and its threshold
def test_spec_carries_and_checks_the_unknown_threshold():
    spec = PreprocessSpec(unknown_threshold=0.4)
    assert PreprocessSpec.from_json(spec.to_json()).unknown_threshold == 0.4
    assert spec.is_unknown([0.39, 0.3, 0.31]) and not spec.is_unknown([0.4, 0.3, 0.3])  # the top-1 probability
    assert not PreprocessSpec().is_unknown([0.1] * 10)  # no threshold: everything gets a label
    for bad in (1.5, -0.1, "0.4", True):
        with pytest.raises(MetadataError, match="unknown_threshold"):
            PreprocessSpec(unknown_threshold=bad)
    with pytest.raises(MetadataError, match="unknown_score"):
        PreprocessSpec(unknown_score="energy")
    certain = PreprocessSpec(unknown_threshold=0.2, unknown_score="certainty")
    assert PreprocessSpec.from_json(certain.to_json()).unknown_score == "certainty"
    assert PreprocessSpec.from_dict({"unknown_threshold": 0.2}).unknown_score == "max-probability"  # older files


def test_unknown_scores_of_both_rules():
    rows = np.array([[0.25, 0.25, 0.25, 0.25], [1.0, 0.0, 0.0, 0.0], [0.7, 0.1, 0.1, 0.1], [0.4, 0.4, 0.1, 0.1]])
    np.testing.assert_allclose(unknown_scores(rows, "max-probability"), [0.25, 1.0, 0.7, 0.4])
    certainty = unknown_scores(rows, "certainty")
    entropy = -np.sum(rows[2] * np.log(rows[2]))
    np.testing.assert_allclose(certainty, [0.0, 1.0, 1 - entropy / np.log(4), certainty[3]], atol=1e-12)
    assert 0.0 < certainty[3] < certainty[2]  # two likely classes: less certain than one
    # an int8 softmax sums to 1 only within its rounding: the score does not depend on the sum
    np.testing.assert_allclose(unknown_scores(rows * 0.98, "certainty"), certainty, atol=1e-12)
    assert unknown_scores(np.zeros((1, 3)), "certainty")[0] == pytest.approx(0.0, abs=1e-12)  # no mass: as uniform
    assert unknown_score(rows[1].tolist(), "certainty") == 1.0  # one row, as the Classifier passes it
    assert unknown_score([0.9], "certainty") == 1.0  # a single class is certain
    spec = PreprocessSpec(labels=("a", "b", "c", "d"), unknown_threshold=0.5, unknown_score="certainty")
    assert [spec.is_unknown(row) for row in rows.tolist()] == [True, False, True, True]
    for bad in (lambda: unknown_scores(rows, "energy"), lambda: unknown_score([0.5, 0.5], "energy")):
        with pytest.raises(MetadataError, match="unknown_score"):
            bad()


def test_calibrated_threshold_keeps_the_asked_share():
    scores = np.linspace(0.0, 1.0, 1001)
    threshold = calibrate_threshold(scores, 0.9)
    assert (scores >= threshold).mean() >= 0.9
    assert (scores >= threshold + 0.01).mean() < 0.9
    with pytest.raises(ValueError):
        calibrate_threshold(np.zeros(0), 0.9)


def test_auroc_and_open_set_metrics():
    assert auroc(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 1.0
    assert auroc(np.array([0.1]), np.array([0.9])) == 0.0
    assert auroc(np.array([0.5, 0.5]), np.array([0.5])) == 0.5  # ties count half
    assert auroc(np.array([]), np.array([0.5])) is None
    known = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]])
    unknown = np.array([[0.5, 0.5], [0.55, 0.45]])
    m = open_set_metrics(known, unknown, threshold=0.58)
    assert m["known_rejected"] == 0.0 and m["unknown_rejected"] == 1.0
    assert m["auroc"] == 1.0 and m["known_images"] == 3 and m["unknown_images"] == 2
    assert open_set_metrics(known, unknown, None)["unknown_rejected"] == 0.0
    # on the certainty scale: [0.5, 0.5] is 0, [0.55, 0.45] 0.007, [0.6, 0.4] 0.029, [0.9, 0.1] 0.53
    c = open_set_metrics(known, unknown, threshold=0.005, score="certainty")
    assert c["score"] == "certainty" and c["unknown_rejected"] == 0.5 and c["known_rejected"] == 0.0
    assert c["auroc"] == 1.0


def _with_threshold(tmp_path: Path, threshold: float | None) -> Path:
    """A copy of the shipped edge int8 TFLite file whose embedded spec says ``threshold``."""
    from cifar_edge.convert.embed import embed_metadata
    from edge_sdk.metadata import read_metadata

    source = EDGE_EXPORT / "model_int8.tflite"
    meta = read_metadata(source)
    from dataclasses import replace

    meta = replace(meta, spec=meta.spec.merged({"unknown_threshold": threshold}))
    target = tmp_path / "edge_threshold.tflite"
    target.write_bytes(embed_metadata(source.read_bytes(), meta))
    return target


def test_unknown_verdict_from_the_threshold_stored_in_the_file(tmp_path):
    model = _with_threshold(tmp_path, 0.999)  # nothing is that sure: every picture is unknown
    flat = np.full((32, 32, 3), 128, np.uint8)  # a grey field: no object at all
    with Classifier(model) as clf:
        assert clf.spec.unknown_threshold == 0.999
        result = clf.classify(flat)
        assert result.unknown and result.label is None
        assert result.categories  # the best guesses stay available
        assert all(r.unknown for r in clf.classify_batch([flat, flat]))
    with Classifier(model, unknown_threshold=0.0) as clf:  # the per-Classifier override turns it off
        result = clf.classify(flat)
        assert not result.unknown and result.label == result.top.label
    with pytest.raises(InvalidArgumentError, match="unknown_threshold"):
        Classifier(model, unknown_threshold=2.0)


def test_unknown_verdict_on_a_synthetic_out_of_set_input(tmp_path):
    # threshold between the model's confidence on a CIFAR test image it knows and a noise picture
    model = _with_threshold(tmp_path, None)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (32, 32, 3), np.uint8)
    with Classifier(model) as clf:
        score = lambda x: unknown_score(clf.probabilities(x).tolist(), clf.spec.unknown_score)  # noqa: E731 - the file's rule
        noise_score = score(noise)
    assert noise_score < 0.99
    model = _with_threshold(tmp_path, round(noise_score + 0.005, 3))
    with Classifier(model) as clf:
        assert clf.classify(noise).unknown
        # a picture the model is sure about keeps its label
        sure = max((load_image(p, 32, 32) for p in _cifar_samples()), key=score)
        if score(sure) >= clf.spec.unknown_threshold:
            assert not clf.classify(sure).unknown


def _cifar_samples() -> list[Path]:
    import os

    root = Path(os.environ.get("CIFAR10_DIR", REPO.parent / "shared" / "datasets" / "cifar10")) / "test"
    return [sorted((root / c).iterdir())[0] for c in ("airplane", "automobile", "ship", "truck", "frog")]


def test_predict_prints_and_returns_the_unknown_verdict(tmp_path):
    model = _with_threshold(tmp_path, 0.999)
    image = tmp_path / "grey.png"
    Image.new("RGB", (64, 48), (128, 128, 128)).save(image)
    proc = cli("predict", str(image), "--model", str(model), "--json", cache=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)["results"][0]
    assert result["unknown"] is True and result["label"] is None
    text = cli("predict", str(image), "--model", str(model), cache=tmp_path)
    assert "unknown (no known object" in text.stdout
    off = json.loads(cli("predict", str(image), "--model", str(model), "--unknown-threshold", "0", "--json", cache=tmp_path).stdout)
    assert off["results"][0]["unknown"] is False


# ----------------------------------------------------------------- open-set evaluation
def test_evaluate_a_folder_with_a_class_subset_and_unknown(tmp_path):
    photos = _real_photos()
    data = tmp_path / "photos"
    for cls in ("dog", "ship"):  # two of the ten classes only
        shutil.copytree(photos / "test" / cls, data / "test" / cls)
    (data / "unknown").mkdir()
    for path in sorted((photos / "unknown").iterdir())[:12]:
        shutil.copy(path, data / "unknown" / path.name)
    model = _with_threshold(tmp_path, 0.5)
    proc = cli("evaluate", str(model), "--data", str(data), "--json", cache=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    expected_known = len(image_files(data / "test" / "dog")) + len(image_files(data / "test" / "ship"))
    assert result["images"] == expected_known
    assert result["per_class_accuracy"]["cat"] is None  # a class the folder does not hold
    assert 0.0 <= result["macro_accuracy"] <= 1.0
    open_set = result["open_set"]
    assert open_set["known_images"] == expected_known and open_set["unknown_images"] == 12
    assert open_set["threshold"] == 0.5
    assert 0.0 <= open_set["auroc"] <= 1.0
    assert 0.0 <= open_set["unknown_rejected"] <= 1.0 and 0.0 <= open_set["known_rejected"] <= 1.0
    half = json.loads(cli("evaluate", str(model), "--data", str(data), "--unknown-half", "1", "--json", cache=tmp_path).stdout)
    assert half["open_set"]["unknown_images"] == sum(outlier_half(p) == 1 for p in (data / "unknown").iterdir())
    text = cli("evaluate", str(model), "--data", str(data), cache=tmp_path).stdout
    assert "open set:" in text and "AUROC" in text


def test_outlier_halves_split_the_folder_by_name():
    files = outlier_photo_files(_real_photos() / "unknown")
    halves = [outlier_photo_files(_real_photos() / "unknown", h) for h in (0, 1)]
    assert sorted(halves[0] + halves[1]) == files
    assert not set(halves[0]) & set(halves[1])
    assert 0.35 < len(halves[0]) / len(files) < 0.65


# ----------------------------------------------------------------- framing and the fast frame path
def test_framing_geometry():
    assert crop_box(480, 640, 32, 32) == (0, 80, 480, 480)
    assert crop_box(640, 480, 32, 32) == (80, 0, 480, 480)
    assert fit_size(480, 640, 32, 32) == (24, 32)
    assert draft_scale(3000, 4000, 32, 32, "stretch") == pytest.approx(2 * 32 / 3000)
    assert draft_scale(20, 20, 32, 32, "stretch") == 1.0
    with pytest.raises(InvalidArgumentError, match="resize mode"):
        resize_pixels(np.zeros((8, 8, 3), np.uint8), 4, 4, "squash")


@pytest.mark.parametrize("size", [(480, 640), (1080, 1920), (100, 130)])
@pytest.mark.parametrize("mode", RESIZE_MODES)
def test_array_and_pil_paths_frame_alike(mode, size):
    rng = np.random.default_rng(1)
    # a smooth picture (real photos are smooth at this scale): the array path's sampled tent filter weighs
    # the area Pillow's antialiased bilinear filter does, so the two agree within a grey level on average
    coarse = rng.integers(0, 256, (6, 8, 3), np.uint8)
    frame = np.asarray(Image.fromarray(coarse).resize(size[::-1], Image.Resampling.BICUBIC))
    fast = resize_pixels(frame, 32, 32, mode)
    reference = resize_image(Image.fromarray(frame), 32, 32, mode)
    assert fast.shape == reference.shape == (32, 32, 3)
    assert np.abs(fast.astype(int) - reference.astype(int)).mean() < 1.0
    if mode == "letterbox":
        assert (fast[:3] == 114).all() and (fast[-3:] == 114).all()  # bars above and below a 4:3 frame


@pytest.mark.parametrize("shape", [(480, 640), (480, 640, 1), (480, 640, 4)])
def test_array_path_keeps_the_channels_it_is_given(shape):
    frame = np.random.default_rng(2).integers(0, 256, shape, np.uint8)
    assert resize_pixels(frame, 32, 24).shape == (32, 24, *shape[2:])


def test_fast_frame_path_agrees_with_the_reference_path_on_real_photos():
    """Photos as BGR arrays (the camera path: a sampled tent filter) vs the same pictures as PIL images
    (Pillow's antialiased resize, the reference): the same accuracy and mostly the same top-1."""
    rows = []
    with Classifier(EDGE_EXPORT / "model_int8.tflite") as clf:
        for d in sorted((_real_photos() / "test").iterdir()):
            for path in image_files(d):
                with Image.open(path) as img:
                    rgb = img.convert("RGB")
                # a camera-sized frame: the photo enlarged 3x (photos here are at most 320 px)
                frame = rgb.resize((rgb.width * 3, rgb.height * 3), Image.Resampling.BICUBIC)
                bgr = np.ascontiguousarray(np.asarray(frame)[:, :, ::-1])
                label = clf.labels.index(d.name)
                rows.append((clf.classify(bgr, color="bgr").top.index, clf.classify(frame).top.index, label))
    fast, reference, labels = map(np.array, zip(*rows))
    # the tent filter follows Pillow's: within three photos of its accuracy (the area average before it: 4 below)
    assert abs((fast == labels).mean() - (reference == labels).mean()) <= 0.03
    assert (fast == reference).mean() >= 0.85


# ----------------------------------------------------------------- a user's own 3-class data set, end to end
@pytest.mark.slow
def test_three_class_user_data_trains_converts_and_classifies_with_unknown_rejection(tmp_path, cifar10_dir):
    """A user's 3-class folder (not CIFAR-10's classes) with outlier exposure: train, convert with a calibrated
    unknown threshold, classify and evaluate through the SDK."""
    data = tmp_path / "mydata"
    names = {"ship": "boats", "automobile": "cars", "airplane": "planes"}
    for split, count in (("train", 80), ("test", 20)):
        for cifar_name, mine in names.items():
            target = data / split / mine
            target.mkdir(parents=True)
            for path in sorted((cifar10_dir / "test" / cifar_name).iterdir())[(0 if split == "train" else 80):][:count]:
                shutil.copy(path, target / path.name)
    (data / "unknown").mkdir()
    for path in sorted((cifar10_dir / "test" / "frog").iterdir())[:16]:  # not one of the user's classes
        shutil.copy(path, data / "unknown" / path.name)
    run = tmp_path / "run"
    proc = cli("train", "--model", "resnet8", "--data", str(data), "--epochs", "1", "--batch-size", "32",
               "--val-size", "12", "--camera-augment", "--outlier-fraction", "0.25", "--outliers", str(data / "unknown"),
               "--outlier-jpeg", "75", "--resize", "center-crop", "--out", str(run), "--json", cache=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((run / "spec.json").read_text())["resize"] == "center-crop"
    assert json.loads((run / "summary.json").read_text())["config"]["outlier_jpeg"] == 75
    export = tmp_path / "export"
    proc = cli("convert", str(run / "best.keras"), "--out", str(export), "--data", str(data), "--formats", "tflite-int8",
               "--calib-size", "30", "--unknown-calibration", str(data), "--unknown-keep", "0.8",
               "--min-agreement", "0", "--max-accuracy-drop", "1", "--json", cache=tmp_path)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads(proc.stdout)
    threshold = manifest["unknown"]["threshold"]
    assert 0.0 < threshold <= 1.0 and manifest["unknown"]["keep"] == 0.8
    assert manifest["unknown"]["score"] == "certainty"  # convert's default rule
    with Classifier(export / "model_int8.tflite") as clf:
        assert clf.labels == ("boats", "cars", "planes")
        assert clf.spec.unknown_threshold == threshold and clf.spec.resize == "center-crop"
        assert clf.spec.unknown_score == "certainty"
        results = clf.classify_batch(image_files(data / "test", recursive=True))
        kept = [not r.unknown for r in results]
        assert 0.5 <= sum(kept) / len(kept) < 1.0 or threshold == 0.0  # about 80% of the known pictures keep a label
    result = json.loads(cli("evaluate", str(export / "model_int8.tflite"), "--data", str(data), "--json",
                            cache=tmp_path).stdout)
    assert result["class_names"] == ["boats", "cars", "planes"] and result["open_set"]["unknown_images"] == 16


def test_serve_and_the_overlay_give_the_unknown_verdict(tmp_path):
    from starlette.testclient import TestClient

    from cifar_edge.camera_demo.overlay import UNKNOWN_TEXT, OverlayInfo, draw_overlay
    from cifar_edge.camera_demo.web.app import create_app
    from cifar_edge.camera_demo.web.settings import ServeSettings

    picture = io.BytesIO()
    Image.new("RGB", (64, 48), (128, 128, 128)).save(picture, format="PNG")
    for threshold, unknown in ((0.999, True), (0.0, False)):
        with Classifier(_with_threshold(tmp_path, threshold)) as clf:
            with TestClient(create_app(clf, ServeSettings()), base_url="http://127.0.0.1:8000") as api:
                body = api.post("/v1/classify", files={"image": ("grey.png", picture.getvalue(), "image/png")}).json()
        assert body["unknown"] is unknown
        assert (body["label"] is None) is unknown and body["categories"]
    frame = np.zeros((480, 640, 3), np.uint8)
    seen = frame.copy()
    with Classifier(EDGE_EXPORT / "model_int8.tflite") as clf:
        cats = clf_categories = clf.classify(frame).categories
    draw_overlay(frame, OverlayInfo(categories=cats, fps=None, inference_ms=1.0, model_name="m", backend_name="b",
                                    unknown=True))
    draw_overlay(seen, OverlayInfo(categories=clf_categories, fps=None, inference_ms=1.0, model_name="m",
                                   backend_name="b"))
    assert UNKNOWN_TEXT == "no known object" and not np.array_equal(frame, seen)  # the verdict line is drawn
