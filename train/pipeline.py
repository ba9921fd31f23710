"""tf.data input pipelines: seeded shuffling, augmentation and normalization from the spec."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from edge_sdk.spec import PreprocessSpec

from .recipes import BRIGHTNESS_DELTA, CONTRAST_RANGE, PHOTO_PROBABILITY, SATURATION_RANGE, SOFTEN_RANGE

AUTOTUNE = tf.data.AUTOTUNE


# Photo augmentation (what the deployment path does to a picture, see _photo): its numbers are in the
# recipe table; PHOTO_PROBABILITY of the images get it, the rest stay as they are, so the model also
# learns the crisp JPEG pixels of the test split.
_BLUR_121 = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0]) / 16.0


def _augment(image: tf.Tensor, seeds: tf.Tensor, pad: int, cutout: int, photo: bool, camera: bool = False) -> tf.Tensor:
    """Random crop from a ``pad``-pixel reflected border, a random horizontal flip, when ``camera``
    a camera re-framing (:func:`~cifar_edge.train.outliers.camera_frame`, on a
    :data:`~cifar_edge.train.outliers.CAMERA_PROBABILITY` share), when ``photo``
    the deployment-path changes of :func:`_photo` (on a :data:`PHOTO_PROBABILITY` share) and, when ``cutout`` > 0, a ``cutout``-pixel
    square set to zero at a random centre (stateless, seeded)."""
    h, w = image.shape[0], image.shape[1]
    padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    image = tf.image.stateless_random_crop(padded, (h, w, 3), seed=seeds[0])
    image = tf.image.stateless_random_flip_left_right(image, seed=seeds[1])
    if camera:
        from .outliers import CAMERA_PROBABILITY, camera_frame

        framed = tf.random.stateless_uniform((), seed=seeds[1][::-1]) < CAMERA_PROBABILITY
        image = tf.where(framed, camera_frame(tf.cast(image, tf.float32), seeds[1] + 3), tf.cast(image, tf.float32))
    if photo:
        chosen = tf.random.stateless_uniform((), seed=seeds[-1][::-1]) < PHOTO_PROBABILITY
        image = tf.where(chosen, _photo(image, seeds[-1]), tf.cast(image, tf.float32))
    if cutout:
        image = _cutout(image, seeds[2], cutout)
    return image


def _photo(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """What a camera picture shrunk by the SDK looks like next to a CIFAR JPEG: smoother (or, from
    other cameras, sharper) and with another exposure and colour balance.

    An SDK downscale of a large smooth picture is close to a [1, 2, 1] blur of the 32x32 image, so
    the image is blended with that blur by a random amount in ``SOFTEN_RANGE`` (negative values
    sharpen), then brightness, contrast and saturation vary mildly. Works on 0-255 float pixels.
    """
    amounts = tf.random.stateless_uniform((4,), seed=seed)
    image = tf.cast(image, tf.float32)
    kernel = tf.constant(np.tile(_BLUR_121[:, :, None, None], (1, 1, 3, 1)), tf.float32)
    padded = tf.pad(image[None], [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
    blurred = tf.nn.depthwise_conv2d(padded, kernel, (1, 1, 1, 1), "VALID")[0]
    soften = SOFTEN_RANGE[0] + (SOFTEN_RANGE[1] - SOFTEN_RANGE[0]) * amounts[0]
    image = image + soften * (blurred - image)
    gray = tf.reduce_mean(image, axis=-1, keepdims=True)
    saturation = SATURATION_RANGE[0] + (SATURATION_RANGE[1] - SATURATION_RANGE[0]) * amounts[1]
    image = gray + saturation * (image - gray)
    contrast = CONTRAST_RANGE[0] + (CONTRAST_RANGE[1] - CONTRAST_RANGE[0]) * amounts[2]
    mean = tf.reduce_mean(image)
    image = mean + contrast * (image - mean) + BRIGHTNESS_DELTA * (2.0 * amounts[3] - 1.0)
    return tf.clip_by_value(image, 0.0, 255.0)


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
    photo: bool = False,
    camera: bool = False,
    soft_targets: np.ndarray | None = None,
    outliers: tf.data.Dataset | None = None,
    outlier_batch: int = 0,
) -> tf.data.Dataset:
    """Batches of ``(normalized float32 images, one-hot labels)``: the images go through
    :meth:`PreprocessSpec.normalize <edge_sdk.spec.PreprocessSpec.normalize>` (colour order and
    normalization), the function the SDK's encoder is built from. Raises ``MetadataError`` for an
    NCHW spec (Keras models take NHWC).

    Training sets are shuffled each epoch (``augment=False`` included) and
    augmented (``photo``: also with :func:`_photo`) with per-image seeds drawn from
    ``tf.data.Dataset.random(seed)``,
    so a run is reproducible whatever the number of parallel calls. ``soft_targets`` (one row per
    image, e.g. a teacher's probabilities) are appended to each one-hot label row. ``outliers`` (an
    endless stream of float 0-255 images, :func:`~cifar_edge.train.outliers.outlier_dataset`) adds
    ``outlier_batch`` of them to every batch with uniform target rows (outlier exposure).
    """
    spec.require_channels_last("the training pipeline")
    num_classes = spec.num_classes
    if soft_targets is not None:
        targets = np.asarray(soft_targets, dtype=np.float32)
        if len(targets) != len(labels):
            raise ValueError(f"{len(targets)} soft-target rows for {len(labels)} images")
        rows = np.concatenate([np.eye(num_classes, dtype=np.float32)[labels], targets], axis=1)
    else:
        rows = labels.astype(np.int32)
    ds = tf.data.Dataset.from_tensor_slices((images, rows))
    if training:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    if training and augment:
        n_seeds = 2 + bool(cutout) + bool(photo)  # without cutout/photo the streams stay those of earlier runs
        seeds = tf.data.Dataset.random(seed=seed).batch(2 * n_seeds).map(lambda s: tf.reshape(s, (n_seeds, 2)))
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda xy, s: (_augment(xy[0], s, pad, cutout, photo, camera), xy[1]), num_parallel_calls=AUTOTUNE,
            deterministic=True,
        )
    ds = ds.batch(batch_size, drop_remainder=False)
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y if soft_targets is not None else tf.one_hot(y, num_classes)),
                num_parallel_calls=AUTOTUNE, deterministic=True)
    if training and outliers is not None and outlier_batch > 0:
        width = int(rows.shape[1]) if rows.ndim == 2 else num_classes
        uniform = tf.fill((outlier_batch, width), 1.0 / num_classes)
        ds = tf.data.Dataset.zip((ds, outliers.batch(outlier_batch))).map(
            lambda xy, o: (tf.concat([xy[0], o], 0), tf.concat([xy[1], uniform], 0)),
            num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = ds.map(lambda x, y: (spec.normalize(x), y), num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.prefetch(AUTOTUNE)
