"""tf.data input pipelines: seeded shuffling, augmentation and normalization from the spec."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from edge_sdk.spec import PreprocessSpec

AUTOTUNE = tf.data.AUTOTUNE


def _augment(image: tf.Tensor, seeds: tf.Tensor, pad: int) -> tf.Tensor:
    """Random crop from a ``pad``-pixel reflected border, then a random horizontal flip (stateless, seeded)."""
    h, w = image.shape[0], image.shape[1]
    padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    image = tf.image.stateless_random_crop(padded, (h, w, 3), seed=seeds[0])
    return tf.image.stateless_random_flip_left_right(image, seed=seeds[1])


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    spec: PreprocessSpec,
    *,
    batch_size: int,
    training: bool,
    seed: int = 0,
    pad: int = 4,
) -> tf.data.Dataset:
    """Batches of ``(normalized float32 images, one-hot labels)``.

    Training sets are shuffled each epoch and augmented with per-image seeds
    drawn from ``tf.data.Dataset.random(seed)``, so a run is reproducible
    whatever the number of parallel calls.
    """
    num_classes = spec.num_classes
    ds = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int32)))
    if training:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
        seeds = tf.data.Dataset.random(seed=seed).batch(4).map(lambda s: tf.reshape(s, (2, 2)))
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda xy, s: (_augment(xy[0], s, pad), xy[1]), num_parallel_calls=AUTOTUNE, deterministic=True
        )
    ds = ds.batch(batch_size, drop_remainder=False)
    ds = ds.map(
        lambda x, y: (spec.normalize(tf.cast(x, tf.float32)), tf.one_hot(y, num_classes)),
        num_parallel_calls=AUTOTUNE,
        deterministic=True,
    )
    return ds.prefetch(AUTOTUNE)
