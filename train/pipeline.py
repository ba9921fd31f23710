"""tf.data input pipelines: seeded shuffling, augmentation and normalization from the spec."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from edge_sdk.spec import PreprocessSpec

AUTOTUNE = tf.data.AUTOTUNE


def _augment(image: tf.Tensor, seeds: tf.Tensor, pad: int, cutout: int) -> tf.Tensor:
    """Random crop from a ``pad``-pixel reflected border, a random horizontal flip and, when
    ``cutout`` > 0, a ``cutout``-pixel square set to zero at a random centre (stateless, seeded)."""
    h, w = image.shape[0], image.shape[1]
    padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    image = tf.image.stateless_random_crop(padded, (h, w, 3), seed=seeds[0])
    image = tf.image.stateless_random_flip_left_right(image, seed=seeds[1])
    if cutout:
        image = _cutout(image, seeds[2], cutout)
    return image


def _cutout(image: tf.Tensor, seed: tf.Tensor, size: int) -> tf.Tensor:
    """Zero a ``size`` x ``size`` square centred anywhere in the image (clipped at the borders)."""
    h, w = image.shape[0], image.shape[1]
    cy = tf.random.stateless_uniform((), seed=seed, minval=0, maxval=h, dtype=tf.int32)
    cx = tf.random.stateless_uniform((), seed=seed[::-1], minval=0, maxval=w, dtype=tf.int32)
    top, left = cy - size // 2, cx - size // 2
    rows, cols = tf.range(h)[:, None], tf.range(w)[None, :]
    inside = (rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size)
    return image * tf.cast(~inside, image.dtype)[:, :, None]


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    spec: PreprocessSpec,
    *,
    batch_size: int,
    training: bool,
    augment: bool = True,
    seed: int = 0,
    pad: int = 4,
    cutout: int = 0,
) -> tf.data.Dataset:
    """Batches of ``(normalized float32 images, one-hot labels)``.

    Training sets are shuffled each epoch (``augment=False`` included) and
    augmented with per-image seeds drawn from ``tf.data.Dataset.random(seed)``,
    so a run is reproducible whatever the number of parallel calls.
    """
    num_classes = spec.num_classes
    ds = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int32)))
    if training:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    if training and augment:
        n_seeds = 3 if cutout else 2  # without cutout the streams stay those of earlier runs
        seeds = tf.data.Dataset.random(seed=seed).batch(2 * n_seeds).map(lambda s: tf.reshape(s, (n_seeds, 2)))
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda xy, s: (_augment(xy[0], s, pad, cutout), xy[1]), num_parallel_calls=AUTOTUNE, deterministic=True
        )
    ds = ds.batch(batch_size, drop_remainder=False)
    ds = ds.map(
        lambda x, y: (spec.normalize(tf.cast(x, tf.float32)), tf.one_hot(y, num_classes)),
        num_parallel_calls=AUTOTUNE,
        deterministic=True,
    )
    return ds.prefetch(AUTOTUNE)
