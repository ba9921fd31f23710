"""Outlier exposure's JPEG re-compression (train/outliers.py): outliers carry the same artefacts as
training images stored as lossy JPEGs, so compression is no cue for "unknown"."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from cifar_edge.train.outliers import jpeg_like, outlier_dataset  # noqa: E402


def _images(count: int = 8) -> np.ndarray:
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, 32, dtype=np.float32)
    smooth = np.stack([ramp[None, :].repeat(32, 0), ramp[:, None].repeat(32, 1), np.full((32, 32), 90.0)], -1)
    noisy = smooth + rng.normal(0, 40, (count, 32, 32, 3))
    return np.clip(noisy, 0, 255).astype(np.uint8)


def test_jpeg_like_keeps_the_picture_and_adds_the_quality_s_loss():
    image = tf.constant(_images(1)[0].astype(np.float32))
    low, high = jpeg_like(image, 10), jpeg_like(image, 95)
    assert low.dtype == tf.float32 and low.shape == (32, 32, 3)
    err_low, err_high = float(tf.reduce_mean(tf.abs(low - image))), float(tf.reduce_mean(tf.abs(high - image)))
    assert 0.0 < err_high < err_low  # a textured picture always loses something, more at a lower quality
    assert err_low < 60.0  # still the same picture, not noise
    assert float(tf.reduce_min(low)) >= 0.0 and float(tf.reduce_max(low)) <= 255.0


@pytest.mark.parametrize("photos", [0, 5])
def test_outlier_stream_recompresses_every_outlier(photos):
    images = _images()
    real = _images(photos) if photos else np.zeros((0, 32, 32, 3), np.uint8)
    plain = [x.numpy() for x in outlier_dataset(images, real, seed=3).take(6)]
    compressed = [x.numpy() for x in outlier_dataset(images, real, seed=3, jpeg_quality=75).take(6)]
    for before, after in zip(plain, compressed):
        np.testing.assert_array_equal(after, jpeg_like(tf.constant(before), 75).numpy())
    assert any(not np.array_equal(before, after) for before, after in zip(plain, compressed))


@pytest.mark.slow
def test_keep_last_keeps_the_final_epoch_and_the_default_the_best_validation_one(tmp_path, cifar10_dir, session_cache):
    import json

    from cifar_edge.train.training import TrainConfig, load_keras_model, train

    base = dict(model="resnet8", data=str(cifar10_dir), cache_dir=str(session_cache), epochs=3, limit=64,
                eval_limit=64, batch_size=32, lr=0.05, warmup_epochs=0)
    for keep_last in (False, True):
        run = tmp_path / f"keep-last-{keep_last}"
        summary = train(TrainConfig(out=str(run), keep_last=keep_last, **base))
        history = json.loads((run / "history.json").read_text())
        val = [row["val_accuracy"] for row in history]
        assert summary["best_epoch"] == (3 if keep_last else val.index(max(val)) + 1)
        if keep_last:
            best, last = load_keras_model(run / "best.keras"), load_keras_model(run / "last.keras")
            for a, b in zip(best.get_weights(), last.get_weights()):
                np.testing.assert_array_equal(a, b)
