"""Mixed precision for GPU runs: float16 compute with float32 variables, float32 outputs and exports.

The command sets Keras's global dtype policy to :data:`MIXED_POLICY` (a process-wide setting, so
never the library) after :func:`check_mixed_precision` accepted the machine. Models built under it
get a float32 output layer (:func:`with_float32_output`: the softmax of float16 logits loses the
small probabilities the loss needs), ``compile`` wraps the optimizer in Keras's
``LossScaleOptimizer``, and ``best.keras`` is saved as a float32 copy (:func:`float32_copy`) so that
conversion and exports see the same model as from a float32 run.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from edge_sdk.errors import EdgeSDKError

MIXED_POLICY = "mixed_float16"


def check_mixed_precision(devices: Sequence[str] | None = None) -> None:
    """Raise :class:`EdgeSDKError` unless mixed precision would run on a GPU.

    ``devices`` are the ``--devices`` of a mirrored run, if any. A CPU computes float16 more
    slowly than float32, so a CPU-only machine (or CPU devices) is refused rather than slowed down.
    """
    if not tf.config.list_physical_devices("GPU"):
        raise EdgeSDKError(
            "--mixed-precision needs a GPU: TensorFlow finds none on this machine, and on a CPU float16 "
            "is only slower than float32; drop --mixed-precision (or install a GPU build of TensorFlow, see docs/training.md)"
        )
    cpus = [d for d in devices or () if "CPU" in d.upper()]
    if cpus:
        raise EdgeSDKError(f"--mixed-precision needs GPU devices; --devices lists {', '.join(cpus)}")


def _is_float32(model: keras.Model) -> bool:
    return all(layer.dtype_policy.name == "float32" for layer in model.layers)


def _clone(model: keras.Model, dtype_of) -> keras.Model:
    """A copy of ``model`` with each layer's dtype policy from ``dtype_of(layer)`` (``None``: as it
    was) and the same weight values (the clone's own initialisation is overwritten)."""

    def recreate(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        dtype = dtype_of(layer)
        if dtype is not None:
            config["dtype"] = dtype
        return layer.__class__.from_config(config)

    clone = keras.models.clone_model(model, clone_function=recreate)
    clone.set_weights(model.get_weights())
    return clone


def with_float32_output(model: keras.Model) -> keras.Model:
    """``model`` with its output layer computing in float32 (the model itself when it already does)."""
    output_layer = model.layers[-1]
    if output_layer.dtype_policy.compute_dtype == "float32":
        return model
    return _clone(model, lambda layer: "float32" if layer.name == output_layer.name else None)


def float32_copy(model: keras.Model) -> keras.Model:
    """``model`` with every layer in float32, for files that are exported (``model`` itself when it
    already is float32)."""
    if _is_float32(model):
        return model
    return _clone(model, lambda layer: "float32")
