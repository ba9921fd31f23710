"""Tests for train.plots: each figure is a valid PNG written atomically, with real content."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cifar_edge.train.plots import plot_confusion_matrix, plot_curves, plot_predictions

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _assert_png(path: Path, *, min_w: int = 200, min_h: int = 150) -> tuple[int, int]:
    """``path`` is a PNG of plausible size and no temporary files remain next to it."""
    assert path.is_file()
    with Image.open(path) as img:
        assert img.format == "PNG"
        img.load()
        w, h = img.size
        # not a blank image: more than one colour
        assert img.convert("L").getextrema()[0] < img.convert("L").getextrema()[1]
    assert min_w <= w <= 5000 and min_h <= h <= 5000
    assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith(".")) == []
    return w, h


def _history(epochs: int, *, lr: bool = False) -> dict[str, list[float]]:
    t = np.arange(epochs, dtype=float)
    h = {
        "accuracy": list(0.4 + 0.5 * (1 - np.exp(-t / 2))),
        "val_accuracy": list(0.35 + 0.45 * (1 - np.exp(-t / 2))),
        "loss": list(1.8 * np.exp(-t / 2) + 0.2),
        "val_loss": list(1.9 * np.exp(-t / 2) + 0.4),
    }
    if lr:
        h["lr"] = list(1e-3 * 0.5 ** t)
    return h


def _predictions(count: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=count)
    logits = rng.normal(size=(count, 10)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return images, labels, probs


def test_curves_single_epoch(tmp_path: Path) -> None:
    out = plot_curves(_history(1), tmp_path / "curves.png")
    assert out == tmp_path / "curves.png"
    _assert_png(out)


def test_curves_five_epochs_with_lr_is_wider(tmp_path: Path) -> None:
    w3, _ = _assert_png(plot_curves(_history(5, lr=True), tmp_path / "lr" / "curves.png"))
    w2, _ = _assert_png(plot_curves(_history(5), tmp_path / "nolr" / "curves.png"))
    assert w3 > w2  # the third (learning-rate) panel is present


def test_curves_partial_and_empty_history(tmp_path: Path) -> None:
    _assert_png(plot_curves({"loss": [1.0, 0.5]}, tmp_path / "partial.png"))
    _assert_png(plot_curves({}, tmp_path / "empty.png"))


def test_confusion_matrix_with_zero_row_has_no_warnings(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    matrix = rng.integers(0, 50, size=(10, 10)) + np.diag(np.full(10, 400))
    matrix[3] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        normalized = plot_confusion_matrix(matrix, CLASSES, tmp_path / "cm.png")
        counts = plot_confusion_matrix(matrix, CLASSES, tmp_path / "cm_counts.png", normalize=False, title="counts")
    _assert_png(normalized)
    _assert_png(counts)


def test_confusion_matrix_all_zero(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _assert_png(plot_confusion_matrix(np.zeros((3, 3), dtype=int), ["a", "b", "c"], tmp_path / "zero.png"))


def test_confusion_matrix_rejects_bad_shapes(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        plot_confusion_matrix(np.zeros((2, 3)), ["a", "b"], tmp_path / "x.png")
    with pytest.raises(ValueError):
        plot_confusion_matrix(np.zeros((3, 3)), ["a", "b"], tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_figure_content_depends_on_inputs(tmp_path: Path) -> None:
    a = np.array([[9, 1, 0], [2, 7, 1], [0, 0, 10]])
    b = np.array([[1, 9, 0], [7, 2, 1], [10, 0, 0]])
    pa = plot_confusion_matrix(a, ["x", "y", "z"], tmp_path / "a.png")
    pb = plot_confusion_matrix(b, ["x", "y", "z"], tmp_path / "b.png")
    with Image.open(pa) as ia, Image.open(pb) as ib:
        assert ia.size == ib.size
        assert np.asarray(ia.convert("RGB")).tobytes() != np.asarray(ib.convert("RGB")).tobytes()
    ca = plot_curves(_history(4), tmp_path / "ca.png")
    cb = plot_curves({k: v[::-1] for k, v in _history(4).items()}, tmp_path / "cb.png")
    assert ca.read_bytes() != cb.read_bytes()


def test_predictions_grid(tmp_path: Path) -> None:
    images, labels, probs = _predictions(40)
    out = plot_predictions(images, labels, probs, CLASSES, tmp_path / "pred.png", n=12, top_k=3)
    _, h = _assert_png(out, min_w=600, min_h=400)
    assert h > 400  # 4 rows of pairs


def test_predictions_fewer_images_than_n(tmp_path: Path) -> None:
    images, labels, probs = _predictions(2)
    out = plot_predictions(images, labels, probs, CLASSES, tmp_path / "few.png", n=12, top_k=20)
    _assert_png(out)


def test_predictions_seed_changes_sample(tmp_path: Path) -> None:
    images, labels, probs = _predictions(50)
    a = plot_predictions(images, labels, probs, CLASSES, tmp_path / "a.png", n=3, seed=0)
    b = plot_predictions(images, labels, probs, CLASSES, tmp_path / "b.png", n=3, seed=0)
    c = plot_predictions(images, labels, probs, CLASSES, tmp_path / "c.png", n=3, seed=5)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_predictions_length_mismatch(tmp_path: Path) -> None:
    images, labels, probs = _predictions(4)
    with pytest.raises(ValueError):
        plot_predictions(images, labels[:3], probs, CLASSES, tmp_path / "x.png")


def test_creates_missing_folders(tmp_path: Path) -> None:
    out = plot_curves(_history(3), str(tmp_path / "a" / "b" / "curves.png"))
    assert out == tmp_path / "a" / "b" / "curves.png"
    _assert_png(out)


def test_parent_is_a_file_raises_and_leaves_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "report"
    blocker.write_text("not a folder")
    with pytest.raises(NotADirectoryError):
        plot_confusion_matrix(np.eye(2, dtype=int), ["a", "b"], blocker / "cm.png")
    with pytest.raises(OSError):
        plot_curves(_history(2), blocker / "sub" / "curves.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]
    assert blocker.read_text() == "not a folder"


def test_overwrites_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "cm.png"
    target.write_bytes(b"old")
    plot_confusion_matrix(np.eye(2, dtype=int), ["a", "b"], target)
    _assert_png(target)


def test_threads_render_concurrently(tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            plot_confusion_matrix(np.eye(3, dtype=int) * (i + 1), ["a", "b", "c"], tmp_path / f"t{i}.png")
        except Exception as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for i in range(3):
        _assert_png(tmp_path / f"t{i}.png")
