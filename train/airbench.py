"""An airbench94-shaped CIFAR network made int8-friendly (Jordan, "94% on CIFAR-10 in 3.29 seconds").

Differences from the paper's PyTorch net, each for int8 TFLite / ONNX QDQ deployment:

- ReLU instead of GELU: int8 GELU is not delegated to XNNPACK (9 graph partitions against 2).
- Conv -> BatchNorm -> ReLU -> max-pool instead of conv -> pool -> BN -> act: with the BN scale
  frozen at 1 the per-channel affine map is increasing, so it commutes with the max-pool and
  folds into the convolution (BN after the pool leaves an int8 MUL).
- ``GlobalMaxPooling2D`` over the final 3x3 map instead of max-pool 3 + a dynamic Flatten.

Kept: the frozen 2x2 patch-whitening first layer (eigenvectors of the training images' patch
covariance, as ``+V`` / ``-V`` pairs, so a ReLU after it loses nothing), widths 64/256/256,
BatchNorm without scale and with a fast running-statistics momentum, Dirac (identity)
initialisation of the first input-count filters of every 3x3 conv, a bias-free dense head and
the 1/9 output scaling.
"""

from __future__ import annotations

import numpy as np
import keras

# the net's numbers, commented, in the recipe table
from .recipes import AIRBENCH_WIDTHS as WIDTHS, BN_EPSILON, BN_MOMENTUM, OUTPUT_SCALE, WHITEN_EPS, WHITEN_KERNEL  # noqa: F401


def _activation(x, kind: str, name: str):
    if kind == "relu":
        return keras.layers.ReLU(name=name)(x)
    return keras.layers.Activation("gelu", name=name)(x)  # airbench's own; measured only (not delegated in int8)


def _conv_bn_act(x, filters: int, name: str, activation: str):
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, scale=False, name=f"{name}_bn")(x)
    return _activation(x, activation, f"{name}_relu" if activation == "relu" else f"{name}_{activation}")


def build_airbench(
    input_shape: tuple[int, int, int] = (32, 32, 3),
    num_classes: int = 10,
    widths: tuple[int, int, int] = WIDTHS,
    name: str = "airbench",
    activation: str = "relu",
) -> keras.Model:
    """The network with identity-initialised whitening filters (call :func:`init_whitening` with data).

    The whitening layer is named ``whiten`` and is not trainable. ``activation`` is ``relu`` or
    ``gelu`` (airbench's; kept for the comparison). Raises ``ValueError`` for another activation.
    """
    if activation not in ("relu", "gelu"):
        raise ValueError(f"activation must be 'relu' or 'gelu', got {activation!r}")
    channels = input_shape[-1]
    n_whiten = 2 * WHITEN_KERNEL * WHITEN_KERNEL * channels
    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Conv2D(n_whiten, WHITEN_KERNEL, padding="valid", use_bias=False, trainable=False, name="whiten")(inputs)
    x = _activation(x, activation, f"whiten_{activation}")
    for index, width in enumerate(widths, start=1):
        x = _conv_bn_act(x, width, f"block{index}_a", activation)
        x = keras.layers.MaxPooling2D(2, name=f"block{index}_pool")(x)
        x = _conv_bn_act(x, width, f"block{index}_b", activation)
    x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    x = keras.layers.Dense(num_classes, use_bias=False, name="logits")(x)
    x = keras.layers.Rescaling(OUTPUT_SCALE, name="logit_scale")(x)
    outputs = keras.layers.Softmax(name="probs")(x)
    model = keras.Model(inputs, outputs, name=name)
    _dirac_init(model)
    init_whitening(model, None)
    return model


def _dirac_init(model: keras.Model) -> None:
    """Set the first ``in_channels`` filters of every 3x3 conv to the identity (airbench's dirac init)."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D) and layer.name != "whiten" and layer.kernel_size == (3, 3):
            kernel = keras.ops.convert_to_numpy(layer.kernel).copy()
            c_in, c_out = kernel.shape[2], kernel.shape[3]
            n = min(c_in, c_out)
            kernel[:, :, :, :n] = 0.0
            kernel[1, 1, np.arange(n), np.arange(n)] = 1.0
            layer.kernel.assign(kernel)


def whitening_filters(images: np.ndarray | None, kernel: int = WHITEN_KERNEL, channels: int = 3,
                      eps: float = WHITEN_EPS) -> np.ndarray:
    """``(k, k, channels, 2 * k * k * channels)`` filters ``[V / sqrt(L + eps), -V / sqrt(L + eps)]``.

    ``V``, ``L`` are the eigenvectors and eigenvalues of the covariance of every ``k x k`` patch of
    ``images`` (float, NHWC, as the model sees them). ``images=None`` gives identity/negated pairs.
    Raises ``ValueError`` for images of the wrong rank or channel count.
    """
    dim = kernel * kernel * channels
    if images is None:
        vectors, scale = np.eye(dim), np.ones(dim)
    else:
        images = np.asarray(images, dtype=np.float64)
        if images.ndim != 4 or images.shape[-1] != channels:
            raise ValueError(f"whitening needs NHWC images with {channels} channels, got shape {images.shape}")
        patches = _patches(images, kernel)
        patches = patches - patches.mean(axis=0)
        cov = patches.T @ patches / len(patches)
        eigenvalues, vectors = np.linalg.eigh(cov)
        vectors, eigenvalues = vectors[:, ::-1], eigenvalues[::-1]  # strongest first
        scale = 1.0 / np.sqrt(np.maximum(eigenvalues, 0.0) + eps)
    filters = (vectors * scale).T  # one row per filter, flattened (kh, kw, c)
    filters = np.concatenate([filters, -filters], axis=0)
    return filters.reshape(2 * dim, kernel, kernel, channels).transpose(1, 2, 3, 0).astype(np.float32)


def _patches(images: np.ndarray, kernel: int) -> np.ndarray:
    """Every ``kernel x kernel`` patch (stride 1) flattened in (kh, kw, c) order."""
    windows = np.lib.stride_tricks.sliding_window_view(images, (kernel, kernel), axis=(1, 2))  # N,H',W',C,kh,kw
    windows = windows.transpose(0, 1, 2, 4, 5, 3)
    return windows.reshape(-1, kernel * kernel * images.shape[-1])


def init_whitening(model: keras.Model, images: np.ndarray | None) -> None:
    """Set ``model``'s ``whiten`` layer from ``images`` (a few thousand normalized training images)."""
    layer = model.get_layer("whiten")
    kernel_size = layer.kernel_size[0]
    layer.kernel.assign(whitening_filters(images, kernel_size, int(layer.kernel.shape[2])))


def has_whitening(model: keras.Model) -> bool:
    """Whether ``model`` has a ``whiten`` layer to initialise from data."""
    return any(layer.name == "whiten" for layer in model.layers)
