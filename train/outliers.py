"""Outlier exposure (Hendrycks, Mazeika & Dietterich, ICLR 2019) and camera framing for training.

A model trained only on the ten classes names one of them for everything a camera sees. Outlier
exposure adds to every training batch images that are none of the classes, with a *uniform*
target: the model learns to spread its probability over the classes when it sees no known object,
so the top-1 probability (the SDK's "unknown" score) separates known from unknown pictures.

Outliers come from two sources, drawn half and half:

* **synthetic**, made on the fly from the training images (no extra data): a heavy zoom into a
  small patch (texture without an object), a shuffle of the image's 8x8 patches (the pieces of an
  object without its shape) and a smooth random colour field (a scene with nothing in it);
* **real photos** of other things (``--outliers DIR``, e.g. half of the real-photo folder's
  ``unknown/``: :func:`~cifar_edge.train.open_set.outlier_photo_files` keeps the other half back
  for measuring).

:func:`camera_frame` re-frames a training image as a camera or a photo does: the object smaller or
larger, shifted and with another aspect ratio, its surroundings continued by reflection.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

# the camera-framing and outlier numbers, commented, are in the recipe table
from .recipes import (  # noqa: F401  (CAMERA_PROBABILITY: pipeline.py imports it from here)
    CAMERA_PROBABILITY, FRAME_ASPECT_RANGE, FRAME_MAX_SHIFT, FRAME_PAD as _FRAME_PAD, FRAME_SCALE_RANGE,
    REAL_OUTLIER_SHARE, SHUFFLE_GRID, WHITE_BALANCE_RANGE, ZOOM_PATCH_RANGE,
)


def camera_frame(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Re-frame one ``HxWx3`` float image (0-255) as a camera picture of the object: scaled by
    :data:`FRAME_SCALE_RANGE`, its aspect ratio changed by :data:`FRAME_ASPECT_RANGE`, shifted up to
    :data:`FRAME_MAX_SHIFT`, the border continued by reflection, then a white-balance change."""
    h, w = image.shape[0], image.shape[1]
    u = tf.random.stateless_uniform((7,), seed=seed)
    scale = tf.exp(_between(u[0], *map(math.log, FRAME_SCALE_RANGE)))
    aspect = tf.exp(_between(u[1], *map(math.log, FRAME_ASPECT_RANGE)))
    # the box of the padded image that becomes the output, in image sizes
    box_h = 1.0 / (scale * tf.sqrt(aspect))
    box_w = tf.sqrt(aspect) / scale
    room = 0.5 + _FRAME_PAD
    shift_y = tf.minimum(FRAME_MAX_SHIFT, tf.maximum(room - box_h / 2, 0.0)) * (2.0 * u[2] - 1.0)
    shift_x = tf.minimum(FRAME_MAX_SHIFT, tf.maximum(room - box_w / 2, 0.0)) * (2.0 * u[3] - 1.0)
    ph, pw = int(h * _FRAME_PAD), int(w * _FRAME_PAD)
    padded = tf.pad(image, [[ph, ph], [pw, pw], [0, 0]], mode="REFLECT")
    total = 1.0 + 2.0 * _FRAME_PAD  # padded side in image sizes
    cy, cx = (0.5 + _FRAME_PAD + shift_y) / total, (0.5 + _FRAME_PAD + shift_x) / total
    hh, hw = box_h / (2.0 * total), box_w / (2.0 * total)
    box = tf.stack([cy - hh, cx - hw, cy + hh, cx + hw])[None]
    framed = tf.image.crop_and_resize(padded[None], box, [0], (h, w), method="bilinear")[0]
    gains = tf.stack([_between(u[4], *WHITE_BALANCE_RANGE), _between(u[5], *WHITE_BALANCE_RANGE),
                      _between(u[6], *WHITE_BALANCE_RANGE)])
    return tf.clip_by_value(framed * gains, 0.0, 255.0)


def _between(u: tf.Tensor, lo: float, hi: float) -> tf.Tensor:
    return lo + (hi - lo) * u


# ---------------------------------------------------------------- synthetic outliers
def synthetic_outlier(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """An image that shows none of the classes, made from a training image (float 0-255): a zoom
    into a small patch, a patch shuffle or a smooth random colour field, one of the three at random."""
    kind = tf.random.stateless_uniform((), seed=seed, maxval=3, dtype=tf.int32)
    seed2 = seed[::-1] + 1
    return tf.switch_case(kind, [lambda: _zoom_patch(image, seed2), lambda: _shuffle_patches(image, seed2),
                                 lambda: _colour_field(image, seed2)])


def _zoom_patch(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    h, w = image.shape[0], image.shape[1]
    u = tf.random.stateless_uniform((3,), seed=seed)
    side = _between(u[0], *ZOOM_PATCH_RANGE)
    top, left = u[1] * (1.0 - side), u[2] * (1.0 - side)
    box = tf.stack([top, left, top + side, left + side])[None]
    return tf.image.crop_and_resize(image[None], box, [0], (h, w), method="bilinear")[0]


def _shuffle_patches(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    h, w = image.shape[0], image.shape[1]
    g = SHUFFLE_GRID
    ch, cw = h // g, w // g
    cells = tf.reshape(image[: ch * g, : cw * g], (g, ch, g, cw, 3))
    cells = tf.reshape(tf.transpose(cells, (0, 2, 1, 3, 4)), (g * g, ch, cw, 3))
    order = tf.argsort(tf.random.stateless_uniform((g * g,), seed=seed))
    cells = tf.gather(cells, order)
    shuffled = tf.reshape(tf.transpose(tf.reshape(cells, (g, g, ch, cw, 3)), (0, 2, 1, 3, 4)), (ch * g, cw * g, 3))
    return tf.image.resize(shuffled, (h, w)) if (ch * g, cw * g) != (h, w) else shuffled


def _colour_field(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """A few random colours, taken from the image's own palette, blended smoothly over the frame."""
    h, w = image.shape[0], image.shape[1]
    grid = tf.random.stateless_uniform((3, 3, 3), seed=seed, maxval=1.0)
    pixels = tf.reshape(image, (-1, 3))
    picks = tf.random.stateless_uniform((9,), seed=seed[::-1], maxval=h * w, dtype=tf.int32)
    palette = tf.reshape(tf.gather(pixels, picks), (3, 3, 3))
    coarse = 0.5 * palette + 0.5 * 255.0 * grid
    noise = tf.random.stateless_normal((h, w, 3), seed=seed + 7, stddev=6.0)
    return tf.clip_by_value(tf.image.resize(coarse[None], (h, w), method="bicubic")[0] + noise, 0.0, 255.0)


def outlier_dataset(images: np.ndarray, photos: np.ndarray, seed: int, jpeg_quality: int = 0) -> tf.data.Dataset:
    """An endless, seeded stream of single outlier images (float32 0-255): synthetic ones made from
    ``images`` (training images) and, when ``photos`` holds any, real outlier photos re-framed by
    :func:`camera_frame` and flipped, :data:`REAL_OUTLIER_SHARE` of the time. ``jpeg_quality`` > 0
    re-compresses every outlier as a JPEG of that quality (:func:`jpeg_like`)."""
    stream = _outlier_stream(images, photos, seed)
    if jpeg_quality:
        stream = stream.map(lambda x: jpeg_like(x, jpeg_quality), num_parallel_calls=tf.data.AUTOTUNE,
                            deterministic=True)
    return stream


def jpeg_like(image: tf.Tensor, quality: int) -> tf.Tensor:
    """``image`` (float32 0-255) encoded as a JPEG of ``quality`` and decoded again. Training images
    stored as lossy JPEGs all carry its 8x8 block artefacts, while zoomed, smooth or photo outliers do
    not: without this, "no artefacts" alone would tell an outlier, a cue that also marks every clean
    camera picture of a known class as unknown."""
    encoded = tf.image.adjust_jpeg_quality(tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8), quality)
    return tf.cast(encoded, tf.float32)


def _outlier_stream(images: np.ndarray, photos: np.ndarray, seed: int) -> tf.data.Dataset:
    def with_seeds(ds: tf.data.Dataset, salt: int) -> tf.data.Dataset:
        seeds = tf.data.Dataset.random(seed=seed + salt).batch(2)
        return tf.data.Dataset.zip((ds, seeds))

    synth = tf.data.Dataset.from_tensor_slices(images).shuffle(len(images), seed=seed + 11).repeat()
    synth = with_seeds(synth, 12).map(lambda x, s: synthetic_outlier(tf.cast(x, tf.float32), s),
                                      num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if len(photos) == 0:
        return synth
    real = tf.data.Dataset.from_tensor_slices(photos).shuffle(len(photos), seed=seed + 13).repeat()
    real = with_seeds(real, 14).map(
        lambda x, s: tf.image.stateless_random_flip_left_right(camera_frame(tf.cast(x, tf.float32), s), seed=s[::-1]),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return tf.data.Dataset.sample_from_datasets([synth, real], [1.0 - REAL_OUTLIER_SHARE, REAL_OUTLIER_SHARE],
                                                seed=seed + 15)
