"""Test-time augmentation built into the exported model: the SDK needs nothing new to use it.

``flip``: the model classifies each image and its mirror image in one call (the two stacked on
the batch axis, so the convolutions run once on a batch of two) and returns the mean of the two
probability vectors. Every op (REVERSE_V2 / Slice, CONCATENATION, RESHAPE, MEAN) is an int8
TFLite builtin and quantizes in ONNX Runtime's QDQ flow.
"""

from __future__ import annotations

from typing import Any

import keras

TTA_MODES = ("none", "flip")
TTA_VIEWS = {"none": 1, "flip": 2}  # model evaluations per classified image


def with_tta(model: Any, mode: str) -> Any:
    """``model`` wrapped to average over its ``mode`` views (``none``: ``model`` itself).

    The wrapper shares ``model``'s weights, keeps its input shape and its probability output.
    Raises ``ValueError`` for an unknown mode.
    """
    if mode not in TTA_MODES:
        raise ValueError(f"unknown test-time augmentation {mode!r}; choose one of: {', '.join(TTA_MODES)}")
    if mode == "none":
        return model
    inputs = keras.Input(shape=tuple(model.inputs[0].shape[1:]), name="image")
    mirrored = keras.ops.flip(inputs, axis=2)  # NHWC: axis 2 is the width
    both = keras.ops.concatenate([inputs, mirrored], axis=0)
    probs = model(both)
    num_classes = int(model.outputs[0].shape[-1])
    pair = keras.ops.reshape(probs, (2, -1, num_classes))
    outputs = keras.ops.mean(pair, axis=0)
    return keras.Model(inputs, outputs, name=f"{model.name}_tta_{mode}")
